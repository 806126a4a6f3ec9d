//! Graph files: which nodes run which plugins, with what grants and limits,
//! and who may send to whom.
//!
//! ```yaml
//! name: assistant
//! version: "4"
//! entry: input
//! defaults:
//!   model: small
//!   limits: { fuel: 1000000000, deadline_ms: 30000, max_memory_mb: 64, max_output_kb: 1024 }
//!   max_frames: 20
//! nodes:
//!   input:  { plugin: input }
//!   pa:     { plugin: pa, grants: [llm, hud], model: large }
//!   output: { plugin: plugins/output.wasm, limits: { deadline_ms: 5000 } }
//! edges:
//!   - { from: input, to: pa }
//!   - { from: pa, to: [output] }
//! ```
//!
//! [`Graph::load_file`] parses and validates a file and reports every
//! problem it finds, each with its file, line, column and path (see
//! [`GraphError`]). A loaded [`Graph`] is immutable and fully resolved: each
//! node carries its plugin's `describe` answer, its grants and its effective
//! [`Limits`].
//!
//! **Hostile files.** A graph file is read only up to [`MAX_GRAPH_BYTES`]
//! and parsed within a budget: at most [`MAX_GRAPH_DEPTH`] levels of
//! nesting, [`MAX_GRAPH_ALIASES`] aliases, [`MAX_GRAPH_ANCHORS`] anchors,
//! [`MAX_GRAPH_NODES`] YAML nodes and [`MAX_REPLAYED_EVENTS`] events replayed
//! through aliases (so a billion-laughs file is refused after a few thousand
//! steps, not expanded), and one document. Duplicate keys are an error at
//! every level. Each of these is a [`ProblemKind::Limit`] (duplicate keys a
//! [`ProblemKind::Syntax`]) problem, reported like any other.
//!
//! **Reachability.** A node must be reachable along edges from the entry node
//! *or from an `every_tick` node*: `every_tick` nodes run in every frame
//! without being sent anything, so they count as roots (a memorizer needs no
//! incoming edge, and whatever it sends to is reachable).

mod error;
pub(crate) mod file;
mod limits;
mod names;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use weft_runtime::{ContentHash, Grants, Limits, NodeInfo};

pub use error::{GraphError, Location, Problem, ProblemKind, Severity};

/// Runs stop after this many frames unless `defaults.max_frames` says otherwise.
pub const DEFAULT_MAX_FRAMES: u32 = 20;
/// Upper bound for `max_frames`.
pub const MAX_FRAMES: u32 = 1000;
/// Upper bound for `deadline_ms` (ten minutes).
pub const MAX_DEADLINE_MS: u64 = 600_000;
/// Upper bound for `max_memory_mb` (all a 32-bit linear memory can address).
pub const MAX_MEMORY_MB: u64 = 4096;
/// The longest `interrupt_timeout_ms`: a year.
pub const MAX_INTERRUPT_TIMEOUT_MS: u64 = 31_536_000_000;
/// Upper bound for `max_output_kb` (64 MiB).
pub const MAX_OUTPUT_KB: u64 = 65_536;

/// Largest graph file (or graph text) loaded, in bytes: 1 MiB. A file is
/// read only up to this size, so an endless or huge file costs no more.
pub const MAX_GRAPH_BYTES: usize = 1 << 20;
/// Deepest nesting of lists and mappings in a graph file (`config` values included).
pub const MAX_GRAPH_DEPTH: usize = 64;
/// Most aliases (`*name`) in a graph file.
pub const MAX_GRAPH_ALIASES: usize = 1_000;
/// Most anchors (`&name`) in a graph file.
pub const MAX_GRAPH_ANCHORS: usize = 1_000;
/// Most YAML nodes (scalars, lists, mappings) in a graph file, aliases expanded.
pub const MAX_GRAPH_NODES: usize = 100_000;
/// Most parser events replayed through aliases in one graph file.
pub const MAX_REPLAYED_EVENTS: usize = 100_000;

/// Where a node's plugin comes from, parsed from its `plugin:` field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PluginRef {
    /// A plugin known by name (e.g. `pa`).
    Name(String),
    /// A component file: the field ends in `.wasm` or contains a `/`.
    /// Relative paths are resolved against the graph file's directory.
    File(PathBuf),
}

