//! Loading real graph files: the assistant graph, and every kind of mistake.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use serde_json::json;
use weft_engine::graph::{Graph, GraphError, Location, PluginRef, Problem, ProblemKind, Severity};
use weft_runtime::{Capability, Grants, NodeInfo};

/// Plugins as their `describe` would answer: name and requested capabilities.
fn resolver(plugin: &PluginRef) -> Option<NodeInfo> {
    use Capability::*;
    let caps: &[Capability] = match plugin {
        PluginRef::Name(name) => match name.as_str() {
            "input" | "output" => &[Hud],
            "pa" => &[Llm, Hud, Memory],
            "eras_expert" => &[Llm, Db, Memory, Hud],
            "ui" => &[Hud],
            "memorizer" => &[Llm, Memory],
            _ => return None,
        },
        PluginRef::File(path) if path.ends_with("plugins/echo.wasm") => &[Log],
        PluginRef::File(_) => return None,
    };
    Some(NodeInfo {
        name: plugin.to_string(),
        version: "1.0.0".into(),
        description: String::new(),
        input_schema: json!({"type": "object"}),
        output_schema: json!({"type": "object"}),
        capabilities: caps.to_vec(),
    })
}

const ASSISTANT: &str = r#"# The seed's v4-eras graph.
name: assistant
version: "4"
entry: input
defaults:
  model: small
  limits:
    fuel: 2000000000
    deadline_ms: 20000
    max_memory_mb: 128
    max_output_kb: 256
  max_frames: 12
nodes:
  input:
    plugin: input
    grants: [hud]
  pa:
    plugin: pa
    grants: [llm, hud, memory]
    model: large
    limits:
      deadline_ms: 60000
  eras_expert:
    plugin: eras_expert
    grants: [llm, db, memory, hud]
    config:
      max_retries: 3
      tables: [Kunden, Objekte]
  output:
    plugin: output
    grants: [hud]
  ui:
    plugin: ui
  memorizer:
    plugin: memorizer
    grants: [llm, memory]
    every_tick: true
edges:
  - { from: input, to: pa }
  - { from: pa, to: [eras_expert, output, ui] }
  - from: eras_expert
    to: pa
"#;

fn load(text: &str) -> Result<Graph, GraphError> {
    Graph::from_yaml(text, "graphs/assistant.yaml", &resolver)
}

fn problems(text: &str) -> Vec<Problem> {
    match load(text) {
        Ok(g) => panic!("expected problems, loaded {}", g.name()),
        Err(e) => e.problems().to_vec(),
    }
}

/// The only problem of `text`, checked for kind, path and line:column.
fn only(text: &str, kind: ProblemKind, path: &str, line: u64, column: u64) -> Problem {
    let list = problems(text);
    assert_eq!(list.len(), 1, "{list:#?}");
    let p = list.into_iter().next().unwrap();
    assert_eq!((p.kind, p.path.as_str()), (kind, path), "{p}");
    assert_eq!(p.location, Some(Location { line, column }), "{p}");
    p
}

#[test]
fn the_assistant_graph_loads() {
    let g = load(ASSISTANT).expect("valid");
    assert_eq!(
        (g.name(), g.version(), g.entry().name.as_str()),
        ("assistant", Some("4"), "input")
    );
    assert_eq!(g.max_frames(), 12);
    assert!(g.warnings().is_empty());
    let names: Vec<&str> = g.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["input", "pa", "eras_expert", "output", "ui", "memorizer"]
    );
    assert_eq!(g.peers("pa"), ["eras_expert", "output", "ui"]);
    assert!(g.may_send("input", "pa") && g.may_send("eras_expert", "pa"));
    assert!(!g.may_send("input", "output") && !g.may_send("nobody", "pa"));
    assert!(g.peers("memorizer").is_empty() && g.peers("nobody").is_empty());

    let pa = g.node("pa").unwrap();
    assert_eq!(
        pa.grants,
        Grants::from_iter([Capability::Llm, Capability::Hud, Capability::Memory])
    );
    assert_eq!(pa.model.as_deref(), Some("large"));
    assert_eq!(pa.limits.deadline.as_millis(), 60_000, "node override");
    assert_eq!(pa.limits.fuel, Some(2_000_000_000), "graph default");
    assert_eq!(pa.limits.max_memory, 128 << 20);
    assert_eq!(pa.limits.max_output, 256 << 10);
    let ui = g.node("ui").unwrap();
    assert_eq!(
        (ui.grants, ui.model.as_deref()),
        (Grants::NONE, Some("small"))
    );
    assert_eq!(ui.limits.deadline.as_millis(), 20_000);
    assert!(g.node("memorizer").unwrap().every_tick);
    let expert = g.node("eras_expert").unwrap();
    assert_eq!(expert.config["max_retries"], 3);
    assert_eq!(expert.config["tables"], json!(["Kunden", "Objekte"]));
    assert!(g.node("output").unwrap().config.is_empty());
}

