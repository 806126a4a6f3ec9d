//! Turning rows into the answer, deterministically: no model call, so the
//! facts `output` phrases are exactly what the database returned.

use std::fmt::Write as _;

use serde_json::{Value as Json, json};
use weft_protocol::{Interpreted, ToolCall, UiActions};
use weft_sdk::{Rows, Value};

/// How many rows the `emit_display` shows.
pub const DISPLAY_ROWS: usize = 20;

/// The [`Interpreted`] answer for `rows`, found after `retries` retries,
/// with at most `max_facts` rows as `key_facts`:
///
/// - one row of one column: the fact `"<column>: <value>"`;
/// - otherwise one fact per row, `"Col: val, Col: val"`.
///
/// `confidence` starts at 0.9 and drops 0.1 per retry, 0.1 for a result
/// cut off at the host's row limit and 0.3 for no rows at all (an empty
/// result more often means a wrong filter than a true "none"); it stays
/// within 0.1 to 0.9.
pub fn interpret(rows: &Rows, retries: u32, max_facts: usize) -> Interpreted {
    let count = rows.rows.len();
    let shown = count.min(max_facts);
    let (mut summary, key_facts) = match (count, rows.columns.as_slice()) {
        (0, _) => ("The query found no matching rows.".to_owned(), Vec::new()),
        (1, [column]) => {
            let fact = format!("{column}: {}", render(&rows.rows[0][0]));
            (format!("The query returned one value: {fact}."), vec![fact])
        }
        _ => {
            let noun = if count == 1 { "row" } else { "rows" };
            let mut summary = format!(
                "The query returned {count} {noun} with the columns {}.",
                rows.columns.join(", ")
            );
            if shown < count {
                let _ = write!(summary, " The first {shown} are listed.");
            }
            let facts = rows.rows.iter().take(max_facts);
            (
                summary,
                facts.map(|row| render_row(&rows.columns, row)).collect(),
            )
        }
    };
    if rows.truncated {
        summary.push_str(" The database stopped at its row limit, so there may be more.");
    }
    Interpreted {
        summary,
        row_count: Some(count as u64),
        key_facts,
        confidence: confidence(count, rows.truncated, retries),
    }
}

/// See [`interpret`]; computed in hundredths so the result is exact.
fn confidence(count: usize, truncated: bool, retries: u32) -> f64 {
    let mut hundredths: i64 = 90 - 10 * i64::from(retries.min(8));
    if truncated {
        hundredths -= 10;
    }
    if count == 0 {
        hundredths -= 30;
    }
    hundredths.clamp(10, 90) as f64 / 100.0
}

/// `"Col: val, Col: val"`.
fn render_row(columns: &[String], row: &[Value]) -> String {
    let cells = columns.iter().zip(row);
    let parts: Vec<String> = cells
        .map(|(column, value)| format!("{column}: {}", render(value)))
        .collect();
    parts.join(", ")
}

/// A cell as text for a fact.
pub(crate) fn render(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Integer(integer) => integer.to_string(),
        Value::Real(real) => real.to_string(),
        Value::Text(text) => text.clone(),
        Value::Blob(bytes) => format!("<{} bytes>", bytes.len()),
    }
}

/// The `ui` message showing the first [`DISPLAY_ROWS`] rows under `title`.
pub fn display(title: &str, rows: &Rows) -> UiActions {
    let shown = rows.rows.iter().take(DISPLAY_ROWS);
    let cells: Vec<Json> = shown
        .map(|row| Json::Array(row.iter().map(Value::to_json).collect()))
        .collect();
    UiActions {
        actions: vec![ToolCall {
            tool: "emit_display".to_owned(),
            args: json!({"title": title, "columns": rows.columns, "rows": cells}),
        }],
    }
}
