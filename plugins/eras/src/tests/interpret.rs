//! The deterministic answer: facts, summary and confidence.

use serde_json::json;
use weft_sdk::{Rows, Value};

use crate::interpret::{DISPLAY_ROWS, display, interpret};

/// `count` rows of (Nr, Typ, Wert).
fn devices(count: i64) -> Rows {
    Rows::new(
        ["Nr", "Typ", "Wert"],
        (1..=count).map(|n| vec![Value::Integer(n), "WMZ".into(), Value::Real(n as f64 + 0.5)]),
    )
}

#[test]
fn one_value_is_one_fact() {
    let rows = Rows::new(["Summe"], [vec![Value::Real(1234.5)]]);
    let result = interpret(&rows, 0, 10);

    assert_eq!(result.key_facts, ["Summe: 1234.5"]);
    assert_eq!(
        result.summary,
        "The query returned one value: Summe: 1234.5."
    );
    assert_eq!(result.row_count, Some(1));
    assert_eq!(result.confidence, 0.9);
}

#[test]
fn rows_are_facts_up_to_max_facts() {
    let result = interpret(&devices(12), 0, 10);

    assert_eq!(result.key_facts.len(), 10);
    assert_eq!(result.key_facts[0], "Nr: 1, Typ: WMZ, Wert: 1.5");
    assert_eq!(result.key_facts[9], "Nr: 10, Typ: WMZ, Wert: 10.5");
    assert_eq!(result.row_count, Some(12));
    assert_eq!(
        result.summary,
        "The query returned 12 rows with the columns Nr, Typ, Wert. The first 10 are listed."
    );
}

#[test]
fn a_single_row_of_several_columns_is_one_row_fact() {
    let rows = Rows::new(
        ["Name", "Ort", "Notiz"],
        [vec!["Ada Meyer".into(), "Kassel".into(), Value::Null]],
    );
    let result = interpret(&rows, 0, 10);

    assert_eq!(
        result.key_facts,
        ["Name: Ada Meyer, Ort: Kassel, Notiz: null"]
    );
    assert_eq!(
        result.summary,
        "The query returned 1 row with the columns Name, Ort, Notiz."
    );
}

#[test]
fn no_rows_and_truncation_lower_the_confidence() {
    let none = interpret(&Rows::new(["Nr"], []), 0, 10);
    assert_eq!(none.key_facts, Vec::<String>::new());
    assert_eq!(none.row_count, Some(0));
    assert_eq!(none.summary, "The query found no matching rows.");
    assert_eq!(none.confidence, 0.6);

    let mut cut = devices(3);
    cut.truncated = true;
    let cut = interpret(&cut, 2, 10);
    assert!(
        cut.summary.ends_with("so there may be more."),
        "{}",
        cut.summary
    );
    assert_eq!(cut.confidence, 0.6);

    assert_eq!(interpret(&Rows::new(["Nr"], []), 9, 10).confidence, 0.1);
}

#[test]
fn the_display_shows_the_first_rows() {
    let ui = display("All devices", &devices(25));
    let value = serde_json::to_value(&ui).unwrap();

    assert_eq!(value["actions"][0]["tool"], "emit_display");
    let args = &value["actions"][0]["args"];
    assert_eq!(args["title"], "All devices");
    assert_eq!(args["columns"], json!(["Nr", "Typ", "Wert"]));
    assert_eq!(args["rows"].as_array().unwrap().len(), DISPLAY_ROWS);
    assert_eq!(args["rows"][0], json!([1, "WMZ", 1.5]));
}
