//! The engine's use of its [`Store`] beyond committing frames: graph
//! versions kept and rebuilt ([`Versions`]), resume after a crash, fork,
//! retention, replay, and the ordered writer of operators' changes. Each is
//! a function over the parts it needs.

mod fork;
mod prune;
mod replay;
mod resume;
mod tape;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use weft_runtime::{ContentHash, Message, Plugin, Runtime};

pub(crate) use fork::{fork, undo_writes};
pub(crate) use prune::{prune, spawn_retention};
pub(crate) use replay::replay;
pub use replay::{Divergence, PluginChange, ReplayOptions, ReplayPlugins, ReplayReport};
pub(crate) use resume::{Resumable, claimed, prepare_run, unfinished};
pub(crate) use writer::Writer;

use crate::error::EngineError;
use crate::loaded::LoadedGraph;
use crate::plugins::PluginSet;
use crate::store::{PluginBlob, Store, StoreError};

/// Graph versions: kept in the store once per process, and rebuilt from
/// it (with each node's plugin at the recorded hash) for resume, replay
/// and fork.
pub(crate) struct Versions {
    store: Option<Arc<dyn Store>>,
    runtime: Arc<Runtime>,
    plugins: Arc<PluginSet>,
    /// Graph versions this process has stored or rebuilt, by id.
    known: Mutex<HashMap<String, Arc<LoadedGraph>>>,
}

impl Versions {
    /// Versions kept in `store` (none without one), rebuilt on `runtime`
    /// with the installed `plugins` as a fallback for missing bytes.
    pub fn new(
        store: Option<Arc<dyn Store>>,
        runtime: Arc<Runtime>,
        plugins: Arc<PluginSet>,
    ) -> Self {
        Self {
            store,
            runtime,
            plugins,
            known: Mutex::default(),
        }
    }

    /// The store, or why there is none to resume, replay or fork from.
    pub fn store(&self) -> Result<&Arc<dyn Store>, EngineError> {
        self.store.as_ref().ok_or_else(|| {
            EngineError::Store(StoreError::NotFound(
                "this engine has no store (start it with one to resume, replay or fork)".into(),
            ))
        })
    }

    /// The runtime plugins are rebuilt on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The installed plugins.
    pub fn plugins(&self) -> &Arc<PluginSet> {
        &self.plugins
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LoadedGraph>>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn known(&self, id: &str) -> Option<Arc<LoadedGraph>> {
        self.lock().get(id).cloned()
    }

    fn remember(&self, graph: &Arc<LoadedGraph>) {
        self.lock()
            .insert(graph.version_id().to_owned(), Arc::clone(graph));
    }

    /// Keeps `graph`'s version (and its plugins' bytes) in the store, once
    /// per process.
    pub async fn store_version(&self, graph: &Arc<LoadedGraph>) -> Result<(), EngineError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        if self.known(graph.version_id()).is_some() {
            return Ok(());
        }
        put_version(store.as_ref(), graph).await?;
        self.remember(graph);
        Ok(())
    }

    /// Keeps a swapped-in plugin's bytes, unless the store has them.
    pub async fn keep_plugin(&self, plugin: &Plugin, bytes: Vec<u8>) -> Result<(), EngineError> {
        if let Some(store) = &self.store
            && !store.has_plugin(plugin.hash_hex()).await?
        {
            keep_plugin(store.as_ref(), plugin, bytes).await?;
        }
        Ok(())
    }

    /// A stored plugin version, loaded: from the store's bytes, else from
    /// the installed plugins if one has the same hash.
    pub async fn plugin_version(
        &self,
        hash: &str,
        path: Option<&str>,
    ) -> Result<Option<Plugin>, EngineError> {
        let store = self.store()?;
        if let Some(blob) = store.plugin(hash).await? {
            let path = PathBuf::from(path.unwrap_or(&blob.path));
            let plugin = self
                .runtime
                .load_bytes(path, blob.bytes)
                .await
                .map_err(|e| {
                    version_error(hash, format!("the stored plugin does not load: {e}"))
                })?;
            return Ok(Some(plugin));
        }
        Ok(self
            .plugins()
            .all()
            .into_iter()
            .find(|p| p.hash_hex() == hash))
    }

