//! From parsed file to [`Graph`]: every check, collecting all problems.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use weft_runtime::capabilities::tools::{ToolGrants, ToolSet};
use weft_runtime::{Capability, ContentHash, Grants, NodeInfo};

use super::error::{Problems, at};
use super::file::{InstanceMode, NodeMap, RawEdge, RawGraph, RawNode, Targets};
use super::limits::LimitSpec;
use super::{
    DEFAULT_MAX_FRAMES, Graph, GraphError, Location, MAX_FRAMES, MAX_GRAPH_ALIASES,
    MAX_GRAPH_BYTES, MAX_GRAPH_DEPTH, MAX_GRAPH_NODES, MAX_INTERRUPT_TIMEOUT_MS, Node, PluginRef,
    PluginResolver, ProblemKind, too_large,
};

fn list(items: impl IntoIterator<Item = impl ToString>) -> String {
    let names: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    }
}

/// Parses `text` and validates it into a [`Graph`].
pub(crate) fn build(
    text: &str,
    file: &Path,
    resolver: &impl PluginResolver,
) -> Result<Graph, GraphError> {
    let mut problems = Problems {
        file: file.display().to_string(),
        list: Vec::new(),
    };
    if text.len() > MAX_GRAPH_BYTES {
        let file = problems.file;
        return Err(super::error::one(
            &file,
            ProblemKind::Limit,
            None,
            too_large(),
        ));
    }
    let raw = match parse(text) {
        Ok(raw) => raw,
        Err((kind, location, message)) => {
            // The shape is wrong, or a limit was hit: nothing further can be checked.
            problems.push(kind, location, String::new(), message);
            return Err(GraphError::Invalid {
                problems: problems.list,
            });
        }
    };
    let base_dir = file.parent().unwrap_or(Path::new(""));

    let defaults =
        LimitSpec::default().merge(&raw.defaults.limits, "defaults.limits", &mut problems);
    let max_frames = match &raw.defaults.max_frames {
        Some(m) if m.value == 0 || m.value > MAX_FRAMES => {
            let message = format!(
                "`max_frames` must be between 1 and {MAX_FRAMES}, not {}",
                m.value
            );
            problems.push(
                ProblemKind::InvalidLimit,
                at(m),
                "defaults.max_frames".into(),
                message,
            );
            DEFAULT_MAX_FRAMES
        }
        Some(m) => m.value,
        None => DEFAULT_MAX_FRAMES,
    };

    let names: BTreeSet<&str> = raw.nodes.0.iter().map(|(k, _)| k.value.as_str()).collect();
    let entry = &raw.entry;
    if !names.contains(entry.value.as_str()) {
        let message = format!(
            "entry `{}` is not a node (nodes: {})",
            entry.value,
            list(&names)
        );
        problems.push(
            ProblemKind::EntryNotANode,
            at(entry),
            "entry".into(),
            message,
        );
    }

    let mut nodes: Vec<Node> = raw
        .nodes
        .0
        .iter()
        .map(|(name, node)| {
            let model = node
                .value
                .model
                .clone()
                .or_else(|| raw.defaults.model.clone());
            resolve_node(
                &name.value,
                &node.value,
                model,
                defaults,
                base_dir,
                resolver,
                &mut problems,
            )
        })
        .collect();
    let index: BTreeMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), i))
        .collect();

    super::names::check(&raw.nodes, &mut problems);
    link_edges(&raw.edges, &mut nodes, &index, &mut problems);
    if let Some(&start) = index.get(&entry.value) {
        check_reachable(start, &raw.nodes, &nodes, &index, &mut problems);
    }

    problems.list.sort_by_key(|p| p.location);
    if problems.has_errors() {
        return Err(GraphError::Invalid {
            problems: problems.list,
        });
    }
    Ok(Graph {
        name: raw.name,
        version: raw.version,
        entry: entry.value.clone(),
        max_frames,
        nodes,
        index,
        hash: ContentHash::of(text.as_bytes()),
        warnings: problems.list,
        source: text.into(),
        file: file.to_owned(),
    })
}

