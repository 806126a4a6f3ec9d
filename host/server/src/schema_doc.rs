//! File-format references rendered from JSON Schemas: `weft graph schema
//! --markdown` and `weft config schema --markdown` print them, and the
//! reference sections of docs/graph-file.md and docs/config-file.md are
//! this output (a test keeps them equal), so the docs cannot drift from the
//! types that read the files.
//!
//! One table per object (the root, then each definition in name order):
//! key, type, default and description.

use serde_json::Value;

/// The markdown reference of `schema` (a draft 2020-12 schema as schemars
/// generates it: the root object and `$defs`).
pub fn markdown(schema: &Value) -> String {
    let mut out = String::new();
    let title = schema["title"].as_str().unwrap_or("file");
    section(&mut out, title, schema);
    if let Some(defs) = schema["$defs"].as_object() {
        for (name, def) in defs {
            section(&mut out, name, def);
        }
    }
    out
}

fn section(out: &mut String, name: &str, schema: &Value) {
    out.push_str(&format!("#### `{name}`\n\n"));
    if let Some(text) = schema["description"].as_str() {
        out.push_str(&one_line(text));
        out.push_str("\n\n");
    }
    match schema["properties"].as_object() {
        Some(props) => {
            out.push_str("| key | type | default | description |\n|---|---|---|---|\n");
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for (key, prop) in props {
                let mut ty = type_of(prop);
                if required.contains(&key.as_str()) {
                    ty.push_str(" (required)");
                }
                let default = prop
                    .get("default")
                    .map(|d| format!("`{d}`"))
                    .unwrap_or_default();
                let text = prop["description"]
                    .as_str()
                    .map(one_line)
                    .unwrap_or_default();
                out.push_str(&format!(
                    "| `{key}` | {} | {} | {} |\n",
                    cell(&ty),
                    cell(&default),
                    cell(&text)
                ));
            }
            if schema["additionalProperties"] == Value::Bool(false) {
                out.push_str("\nNo other keys are allowed.\n");
            }
            out.push('\n');
        }
        None => {
            out.push_str(&format!("Type: {}.\n\n", type_of(schema)));
        }
    }
}

/// A short type description: `string`, `integer (1–600000)`, `list of
/// Edge`, `one of: …`, `"full" | "normal"`.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("[`{name}`](#{})", name.to_lowercase());
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(c) = schema.get("const") {
        return format!("`{c}`");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            let parts: Vec<String> = options
                .iter()
                .filter(|o| o["type"] != "null")
                .map(type_of)
                .collect();
            let nullable = options.iter().any(|o| o["type"] == "null");
            let text = parts.join(" or ");
            return if nullable {
                format!("{text} or null")
            } else {
                text
            };
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let mut parts = Vec::new();
    for t in types.iter().filter(|t| **t != "null") {
        let text = match *t {
            "array" => format!("list of {}", type_of(&schema["items"])),
            "object" => match schema.get("additionalProperties") {
                Some(Value::Object(_)) => {
                    format!("map of {}", type_of(&schema["additionalProperties"]))
                }
                _ => "mapping".to_owned(),
            },
            "integer" | "number" => {
                let min = schema.get("minimum").map(Value::to_string);
                let max = schema.get("maximum").map(Value::to_string);
                match (min, max) {
                    (Some(a), Some(b)) => format!("{t} ({a}–{b})"),
                    (Some(a), None) => format!("{t} (≥ {a})"),
                    (None, Some(b)) => format!("{t} (≤ {b})"),
                    (None, None) => (*t).to_owned(),
                }
            }
            other => other.to_owned(),
        };
        parts.push(text);
    }
    if parts.is_empty() {
        return "any".to_owned();
    }
    let mut text = parts.join(" or ");
    if types.contains(&"null") {
        text.push_str(" or null");
    }
    text
}

/// The description as one line, without its fenced examples (the
/// reference's prose shows those).
fn one_line(text: &str) -> String {
    let prose = text.split("```").step_by(2).collect::<Vec<_>>().join(" ");
    prose.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_become_tables_with_types_defaults_and_required_keys() {
        let schema = json!({
            "title": "demo",
            "type": "object",
            "required": ["name"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "description": "The\n name."},
                "n": {"type": ["integer", "null"], "minimum": 1, "maximum": 9, "default": 3},
                "edges": {"type": "array", "items": {"$ref": "#/$defs/Edge"}},
                "sync": {"enum": ["full", "normal"]}
            },
            "$defs": {"Edge": {"type": "object", "properties": {"to": {"type": "string"}}}}
        });
        let md = markdown(&schema);
        assert!(md.contains("#### `demo`"), "{md}");
        assert!(
            md.contains("| `name` | string (required) |  | The name. |"),
            "{md}"
        );
        assert!(md.contains("| `n` | integer (1–9) or null | `3` |"), "{md}");
        assert!(md.contains("| `edges` | list of [`Edge`](#edge) |"), "{md}");
        assert!(
            md.contains("| `sync` | `\"full\"` \\| `\"normal\"` |"),
            "{md}"
        );
        assert!(md.contains("No other keys are allowed."), "{md}");
        assert!(md.contains("#### `Edge`"), "{md}");
    }
}
