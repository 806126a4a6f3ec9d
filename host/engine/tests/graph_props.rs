//! Property tests of the graph loader and validator (proptest, stable Rust).
//!
//! - Any text, and any mutation of a well-formed graph file, loads or fails
//!   with typed problems; it never panics.
//! - Generated graphs (random node names, unicode included; random edges,
//!   grants, limits, configs; missing and extra keys), written as block YAML
//!   or as JSON, load exactly when an independent model of the rules says
//!   they should, and a loaded graph keeps what the file said.
//! - A loaded graph written back out loads again to the same graph.
//!
//! Cases: `PROPTEST_CASES` (default 256 per property). A longer run:
//! `PROPTEST_CASES=20000 cargo test --release -p weft-engine --test graph_props`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use weft_engine::graph::{MAX_DEADLINE_MS, MAX_FRAMES, MAX_MEMORY_MB, MAX_OUTPUT_KB};
use weft_engine::{Graph, GraphError, PluginRef, ProblemKind, Severity};
use weft_runtime::{Capability, NodeInfo};

/// The cases per property: `PROPTEST_CASES`, else a CI-sized default.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// `x` asks for `llm` and `log`, `y` for everything; nothing else exists.
fn resolver(plugin: &PluginRef) -> Option<NodeInfo> {
    let caps = match plugin {
        PluginRef::Name(n) if n == "x" => vec![Capability::Llm, Capability::Log],
        PluginRef::Name(n) if n == "y" => Capability::ALL.to_vec(),
        _ => return None,
    };
    Some(NodeInfo {
        name: plugin.to_string(),
        version: "1.0.0".into(),
        description: String::new(),
        input_schema: json!({}),
        output_schema: json!({}),
        capabilities: caps,
    })
}

fn load(text: &str) -> Result<Graph, GraphError> {
    Graph::from_yaml(text, "prop.yaml", &resolver)
}

/// A failure is a list of typed problems with at least one error, each
/// naming the file; a success has only warnings (duplicate edges,
/// self-edges, lookalike or hidden-character node names).
fn check_outcome(result: &Result<Graph, GraphError>) {
    match result {
        Ok(graph) => {
            for w in graph.warnings() {
                assert_eq!(w.severity, Severity::Warning);
                assert!(
                    matches!(
                        w.kind,
                        ProblemKind::DuplicateEdge
                            | ProblemKind::SelfEdge
                            | ProblemKind::LookalikeNames
                            | ProblemKind::HiddenCharacters
                    ),
                    "{w}"
                );
            }
        }
        Err(GraphError::Io { .. }) => panic!("no I/O from text"),
        Err(err @ GraphError::Invalid { problems }) => {
            assert!(
                problems.iter().any(|p| p.severity == Severity::Error),
                "{err}"
            );
            for p in problems {
                assert_eq!(p.file, "prop.yaml");
                assert!(!p.message.is_empty(), "{p}");
                let _ = p.to_string();
            }
        }
    }
}

// ---- the model ---------------------------------------------------------

#[derive(Debug, Clone)]
struct NodeSpec {
    plugin: &'static str,
    grants: Vec<&'static str>,
    limits: BTreeMap<&'static str, u64>,
    every_tick: bool,
    config: Option<Value>,
    extra_key: bool,
}

#[derive(Debug, Clone)]
struct EdgeSpec {
    from: String,
    to: Vec<String>,
    as_list: bool,
}

#[derive(Debug, Clone)]
struct GraphSpec {
    name: String,
    entry: String,
    names: Vec<String>,
    nodes: Vec<NodeSpec>,
    edges: Vec<EdgeSpec>,
    max_frames: Option<u64>,
    default_limits: BTreeMap<&'static str, u64>,
    missing: Option<&'static str>,
    extra_top_key: bool,
}

const LIMITS: [(&str, u64); 4] = [
    ("fuel", u64::MAX),
    ("deadline_ms", MAX_DEADLINE_MS),
    ("max_memory_mb", MAX_MEMORY_MB),
    ("max_output_kb", MAX_OUTPUT_KB),
];

fn node_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_-]{0,8}",
        2 => "\\PC{1,6}",
        1 => prop::sample::select(vec![
            "入力", "🦀", "e\u{301}", "\u{e9}", "true", "null", "1", "<<", "~", "-", "a b",
            "\u{200b}", "\u{202e}x", "#", "&a", "*a", "[x]", "{x}", "",
        ])
        .prop_map(str::to_owned),
    ]
}

