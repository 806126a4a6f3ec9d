//! A graph ready to run: the validated [`Graph`] with each node's plugin
//! version and compiled input-schema validator.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use weft_runtime::{Plugin, Runtime, RuntimeError};

use crate::graph::{Graph, GraphError, PluginRef};

use crate::plugins::PluginSet;

/// Why a graph could not be made ready to run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is unreadable or invalid (every problem is listed).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A plugin file the graph names failed to load.
    #[error("plugin `{}` of the graph failed to load: {error}", path.display())]
    Plugin {
        /// The plugin file.
        path: PathBuf,
        /// Why.
        error: RuntimeError,
    },
    /// A node's memory limit is above what the runtime can give an instance.
    #[error(
        "node `{node}`: max_memory_mb is {asked} MiB but this host's instances can have at most {most} MiB (its pool size)"
    )]
    MemoryLimit {
        /// The node.
        node: String,
        /// The limit asked for, in MiB.
        asked: usize,
        /// The most the runtime allows, in MiB.
        most: usize,
    },
    /// A plugin declared an input schema that is not a valid JSON Schema.
    #[error(
        "node `{node}`: the input schema of plugin `{plugin}` is not a valid JSON Schema: {message}"
    )]
    Schema {
        /// The node.
        node: String,
        /// Its plugin.
        plugin: String,
        /// The schema compiler's message.
        message: String,
    },
}

/// Why a plugin version cannot take a node's place.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The new version asks for a capability the graph does not grant.
    #[error(
        "plugin `{plugin}` {version} asks for `{capability}`, which graph `{graph}` does not grant node `{node}`"
    )]
    Ungranted {
        /// Plugin name.
        plugin: String,
        /// The new version.
        version: String,
        /// The capability.
        capability: String,
        /// The graph.
        graph: String,
        /// The node.
        node: String,
    },
    /// A graph using the plugin is not valid with the new version (its
    /// input schema, grants or peers no longer fit).
    #[error("graph `{graph}` does not accept the new version: {error}")]
    Graph {
        /// The graph.
        graph: String,
        /// Every problem.
        error: Box<LoadError>,
    },
}

/// A node's runtime pieces.
pub(crate) struct LoadedNode {
    pub plugin: Plugin,
    pub validator: jsonschema::Validator,
    /// The node's config as JSON text, handed to every tick.
    pub config: String,
    /// With `instance: reuse`: the node's claim on kept instances, which
    /// ends (its idle instances dropped) with this loaded graph.
    pub reuse: Option<weft_runtime::ReuseScope>,
}

/// A validated graph with its plugins resolved to loaded versions. Threads
/// pin one of these: swapping a plugin or editing the graph makes a new
/// `LoadedGraph` and leaves this one serving the runs that use it.
pub struct LoadedGraph {
    graph: Graph,
    nodes: Vec<LoadedNode>,
    index: HashMap<String, usize>,
    version: String,
}

impl std::fmt::Debug for LoadedGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedGraph")
            .field("name", &self.graph.name())
            .field("hash", &self.graph.content_hash().short())
            .finish_non_exhaustive()
    }
}

impl LoadedGraph {
    /// Loads and validates the graph file at `path`, resolving plugin
    /// names through `plugins` and loading plugin files it names.
    pub async fn load_file(
        path: &Path,
        plugins: &PluginSet,
        runtime: &Runtime,
    ) -> Result<Self, LoadError> {
        // Read with the graph loader's size cap (a blocking read of at most
        // `MAX_GRAPH_BYTES`, off the async threads).
        let owned = path.to_owned();
        let text = tokio::task::spawn_blocking(move || crate::graph::read_file(&owned))
            .await
            .map_err(|e| GraphError::Io {
                file: path.display().to_string(),
                source: std::io::Error::other(e),
            })??;
        Self::from_yaml(&text, path, plugins, runtime).await
    }

