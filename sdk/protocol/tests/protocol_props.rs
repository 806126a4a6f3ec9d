//! Property tests of the protocol's message bodies against their JSON
//! Schemas (proptest): the host validates every payload against the
//! receiver's schema and the receiver then trusts its shape, so
//!
//! - any JSON a body type reads is read without a panic (or refused with
//!   a serde error);
//! - every value a body's schema accepts, the body type reads;
//! - what the type reads, written back, is accepted by the schema again and
//!   reads to the same value.
//!
//! Values are generated from each schema (its properties, enums, lengths
//! and nesting, with wrong types, missing and extra keys mixed in).
//! Cases: `PROPTEST_CASES` (default 256 per property). A longer run:
//! `PROPTEST_CASES=20000 cargo test --release -p weft-protocol --test protocol_props`.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use weft_protocol::*;

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

/// Any JSON value (small).
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        "\\PC{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A string of about `min..=max` characters (sometimes just outside).
fn string_near(min: usize, max: usize) -> BoxedStrategy<Value> {
    let hi = max.min(40);
    prop_oneof![
        8 => prop::collection::vec(any::<char>(), min..=hi.max(min)),
        1 => prop::collection::vec(any::<char>(), 0..=min),
        1 => prop::collection::vec(any::<char>(), max..=max + 2),
    ]
    .prop_map(|chars| Value::String(chars.into_iter().collect()))
    .boxed()
}

/// Values shaped by `schema`: mostly what it asks for, sometimes not.
fn from_schema(schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let conforming = conforming(schema, depth);
    prop_oneof![12 => conforming, 1 => any_json()].boxed()
}

fn conforming(schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        let options: Vec<BoxedStrategy<Value>> =
            options.iter().map(|s| from_schema(s, depth)).collect();
        return prop::strategy::Union::new(options).boxed();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return prop::sample::select(values.clone()).boxed();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => return any_json(),
    };
    let each: Vec<BoxedStrategy<Value>> = ty.iter().map(|t| typed(schema, t, depth)).collect();
    prop::strategy::Union::new(each).boxed()
}

fn typed(schema: &Value, ty: &str, depth: u32) -> BoxedStrategy<Value> {
    let num = |key: &str| schema.get(key).and_then(Value::as_u64);
    match ty {
        "null" => Just(Value::Null).boxed(),
        "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
        "integer" => {
            let lo = schema
                .get("minimum")
                .and_then(Value::as_i64)
                .unwrap_or(-1000);
            let hi = schema
                .get("maximum")
                .and_then(Value::as_i64)
                .unwrap_or(1000);
            prop_oneof![8 => lo..=hi.max(lo), 1 => any::<i64>()]
                .prop_map(|n| json!(n))
                .boxed()
        }
        "number" => prop_oneof![
            (-1e6f64..1e6).prop_map(|f| json!(f)),
            any::<i32>().prop_map(|n| json!(n))
        ]
        .boxed(),
        "string" => string_near(
            num("minLength").unwrap_or(0) as usize,
            num("maxLength").unwrap_or(24) as usize,
        ),
        "array" if depth > 0 => {
            let items = schema.get("items").cloned().unwrap_or(json!({}));
            let lo = num("minItems").unwrap_or(0) as usize;
            let hi = num("maxItems").unwrap_or(4).min(4) as usize;
            prop::collection::vec(from_schema(&items, depth - 1), lo..=hi.max(lo))
                .prop_map(Value::Array)
                .boxed()
        }
        "object" if depth > 0 => {
            let props: Vec<(String, Value)> = schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            let required: Vec<String> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = props
                .into_iter()
                .map(|(k, s)| {
                    // Required keys are there 19 times in 20, others half the time.
                    let p = if required.contains(&k) { 0.95 } else { 0.5 };
                    prop::option::weighted(p, from_schema(&s, depth - 1))
                        .prop_map(move |v| v.map(|v| (k.clone(), v)))
                        .boxed()
                })
                .collect();
            let extra = prop::option::weighted(0.05, ("\\PC{1,6}", any_json()));
            (fields, extra)
                .prop_map(|(fields, extra)| {
                    let mut map: Map<String, Value> = fields.into_iter().flatten().collect();
                    if let Some((k, v)) = extra {
                        map.insert(k, v);
                    }
                    Value::Object(map)
                })
                .boxed()
        }
        _ => any_json(),
    }
}

/// The three properties for one body type.
fn check<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    schema: &Value,
    value: &Value,
) -> Result<(), TestCaseError> {
    let validator = jsonschema::validator_for(schema).unwrap();
    let read = serde_json::from_value::<T>(value.clone());
    if validator.is_valid(value) {
        let body = read.map_err(|e| {
            TestCaseError::fail(format!(
                "the schema accepts {value} but the type refuses it: {e}"
            ))
        })?;
        let back = serde_json::to_value(&body).unwrap();
        prop_assert!(
            validator.is_valid(&back),
            "{value} read and written back as {back} fails the schema: {:?}",
            validator
                .iter_errors(&back)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
        prop_assert_eq!(serde_json::from_value::<T>(back).unwrap(), body);
    }
    Ok(())
}

macro_rules! body_properties {
    ($($name:ident: $ty:ty),* $(,)?) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(value in from_schema(&<$ty>::schema(), 4)) {
                    check::<$ty>(&<$ty>::schema(), &value)?;
                }
            )*
        }
    };
}

body_properties! {
    user_text: UserText,
    analysis: Analysis,
    command: Command,
    respond: Respond,
    ui_actions: UiActions,
    ui_action: UiAction,
    job: Job,
    expert_failed: ExpertFailed,
    memorizer_state: MemorizerState,
    tool_call: ToolCall,
    director_plan: DirectorPlan,
    plan_message: PlanMessage,
    tool_output: ToolOutput,
    interpret: Interpret,
    interpreted: Interpreted,
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary JSON, and text that is not JSON, never panics any reader.
    #[test]
    fn any_json_is_read_or_refused(value in any_json(), text in "\\PC{0,40}") {
        macro_rules! read {
            ($($ty:ty),*) => {$(
                let _ = serde_json::from_value::<$ty>(value.clone());
                let _ = serde_json::from_str::<$ty>(&text);
            )*};
        }
        read!(UserText, Analysis, Command, Respond, UiActions, UiAction, Job, ExpertFailed,
              MemorizerState, ToolCall, DirectorPlan, PlanMessage, ToolOutput, Interpret, Interpreted);
    }

    /// The vocabulary helpers take any text.
    #[test]
    fn vocabulary_takes_any_text(text in "\\PC{0,80}", name in "\\PC{0,12}") {
        let words = vocabulary::words(&text);
        for w in &words {
            prop_assert!(!w.is_empty());
            let _ = vocabulary::is_word_for(w, &name);
        }
        let _ = vocabulary::mentions(&text, &[name]);
    }
}

/// Found by `job`: an `attempt` past `u32` passed the schema, so the host
/// delivered a job the expert could not read.
#[test]
fn a_job_attempt_the_type_cannot_hold_fails_the_schema() {
    let validator = jsonschema::validator_for(&Job::schema()).unwrap();
    let job = |attempt: u64| json!({"job": "j", "request": "", "language": "en", "response_hint": "", "attempt": attempt});
    assert!(!validator.is_valid(&job(u64::from(u32::MAX) + 1)));
    assert!(validator.is_valid(&job(u64::from(u32::MAX))));
    serde_json::from_value::<Job>(job(u64::from(u32::MAX))).unwrap();
}
