//! Hostile graph files: duplicate keys, alias bombs, huge and endless
//! files, deep nesting, several documents, bytes that are not UTF-8 and
//! unicode names. Each gets one clear problem of a known kind, without the
//! parser expanding or reading more than its budget allows.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::json;
use weft_engine::graph::{
    self, MAX_GRAPH_ALIASES, MAX_GRAPH_BYTES, MAX_GRAPH_DEPTH, MAX_GRAPH_NODES,
};
use weft_engine::{Graph, GraphError, PluginRef, Problem, ProblemKind};
use weft_runtime::{Capability, NodeInfo};

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

fn load(text: &str) -> Result<Graph, GraphError> {
    Graph::from_yaml(text, "hostile.yaml", &any_plugin)
}

/// The only problem of a file that must not load.
fn only_problem(result: Result<Graph, GraphError>) -> Problem {
    let err = result.expect_err("the file must not load");
    let problems = err.problems();
    assert_eq!(problems.len(), 1, "{err}");
    problems[0].clone()
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

const HEAD: &str = "name: g\nentry: a\nnodes:\n  a: { plugin: x }\n";

#[test]
fn duplicate_keys_are_errors_at_every_level() {
    let cases = [
        (
            "top level",
            "name: g\nname: h\nentry: a\nnodes:\n  a: { plugin: x }\n",
        ),
        (
            "node names",
            "name: g\nentry: a\nnodes:\n  a: { plugin: x }\n  a: { plugin: y }\n",
        ),
        (
            "node fields",
            "name: g\nentry: a\nnodes:\n  a: { plugin: x, plugin: y }\n",
        ),
        (
            "limits",
            "name: g\nentry: a\nnodes:\n  a: { plugin: x, limits: { fuel: 1, fuel: 2 } }\n",
        ),
        (
            "config",
            "name: g\nentry: a\nnodes:\n  a: { plugin: x, config: { k: 1, k: 2 } }\n",
        ),
        (
            "edges",
            "name: g\nentry: a\nnodes:\n  a: { plugin: x }\nedges:\n  - { from: a, from: a, to: a }\n",
        ),
    ];
    for (what, text) in cases {
        let p = only_problem(load(text));
        assert_eq!(p.kind, ProblemKind::Syntax, "{what}: {p}");
        assert!(p.message.contains("duplicate"), "{what}: {p}");
        assert!(p.location.is_some(), "{what}: {p}");
    }
}

/// The classic billion laughs: ten levels of ten aliases each, 10^10
/// strings if expanded.
fn billion_laughs() -> String {
    let mut text = String::from("name: g\nentry: a\nnodes:\n  a:\n    plugin: x\n    config:\n");
    text.push_str("      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let prev = format!("*l{}", i - 1);
        let list = [prev.as_str(); 10].join(", ");
        text.push_str(&format!("      l{i}: &l{i} [{list}]\n"));
    }
    text
}

#[test]
fn a_billion_laughs_alias_bomb_is_a_limit_problem() {
    let p = only_problem(load(&billion_laughs()));
    assert_eq!(p.kind, ProblemKind::Limit, "{p}");
    assert!(!p.message.is_empty(), "{p}");
}

#[test]
fn many_aliases_of_one_small_anchor_are_a_limit_problem() {
    // No nesting, just more aliases than the budget allows.
    let aliases = vec!["*s"; MAX_GRAPH_ALIASES + 1].join(", ");
    let text = format!(
        "name: g\nentry: a\nnodes:\n  a: {{ plugin: x, config: {{ s: &s lol, l: [{aliases}] }} }}\n"
    );
    let p = only_problem(load(&text));
    assert_eq!(p.kind, ProblemKind::Limit, "{p}");
}

#[test]
fn a_few_aliases_still_work() {
    let text = "name: g\nentry: a\ndefaults:\n  limits: &lim { fuel: 5 }\nnodes:\n  a: { plugin: x, limits: *lim, config: { c: &c [1, 2], d: *c } }\n";
    let g = load(text).unwrap();
    assert_eq!(g.entry().limits.fuel, Some(5));
    assert_eq!(g.entry().config["d"], json!([1, 2]));
}

#[test]
fn text_over_the_size_cap_is_refused_unparsed() {
    // Valid YAML, just too long: a comment line over the cap.
    let text = format!("{HEAD}# {}\n", "x".repeat(MAX_GRAPH_BYTES));
    let p = only_problem(load(&text));
    assert_eq!(p.kind, ProblemKind::Limit, "{p}");
    assert!(p.message.contains("larger than 1024 KiB"), "{p}");

    // The same from a file, through `read_file` and `load_file`.
    let path = temp_file("huge.yaml", text.as_bytes());
    let p = only_problem(Graph::load_file(&path, &any_plugin));
    assert_eq!(p.kind, ProblemKind::Limit, "{p}");
    assert_eq!(p.file, path.display().to_string());

    // Exactly at the cap is still read.
    let at_cap = format!("{HEAD}#{}", " ".repeat(MAX_GRAPH_BYTES - HEAD.len() - 1));
    assert_eq!(at_cap.len(), MAX_GRAPH_BYTES);
    let path = temp_file("at-cap.yaml", at_cap.as_bytes());
    assert_eq!(graph::read_file(&path).unwrap().len(), MAX_GRAPH_BYTES);
    Graph::load_file(&path, &any_plugin).unwrap();
}

#[test]
fn an_endless_file_is_read_only_up_to_the_cap() {
    let zero = Path::new("/dev/zero");
    if !zero.exists() {
        return; // not a Unix-like system
    }
    let p = only_problem(Graph::load_file(zero, &any_plugin));
    assert_eq!(p.kind, ProblemKind::Limit, "{p}");
}

#[test]
fn bytes_that_are_not_utf8_are_a_syntax_problem() {
    let mut bytes = HEAD.as_bytes().to_vec();
    bytes.extend_from_slice(b"# \xff\xfe\n");
    let path = temp_file("latin.yaml", &bytes);
    let p = only_problem(Graph::load_file(&path, &any_plugin));
    assert_eq!(p.kind, ProblemKind::Syntax, "{p}");
    assert!(p.message.contains("not UTF-8"), "{p}");
    let missing = Graph::load_file(Path::new("/nonexistent/g.yaml"), &any_plugin);
    assert!(matches!(missing, Err(GraphError::Io { .. })));
}

#[test]
fn one_hundred_thousand_nested_flow_lists_are_a_limit_problem() {
    let depth = 100_000;
    let text = format!(
        "{}, config: {{ deep: {}{} }} }}\n",
        HEAD.trim_end().trim_end_matches(" }"),
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let p = only_problem(load(&text));
    assert_eq!(p.kind, ProblemKind::Limit, "{p}");
}

#[test]
fn one_hundred_thousand_nested_block_lists_are_a_limit_problem() {
    // `- - - - … x`: each dash opens a block sequence inside the last, in a
    // node's free-form `config` (any shape is accepted there).
    let depth = 100_000;
    let text = format!(
        "name: g\nentry: a\nnodes:\n  a:\n    plugin: x\n    config:\n      deep:\n        {}x\n",
        "- ".repeat(depth)
    );
    let p = only_problem(load(&text));
    assert_eq!(p.kind, ProblemKind::Limit, "{p}");
    // Where the shape is fixed, the first wrong item already stops it.
    let edges = format!("{HEAD}edges:\n  {}x\n", "- ".repeat(depth));
    assert_eq!(only_problem(load(&edges)).kind, ProblemKind::Syntax);
}

#[test]
fn deeply_nested_mappings_are_a_limit_problem() {
    // `{a: {a: {… }}}`, and as block mappings (each level indented one more).
    let depth = 10_000;
    let flow = format!(
        "{}, config: {}{} }}\n",
        HEAD.trim_end().trim_end_matches(" }"),
        "{a: ".repeat(depth),
        "}".repeat(depth)
    );
    assert_eq!(only_problem(load(&flow)).kind, ProblemKind::Limit);
    let mut block = String::from("name: g\nentry: a\nnodes:\n  a:\n    plugin: x\n    config:\n");
    for level in 0..(MAX_GRAPH_DEPTH + 10) {
        block.push_str(&" ".repeat(6 + level));
        block.push_str("k:\n");
    }
    assert_eq!(only_problem(load(&block)).kind, ProblemKind::Limit);
}

#[test]
fn nesting_below_the_limit_loads() {
    let depth = MAX_GRAPH_DEPTH - 8;
    let text = format!(
        "{}, config: {{ deep: {}1{} }} }}\n",
        HEAD.trim_end().trim_end_matches(" }"),
        "[".repeat(depth),
        "]".repeat(depth)
    );
    load(&text).unwrap();
}

#[test]
fn too_many_yaml_nodes_are_a_limit_problem() {
    // Under the size cap, over the node budget: a flat list of one-character items.
    let items = vec!["1"; MAX_GRAPH_NODES + 1].join(",");
    assert!(items.len() < MAX_GRAPH_BYTES);
    let text = format!(
        "{}, config: {{ many: [{items}] }} }}\n",
        HEAD.trim_end().trim_end_matches(" }")
    );
    let p = only_problem(load(&text));
    assert_eq!(p.kind, ProblemKind::Limit, "{p}");
}

#[test]
fn a_second_document_is_refused() {
    let text = format!("{HEAD}---\n{HEAD}");
    let p = only_problem(load(&text));
    assert!(
        matches!(p.kind, ProblemKind::Limit | ProblemKind::Syntax),
        "{p}"
    );
}

#[test]
fn unicode_node_names_load_and_are_named_in_problems() {
    let names = [
        "入力",
        "узел",
        "🦀node",
        "نقطة",
        "e\u{301}",
        "zero\u{200b}width",
    ];
    let mut text = format!("name: ✓ graph\nentry: \"{}\"\nnodes:\n", names[0]);
    for n in &names {
        text.push_str(&format!("  \"{n}\": {{ plugin: x }}\n"));
    }
    text.push_str("edges:\n");
    for pair in names.windows(2) {
        text.push_str(&format!(
            "  - {{ from: \"{}\", to: \"{}\" }}\n",
            pair[0], pair[1]
        ));
    }
    let g = load(&text).unwrap();
    let loaded: Vec<&str> = g.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(loaded, names);
    assert_eq!(g.name(), "✓ graph");
    assert!(g.may_send("🦀node", "نقطة"));

    // An edge to a name that differs only by normalization is an unknown node.
    let bad = text.replace("to: \"e\u{301}\"", "to: \"\u{e9}\"");
    let err = load(&bad).unwrap_err();
    let unknown = err
        .problems()
        .iter()
        .find(|p| p.kind == ProblemKind::UnknownNode)
        .unwrap_or_else(|| panic!("{err}"));
    assert!(unknown.message.contains('\u{e9}'), "{unknown}");
}

#[test]
fn aliases_of_a_long_string_cannot_multiply_it() {
    // A half-MiB anchored string and a few hundred aliases to it: expanded,
    // hundreds of MiB in the node's config.
    let long = "x".repeat(MAX_GRAPH_BYTES / 2);
    let aliases = vec!["*s"; 900].join(", ");
    let text = format!(
        "name: g\nentry: a\nnodes:\n  a: {{ plugin: x, config: {{ s: &s {long}, l: [{aliases}] }} }}\n"
    );
    let p = only_problem(load(&text));
    assert_eq!(p.kind, ProblemKind::Limit, "{p}");
}
