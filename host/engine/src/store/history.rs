//! What changed from one graph version to the next: the nodes added,
//! removed and changed (their settings in the file, or their plugin), and
//! the graph-wide settings changed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::GraphVersion;

/// What changed from an older version of a graph to a newer one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionChanges {
    /// Nodes only the newer version has.
    pub added: Vec<String>,
    /// Nodes only the older version has.
    pub removed: Vec<String>,
    /// Nodes of both whose settings in the file changed (plugin reference,
    /// config, grants, limits, model, peers …).
    pub changed: Vec<String>,
    /// Nodes of both that run another plugin build (another content hash).
    pub plugins: Vec<String>,
    /// Top-level settings of the file that changed (`entry`, `defaults`,
    /// `edges`, `version` …), by key.
    pub settings: Vec<String>,
}

impl VersionChanges {
    /// Whether nothing is listed (the file's comments or layout changed).
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.plugins.is_empty()
            && self.settings.is_empty()
    }
}

/// The keys only `after` has, only `before` has, and those of both whose
/// values differ: nodes added, removed and changed between two versions.
pub(crate) fn key_changes<V: PartialEq>(
    before: &BTreeMap<String, V>,
    after: &BTreeMap<String, V>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let added = after
        .keys()
        .filter(|k| !before.contains_key(*k))
        .cloned()
        .collect();
    let removed = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    let changed = after
        .iter()
        .filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v))
        .map(|(k, _)| k.clone())
        .collect();
    (added, removed, changed)
}

/// The file's mapping (an empty one if a stored source no longer parses).
fn document(source: &str) -> BTreeMap<String, Value> {
    serde_saphyr::from_str_with_options::<BTreeMap<String, Value>>(
        source,
        crate::graph::file::options(),
    )
    .unwrap_or_default()
}

fn nodes(doc: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    match doc.get("nodes") {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    }
}

impl GraphVersion {
    /// What changed from `older` to this version.
    pub fn changes_since(&self, older: &GraphVersion) -> VersionChanges {
        ParsedVersion::new(self).changes_since(&ParsedVersion::new(older))
    }
}

/// A graph version with its file parsed once, for comparing it with the
/// versions before and after it (a page of versions parses each file once).
#[derive(Debug)]
pub struct ParsedVersion<'a> {
    version: &'a GraphVersion,
    doc: BTreeMap<String, Value>,
    nodes: BTreeMap<String, Value>,
}

impl<'a> ParsedVersion<'a> {
    /// Parses `version`'s file.
    pub fn new(version: &'a GraphVersion) -> Self {
        let doc = document(&version.source);
        let nodes = nodes(&doc);
        Self {
            version,
            doc,
            nodes,
        }
    }

    /// What changed from `older` to this version.
    pub fn changes_since(&self, older: &ParsedVersion<'_>) -> VersionChanges {
        let (before, after) = (&older.nodes, &self.nodes);
        let pin = |v: &GraphVersion, n: &str| v.plugins.get(n).map(|p| p.hash.clone());
        let keys: BTreeSet<&String> = older.doc.keys().chain(self.doc.keys()).collect();
        let (added, removed, changed) = key_changes(before, after);
        VersionChanges {
            added,
            removed,
            changed,
            plugins: after
                .keys()
                .filter(|k| {
                    before.contains_key(*k) && pin(older.version, k) != pin(self.version, k)
                })
                .cloned()
                .collect(),
            settings: keys
                .into_iter()
                .filter(|k| k.as_str() != "nodes" && older.doc.get(*k) != self.doc.get(*k))
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PluginPin;

    fn version(source: &str, pins: &[(&str, &str)]) -> GraphVersion {
        GraphVersion {
            id: "v".into(),
            name: "g".into(),
            graph_hash: String::new(),
            file: "g.yaml".into(),
            source: source.into(),
            plugins: pins
                .iter()
                .map(|(n, h)| {
                    (
                        (*n).to_owned(),
                        PluginPin {
                            hash: (*h).to_owned(),
                            file: None,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn nodes_added_removed_changed_and_rebuilt_and_settings_are_told_apart() {
        let old = version(
            "name: g\nentry: a\nnodes:\n  a: { plugin: x }\n  b: { plugin: y, config: { n: 1 } }\n  c: { plugin: z }\n  gone: { plugin: z }\n",
            &[("a", "h1"), ("b", "h2"), ("c", "h3"), ("gone", "h3")],
        );
        let new = version(
            "# a comment\nname: g\nentry: b\nnodes:\n  a: { plugin: x }\n  b: { plugin: y, config: { n: 2 } }\n  c: { plugin: z }\n  new: { plugin: z }\n",
            &[("a", "h1"), ("b", "h2"), ("c", "h4"), ("new", "h3")],
        );
        let changes = new.changes_since(&old);
        assert_eq!(changes.added, ["new"]);
        assert_eq!(changes.removed, ["gone"]);
        assert_eq!(changes.changed, ["b"]);
        assert_eq!(changes.plugins, ["c"]);
        assert_eq!(changes.settings, ["entry"]);
        assert!(!changes.is_empty());
        // Comments and layout are not changes.
        let relaid = version(
            "name: g\n# moved\nentry: a\nnodes:\n  a:\n    plugin: x\n  b: { plugin: y, config: { n: 1 } }\n  c: { plugin: z }\n  gone: { plugin: z }\n",
            &[("a", "h1"), ("b", "h2"), ("c", "h3"), ("gone", "h3")],
        );
        assert!(relaid.changes_since(&old).is_empty());
    }
}
