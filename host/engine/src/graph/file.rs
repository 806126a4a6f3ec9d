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
//! duplicate keys, and enforces a parsing budget (no billion-laughs alias
//! bombs): [`options`] sets both explicitly, with the limits of
//! [`crate::graph`] (`MAX_GRAPH_*`).
//!
//! Every struct denies unknown fields, so a typo like `grant:` is an error
//! instead of a silently empty grant list.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use serde_saphyr::options::DuplicateKeyPolicy;

use super::{
    MAX_GRAPH_ALIASES, MAX_GRAPH_ANCHORS, MAX_GRAPH_BYTES, MAX_GRAPH_DEPTH, MAX_GRAPH_NODES,
    MAX_REPLAYED_EVENTS,
};

/// The parser's options for graph files: duplicate keys are an error, and
/// the budget bounds the work and memory of any text of at most
/// [`MAX_GRAPH_BYTES`] (the parser's defaults are meant for far larger
/// files).
pub(crate) fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = Some(MAX_GRAPH_BYTES);
    budget.max_depth = MAX_GRAPH_DEPTH;
    budget.flow_nesting_limit = MAX_GRAPH_DEPTH;
    budget.max_aliases = MAX_GRAPH_ALIASES;
    budget.max_anchors = MAX_GRAPH_ANCHORS;
    budget.max_nodes = MAX_GRAPH_NODES;
    budget.max_events = 4 * MAX_GRAPH_NODES;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = 4 * MAX_GRAPH_BYTES;
    budget.max_recorded_anchor_events = MAX_REPLAYED_EVENTS;
    budget.max_recorded_anchor_bytes = 4 * MAX_GRAPH_BYTES;
    budget.max_merge_keys = MAX_GRAPH_ALIASES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_REPLAYED_EVENTS;
    options.alias_limits.max_replay_stack_depth = MAX_GRAPH_DEPTH;
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    options
}

/// Whether the parser stopped at one of its limits rather than at a mistake.
pub(crate) fn is_limit(error: &serde_saphyr::Error) -> bool {
    use serde_saphyr::granit_parser::ErrorKind as K;
    use serde_saphyr::{Error as E, ExternalMessageSource};
    match error {
        E::WithSnippet { error, .. } | E::AliasError { error, .. } => is_limit(error),
        E::Budget { .. }
        | E::AliasReplayCounterOverflow { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => true,
        E::IOError { cause } => cause.kind() == std::io::ErrorKind::FileTooLarge,
        E::ExternalMessage { source, .. } => match &**source {
            ExternalMessageSource::Parser(scan) => matches!(
                scan.kind(),
                K::RecursionLimitExceeded
                    | K::AnchorCountOverflow
                    | K::InputByteLimitExceeded { .. }
                    | K::DirectiveByteLimitExceeded { .. }
            ),
            _ => false,
        },
        _ => false,
    }
}

/// A weft graph file: the nodes (each a plugin with its grants, limits and
/// config), the edges messages may travel along, and the entry node that
/// receives the user's messages.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "weft graph file", rename = "Graph")]
pub(crate) struct RawGraph {
    /// The graph's name, shown in traces and the API.
    pub name: String,
    /// A version label of your choosing (quote it: `version: "4"`).
    #[serde(default)]
    pub version: Option<String>,
    /// The node that receives messages from the user (`weft run`, inject,
    /// chat) unless a message names another node.
    #[schemars(with = "String")]
    pub entry: Spanned<String>,
    /// Settings every node inherits unless it sets its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// The nodes, by name. Every node must be reachable from `entry` along
    /// edges, or be `every_tick`.
    pub nodes: NodeMap,
    /// Who may send to whom. A node may send only to the nodes its edges
    /// lead to (its peers).
    #[serde(default)]
    #[schemars(with = "Vec<RawEdge>")]
    pub edges: Vec<Spanned<RawEdge>>,
}

/// Settings applied to every node unless the node overrides them.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Defaults")]
pub(crate) struct RawDefaults {
    /// The model name `llm` calls use (routed by the config file's
    /// `llm.models`; the embedded model answers every name by default).
    #[serde(default)]
    pub model: Option<String>,
    /// Sandbox limits of every invocation.
    #[serde(default)]
    pub limits: RawLimits,
    /// Frames a run may take before it stops with `frame_limit`
    /// (1 to 1000, default 20).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1, max = 1000))]
    pub max_frames: Option<Spanned<u32>>,
}

/// Sandbox limits of one invocation (a node's tick). Each is optional: a
/// node overrides the graph's defaults field by field, and the graph's
/// defaults override the host's.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Limits")]
pub(crate) struct RawLimits {
    /// CPU fuel (WebAssembly instructions, roughly); a tick that runs out
    /// fails with `out_of_fuel`.
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1))]
    pub fuel: Option<Spanned<u64>>,
    /// Wall-clock milliseconds for the whole tick, host calls included; a
    /// tick past it fails with `deadline_exceeded` (at most 600000).
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1, max = 600000))]
    pub deadline_ms: Option<Spanned<u64>>,
    /// Linear memory in MiB (at most 4096).
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1, max = 4096))]
    pub max_memory_mb: Option<Spanned<u64>>,
    /// Size of the tick's output (messages and reply) in KiB (at most 65536).
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1, max = 65536))]
    pub max_output_kb: Option<Spanned<u64>>,
}

