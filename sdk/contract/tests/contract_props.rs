//! Property tests of the contract's types (proptest): message bodies of
//! any text are read into typed values or refused with a typed
//! [`NodeError`], never a panic; JSON bodies round-trip; names parse back.
//! Cases: `PROPTEST_CASES` (default 256 per property). A longer run:
//! `PROPTEST_CASES=20000 cargo test --release -p weft-contract --test contract_props`.

#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use proptest::prelude::*;
use serde_json::{Value as Json, json};
use weft_contract::*;

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

fn any_json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,10}".prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// Body text: JSON, JSON-ish fragments, or anything.
fn body_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any_json().prop_map(|v| v.to_string()),
        "[\\[\\]{}\":,0-9a-z.\\-e ]{0,40}",
        "\\PC{0,40}",
        // Deep nesting: serde_json's recursion limit refuses it.
        (1usize..2000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
    ]
}

fn sql_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        prop::sample::select(vec![f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -0.0])
            .prop_map(Value::Real),
        "\\PC{0,10}".prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Blob),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn message_bodies_read_or_give_invalid_input(
        from in "\\PC{0,8}", kind in "\\PC{0,8}", body in body_text()
    ) {
        let m = Message::raw(from.clone(), kind.clone(), body.clone());
        prop_assert!(m.id.starts_with("msg-"));
        let parsed: Result<Json, NodeError> = m.json();
        match (serde_json::from_str::<Json>(&body), parsed) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(NodeError::InvalidInput(text))) => {
                prop_assert!(text.contains(&m.id), "{}", text);
            }
            (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
        }
        // Typed bodies too: refused as invalid input, never a panic.
        for r in [
            m.json::<Undeliverable>().map(|_| ()),
            m.json::<BudgetWarning>().map(|_| ()),
            m.json::<Rows>().map(|_| ()),
            m.json::<CompletionRequest>().map(|_| ()),
            m.json::<TickOutput>().map(|_| ()),
        ] {
            if let Err(e) = r {
                prop_assert!(matches!(e, NodeError::InvalidInput(_)), "{:?}", e);
            }
        }
    }

    #[test]
    fn json_bodies_round_trip(from in "\\PC{0,8}", kind in "\\PC{0,8}", body in any_json()) {
        let m = Message::new(from, kind, &body);
        prop_assert_eq!(m.json::<Json>().unwrap(), body);
    }

    #[test]
    fn model_answers_parse_or_fail_with_their_start_quoted(text in body_text()) {
        let completion = Completion {
            text: text.clone(),
            prompt_tokens: 0,
            completion_tokens: 0,
            model: "m".into(),
            provider: String::new(),
            usage_estimated: false,
        };
        match completion.json::<Json>() {
            Ok(v) => prop_assert_eq!(Some(v), serde_json::from_str::<Json>(&text).ok()),
            Err(NodeError::Failed(message)) => {
                let start: String = text.chars().take(120).collect();
                prop_assert!(message.contains(&format!("{start:?}")), "{}", message);
            }
            Err(e) => prop_assert!(false, "{:?}", e),
        }
    }

    #[test]
    fn capability_names_parse_back(name in prop_oneof!["[a-z]{0,7}", "\\PC{0,8}"]) {
        match Capability::from_str(&name) {
            Ok(cap) => prop_assert_eq!(cap.as_str(), name.as_str()),
            Err(message) => {
                prop_assert!(!Capability::ALL.iter().any(|c| c.as_str() == name));
                prop_assert!(message.contains("unknown capability"), "{}", message);
            }
        }
    }

    #[test]
    fn sql_values_and_rows_convert_without_loss(
        columns in prop::collection::btree_set("[a-z]{1,4}", 0..4),
        cells in prop::collection::vec(prop::collection::vec(sql_value(), 0..5), 0..4),
    ) {
        let columns: Vec<String> = columns.into_iter().collect();
        // Rows as the host makes them: one value per column.
        let rows: Vec<Vec<Value>> = cells
            .into_iter()
            .map(|mut row| {
                row.resize(columns.len(), Value::Null);
                row
            })
            .collect();
        let table = Rows::new(columns.clone(), rows.clone());
        let records = table.to_json();
        let records = records.as_array().unwrap();
        prop_assert_eq!(records.len(), rows.len());
        for (record, row) in records.iter().zip(&rows) {
            let record = record.as_object().unwrap();
            prop_assert_eq!(record.len(), columns.len());
            for (c, v) in columns.iter().zip(row) {
                prop_assert_eq!(&record[c], &v.to_json());
            }
        }
        // The wire form (journals, host-call answers) reads back (NaN aside,
        // which is not equal to itself).
        let wire = serde_json::to_string(&table).unwrap();
        let back: Result<Rows, _> = serde_json::from_str(&wire);
        prop_assert!(back.is_ok(), "{} does not read back: {:?}", wire, back.err());
        let nan = rows.iter().flatten().any(|v| matches!(v, Value::Real(f) if f.is_nan()));
        if !nan {
            prop_assert_eq!(back.unwrap(), table);
        }
    }
}

/// Found by `sql_values_and_rows_convert_without_loss` once it drew
/// infinities: they were written as `null` and did not read back.
#[test]
fn infinite_reals_read_back() {
    for f in [f64::INFINITY, f64::NEG_INFINITY, f64::MAX, -0.0] {
        let table = Rows::new(["a"], [vec![Value::Real(f)]]);
        let wire = serde_json::to_string(&table).unwrap();
        let back: Rows = serde_json::from_str(&wire).unwrap_or_else(|e| panic!("{wire}: {e}"));
        assert_eq!(back, table, "{wire}");
    }
    // What older journals hold for a non-finite real still reads.
    let old: Value = serde_json::from_str(r#"{"type":"real","value":null}"#).unwrap();
    assert!(matches!(old, Value::Real(f) if f.is_nan()));
    let wrong = serde_json::from_str::<Value>(r#"{"type":"real","value":"lots"}"#);
    assert!(wrong.is_err());
}