impl PluginRef {
    fn parse(reference: &str, base_dir: &Path) -> Self {
        if reference.ends_with(".wasm") || reference.contains('/') {
            Self::File(base_dir.join(reference))
        } else {
            Self::Name(reference.to_owned())
        }
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Maps a plugin reference to what the plugin's `describe` said, or `None`
/// if there is no such plugin. Any `Fn(&PluginRef) -> Option<NodeInfo>` is one.
pub trait PluginResolver {
    /// Looks the plugin up.
    fn resolve(&self, plugin: &PluginRef) -> Option<NodeInfo>;
}

impl<F: Fn(&PluginRef) -> Option<NodeInfo>> PluginResolver for F {
    fn resolve(&self, plugin: &PluginRef) -> Option<NodeInfo> {
        self(plugin)
    }
}

/// Reads a graph file's text: at most [`MAX_GRAPH_BYTES`] are read (a larger
/// file, or an endless one like a pipe, is a [`ProblemKind::Limit`]
/// problem), and text that is not UTF-8 is a [`ProblemKind::Syntax`] problem.
pub fn read_file(path: &Path) -> Result<String, GraphError> {
    use std::io::Read;
    let file = path.display().to_string();
    let io = |source| GraphError::Io {
        file: file.clone(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_GRAPH_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_GRAPH_BYTES {
        return Err(error::one(&file, ProblemKind::Limit, None, too_large()));
    }
    String::from_utf8(bytes).map_err(|e| {
        let message = format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        );
        error::one(&file, ProblemKind::Syntax, None, message)
    })
}

/// The JSON Schema (draft 2020-12) of the graph file, generated from the
/// types the loader reads it into: `weft graph schema` prints it, and
/// `schemas/graph.schema.json` is this, checked by a test. The schema
/// checks the file's shape; the rules it cannot express (reachability,
/// grants the plugin asks for, edges to existing nodes) are checked by
/// [`Graph::load_file`].
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(file::RawGraph).to_value()
}

/// The YAML parser's options for graph files, with their limits
/// (`MAX_GRAPH_*`) and duplicate keys an error; the host's config file is
/// read with the same.
pub fn yaml_options() -> serde_saphyr::Options {
    file::options()
}

/// Whether a YAML parser error is one of [`yaml_options`]' limits (an alias
/// bomb, deep nesting, too many values) rather than a mistake in the file.
pub fn is_yaml_limit(error: &serde_saphyr::Error) -> bool {
    file::is_limit(error)
}

/// The message of a file over [`MAX_GRAPH_BYTES`].
fn too_large() -> String {
    format!(
        "the graph file is larger than {} KiB, the most a graph file may have",
        MAX_GRAPH_BYTES >> 10
    )
}

/// A node of a loaded graph, fully resolved.
#[derive(Debug, Clone)]
pub struct Node {
    /// The node's name in the graph.
    pub name: String,
    /// Where its plugin comes from.
    pub plugin: PluginRef,
    /// What the plugin's `describe` said.
    pub info: NodeInfo,
    /// Capabilities granted (always a subset of what `info` asks for).
    pub grants: Grants,
    /// The MCP tools granted (with the `tools` capability).
    pub tools: weft_runtime::capabilities::tools::ToolGrants,
    /// Effective limits: runtime defaults, then graph defaults, then the node's own.
    pub limits: Limits,
    /// The model the node's `llm` calls use: its own, else the graph default.
    pub model: Option<String>,
    /// Invoked in every frame, whether or not it has messages.
    pub every_tick: bool,
    /// Its messages wait until no other node has messages to work on.
    pub defer: bool,
    /// Its ticks run in instances kept between ticks (`instance: reuse`).
    pub reuse_instance: bool,
    /// How long its interrupts wait for an answer; forever when `None`.
    pub interrupt_timeout: Option<std::time::Duration>,
    /// Free-form configuration passed to the node (empty if none).
    pub config: Map<String, Value>,
    /// Nodes this one may send to, in file order.
    pub peers: Vec<String>,
}

/// A validated graph: the unit a thread is pinned to.
#[derive(Debug, Clone)]
pub struct Graph {
    name: String,
    version: Option<String>,
    entry: String,
    max_frames: u32,
    nodes: Vec<Node>,
    index: BTreeMap<String, usize>,
    hash: ContentHash,
    warnings: Vec<Problem>,
    source: std::sync::Arc<str>,
    file: PathBuf,
}

impl Graph {
    /// Reads, parses and validates a graph file. Relative `.wasm` plugin
    /// paths are resolved against the file's directory.
    pub fn load_file(
        path: impl AsRef<Path>,
        resolver: &impl PluginResolver,
    ) -> Result<Self, GraphError> {
        let path = path.as_ref();
        let text = read_file(path)?;
        Self::from_yaml(&text, path, resolver)
    }

    /// Parses and validates graph text; `file` names it in problems and is
    /// the base for relative plugin paths (its directory). Text longer than
    /// [`MAX_GRAPH_BYTES`] is refused unparsed.
    pub fn from_yaml(
        text: &str,
        file: impl AsRef<Path>,
        resolver: &impl PluginResolver,
    ) -> Result<Self, GraphError> {
        validate::build(text, file.as_ref(), resolver)
    }

    /// The graph's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The graph's declared version, if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// SHA-256 of the file's text: what a thread pins to.
    pub fn content_hash(&self) -> ContentHash {
        self.hash
    }

    /// The file's text, exactly as loaded (what the content hash covers).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The file it was loaded from: relative plugin paths are resolved
    /// against its directory.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The node user messages are delivered to.
    pub fn entry(&self) -> &Node {
        &self.nodes[self.index[&self.entry]]
    }

    /// A run stops after this many frames.
    pub fn max_frames(&self) -> u32 {
        self.max_frames
    }

    /// Every node, in file order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// The nodes `node` may send to (empty for an unknown node).
    pub fn peers(&self, node: &str) -> &[String] {
        self.node(node).map_or(&[], |n| &n.peers)
    }

    /// Whether the edges allow `from` to send to `to`.
    pub fn may_send(&self, from: &str, to: &str) -> bool {
        self.peers(from).iter().any(|p| p == to)
    }

    /// Warnings found while loading (e.g. duplicate edges).
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// The graph as Cytoscape.js elements, for drawing it:
    /// `{elements: {nodes: [{data: {id, label, plugin}}], edges: [{data: {id, source, target}}]}}`.
    pub fn to_cytoscape(&self) -> Value {
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .map(|n| json!({"data": {"id": n.name, "label": n.name, "plugin": n.plugin.to_string()}}))
            .collect();
        let edges: Vec<Value> = self
            .nodes
            .iter()
            .flat_map(|n| n.peers.iter().map(move |p| (&n.name, p)))
            .map(|(from, to)| {
                json!({"data": {"id": format!("{from}->{to}"), "source": from, "target": to}})
            })
            .collect();
        json!({"elements": {"nodes": nodes, "edges": edges}})
    }
}
