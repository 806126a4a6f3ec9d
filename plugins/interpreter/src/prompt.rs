//! The interpreting request: system prompt, the tool outputs rendered for
//! the model (cut to fit a small context) and the schema.

use serde_json::{Map, Value, json};
use weft_protocol::{Interpret, Interpreted, ToolOutput};
use weft_sdk::{ChatMessage, CompletionRequest};

const SYSTEM_PROMPT: &str = "You summarise what database tools returned so an assistant can \
answer a user's request. Answer with a JSON object only. summary: one or two sentences that \
answer the request from the data. row_count: how many rows the data had, or null when it was \
not a table. key_facts: the facts the answer must contain, each a short sentence with the \
exact names and numbers from the data. confidence: 0 to 1, how well the data answers the \
request. Use only the data given; when a tool failed, say so.";

/// A summary and a handful of facts; more means rambling.
const MAX_TOKENS: u32 = 400;

/// At most this many facts, so constrained decoding cannot loop on the list.
const MAX_FACTS: u64 = 6;

/// Rows shown to the model, over all outputs.
pub const MAX_PROMPT_ROWS: usize = 40;

/// Bytes of tool-output JSON shown to the model.
pub const MAX_PROMPT_BYTES: usize = 8 * 1024;

/// Appended where the rendered outputs were cut at [`MAX_PROMPT_BYTES`].
pub const CUT_MARK: &str = " …(cut)";

/// The schema the model's answer must satisfy: the protocol's
/// [`Interpreted::schema`] with a bounded list of facts.
pub fn schema() -> Value {
    let mut schema = Interpreted::schema();
    schema["properties"]["key_facts"]["maxItems"] = MAX_FACTS.into();
    schema
}

/// The tool outputs as compact JSON for the prompt: at most
/// [`MAX_PROMPT_ROWS`] rows in all (a cut table says how many rows it
/// left out in `rows_omitted`), and at most [`MAX_PROMPT_BYTES`] bytes (a
/// cut text ends with [`CUT_MARK`]).
pub fn render_outputs(outputs: &[ToolOutput]) -> String {
    let mut rows_left = MAX_PROMPT_ROWS;
    let rendered: Vec<Value> = outputs
        .iter()
        .map(|output| {
            let mut entry = Map::new();
            entry.insert("tool".into(), output.tool.clone().into());
            entry.insert("args".into(), output.args.clone());
            if let Some(result) = &output.result {
                entry.insert("result".into(), limit_rows(result, &mut rows_left));
            }
            if let Some(error) = &output.error {
                entry.insert("error".into(), error.clone().into());
            }
            Value::Object(entry)
        })
        .collect();
    let text = Value::Array(rendered).to_string();
    if text.len() <= MAX_PROMPT_BYTES {
        return text;
    }
    let mut end = MAX_PROMPT_BYTES - CUT_MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARK}", &text[..end])
}

/// `result` with its `rows` cut to what is left of the row budget.
fn limit_rows(result: &Value, rows_left: &mut usize) -> Value {
    let Some(rows) = result.get("rows").and_then(Value::as_array) else {
        return result.clone();
    };
    let shown = rows.len().min(*rows_left);
    *rows_left -= shown;
    let mut limited = result.clone();
    limited["rows"] = Value::Array(rows[..shown].to_vec());
    if shown < rows.len() {
        limited["rows_omitted"] = json!(rows.len() - shown);
    }
    limited
}

/// The user turn: the request and the rendered outputs.
pub fn user_turn(interpret: &Interpret) -> String {
    format!(
        "Request: {}\nTool outputs (JSON): {}",
        interpret.request,
        render_outputs(&interpret.outputs)
    )
}

/// The schema-constrained request that interprets `interpret`.
pub fn request(interpret: &Interpret) -> CompletionRequest {
    CompletionRequest::new([
        ChatMessage::system(SYSTEM_PROMPT),
        ChatMessage::user(user_turn(interpret)),
    ])
    .max_tokens(MAX_TOKENS)
    .json_schema(&schema())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: usize) -> ToolOutput {
        ToolOutput {
            tool: "query_db".into(),
            args: json!({"sql": "SELECT n FROM t"}),
            result: Some(json!({
                "columns": ["n"],
                "rows": (0..rows).map(|n| json!([n])).collect::<Vec<_>>(),
                "truncated": false
            })),
            error: None,
        }
    }

    #[test]
    fn small_outputs_are_rendered_whole() {
        let failed = ToolOutput {
            tool: "list_tables".into(),
            args: json!({}),
            result: None,
            error: Some("unavailable: db down".into()),
        };
        let text = render_outputs(&[table(2), failed]);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            json!([
                {"tool": "query_db", "args": {"sql": "SELECT n FROM t"},
                 "result": {"columns": ["n"], "rows": [[0], [1]], "truncated": false}},
                {"tool": "list_tables", "args": {}, "error": "unavailable: db down"}
            ])
        );
    }

    #[test]
    fn rows_are_cut_to_the_budget_over_all_outputs() {
        let text = render_outputs(&[table(30), table(25)]);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed[0]["result"]["rows"].as_array().unwrap().len(), 30);
        assert_eq!(parsed[0]["result"].get("rows_omitted"), None);
        assert_eq!(parsed[1]["result"]["rows"].as_array().unwrap().len(), 10);
        assert_eq!(parsed[1]["result"]["rows_omitted"], 15);
    }

    #[test]
    fn long_text_is_cut_at_the_byte_limit_on_a_char_boundary() {
        let wide = ToolOutput {
            tool: "query_db".into(),
            args: json!({"sql": "SELECT note FROM notes"}),
            result: Some(json!({
                "columns": ["note"],
                "rows": (0..40).map(|_| json!(["äöü".repeat(100)])).collect::<Vec<_>>(),
                "truncated": false
            })),
            error: None,
        };
        let text = render_outputs(&[wide]);
        assert!(text.len() <= MAX_PROMPT_BYTES, "{}", text.len());
        assert!(text.len() > MAX_PROMPT_BYTES - 8);
        assert!(text.ends_with(CUT_MARK));
    }
}