    /// Like [`load_file`](Self::load_file) for graph text; `file` names it
    /// in problems and anchors relative plugin paths.
    pub async fn from_yaml(
        text: &str,
        file: &Path,
        plugins: &PluginSet,
        runtime: &Runtime,
    ) -> Result<Self, LoadError> {
        // First pass: find the plugin files the graph names, load them.
        let files = Mutex::new(BTreeSet::new());
        let probe = |r: &PluginRef| {
            if let PluginRef::File(p) = r {
                files
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(p.clone());
            }
            plugins.info(r)
        };
        let first = Graph::from_yaml(text, file, &probe);
        let files = files
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let graph = if files
            .iter()
            .all(|p| plugins.get(&PluginRef::File(p.clone())).is_some())
        {
            first?
        } else {
            for path in &files {
                if !path.exists() {
                    continue; // reported by validation as an unknown plugin
                }
                plugins
                    .load_file(runtime, path)
                    .await
                    .map_err(|error| LoadError::Plugin {
                        path: path.clone(),
                        error,
                    })?;
            }
            Graph::from_yaml(text, file, &|r: &PluginRef| plugins.info(r))?
        };
        if let Some(most) = runtime.max_memory_per_instance()
            && let Some(node) = graph.nodes().iter().find(|n| n.limits.max_memory > most)
        {
            return Err(LoadError::MemoryLimit {
                node: node.name.clone(),
                asked: node.limits.max_memory >> 20,
                most: most >> 20,
            });
        }
        Self::resolve(graph, plugins)
    }

    /// Binds a validated graph to the plugin versions `plugins` holds now.
    pub fn resolve(graph: Graph, plugins: &PluginSet) -> Result<Self, LoadError> {
        let bound: Vec<Plugin> = graph
            .nodes()
            .iter()
            .map(|node| {
                plugins.get(&node.plugin).ok_or_else(|| LoadError::Plugin {
                    path: PathBuf::from(node.plugin.to_string()),
                    error: RuntimeError::Config(format!(
                        "plugin `{}` was unloaded while the graph loaded",
                        node.plugin
                    )),
                })
            })
            .collect::<Result<_, _>>()?;
        Self::bind(graph, bound)
    }

    /// This graph with the nodes that run a plugin named like one of
    /// `swapped` (by `describe` name) switched to that version, validated
    /// again with what the new versions say of themselves. `None` if no
    /// node runs any of them (or already the same version).
    pub fn with_plugins(&self, swapped: &[Plugin]) -> Result<Option<Self>, SwapError> {
        let replacement = |bound: &Plugin| {
            swapped
                .iter()
                .rev()
                .find(|p| p.info().name == bound.info().name)
                .filter(|p| p.hash() != bound.hash())
        };
        let mut changed = false;
        let mut bound = Vec::with_capacity(self.nodes.len());
        let mut infos: HashMap<PluginRef, weft_runtime::NodeInfo> = HashMap::new();
        for (node, loaded) in self.graph.nodes().iter().zip(&self.nodes) {
            let plugin = match replacement(&loaded.plugin) {
                Some(new) => {
                    changed = true;
                    // A new version may not ask for a capability the graph
                    // does not grant this node (unless the old one did too).
                    let old = &loaded.plugin.info().capabilities;
                    if let Some(cap) = new
                        .info()
                        .capabilities
                        .iter()
                        .find(|c| !node.grants.allows(**c) && !old.contains(c))
                    {
                        return Err(SwapError::Ungranted {
                            plugin: new.info().name.clone(),
                            version: new.info().version.clone(),
                            capability: cap.to_string(),
                            graph: self.graph.name().to_owned(),
                            node: node.name.clone(),
                        });
                    }
                    new.clone()
                }
                None => loaded.plugin.clone(),
            };
            infos.insert(node.plugin.clone(), plugin.info().clone());
            bound.push(plugin);
        }
        if !changed {
            return Ok(None);
        }
        let graph = Graph::from_yaml(self.graph.source(), self.graph.file(), &|r: &PluginRef| {
            infos.get(r).cloned()
        })
        .map_err(|e| SwapError::Graph {
            graph: self.graph.name().to_owned(),
            error: Box::new(e.into()),
        })?;
        Self::bind(graph, bound)
            .map(Some)
            .map_err(|e| SwapError::Graph {
                graph: self.graph.name().to_owned(),
                error: Box::new(e),
            })
    }

