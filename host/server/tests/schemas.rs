//! The file formats' JSON Schemas and references cannot drift from the
//! types that read the files: `schemas/*.schema.json` and the generated
//! sections of docs/graph-file.md and docs/config-file.md must equal what
//! `weft graph schema` and `weft config schema` print (run the tests with
//! `WEFT_UPDATE_SCHEMAS=1` to rewrite them after changing a type), and
//! every shipped graph and example config must validate against them.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::path::Path;

use common::{root, temp_dir, text, weft};
use serde_json::Value;

fn update() -> bool {
    std::env::var_os("WEFT_UPDATE_SCHEMAS").is_some_and(|v| v == "1")
}

fn printed(args: &[&str]) -> String {
    let out = weft(&temp_dir("schemas"), args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `file` equals `expected`, or is rewritten to it with WEFT_UPDATE_SCHEMAS=1.
fn same_or_update(file: &str, expected: &str) {
    let path = root().join(file);
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    if actual == expected {
        return;
    }
    if update() {
        std::fs::write(&path, expected).unwrap();
        return;
    }
    panic!(
        "{file} differs from what weft generates from its Rust types; run the tests with WEFT_UPDATE_SCHEMAS=1 to rewrite it, and review the diff"
    );
}

/// `doc` with its generated section replaced by `generated`.
fn with_generated(doc: &str, generated: &str) -> String {
    let start = doc
        .find("<!-- generated:")
        .and_then(|i| doc[i..].find("-->\n").map(|j| i + j + 4))
        .expect("a `<!-- generated: … -->` marker");
    let end = doc.find("<!-- end generated -->").expect("an end marker");
    format!("{}{generated}{}", &doc[..start], &doc[end..])
}

#[test]
fn the_schemas_and_references_are_generated_from_the_types() {
    for (kind, schema_file, doc_file) in [
        ("graph", "schemas/graph.schema.json", "docs/graph-file.md"),
        (
            "config",
            "schemas/config.schema.json",
            "docs/config-file.md",
        ),
    ] {
        let schema = printed(&[kind, "schema"]);
        let parsed: Value = serde_json::from_str(&schema).unwrap();
        assert_eq!(
            parsed["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{kind}"
        );
        same_or_update(schema_file, &schema);
        let markdown = printed(&[kind, "schema", "--markdown"]);
        let doc = std::fs::read_to_string(root().join(doc_file)).unwrap();
        same_or_update(doc_file, &with_generated(&doc, &markdown));
    }
}

fn validator(schema_file: &str) -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(schema_file)).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {dir}");
    files
}

#[test]
fn every_shipped_graph_and_example_config_validates_against_its_schema() {
    for (schema, dir, marker) in [
        (
            "schemas/graph.schema.json",
            "graphs",
            "../schemas/graph.schema.json",
        ),
        (
            "schemas/config.schema.json",
            "docs/examples",
            "../../schemas/config.schema.json",
        ),
    ] {
        let validator = validator(schema);
        for file in files(dir) {
            let errors: Vec<String> = validator
                .iter_errors(&yaml(&file))
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
            let first = std::fs::read_to_string(&file).unwrap();
            assert!(
                first.starts_with(&format!("# yaml-language-server: $schema={marker}\n")),
                "{} names its schema for editors",
                file.display()
            );
        }
    }
    // The schemas refuse what the loaders refuse: a typo'd key, a grant
    // that is not a capability, a limit over its cap, a bad sync setting.
    let graph = validator("schemas/graph.schema.json");
    let good = yaml(&root().join("graphs/assistant.yaml"));
    for (pointer, value) in [
        ("/nodes/pa/grant", Value::from("llm")),
        ("/nodes/pa/grants/0", Value::from("telepathy")),
        ("/defaults/limits/deadline_ms", Value::from(600_001)),
        ("/defaults/max_frames", Value::from(0)),
        ("/edges/0/to", Value::from(3)),
    ] {
        let mut bad = good.clone();
        set(&mut bad, pointer, value);
        assert!(!graph.is_valid(&bad), "the graph schema accepts {pointer}");
    }
    let config = validator("schemas/config.schema.json");
    let good = yaml(&root().join("docs/examples/weft.yaml"));
    for (pointer, value) in [
        ("/store/sync", Value::from("sometimes")),
        ("/llm/providers/0/kind", Value::from("carrier-pigeon")),
        ("/prices/0/prompt_per_million", Value::from(-1.0)),
        ("/api/rate_per_minte", Value::from(5)),
    ] {
        let mut bad = good.clone();
        set(&mut bad, pointer, value);
        assert!(
            !config.is_valid(&bad),
            "the config schema accepts {pointer}"
        );
    }
}

/// Sets the value at a JSON pointer, creating the last key.
fn set(root: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = root.pointer_mut(parent).unwrap();
    match target {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
        }
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        _ => panic!("{parent} is not a container"),
    }
}

#[test]
fn config_validate_checks_a_file_without_starting_anything() {
    let dir = temp_dir("config-validate");
    let out = weft(&dir, &["config", "validate", "docs/examples/weft.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("the config is valid"));
    for (body, expected) in [
        (
            "api:\n  rate_per_minte: 5\n",
            "unknown field `rate_per_minte`",
        ),
        (
            "llm:\n  providers: [{ kind: openai, name: a, base_url: \"http://x\" }]\n  default: [b]\n",
            "llm.default: no provider named `b`",
        ),
    ] {
        let file = dir.join("bad.yaml");
        std::fs::write(&file, body).unwrap();
        let out = weft(&dir, &["config", "validate", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{body}");
        assert!(
            text(&out.stderr).contains(expected),
            "{}",
            text(&out.stderr)
        );
    }
}