/// One node: a plugin, the capabilities it is granted, and its settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Node")]
pub(crate) struct RawNode {
    /// The plugin: the `name` its `describe` returns (a component in the
    /// plugin folder, `--plugins`), or a path to a `.wasm` file, relative
    /// to this file.
    #[schemars(with = "String")]
    pub plugin: Spanned<String>,
    /// The capabilities the node may call. Each must be one the plugin's
    /// `describe` asks for; a call to one not granted fails with `denied`.
    #[serde(default)]
    #[schemars(with = "Vec<GrantName>")]
    pub grants: Vec<Spanned<String>>,
    /// The model name this node's `llm` calls use (overrides
    /// `defaults.model`).
    #[serde(default)]
    pub model: Option<String>,
    /// This node's sandbox limits (override `defaults.limits`).
    #[serde(default)]
    pub limits: RawLimits,
    /// Invoke the node in every frame, with or without messages (a node
    /// that watches, such as a UI state machine). Such a node needs no
    /// edge leading to it.
    #[serde(default)]
    pub every_tick: bool,
    /// Hold this node's messages while any other node of the run has
    /// messages to work on: it ticks after the rest of the run (the reply
    /// included) is done. For work off the answer's path, such as a
    /// memorizer or an audit log. Not with `every_tick`.
    #[serde(default)]
    pub defer: bool,
    /// How long a question this node asks a person (an interrupt) waits
    /// for an answer, in milliseconds (1 to one year); the node then gets
    /// the outcome `timed_out`. Without it, an interrupt waits until it is
    /// answered or rejected.
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1, max = 31_536_000_000u64))]
    pub interrupt_timeout_ms: Option<Spanned<u64>>,
    /// The MCP tools the node may list and call (with the `tools` grant):
    /// each key is a server the host's config names (`tools.servers`), its
    /// value the tool names, or `["*"]` for every tool of that server.
    #[serde(default)]
    #[schemars(with = "Option<std::collections::BTreeMap<String, Vec<String>>>")]
    pub tools: Option<Spanned<serde_json::Value>>,
    /// Free-form settings passed to the node with every tick (a mapping).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub config: Option<Spanned<serde_json::Value>>,
    /// `fresh` (the default): every tick runs in a new instance of the
    /// plugin. `reuse`: an instance whose tick returned is kept, and the
    /// node's next tick in the same project runs in it (no instantiation,
    /// no teardown); the guest's own state (globals, heap) survives, the
    /// host's side of each call does not. Replay uses fresh instances, so
    /// output that depends on kept state shows as a divergence. See "Kept
    /// instances" in docs/graph-file.md.
    #[serde(default)]
    pub instance: InstanceMode,
}

/// Whether a node's ticks run in fresh or kept instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum InstanceMode {
    /// A new instance for every tick.
    #[default]
    Fresh,
    /// An instance kept between the node's ticks within a project.
    Reuse,
}

/// A capability name, for the schema of `grants` (the names of
/// [`weft_runtime::Capability::ALL`]; a test keeps the two equal).
pub(crate) struct GrantName;

impl JsonSchema for GrantName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Capability".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = weft_runtime::Capability::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        schemars::json_schema!({
            "description": "A capability: `llm` (model calls, metered and budgeted), `db` (read-only SQL), `memory` (key/value per thread and node), `hud` (progress and events for the user), `log` (log lines in the trace), `store` (key/value shared by the project's threads; contract 0.3.0), `tools` (tools of the operator's MCP servers, named in the node's `tools`; contract 0.4.0).",
            "type": "string",
            "enum": names,
        })
    }
}

/// An edge: `from` may send messages to each node of `to`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Edge")]
pub(crate) struct RawEdge {
    /// The sending node.
    #[schemars(with = "String")]
    pub from: Spanned<String>,
    /// The receiving node, or a list of them.
    #[schemars(with = "Targets")]
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
impl JsonSchema for Targets {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Targets".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A node name, or a list of node names.",
            "oneOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

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

impl JsonSchema for NodeMap {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Nodes".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let node = generator.subschema_for::<RawNode>();
        schemars::json_schema!({
            "description": "The nodes, by name (a name is any string; names that differ only in Unicode form or by invisible characters are warned about).",
            "type": "object",
            "minProperties": 1,
            "additionalProperties": node,
        })
    }
}

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