#[test]
fn the_content_hash_follows_the_text() {
    let a = load(ASSISTANT).unwrap().content_hash();
    assert_eq!(a, load(ASSISTANT).unwrap().content_hash());
    let edited = ASSISTANT.replace("max_frames: 12", "max_frames: 13");
    assert_ne!(a, load(&edited).unwrap().content_hash());
}

#[test]
fn plugin_files_resolve_against_the_graph_directory() {
    let text = "name: g\nentry: a\nnodes:\n  a: { plugin: ../plugins/echo.wasm, grants: [log] }\n";
    let g = load(text).expect("valid");
    let a = g.node("a").unwrap();
    assert_eq!(
        a.plugin,
        PluginRef::File("graphs/../plugins/echo.wasm".into())
    );
    assert_eq!(a.grants, Grants::from_iter([Capability::Log]));
    let p = only(
        &text.replace("echo", "missing"),
        ProblemKind::UnknownPlugin,
        "nodes.a.plugin",
        4,
        16,
    );
    assert_eq!(p.message, "unknown plugin `../plugins/missing.wasm`");
}

#[test]
fn cytoscape_export() {
    let text = "name: g\nentry: a\nnodes:\n  a: { plugin: input }\n  b: { plugin: output }\nedges:\n  - { from: a, to: b }\n";
    assert_eq!(
        load(text).unwrap().to_cytoscape(),
        json!({"elements": {
            "nodes": [
                {"data": {"id": "a", "label": "a", "plugin": "input"}},
                {"data": {"id": "b", "label": "b", "plugin": "output"}},
            ],
            "edges": [{"data": {"id": "a->b", "source": "a", "target": "b"}}],
        }})
    );
}

/// A small valid graph to break in one place at a time.
const SMALL: &str = "name: g
entry: a
nodes:
  a:
    plugin: input
    grants: [hud]
  b:
    plugin: pa
    grants: [llm]
edges:
  - { from: a, to: b }
";

#[test]
fn yaml_syntax_errors_have_a_location() {
    let p = only("name: g\nentry: [a\n", ProblemKind::Syntax, "", 2, 8);
    assert!(!p.message.contains("at line"), "position only once: {p}");
    only(
        &SMALL.replace("grants: [llm]", "grant: [llm]"),
        ProblemKind::Syntax,
        "",
        9,
        5,
    );
    let dup = format!("{SMALL}  - {{ from: a, to: b }}\nedges: []\n");
    let p = only(&dup, ProblemKind::Syntax, "", 13, 1);
    assert_eq!(p.message, "duplicate mapping key: edges");
    let missing = problems(&SMALL.replace("entry: a\n", ""));
    assert_eq!(missing.len(), 1);
    assert_eq!(
        (missing[0].kind, missing[0].message.as_str()),
        (ProblemKind::Syntax, "missing field `entry`")
    );
    assert!(missing[0].location.is_some());
}

#[test]
fn an_unknown_plugin_is_reported() {
    let p = only(
        &SMALL.replace("plugin: pa", "plugin: ps"),
        ProblemKind::UnknownPlugin,
        "nodes.b.plugin",
        8,
        13,
    );
    assert_eq!(
        p.to_string(),
        "graphs/assistant.yaml:8:13: nodes.b.plugin: unknown plugin `ps`"
    );
}

#[test]
fn edges_to_and_from_unknown_nodes_are_reported() {
    let summary = |text: &str| -> Vec<(ProblemKind, String, Location)> {
        let list = problems(text);
        list.iter()
            .map(|p| (p.kind, p.path.clone(), p.location.unwrap()))
            .collect()
    };
    let at = |line, column| Location { line, column };
    // `b` is left without an incoming edge, so it is unreachable too.
    assert_eq!(
        summary(&SMALL.replace("to: b", "to: c")),
        [
            (ProblemKind::Unreachable, "nodes.b".into(), at(7, 3)),
            (ProblemKind::UnknownNode, "edges[0].to".into(), at(11, 20)),
        ]
    );
    assert_eq!(
        summary(&SMALL.replace("from: a, to: b", "from: x, to: [b, y]")),
        [
            (ProblemKind::Unreachable, "nodes.b".into(), at(7, 3)),
            (ProblemKind::UnknownNode, "edges[0].from".into(), at(11, 13)),
            (
                ProblemKind::UnknownNode,
                "edges[0].to[1]".into(),
                at(11, 24)
            ),
        ]
    );
}