/// Resolves one node's plugin and checks its grants, limits and config.
fn resolve_node(
    name: &str,
    node: &RawNode,
    model: Option<String>,
    defaults: LimitSpec,
    base_dir: &Path,
    resolver: &impl PluginResolver,
    problems: &mut Problems,
) -> Node {
    let path = format!("nodes.{name}");
    let plugin = PluginRef::parse(&node.plugin.value, base_dir);
    let info = resolver.resolve(&plugin);
    if info.is_none() {
        let message = format!("unknown plugin `{}`", node.plugin.value);
        problems.push(
            ProblemKind::UnknownPlugin,
            at(&node.plugin),
            format!("{path}.plugin"),
            message,
        );
    }
    let mut granted = Vec::new();
    for (i, grant) in node.grants.iter().enumerate() {
        let gpath = format!("{path}.grants[{i}]");
        match grant.value.parse::<Capability>() {
            Err(message) => {
                problems.push(ProblemKind::UnknownCapability, at(grant), gpath, message)
            }
            Ok(cap) => match &info {
                Some(info) if !info.capabilities.contains(&cap) => {
                    let message = format!(
                        "grant `{cap}` was not requested by plugin `{}` (it asks for: {})",
                        node.plugin.value,
                        list(&info.capabilities)
                    );
                    problems.push(ProblemKind::UngrantedCapability, at(grant), gpath, message);
                }
                _ => granted.push(cap),
            },
        }
    }
    let tools = node_tools(&path, node, granted.contains(&Capability::Tools), problems);
    let limits = defaults.merge(&node.limits, &format!("{path}.limits"), problems);
    let config = match node.config.as_ref().map(|c| (c, &c.value)) {
        None | Some((_, Value::Null)) => Map::new(),
        Some((_, Value::Object(map))) => map.clone(),
        Some((spanned, _)) => {
            let message = "`config` must be a mapping".to_owned();
            problems.push(
                ProblemKind::InvalidConfig,
                at(spanned),
                format!("{path}.config"),
                message,
            );
            Map::new()
        }
    };
    if node.defer && node.every_tick {
        problems.push(
            ProblemKind::InvalidConfig,
            at(&node.plugin),
            format!("{path}.defer"),
            "`defer` and `every_tick` exclude each other: an every_tick node ticks in every frame, a deferred one only after the rest of the run".to_owned(),
        );
    }
    let interrupt_timeout = node.interrupt_timeout_ms.as_ref().and_then(|t| {
        if (1..=MAX_INTERRUPT_TIMEOUT_MS).contains(&t.value) {
            return Some(std::time::Duration::from_millis(t.value));
        }
        problems.push(
            ProblemKind::InvalidLimit,
            at(t),
            format!("{path}.interrupt_timeout_ms"),
            format!(
                "`interrupt_timeout_ms` must be between 1 and {MAX_INTERRUPT_TIMEOUT_MS} ms (a year), not {}",
                t.value
            ),
        );
        None
    });
    Node {
        name: name.to_owned(),
        plugin,
        info: info.unwrap_or_else(|| placeholder_info(&node.plugin.value)),
        grants: Grants::from_iter(granted),
        tools,
        limits: limits.to_limits(),
        model,
        every_tick: node.every_tick,
        defer: node.defer,
        reuse_instance: node.instance == InstanceMode::Reuse,
        interrupt_timeout,
        config,
        peers: Vec::new(),
    }
}

/// The MCP tools a node is granted: `tools` checked against the grants and
/// for its shape (server → tool names, `"*"` for all of a server's tools).
fn node_tools(path: &str, node: &RawNode, granted: bool, problems: &mut Problems) -> ToolGrants {
    let mut grants = ToolGrants::default();
    let tpath = format!("{path}.tools");
    let Some(spanned) = &node.tools else {
        if granted {
            problems.push(
                ProblemKind::NoTools,
                at(&node.plugin),
                format!("{path}.grants"),
                "the node is granted `tools` but names no tool: add `tools: {<server>: [<tool>, ..]}` (its tool list is empty)".to_owned(),
            );
        }
        return grants;
    };
    let mut bad = |message: String| {
        problems.push(
            ProblemKind::InvalidTools,
            at(spanned),
            tpath.clone(),
            message,
        );
    };
    if !granted {
        bad("`tools` names MCP tools, but the node is not granted the `tools` capability (add it to `grants`)".to_owned());
        return grants;
    }
    let Value::Object(servers) = &spanned.value else {
        bad("`tools` must be a mapping of MCP server names to lists of tool names".to_owned());
        return grants;
    };
    if servers.is_empty() {
        bad("`tools` names no server".to_owned());
    }
    for (server, list) in servers {
        if !valid_tool_name(server) {
            bad(format!(
                "`{server}` is not a server name (1 to {MAX_TOOL_NAME} bytes, no control characters)"
            ));
            continue;
        }
        let names: Option<Vec<&str>> = match list {
            Value::Array(items) => items.iter().map(Value::as_str).collect(),
            _ => None,
        };
        let Some(names) = names.filter(|n| !n.is_empty()) else {
            bad(format!(
                "the tools of server `{server}` must be a non-empty list of tool names (`[\"*\"]` for all of them)"
            ));
            continue;
        };
        if names.contains(&"*") {
            if names.len() > 1 {
                bad(format!(
                    "server `{server}`: `*` already grants every tool; list no others beside it"
                ));
            }
            grants.grant(server.clone(), ToolSet::All);
            continue;
        }
        let mut set = std::collections::BTreeSet::new();
        for name in names {
            if !valid_tool_name(name) {
                bad(format!(
                    "server `{server}`: `{name}` is not a tool name (1 to {MAX_TOOL_NAME} bytes, no control characters)"
                ));
                continue;
            }
            set.insert(name.to_owned());
        }
        if !set.is_empty() {
            grants.grant(server.clone(), ToolSet::Only(set));
        }
    }
    grants
}

/// The longest MCP server or tool name a graph may give.
const MAX_TOOL_NAME: usize = weft_runtime::capabilities::tools::MAX_NAME_BYTES;