fn limit_value(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => Just(0),
        1 => Just(max),
        1 => Just(max.saturating_add(1)),
        12 => 1..=max,
        1 => any::<u64>(),
    ]
}

fn limits() -> impl Strategy<Value = BTreeMap<&'static str, u64>> {
    let fields = LIMITS.map(|(name, max)| {
        prop::option::weighted(0.3, limit_value(max)).prop_map(move |v| (name, v))
    });
    fields.prop_map(|fields| {
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        prop_oneof![8 => Just("y"), 3 => Just("x"), 1 => Just("nope")],
        prop::collection::vec(
            prop_oneof![
                10 => prop::sample::select(vec!["llm", "log"]),
                4 => prop::sample::select(vec!["db", "memory", "hud"]),
                1 => Just("bogus"),
            ],
            0..3,
        ),
        limits(),
        prop::bool::weighted(0.2),
        prop::option::weighted(
            0.4,
            prop_oneof![
                6 => prop::collection::btree_map("\\PC{0,6}", json_value(), 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                1 => json_value(),
            ],
        ),
        prop::bool::weighted(0.02),
    )
        .prop_map(
            |(plugin, grants, limits, every_tick, config, extra_key)| NodeSpec {
                plugin,
                grants,
                limits,
                every_tick,
                config,
                extra_key,
            },
        )
}

fn graph_spec() -> impl Strategy<Value = GraphSpec> {
    prop::collection::btree_set(node_name(), 1..6)
        .prop_flat_map(|names| {
            let names: Vec<String> = names.into_iter().collect();
            let n = names.len();
            let pick = prop_oneof![
                30 => prop::sample::select(names.clone()),
                1 => node_name(),
            ];
            let edge = (
                pick.clone(),
                prop::collection::vec(pick.clone(), 1..3),
                any::<bool>(),
            )
                .prop_map(|(from, to, as_list)| EdgeSpec {
                    as_list: as_list || to.len() > 1,
                    from,
                    to,
                });
            (
                "\\PC{0,10}",
                pick,
                Just(names),
                prop::collection::vec(node_spec(), n),
                prop::collection::vec(edge, 0..(2 * n + 1)),
                prop::option::weighted(
                    0.3,
                    prop_oneof![
                        1 => Just(0u64),
                        8 => 1..=u64::from(MAX_FRAMES),
                        1 => any::<u64>(),
                    ],
                ),
                limits(),
                prop::option::weighted(0.02, prop::sample::select(vec!["name", "entry", "nodes"])),
                prop::bool::weighted(0.02),
                // Most graphs get an edge from the entry to every node, so
                // that enough of them are reachable to load.
                prop::bool::weighted(0.8),
            )
        })
        .prop_map(
            |(
                name,
                entry,
                names,
                nodes,
                mut edges,
                max_frames,
                default_limits,
                missing,
                extra_top_key,
                spanning,
            )| {
                if spanning && names.contains(&entry) {
                    edges.push(EdgeSpec {
                        from: entry.clone(),
                        to: names.clone(),
                        as_list: true,
                    });
                }
                GraphSpec {
                    name,
                    entry,
                    names,
                    nodes,
                    edges,
                    max_frames,
                    default_limits,
                    missing,
                    extra_top_key,
                }
            },
        )
}

impl GraphSpec {
    /// The file as a JSON value (written as JSON or as block YAML).
    fn document(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("name".into(), json!(self.name));
        doc.insert("entry".into(), json!(self.entry));
        let mut defaults = Map::new();
        if let Some(m) = self.max_frames {
            defaults.insert("max_frames".into(), json!(m));
        }
        if !self.default_limits.is_empty() {
            defaults.insert("limits".into(), json!(self.default_limits));
        }
        if !defaults.is_empty() {
            doc.insert("defaults".into(), Value::Object(defaults));
        }
        let mut nodes = Map::new();
        for (name, spec) in self.names.iter().zip(&self.nodes) {
            let mut node = Map::new();
            node.insert("plugin".into(), json!(spec.plugin));
            if !spec.grants.is_empty() {
                node.insert("grants".into(), json!(spec.grants));
            }
            if !spec.limits.is_empty() {
                node.insert("limits".into(), json!(spec.limits));
            }
            if spec.every_tick {
                node.insert("every_tick".into(), json!(true));
            }
            if let Some(c) = &spec.config {
                node.insert("config".into(), c.clone());
            }
            if spec.extra_key {
                node.insert("grant".into(), json!(["llm"]));
            }
            nodes.insert(name.clone(), Value::Object(node));
        }
        doc.insert("nodes".into(), Value::Object(nodes));
        if !self.edges.is_empty() {
            let edges: Vec<Value> = self
                .edges
                .iter()
                .map(|e| {
                    let to = if e.as_list {
                        json!(e.to)
                    } else {
                        json!(e.to[0])
                    };
                    json!({"from": e.from, "to": to})
                })
                .collect();
            doc.insert("edges".into(), Value::Array(edges));
        }
        if self.extra_top_key {
            doc.insert("edge".into(), json!([]));
        }
        if let Some(key) = self.missing {
            doc.remove(key);
        }
        Value::Object(doc)
    }

    /// Whether the rules accept this graph, worked out independently of the loader.
    fn should_load(&self) -> bool {
        if self.missing.is_some() || self.extra_top_key || self.nodes.iter().any(|n| n.extra_key) {
            return false;
        }
        let limits_ok = |l: &BTreeMap<&str, u64>| {
            LIMITS
                .iter()
                .all(|(k, max)| l.get(k).is_none_or(|&v| v >= 1 && v <= *max))
        };
        if self
            .max_frames
            .is_some_and(|m| m == 0 || m > u64::from(MAX_FRAMES))
            || !limits_ok(&self.default_limits)
        {
            return false;
        }
        let index: BTreeMap<&str, usize> = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let Some(&entry) = index.get(self.entry.as_str()) else {
            return false;
        };
        for node in &self.nodes {
            let Some(info) = resolver(&PluginRef::Name(node.plugin.into())) else {
                return false;
            };
            for g in &node.grants {
                match g.parse::<Capability>() {
                    Ok(cap) if info.capabilities.contains(&cap) => {}
                    _ => return false,
                }
            }
            if !limits_ok(&node.limits)
                || node
                    .config
                    .as_ref()
                    .is_some_and(|c| !(c.is_object() || c.is_null()))
            {
                return false;
            }
        }
        let mut peers = vec![BTreeSet::new(); self.names.len()];
        for e in &self.edges {
            let Some(&from) = index.get(e.from.as_str()) else {
                return false;
            };
            for t in &e.to {
                let Some(&to) = index.get(t.as_str()) else {
                    return false;
                };
                peers[from].insert(to);
            }
        }
        let mut reached = vec![false; self.names.len()];
        let mut queue: VecDeque<usize> = std::iter::once(entry)
            .chain((0..self.nodes.len()).filter(|&i| self.nodes[i].every_tick))
            .collect();
        while let Some(i) = queue.pop_front() {
            if !std::mem::replace(&mut reached[i], true) {
                queue.extend(peers[i].iter().copied());
            }
        }
        reached.into_iter().all(|r| r)
    }
}

/// Block YAML with every string double-quoted (JSON escapes are YAML escapes).
fn to_block_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                out.push_str(&format!("{pad}{}:", serde_json::to_string(k).unwrap()));
                block_child(v, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for v in items {
                out.push_str(&format!("{pad}-"));
                block_child(v, indent, out);
            }
        }
        other => out.push_str(&format!("{pad}{other}\n")),
    }
}