#[test]
fn an_entry_that_is_not_a_node_is_reported() {
    let p = only(
        &SMALL.replace("entry: a", "entry: z"),
        ProblemKind::EntryNotANode,
        "entry",
        2,
        8,
    );
    assert_eq!(p.message, "entry `z` is not a node (nodes: a, b)");
}

#[test]
fn grants_must_be_requested_capabilities() {
    let p = only(
        &SMALL.replace("[llm]", "[llm, db]"),
        ProblemKind::UngrantedCapability,
        "nodes.b.grants[1]",
        9,
        19,
    );
    assert_eq!(
        p.to_string(),
        "graphs/assistant.yaml:9:19: nodes.b.grants[1]: grant `db` was not requested by plugin `pa` (it asks for: llm, hud, memory)"
    );
    let p = only(
        &SMALL.replace("[llm]", "[llm, mind]"),
        ProblemKind::UnknownCapability,
        "nodes.b.grants[1]",
        9,
        19,
    );
    assert!(p.message.starts_with("unknown capability `mind`"), "{p}");
}

#[test]
fn unreachable_nodes_are_reported_but_every_tick_nodes_are_roots() {
    let extra = SMALL.replace("edges:", "  c:\n    plugin: ui\nedges:");
    let p = only(&extra, ProblemKind::Unreachable, "nodes.c", 10, 3);
    assert!(p.message.contains("unreachable from entry `a`"), "{p}");
    // An every_tick node needs no incoming edge, and what it sends to is reachable.
    let ticking = SMALL.replace(
        "edges:",
        "  c:\n    plugin: memorizer\n    every_tick: true\n  d:\n    plugin: ui\nedges:\n  - { from: c, to: d }",
    );
    let g = load(&ticking).expect("valid");
    assert!(g.may_send("c", "d"));
}

#[test]
fn bad_limits_are_reported() {
    let text = SMALL.replace(
        "entry: a\n",
        "entry: a\ndefaults:\n  limits: { deadline_ms: 0, max_memory_mb: 100000 }\n  max_frames: 0\n",
    );
    let text = text.replace(
        "grants: [llm]",
        "grants: [llm]\n    limits: { fuel: 0, max_output_kb: 1000000 }",
    );
    let list = problems(&text);
    let got: Vec<_> = list.iter().map(|p| (p.kind, p.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (ProblemKind::InvalidLimit, "defaults.limits.deadline_ms"),
            (ProblemKind::InvalidLimit, "defaults.limits.max_memory_mb"),
            (ProblemKind::InvalidLimit, "defaults.max_frames"),
            (ProblemKind::InvalidLimit, "nodes.b.limits.fuel"),
            (ProblemKind::InvalidLimit, "nodes.b.limits.max_output_kb"),
        ],
        "{list:#?}"
    );
    assert_eq!(
        list[1].message,
        "`max_memory_mb` must be between 1 and 4096 MB, not 100000"
    );
    assert_eq!(list[3].message, "`fuel` must be at least 1, not 0");
    assert_eq!(
        list[0].location,
        Some(Location {
            line: 4,
            column: 26
        })
    );
}

#[test]
fn config_must_be_a_mapping() {
    only(
        &SMALL.replace("grants: [llm]", "grants: [llm]\n    config: 3"),
        ProblemKind::InvalidConfig,
        "nodes.b.config",
        10,
        13,
    );
}

#[test]
fn a_duplicate_edge_is_a_warning() {
    let g = load(&SMALL.replace("to: b }", "to: b }\n  - { from: a, to: [b] }")).expect("loads");
    let [w] = g.warnings() else {
        panic!("{:#?}", g.warnings())
    };
    assert_eq!(
        (w.severity, w.kind, w.path.as_str()),
        (
            Severity::Warning,
            ProblemKind::DuplicateEdge,
            "edges[1].to[0]"
        )
    );
    assert_eq!(
        w.to_string(),
        "graphs/assistant.yaml:12:21: warning: edges[1].to[0]: duplicate edge `a` -> `b`"
    );
    assert_eq!(g.peers("a"), ["b"]);
}