    /// Binds a validated graph to one plugin version per node.
    fn bind(graph: Graph, bound: Vec<Plugin>) -> Result<Self, LoadError> {
        let mut nodes = Vec::with_capacity(graph.nodes().len());
        let mut index = HashMap::new();
        for (i, (node, plugin)) in graph.nodes().iter().zip(bound).enumerate() {
            let validator =
                jsonschema::validator_for(&plugin.info().input_schema).map_err(|e| {
                    LoadError::Schema {
                        node: node.name.clone(),
                        plugin: plugin.info().name.clone(),
                        message: e.to_string(),
                    }
                })?;
            let config = serde_json::Value::Object(node.config.clone()).to_string();
            index.insert(node.name.clone(), i);
            nodes.push(LoadedNode {
                plugin,
                validator,
                config,
                reuse: node.reuse_instance.then(weft_runtime::ReuseScope::new),
            });
        }
        let mut hasher = Vec::with_capacity(32 * (nodes.len() + 1));
        hasher.extend_from_slice(&graph.content_hash().0);
        for (node, loaded) in graph.nodes().iter().zip(&nodes) {
            hasher.extend_from_slice(node.name.as_bytes());
            hasher.push(0);
            hasher.extend_from_slice(&loaded.plugin.hash().0);
        }
        let version = weft_runtime::ContentHash::of(&hasher).to_hex();
        Ok(Self {
            graph,
            nodes,
            index,
            version,
        })
    }

    /// The version id: a hash of the graph's text and every node's plugin
    /// hash. Runs are pinned to it; the store keeps it.
    pub fn version_id(&self) -> &str {
        &self.version
    }

    /// The version as the store keeps it.
    pub fn version(&self) -> crate::store::GraphVersion {
        crate::store::GraphVersion {
            id: self.version.clone(),
            name: self.graph.name().to_owned(),
            graph_hash: self.graph.content_hash().to_hex(),
            file: self.graph.file().display().to_string(),
            source: self.graph.source().to_owned(),
            plugins: self
                .graph
                .nodes()
                .iter()
                .zip(&self.nodes)
                .map(|(n, l)| {
                    let file = match &n.plugin {
                        PluginRef::File(path) => Some(path.display().to_string()),
                        PluginRef::Name(_) => None,
                    };
                    let hash = l.plugin.hash_hex().to_owned();
                    (n.name.clone(), crate::store::PluginPin { hash, file })
                })
                .collect(),
        }
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The plugin version node `name` runs.
    pub fn plugin(&self, name: &str) -> Option<&Plugin> {
        self.index.get(name).map(|&i| &self.nodes[i].plugin)
    }

    /// Index of node `name` in graph order.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub(crate) fn loaded(&self, i: usize) -> &LoadedNode {
        &self.nodes[i]
    }

    /// The invocation of node `i` as the graph sets it up (its config,
    /// model, grants and limits), for `call` with `inbox` at `wall_time`.
    pub(crate) fn invocation<'a>(
        &'a self,
        i: usize,
        call: weft_runtime::CallContext,
        inbox: &'a [weft_runtime::Message],
        services: &'a weft_runtime::capabilities::Services,
        wall_time: std::time::SystemTime,
    ) -> weft_runtime::Invocation<'a> {
        let node = &self.graph.nodes()[i];
        weft_runtime::Invocation {
            call,
            inbox,
            config: &self.nodes[i].config,
            model: node.model.as_deref(),
            grants: node.grants,
            tools: &node.tools,
            services,
            limits: Some(node.limits),
            wall_time: Some(wall_time),
            reuse: self.nodes[i].reuse.as_ref(),
        }
    }

    /// Checks `body` against node `i`'s input schema; the error names the
    /// first violation and where it is.
    pub(crate) fn check_payload(&self, i: usize, body: &str) -> Result<(), String> {
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let mut errors = self.nodes[i].validator.iter_errors(&value).peekable();
        if errors.peek().is_none() {
            return Ok(());
        }
        let list: Vec<String> = errors
            .take(3)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect();
        Err(list.join("; "))
    }
}