fn block_child(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            to_block_yaml(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            to_block_yaml(v, indent + 2, out);
        }
        other => out.push_str(&format!(" {other}\n")),
    }
}

fn block_yaml(value: &Value) -> String {
    let mut out = String::new();
    to_block_yaml(value, 0, &mut out);
    out
}

/// A loaded graph written back out as a file.
fn write_back(g: &Graph) -> String {
    let mut nodes = Map::new();
    let mut edges = Vec::new();
    for n in g.nodes() {
        let grants: Vec<&str> = n.grants.iter().map(Capability::as_str).collect();
        let limits = json!({
            "fuel": n.limits.fuel,
            "deadline_ms": n.limits.deadline.as_millis() as u64,
            "max_memory_mb": n.limits.max_memory >> 20,
            "max_output_kb": n.limits.max_output >> 10,
        });
        nodes.insert(
            n.name.clone(),
            json!({"plugin": n.plugin.to_string(), "grants": grants, "limits": limits,
                   "every_tick": n.every_tick, "config": n.config}),
        );
        if !n.peers.is_empty() {
            edges.push(json!({"from": n.name, "to": n.peers}));
        }
    }
    let doc = json!({"name": g.name(), "entry": g.entry().name,
                     "defaults": {"max_frames": g.max_frames()},
                     "nodes": nodes, "edges": edges});
    block_yaml(&doc)
}