#[test]
fn a_self_edge_is_a_warning_and_still_routes() {
    let g = load(&SMALL.replace("to: b }", "to: b }\n  - { from: b, to: b }")).expect("loads");
    let [w] = g.warnings() else {
        panic!("{:#?}", g.warnings())
    };
    assert_eq!(
        (w.severity, w.kind, w.path.as_str()),
        (Severity::Warning, ProblemKind::SelfEdge, "edges[1].to")
    );
    assert!(w.message.contains("edge from `b` to itself"), "{w}");
    assert_eq!(g.peers("b"), ["b"]);
}

#[test]
fn lookalike_and_hidden_node_names_are_warnings() {
    // The same name in NFC and NFD, and one with a zero-width space.
    let twins = SMALL.replace("  b:\n", "  \"K\u{e4}se\":\n").replace(
        "to: b }",
        "to: [\"K\u{e4}se\", \"Ka\u{308}se\", \"p\u{200b}a\"] }",
    ) + "  - { from: a, to: pa }\n";
    let twins = twins.replace(
        "edges:",
        "  \"Ka\u{308}se\":\n    plugin: pa\n    grants: [llm]\n  \"p\u{200b}a\":\n    plugin: pa\n    grants: [llm]\n  pa:\n    plugin: pa\n    grants: [llm]\nedges:",
    );
    let g = load(&twins).expect("lookalike names load");
    let kinds: Vec<(ProblemKind, &str)> = g
        .warnings()
        .iter()
        .map(|w| (w.kind, w.path.as_str()))
        .collect();
    assert!(
        kinds.contains(&(ProblemKind::LookalikeNames, "nodes.Ka\u{308}se")),
        "{:#?}",
        g.warnings()
    );
    assert!(
        kinds.contains(&(ProblemKind::HiddenCharacters, "nodes.p\u{200b}a")),
        "{:#?}",
        g.warnings()
    );
    let lookalikes = g
        .warnings()
        .iter()
        .filter(|w| w.kind == ProblemKind::LookalikeNames)
        .count();
    assert_eq!(
        lookalikes,
        2,
        "NFD twin and zero-width twin: {:#?}",
        g.warnings()
    );
    let hidden = g
        .warnings()
        .iter()
        .find(|w| w.kind == ProblemKind::HiddenCharacters)
        .unwrap();
    assert!(hidden.message.contains("p\\u{200b}a"), "{hidden}");
    assert!(g.warnings().iter().all(|w| w.severity == Severity::Warning));
    // Plain names that differ only in case are two names, no warning.
    let cased = SMALL
        .replace("  b:\n", "  B:\n")
        .replace("to: b }", "to: B }");
    assert!(load(&cased).expect("loads").warnings().is_empty());
}

#[test]
fn every_problem_in_a_file_is_reported() {
    let bad = ASSISTANT
        .replace("grants: [llm, hud, memory]", "grants: [llm, db, telepathy]")
        .replace("plugin: ui", "plugin: gui")
        .replace("fuel: 2000000000", "fuel: 0")
        .replace(
            "to: [eras_expert, output, ui]",
            "to: [eras_expert, outptu, ui]",
        )
        .replace(
            "  - { from: input, to: pa }",
            "  - { from: input, to: pa }\n  - { from: input, to: pa }",
        );
    let err = load(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "\
graphs/assistant.yaml:8:11: defaults.limits.fuel: `fuel` must be at least 1, not 0
graphs/assistant.yaml:19:19: nodes.pa.grants[1]: grant `db` was not requested by plugin `pa` (it asks for: llm, hud, memory)
graphs/assistant.yaml:19:23: nodes.pa.grants[2]: unknown capability `telepathy` (expected one of llm, db, memory, hud, log, store, tools)
graphs/assistant.yaml:29:3: nodes.output: node `output` is unreachable from entry `input` (no path along edges, and not every_tick)
graphs/assistant.yaml:33:13: nodes.ui.plugin: unknown plugin `gui`
graphs/assistant.yaml:40:24: warning: edges[1].to: duplicate edge `input` -> `pa`
graphs/assistant.yaml:41:35: edges[2].to[1]: edge to unknown node `outptu`"
    );
}

#[test]
fn a_missing_file_is_an_io_error() {
    let err = Graph::load_file("no/such/graph.yaml", &resolver).unwrap_err();
    assert!(matches!(err, GraphError::Io { .. }), "{err}");
    assert!(err.problems().is_empty());
}
