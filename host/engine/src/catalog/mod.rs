//! The graph catalog: the graphs a host serves, by name, and the active one
//! (what new threads run), with the changes an operator makes while
//! serving: reloading graph files ([`Catalog::reload`]), serving a new
//! graph file ([`Catalog::add_graph_file`]) and swapping a plugin for a new
//! version loaded from its file or from uploaded bytes
//! ([`Catalog::swap_plugin_file`], [`Catalog::upload_plugin`]).
//!
//! The catalog is a client of the [`Engine`]'s public API: it loads graphs
//! through [`Engine::load_graph`], swaps plugins through
//! [`Engine::swap_plugin`] and announces every change as a host event
//! ([`EventBody::GraphChanged`]; the engine announces swaps itself). The
//! operators' API and `weft serve --watch` both drive it.

mod reload;
mod swap;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use weft_runtime::RuntimeError;

use crate::{Engine, EngineError, EventBody, LoadError, LoadedGraph};

pub use reload::{GraphChange, NewGraph, ReloadFailure, ReloadReport};
pub use swap::SwapReport;

/// Why the catalog refused a change. Each kind has a stable
/// [`code`](CatalogError::code) (the operators' API answers with it).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No served graph has this name.
    #[error("no graph `{0}`")]
    UnknownGraph(String),
    /// A graph file does not load (every problem is listed).
    #[error(transparent)]
    GraphInvalid(LoadError),
    /// A new graph file holds a graph whose name a served graph from
    /// another file has.
    #[error("a graph named `{0}` is served from another file")]
    GraphExists(String),
    /// No loaded plugin has this name.
    #[error("no plugin `{0}`")]
    UnknownPlugin(String),
    /// The component file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    PluginUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The component does not load (not a component, wrong world or
    /// contract version, does not compile, `describe` failed …).
    #[error(transparent)]
    PluginInvalid(RuntimeError),
    /// The component describes itself under another name than the plugin
    /// it was meant to replace.
    #[error("the component describes itself as `{found}`, not `{expected}`")]
    PluginMismatch {
        /// The plugin it was meant to replace.
        expected: String,
        /// The name it gives itself.
        found: String,
    },
    /// An uploaded component could not be written beside the plugin's file.
    #[error("cannot write {}: {source}", path.display())]
    PluginUnwritable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The engine refused the swap (the new version does not fit a graph
    /// that runs it) or could not keep it (the store).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl CatalogError {
    /// A stable code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownGraph(_) | Self::UnknownPlugin(_) => "not_found",
            Self::GraphInvalid(_) => "graph_invalid",
            Self::GraphExists(_) => "graph_exists",
            Self::PluginUnreadable { .. } => "plugin_unreadable",
            Self::PluginInvalid(e) => e.code(),
            Self::PluginMismatch { .. } => "plugin_rejected",
            Self::PluginUnwritable { .. } => "plugin_unwritable",
            Self::Engine(e) => e.code(),
        }
    }
}

/// The graphs a host serves, by name, and the active one.
pub struct Catalog {
    engine: Arc<Engine>,
    by_name: RwLock<BTreeMap<String, Arc<LoadedGraph>>>,
    active: RwLock<String>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("graphs", &read(&self.by_name).keys().collect::<Vec<_>>())
            .field("active", &*read(&self.active))
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// An empty catalog over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            by_name: RwLock::default(),
            active: RwLock::default(),
        }
    }

    /// The engine whose graphs and plugins these are.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Serves `graph` under its name (replacing a graph of that name).
    pub fn insert(&self, graph: Arc<LoadedGraph>) {
        let name = graph.graph().name().to_owned();
        write(&self.by_name).insert(name, graph);
    }

    /// Makes the graph called `name` the active one, quietly (at start).
    pub fn activate(&self, name: &str) -> Result<Arc<LoadedGraph>, CatalogError> {
        let graph = self
            .get(name)
            .ok_or_else(|| CatalogError::UnknownGraph(name.to_owned()))?;
        *write(&self.active) = name.to_owned();
        Ok(graph)
    }

    /// Switches new threads to the graph called `name` while serving (a
    /// `graph_changed` event says so). Threads keep their history and
    /// memory; runs in flight finish on their version.
    pub fn switch_active(&self, name: &str) -> Result<Arc<LoadedGraph>, CatalogError> {
        let graph = self.activate(name)?;
        self.engine.publish_host(EventBody::GraphChanged {
            graph: graph.graph().name().to_owned(),
            version: graph.version_id().to_owned(),
            change: "activated".into(),
        });
        Ok(graph)
    }

    /// Keeps the version of every served graph in the store (at start;
    /// reloads and swaps keep theirs). A store error is logged: the graphs
    /// serve anyway, and a run keeps its version when it starts.
    pub async fn keep_versions(&self) {
        for graph in self.all() {
            self.keep_version(&graph).await;
        }
    }

    async fn keep_version(&self, graph: &Arc<LoadedGraph>) {
        if let Err(error) = self.engine.keep_graph_version(graph).await {
            tracing::warn!(graph = %graph.graph().name(), version = %graph.version_id(), %error, "the graph version is not kept in the store yet");
        }
    }

    /// The active graph.
    pub fn active(&self) -> Option<Arc<LoadedGraph>> {
        let name = read(&self.active).clone();
        self.get(&name)
    }

    /// A served graph by name.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedGraph>> {
        read(&self.by_name).get(name).cloned()
    }

    /// Every served graph, by name.
    pub fn all(&self) -> Vec<Arc<LoadedGraph>> {
        read(&self.by_name).values().cloned().collect()
    }

    /// Puts `new` in the place of `old` (under its new name if it was
    /// renamed; still active if `old` was).
    fn replace(&self, old: &LoadedGraph, new: Arc<LoadedGraph>) {
        let old_name = old.graph().name().to_owned();
        let new_name = new.graph().name().to_owned();
        {
            let mut by_name = write(&self.by_name);
            by_name.remove(&old_name);
            by_name.insert(new_name.clone(), new);
        }
        let mut active = write(&self.active);
        if *active == old_name {
            *active = new_name;
        }
    }
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}