/// What a loaded graph is, for comparing two loads.
fn summary(g: &Graph) -> Value {
    let nodes: Vec<Value> = g
        .nodes()
        .iter()
        .map(|n| {
            let grants: Vec<&str> = n.grants.iter().map(Capability::as_str).collect();
            json!([
                n.name,
                n.plugin.to_string(),
                grants,
                format!("{:?}", n.limits),
                n.every_tick,
                n.config,
                n.peers
            ])
        })
        .collect();
    json!([g.name(), g.entry().name, g.max_frames(), nodes])
}

/// A small edit of a text: drop, duplicate or insert something.
fn mutate(text: &str, op: u8, at: usize, len: usize, insert: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + len).min(chars.len());
    let (head, rest) = chars.split_at(at);
    let (mid, tail) = rest.split_at(end - at);
    let s = |c: &[char]| c.iter().collect::<String>();
    match op % 4 {
        0 => format!("{}{}", s(head), s(tail)),
        1 => format!("{}{}{}{}", s(head), s(mid), s(mid), s(tail)),
        2 => format!("{}{insert}{}", s(head), s(rest)),
        _ => format!("{}{insert}{}", s(head), s(tail)),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_loads_or_gives_typed_problems(text in "\\PC{0,200}") {
        check_outcome(&load(&text));
    }

    #[test]
    fn yaml_like_text_loads_or_gives_typed_problems(
        text in "[a-z0-9 :,\\-\\[\\]{}&*!|>'\"#%@`?\\n\\t\\\\~.]{0,300}"
    ) {
        check_outcome(&load(&text));
    }

    #[test]
    fn generated_graphs_load_exactly_when_the_rules_allow(spec in graph_spec(), as_json in any::<bool>()) {
        let doc = spec.document();
        let text = if as_json {
            serde_json::to_string_pretty(&doc).unwrap()
        } else {
            block_yaml(&doc)
        };
        let result = load(&text);
        check_outcome(&result);
        let expected = spec.should_load();
        prop_assert_eq!(result.is_ok(), expected, "{}\n{:?}", text, result.as_ref().err().map(ToString::to_string));
        if let Ok(g) = result {
            // What the file said is what loaded.
            prop_assert_eq!(g.entry().name.as_str(), spec.entry.as_str());
            let names: Vec<&str> = g.nodes().iter().map(|n| n.name.as_str()).collect();
            let spec_names: Vec<&str> = spec.names.iter().map(String::as_str).collect();
            prop_assert_eq!(names, spec_names);
            prop_assert_eq!(g.source(), text.as_str());
            for e in &spec.edges {
                for t in &e.to {
                    prop_assert!(g.may_send(&e.from, t));
                }
            }
            for (n, s) in g.nodes().iter().zip(&spec.nodes) {
                let granted: BTreeSet<&str> = n.grants.iter().map(Capability::as_str).collect();
                let asked: BTreeSet<&str> = s.grants.iter().copied().collect();
                prop_assert_eq!(granted, asked);
                if let Some(fuel) = s.limits.get("fuel").or(spec.default_limits.get("fuel")) {
                    prop_assert_eq!(n.limits.fuel, Some(*fuel));
                }
            }
            // Loading is deterministic.
            let again = load(&text).unwrap();
            prop_assert_eq!(again.content_hash(), g.content_hash());
            prop_assert_eq!(summary(&again), summary(&g));
        }
    }

    #[test]
    fn a_loaded_graph_written_back_loads_to_the_same_graph(spec in graph_spec()) {
        let Ok(g) = load(&block_yaml(&spec.document())) else { return Ok(()) };
        let text = write_back(&g);
        let again = load(&text);
        prop_assert!(again.is_ok(), "{}\n{}", text, again.unwrap_err());
        prop_assert_eq!(summary(&again.unwrap()), summary(&g));
    }

    #[test]
    fn mutated_graph_files_load_or_give_typed_problems(
        spec in graph_spec(),
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), 0usize..20, "[\\PC\\n]{0,8}"), 1..4),
    ) {
        let mut text = block_yaml(&spec.document());
        for (op, at, len, insert) in edits {
            text = mutate(&text, op, at, len, &insert);
        }
        check_outcome(&load(&text));
    }
}