    /// Rebuilds a graph version from the store: its text, and each node's
    /// plugin at the recorded hash.
    pub async fn graph_version(&self, id: &str) -> Result<Arc<LoadedGraph>, EngineError> {
        if let Some(graph) = self.known(id) {
            return Ok(graph);
        }
        let store = self.store()?;
        let version = store
            .graph(id)
            .await?
            .ok_or_else(|| version_error(id, "it is not in the store"))?;
        let set = PluginSet::new();
        for (node, pin) in &version.plugins {
            let plugin = self
                .plugin_version(&pin.hash, pin.file.as_deref())
                .await?
                .ok_or_else(|| {
                    version_error(
                        id,
                        format!(
                            "node `{node}` ran plugin {} whose bytes are neither stored nor installed",
                            &pin.hash[..12.min(pin.hash.len())]
                        ),
                    )
                })?;
            set.insert(plugin);
        }
        let graph = LoadedGraph::from_yaml(
            &version.source,
            Path::new(&version.file),
            &set,
            &self.runtime,
        )
        .await
        .map_err(|e| version_error(id, e.to_string()))?;
        if graph.version_id() != id {
            return Err(version_error(
                id,
                format!("it rebuilds as version {}", graph.version_id()),
            ));
        }
        let graph = Arc::new(graph);
        self.remember(&graph);
        Ok(graph)
    }
}

/// Keeps a graph version and the bytes of its plugins (read again from
/// their files; a file changed since it was loaded is not kept, and a run
/// on that version can then only resume while the same version is
/// installed).
async fn put_version(store: &dyn Store, graph: &LoadedGraph) -> Result<(), StoreError> {
    let mut seen = std::collections::BTreeSet::new();
    for node in graph.graph().nodes() {
        let Some(plugin) = graph.plugin(&node.name) else {
            continue;
        };
        let hash = plugin.hash_hex().to_owned();
        if !seen.insert(hash.clone()) || store.has_plugin(&hash).await? {
            continue;
        }
        match tokio::fs::read(plugin.path()).await {
            Ok(bytes) if ContentHash::of(&bytes) == plugin.hash() => {
                keep_plugin(store, plugin, bytes).await?;
            }
            Ok(_) => tracing::warn!(
                plugin = %plugin.path().display(),
                "the plugin's file changed since it was loaded: its bytes are not kept"
            ),
            Err(error) => tracing::warn!(
                plugin = %plugin.path().display(),
                %error,
                "the plugin's file cannot be read: its bytes are not kept"
            ),
        }
    }
    store.put_graph(graph.version()).await
}

/// Stores `plugin`'s component `bytes` under its hash.
async fn keep_plugin(store: &dyn Store, plugin: &Plugin, bytes: Vec<u8>) -> Result<(), StoreError> {
    store
        .put_plugin(PluginBlob {
            hash: plugin.hash_hex().to_owned(),
            name: plugin.info().name.clone(),
            version: plugin.info().version.clone(),
            contract: plugin.contract().to_owned(),
            path: plugin.path().display().to_string(),
            bytes,
        })
        .await
}

pub(crate) fn version_error(version: &str, message: impl Into<String>) -> EngineError {
    EngineError::GraphVersion {
        version: version.to_owned(),
        message: message.into(),
    }
}

/// Sorts `(receiver, message)` pairs into per-node inboxes.
pub(crate) fn by_node(
    graph: &LoadedGraph,
    messages: Vec<(String, Message)>,
) -> Result<Vec<Vec<Message>>, EngineError> {
    let mut pending = vec![Vec::new(); graph.graph().nodes().len()];
    for (to, message) in messages {
        let i = graph
            .position(&to)
            .ok_or_else(|| EngineError::UnknownNode {
                graph: graph.graph().name().to_owned(),
                node: to.clone(),
            })?;
        pending[i].push(message);
    }
    Ok(pending)
}
