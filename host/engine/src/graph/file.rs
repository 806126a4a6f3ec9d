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
