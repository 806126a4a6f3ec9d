//! The deterministic [`Interpreted`] used when the model's answer is
//! unusable: built from the data alone, with a low confidence.

use serde_json::Value;
use weft_protocol::{Interpreted, ToolOutput};

/// How sure a summary built without the model is.
pub const FALLBACK_CONFIDENCE: f64 = 0.3;

/// The most facts the fallback lists.
const MAX_FACTS: usize = 6;

/// Rows of the first table turned into facts.
const ROW_FACTS: usize = 3;

/// The longest cell shown in a fact, in characters.
const MAX_CELL_CHARS: usize = 60;

/// Summarise `outputs` without a model.
///
/// `row_count` is the number of rows of the table results (`None` when
/// there was no table); `key_facts` are the first rows of the first table
/// (`name: m-1, kind: meter`), table lists, column lists, what the UI tools
/// did and what failed; `summary` says in a sentence per output what it
/// returned.
pub fn interpret(outputs: &[ToolOutput]) -> Interpreted {
    let mut summary = Vec::new();
    let mut facts = Vec::new();
    let mut row_count: Option<u64> = None;
    let mut rows_shown = false;
    for output in outputs {
        let tool = output.tool.as_str();
        if let Some(error) = &output.error {
            summary.push(format!("{tool} failed: {error}."));
            facts.push(format!("{tool} failed: {error}"));
            continue;
        }
        match &output.result {
            Some(Value::String(done)) => facts.push(done.clone()),
            Some(result) => {
                if let Some(rows) = result.get("rows").and_then(Value::as_array) {
                    let count = rows.len() as u64;
                    row_count = Some(row_count.unwrap_or(0) + count);
                    let more = if result["truncated"] == Value::Bool(true) {
                        " (or more)"
                    } else {
                        ""
                    };
                    summary.push(format!("The query returned {count} row(s){more}."));
                    if !rows_shown {
                        rows_shown = true;
                        let columns = strings(result.get("columns"));
                        facts.extend(
                            rows.iter()
                                .take(ROW_FACTS)
                                .map(|row| row_fact(&columns, row)),
                        );
                    }
                } else if let Some(tables) = result.get("tables") {
                    let tables = strings(Some(tables));
                    summary.push(format!("There are {} table(s).", tables.len()));
                    facts.push(format!("tables: {}", tables.join(", ")));
                } else if let Some(columns) = result.get("columns").and_then(Value::as_array) {
                    let table = result["table"].as_str().unwrap_or("the table");
                    let names: Vec<String> = columns
                        .iter()
                        .map(|column| strings(column.get("name")).concat())
                        .collect();
                    summary.push(format!("{table} has {} column(s).", names.len()));
                    facts.push(format!("{table} columns: {}", names.join(", ")));
                } else {
                    summary.push(format!("{tool} returned {}.", cell(result)));
                }
            }
            None => summary.push(format!("{tool} returned nothing.")),
        }
    }
    facts.truncate(MAX_FACTS);
    if summary.is_empty() {
        summary.push("The tools returned nothing.".to_owned());
    }
    Interpreted {
        summary: summary.join(" "),
        row_count,
        key_facts: facts,
        confidence: FALLBACK_CONFIDENCE,
    }
}

/// A row as `column: value, …` (a row object keeps its own keys).
fn row_fact(columns: &[String], row: &Value) -> String {
    let pairs: Vec<String> = match row {
        Value::Array(cells) => cells
            .iter()
            .enumerate()
            .map(|(at, value)| match columns.get(at) {
                Some(column) => format!("{column}: {}", cell(value)),
                None => cell(value),
            })
            .collect(),
        Value::Object(record) => record
            .iter()
            .map(|(column, value)| format!("{column}: {}", cell(value)))
            .collect(),
        other => vec![cell(other)],
    };
    pairs.join(", ")
}

/// A value as text, strings unquoted, cut to [`MAX_CELL_CHARS`].
fn cell(value: &Value) -> String {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= MAX_CELL_CHARS {
        return text;
    }
    let cut: String = text.chars().take(MAX_CELL_CHARS - 1).collect();
    format!("{cut}…")
}

/// The strings of a JSON value that is a string or a list of them.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items.iter().map(cell).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn output(tool: &str, result: Option<Value>, error: Option<&str>) -> ToolOutput {
        ToolOutput {
            tool: tool.into(),
            args: json!({}),
            result,
            error: error.map(Into::into),
        }
    }

    #[test]
    fn a_table_gives_its_row_count_and_first_rows() {
        let rows = json!({
            "columns": ["name", "kind"],
            "rows": [["m-1", "meter"], ["m-2", "meter"], ["v-1", "valve"], ["v-2", "valve"]],
            "truncated": false
        });
        let result = interpret(&[output("query_db", Some(rows), None)]);
        assert_eq!(
            result,
            Interpreted {
                summary: "The query returned 4 row(s).".into(),
                row_count: Some(4),
                key_facts: vec![
                    "name: m-1, kind: meter".into(),
                    "name: m-2, kind: meter".into(),
                    "name: v-1, kind: valve".into(),
                ],
                confidence: FALLBACK_CONFIDENCE,
            }
        );
    }

    #[test]
    fn every_kind_of_output_becomes_facts() {
        let outputs = [
            output(
                "create_machine",
                Some(json!("created machine light with states a")),
                None,
            ),
            output(
                "list_tables",
                Some(json!({"tables": ["devices", "sites"]})),
                None,
            ),
            output(
                "describe_table",
                Some(json!({"table": "devices", "columns": [{"name": "id"}, {"name": "name"}]})),
                None,
            ),
            output("query_db", None, Some("invalid-input: no such table: x")),
            output(
                "query_db",
                Some(json!({"columns": ["n"], "rows": [{"n": "x".repeat(70)}], "truncated": true})),
                None,
            ),
        ];
        let result = interpret(&outputs);
        assert_eq!(
            result.summary,
            "There are 2 table(s). devices has 2 column(s). query_db failed: invalid-input: no \
             such table: x. The query returned 1 row(s) (or more)."
        );
        assert_eq!(result.row_count, Some(1));
        assert_eq!(
            result.key_facts,
            [
                "created machine light with states a".to_owned(),
                "tables: devices, sites".to_owned(),
                "devices columns: id, name".to_owned(),
                "query_db failed: invalid-input: no such table: x".to_owned(),
                format!("n: {}…", "x".repeat(59)),
            ]
        );
    }

    #[test]
    fn no_table_means_no_row_count() {
        let result = interpret(&[output("list_tables", None, Some("unavailable: down"))]);
        assert_eq!(result.row_count, None);
        assert_eq!(result.summary, "list_tables failed: unavailable: down.");
        assert_eq!(result.confidence, FALLBACK_CONFIDENCE);
    }
}
