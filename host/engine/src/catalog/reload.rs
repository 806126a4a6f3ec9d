//! Reloading the served graphs from their files (a diff per graph of the
//! nodes added, removed and changed) and serving new graph files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::{Catalog, CatalogError};
use crate::{EventBody, LoadedGraph};

/// What a reload changed in one graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphChange {
    /// Graph name.
    pub name: String,
    /// The version new threads run now.
    pub version_id: String,
    /// The version before.
    pub previous_version_id: String,
    /// Nodes added.
    pub added: Vec<String>,
    /// Nodes removed.
    pub removed: Vec<String>,
    /// Nodes whose plugin, config, grants, limits, model or peers changed.
    pub changed: Vec<String>,
}

/// A graph served from a new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGraph {
    /// Graph name.
    pub name: String,
    /// Its version id.
    pub version_id: String,
    /// The file.
    pub file: PathBuf,
}

/// A graph file that did not (re)load; a graph it served keeps its old
/// version.
#[derive(Debug)]
pub struct ReloadFailure {
    /// The file.
    pub file: PathBuf,
    /// Why ([`CatalogError::GraphInvalid`] or, for a new file,
    /// [`CatalogError::GraphExists`]).
    pub error: CatalogError,
}

/// The result of a reload.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Served graphs whose file changed (unchanged ones are not listed).
    pub edited: Vec<GraphChange>,
    /// Graphs served from new files.
    pub added: Vec<NewGraph>,
    /// Files that failed to load.
    pub failed: Vec<ReloadFailure>,
}

/// What each node is, for comparing versions.
fn fingerprint(g: &LoadedGraph) -> BTreeMap<String, String> {
    g.graph()
        .nodes()
        .iter()
        .map(|n| {
            let hash = g
                .plugin(&n.name)
                .map(|p| p.hash_hex().to_owned())
                .unwrap_or_default();
            let grants: Vec<String> = n.grants.iter().map(|c| c.to_string()).collect();
            let print = json!({
                "plugin": hash, "config": n.config, "grants": grants, "model": n.model,
                "everyTick": n.every_tick, "defer": n.defer, "peers": n.peers,
                "reuseInstance": n.reuse_instance,
                "limits": format!("{:?}", n.limits),
            });
            (n.name.clone(), print.to_string())
        })
        .collect()
}

/// The nodes added, removed and changed from `old` to `new`.
fn diff(old: &LoadedGraph, new: &LoadedGraph) -> GraphChange {
    let (before, after) = (fingerprint(old), fingerprint(new));
    let (added, removed, changed) = crate::store::key_changes(&before, &after);
    GraphChange {
        name: new.graph().name().to_owned(),
        version_id: new.version_id().to_owned(),
        previous_version_id: old.version_id().to_owned(),
        added,
        removed,
        changed,
    }
}

impl Catalog {
    /// Reloads every served graph from its file. New threads run the new
    /// versions; threads and runs in flight keep theirs. A file that no
    /// longer loads leaves its old version serving. Each changed graph is
    /// a `graph_changed` event.
    pub async fn reload(&self) -> ReloadReport {
        let mut report = ReloadReport::default();
        for old in self.all() {
            let file = old.graph().file().to_owned();
            let new = match self.engine.load_graph(&file).await {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "graph not reloaded; the old version keeps serving");
                    report.failed.push(ReloadFailure {
                        file,
                        error: CatalogError::GraphInvalid(e),
                    });
                    continue;
                }
            };
            if new.version_id() == old.version_id() {
                continue;
            }
            let change = diff(&old, &new);
            tracing::info!(graph = %change.name, added = ?change.added, removed = ?change.removed, changed = ?change.changed, "graph reloaded");
            self.replace(&old, Arc::clone(&new));
            self.keep_version(&new).await;
            self.engine.publish_host(EventBody::GraphChanged {
                graph: change.name.clone(),
                version: change.version_id.clone(),
                change: "edited".into(),
            });
            report.edited.push(change);
        }
        report
    }

    /// Reloads every served graph (see [`reload`](Self::reload)), then
    /// serves each file of `changed` that exists and that no served graph
    /// comes from (see [`add_graph_file`](Self::add_graph_file)).
    pub async fn reload_files(&self, changed: &[PathBuf]) -> ReloadReport {
        let mut report = self.reload().await;
        for path in changed.iter().filter(|p| p.exists()) {
            match self.add_graph_file(path).await {
                Ok(Some(added)) => report.added.push(added),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(file = %path.display(), code = error.code(), %error, "new graph file not served");
                    report.failed.push(ReloadFailure {
                        file: path.clone(),
                        error,
                    });
                }
            }
        }
        report
    }

    /// Serves the graph file at `path` if no served graph comes from it
    /// (a `graph_changed` event says so). `None`: the file is served
    /// already.
    pub async fn add_graph_file(&self, path: &Path) -> Result<Option<NewGraph>, CatalogError> {
        let wanted = path.canonicalize().ok();
        let served = self.all().into_iter().any(|g| {
            g.graph()
                .file()
                .canonicalize()
                .is_ok_and(|f| Some(&f) == wanted.as_ref())
        });
        if served {
            return Ok(None);
        }
        let graph = self
            .engine
            .load_graph(path)
            .await
            .map_err(CatalogError::GraphInvalid)?;
        let name = graph.graph().name().to_owned();
        if self.get(&name).is_some() {
            return Err(CatalogError::GraphExists(name));
        }
        let added = NewGraph {
            name: name.clone(),
            version_id: graph.version_id().to_owned(),
            file: path.to_owned(),
        };
        self.insert(Arc::clone(&graph));
        self.keep_version(&graph).await;
        self.engine.publish_host(EventBody::GraphChanged {
            graph: name,
            version: added.version_id.clone(),
            change: "added".into(),
        });
        tracing::info!(graph = %added.name, file = %path.display(), "graph added");
        Ok(Some(added))
    }
}
