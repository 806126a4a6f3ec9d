//! The graph file as written: serde types mirroring the YAML, before validation.
//!
//! YAML is read with [`serde_saphyr`] (2.x). Of the maintained successors of
//! the archived `serde_yaml`, it is the one that carries locations all the way
//! to the values: [`serde_saphyr::Spanned`] records the line and column of any
//! value, so validation that happens *after* parsing (unknown plugin, bad
//! grant, edge to nowhere) can still point at the exact place in the file.
//! `serde_yaml_ng` and `serde_norway` are forks of `serde_yaml` 0.9 that give a
//! location for parse errors only, and `serde_yaml_ng` is on a slow release
//! cadence. serde-saphyr is also panic-free on hostile input, rejects
//! duplicate keys by default, and enforces a parsing budget (no
//! billion-laughs alias bombs).
//!
//! Every struct denies unknown fields, so a typo like `grant:` is an error
//! instead of a silently empty grant list.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGraph {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    pub entry: Spanned<String>,
    #[serde(default)]
    pub defaults: RawDefaults,
    pub nodes: NodeMap,
    #[serde(default)]
    pub edges: Vec<Spanned<RawEdge>>,
}

/// `defaults:`, applied to every node unless the node overrides them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub max_frames: Option<Spanned<u32>>,
}

/// `limits:`, every field optional so a node overrides field by field.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    #[serde(default)]
    pub fuel: Option<Spanned<u64>>,
    #[serde(default)]
    pub deadline_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_memory_mb: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_output_kb: Option<Spanned<u64>>,
}

/// One entry of `nodes:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub plugin: Spanned<String>,
    #[serde(default)]
    pub grants: Vec<Spanned<String>>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub every_tick: bool,
    #[serde(default)]
    pub config: Option<Spanned<serde_json::Value>>,
}

/// One entry of `edges:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEdge {
    pub from: Spanned<String>,
    pub to: Spanned<Targets>,
}

/// `to:` is one node name or a list of them.
#[derive(Debug)]
pub(crate) enum Targets {
    /// `to: output`; its location is the enclosing `Spanned`'s.
    One(String),
    /// `to: [output, ui]`, each with its own location.
    Many(Vec<Spanned<String>>),
}

// Hand-written rather than `#[serde(untagged)]`: untagged enums buffer their
// input and lose the locations of the list items.
impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TargetsVisitor;
        impl<'de> Visitor<'de> for TargetsVisitor {
            type Value = Targets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a node name or a list of node names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Targets, E> {
                Ok(Targets::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Targets, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<Spanned<String>>()? {
                    names.push(name);
                }
                Ok(Targets::Many(names))
            }
        }
        d.deserialize_any(TargetsVisitor)
    }
}

/// `nodes:` in file order, each name with its location (a `BTreeMap` would
/// lose both). The parser rejects duplicate names.
#[derive(Debug)]
pub(crate) struct NodeMap(pub Vec<(Spanned<String>, Spanned<RawNode>)>);

impl<'de> Deserialize<'de> for NodeMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeMapVisitor;
        impl<'de> Visitor<'de> for NodeMapVisitor {
            type Value = NodeMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from node name to node")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeMap, A::Error> {
                let mut nodes = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    nodes.push(entry);
                }
                Ok(NodeMap(nodes))
            }
        }
        d.deserialize_map(NodeMapVisitor)
    }
}
