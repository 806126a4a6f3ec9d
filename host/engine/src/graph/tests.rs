//! Unit tests of the graph model: references, problem display, defaults.

use std::path::{Path, PathBuf};

use serde_json::json;
use weft_runtime::{Capability, Limits, NodeInfo};

use super::*;

fn any_plugin(plugin: &PluginRef) -> Option<NodeInfo> {
    Some(NodeInfo {
        name: plugin.to_string(),
        version: "0.1.0".into(),
        description: String::new(),
        input_schema: json!({}),
        output_schema: json!({}),
        capabilities: Capability::ALL.to_vec(),
    })
}

fn problem(severity: Severity, location: Option<Location>, path: &str) -> Problem {
    Problem {
        severity,
        kind: ProblemKind::DuplicateEdge,
        file: "g.yaml".into(),
        location,
        path: path.into(),
        message: "oops".into(),
    }
}

#[test]
fn plugin_references_are_names_or_files() {
    let base = Path::new("graphs");
    assert_eq!(PluginRef::parse("pa", base), PluginRef::Name("pa".into()));
    assert_eq!(
        PluginRef::parse("pa.wasm", base),
        PluginRef::File(PathBuf::from("graphs/pa.wasm"))
    );
    assert_eq!(
        PluginRef::parse("/opt/p/x", base),
        PluginRef::File(PathBuf::from("/opt/p/x"))
    );
    assert_eq!(PluginRef::Name("pa".into()).to_string(), "pa");
}

#[test]
fn problems_display_like_compiler_diagnostics() {
    let at = Some(Location { line: 3, column: 7 });
    assert_eq!(
        problem(Severity::Error, at, "edges[0]").to_string(),
        "g.yaml:3:7: edges[0]: oops"
    );
    assert_eq!(
        problem(Severity::Warning, None, "").to_string(),
        "g.yaml: warning: oops"
    );
    let err = GraphError::Invalid {
        problems: vec![
            problem(Severity::Error, at, "a"),
            problem(Severity::Error, at, "b"),
        ],
    };
    assert_eq!(err.to_string(), "g.yaml:3:7: a: oops\ng.yaml:3:7: b: oops");
}

#[test]
fn unset_limits_keep_the_runtime_defaults() {
    let text = "name: g\nentry: a\nnodes:\n  a: { plugin: x, config: null }\n";
    let g = Graph::from_yaml(text, "g.yaml", &any_plugin).expect("valid");
    let a = g.entry();
    assert_eq!(a.limits, Limits::default());
    assert_eq!(g.max_frames(), DEFAULT_MAX_FRAMES);
    assert_eq!((a.model.as_deref(), a.every_tick), (None, false));
    assert!(a.config.is_empty() && a.peers.is_empty());
    assert_eq!(g.version(), None);
}

#[test]
fn a_single_target_and_a_list_mean_the_same() {
    let text = "name: g\nentry: a\nnodes:\n  a: { plugin: x }\n  b: { plugin: x }\n  c: { plugin: x }\nedges:\n  - { from: a, to: b }\n  - { from: a, to: [c] }\n  - { from: b, to: [a, c] }\n";
    let g = Graph::from_yaml(text, "g.yaml", &any_plugin).expect("valid");
    assert_eq!(g.peers("a"), ["b", "c"]);
    assert_eq!(g.peers("b"), ["a", "c"]);
    assert!(g.may_send("b", "a") && !g.may_send("c", "a"));
}

#[test]
fn grants_become_a_grant_set() {
    let text = "name: g\nentry: a\nnodes:\n  a: { plugin: x, grants: [db, log, db] }\n";
    let g = Graph::from_yaml(text, "g.yaml", &any_plugin).expect("valid");
    let caps: Vec<Capability> = g.entry().grants.iter().collect();
    assert_eq!(caps, [Capability::Db, Capability::Log]);
}

#[test]
fn tools_name_servers_and_their_tools_with_the_grant() {
    let text = "name: g\nentry: a\nnodes:\n  a:\n    plugin: x\n    grants: [tools]\n    tools: { local: [\"*\"], search: [web, news] }\n";
    let g = Graph::from_yaml(text, "g.yaml", &any_plugin).expect("valid");
    let tools = &g.entry().tools;
    assert!(tools.allows("local", "anything"));
    assert!(tools.allows("search", "news") && !tools.allows("search", "images"));
    assert!(!tools.allows("other", "web"));
    assert!(g.warnings().is_empty(), "{:?}", g.warnings());

    // A `tools` grant without tools is a warning; the node sees none.
    let text = "name: g\nentry: a\nnodes:\n  a: { plugin: x, grants: [tools] }\n";
    let g = Graph::from_yaml(text, "g.yaml", &any_plugin).expect("valid");
    assert!(g.entry().tools.is_empty());
    assert_eq!(g.warnings().len(), 1);
    assert_eq!(g.warnings()[0].kind, ProblemKind::NoTools);
}

#[test]
fn bad_tools_are_refused_naming_why() {
    for (tools, grants, says) in [
        (
            "{ local: [add] }",
            "[]",
            "not granted the `tools` capability",
        ),
        ("[add]", "[tools]", "must be a mapping"),
        ("{}", "[tools]", "names no server"),
        ("{ local: [] }", "[tools]", "non-empty list"),
        ("{ local: add }", "[tools]", "non-empty list"),
        ("{ local: [\"*\", add] }", "[tools]", "list no others"),
        ("{ local: [\"\"] }", "[tools]", "is not a tool name"),
    ] {
        let text = format!(
            "name: g\nentry: a\nnodes:\n  a: {{ plugin: x, grants: {grants}, tools: {tools} }}\n"
        );
        let err = Graph::from_yaml(&text, "g.yaml", &any_plugin).expect_err(&text);
        let problems = err.problems();
        assert!(
            problems
                .iter()
                .any(|p| p.kind == ProblemKind::InvalidTools && p.message.contains(says)),
            "{text}: {err}"
        );
        assert_eq!(problems[0].path, "nodes.a.tools", "{err}");
    }
}

#[test]
fn defer_is_read_and_refused_beside_every_tick() {
    let text = "name: g\nentry: a\nnodes:\n  a: { plugin: x }\n  m: { plugin: x, defer: true }\nedges:\n  - { from: a, to: m }\n";
    let g = Graph::from_yaml(text, "g.yaml", &any_plugin).expect("valid");
    let defer: Vec<bool> = g.nodes().iter().map(|n| n.defer).collect();
    assert_eq!(defer, [false, true]);

    let text = "name: g\nentry: a\nnodes:\n  a: { plugin: x }\n  w: { plugin: x, defer: true, every_tick: true }\n";
    let err = Graph::from_yaml(text, "g.yaml", &any_plugin).expect_err("both");
    let problem = &err.problems()[0];
    assert_eq!(
        (problem.kind, problem.path.as_str()),
        (ProblemKind::InvalidConfig, "nodes.w.defer")
    );
    assert!(problem.message.contains("exclude each other"), "{err}");
}