fn valid_tool_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_TOOL_NAME && !name.chars().any(char::is_control)
}

/// Checks the edges and records them as peers: an edge naming an unknown
/// node is an error, a repeated one a warning.
fn link_edges(
    edges: &[Spanned<RawEdge>],
    nodes: &mut [Node],
    index: &BTreeMap<String, usize>,
    problems: &mut Problems,
) {
    let mut seen = BTreeSet::new();
    for (i, edge) in edges.iter().enumerate() {
        let from = &edge.value.from;
        let from_known = index.contains_key(&from.value);
        if !from_known {
            let message = format!("edge from unknown node `{}`", from.value);
            problems.push(
                ProblemKind::UnknownNode,
                at(from),
                format!("edges[{i}].from"),
                message,
            );
        }
        let to = &edge.value.to;
        let targets: Vec<(&str, Option<Location>, String)> = match &to.value {
            Targets::One(name) => vec![(name.as_str(), at(to), format!("edges[{i}].to"))],
            // Items of a list carry their own location.
            Targets::Many(list) => list
                .iter()
                .enumerate()
                .map(|(j, t)| (t.value.as_str(), at(t), format!("edges[{i}].to[{j}]")))
                .collect(),
        };
        for (target, location, tpath) in targets {
            let mut report =
                |kind, message: String| problems.push(kind, location, tpath.clone(), message);
            let Some(&t) = index.get(target) else {
                report(
                    ProblemKind::UnknownNode,
                    format!("edge to unknown node `{target}`"),
                );
                continue;
            };
            if !from_known {
                continue;
            }
            if !seen.insert((from.value.clone(), target.to_string())) {
                report(
                    ProblemKind::DuplicateEdge,
                    format!("duplicate edge `{}` -> `{target}`", from.value),
                );
                continue;
            }
            if target == from.value {
                report(
                    ProblemKind::SelfEdge,
                    format!(
                        "edge from `{target}` to itself: it receives its own messages in the next frame, a loop that runs until `max_frames` unless the node ends it"
                    ),
                );
            }
            let name = nodes[t].name.clone();
            nodes[index[&from.value]].peers.push(name);
        }
    }
}

/// Reports every node not reachable along edges from the entry (`start`)
/// or from an `every_tick` node.
fn check_reachable(
    start: usize,
    raw_nodes: &NodeMap,
    nodes: &[Node],
    index: &BTreeMap<String, usize>,
    problems: &mut Problems,
) {
    let mut reached = vec![false; nodes.len()];
    let mut queue: VecDeque<usize> = std::iter::once(start)
        .chain(
            nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.every_tick)
                .map(|(i, _)| i),
        )
        .collect();
    while let Some(i) = queue.pop_front() {
        if std::mem::replace(&mut reached[i], true) {
            continue;
        }
        queue.extend(nodes[i].peers.iter().map(|p| index[p]));
    }
    for ((name, _), _) in raw_nodes.0.iter().zip(&reached).filter(|(_, r)| !**r) {
        let message = format!(
            "node `{}` is unreachable from entry `{}` (no path along edges, and not every_tick)",
            name.value, nodes[start].name
        );
        problems.push(
            ProblemKind::Unreachable,
            at(name),
            format!("nodes.{}", name.value),
            message,
        );
    }
}

/// Parses the file's shape within the parser budget of [`file::options`];
/// on failure, the kind of problem ([`ProblemKind::Limit`] for a budget
/// breach, else [`ProblemKind::Syntax`]), the parser's location and message.
fn parse(text: &str) -> Result<RawGraph, (ProblemKind, Option<Location>, String)> {
    serde_saphyr::from_str_with_options(text, super::file::options()).map_err(|e| {
        let location = e.location().and_then(Location::from_yaml);
        let message = syntax_message(&e, location);
        if super::file::is_limit(&e) {
            let message = format!(
                "the file is over the graph loader's limits (at most {MAX_GRAPH_DEPTH} levels of nesting, {MAX_GRAPH_ALIASES} aliases, {MAX_GRAPH_NODES} values): {message}"
            );
            (ProblemKind::Limit, location, message)
        } else {
            (ProblemKind::Syntax, location, message)
        }
    })
}

/// The parser's message without the position it appends (the problem
/// carries it) or its advice about parser options.
fn syntax_message(e: &serde_saphyr::Error, location: Option<Location>) -> String {
    let mut message = e.without_snippet().to_string();
    if let Some(loc) = location {
        let suffix = format!(" at line {}, column {}", loc.line, loc.column);
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message.truncate(stripped.len());
        }
    }
    if let Some((head, _)) = message.split_once(", set DuplicateKeyPolicy") {
        message.truncate(head.len());
    }
    message
}

/// Stands in for an unresolved plugin so checking can go on; never escapes,
/// because an unknown plugin is an error.
fn placeholder_info(plugin: &str) -> NodeInfo {
    NodeInfo {
        name: plugin.to_owned(),
        version: String::new(),
        description: String::new(),
        input_schema: Value::Null,
        output_schema: Value::Null,
        capabilities: Vec::new(),
    }
}
