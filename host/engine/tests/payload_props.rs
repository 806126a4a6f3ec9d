//! Property tests of the message path into the engine (proptest):
//! arbitrary inbound messages (any receiver name, kind and body, JSON or
//! not) given to `Engine::start_run` on real components either start a run
//! that ends, or are refused with a typed error, exactly as the receiver's
//! input schema says; never a panic, never a run the schema refuses.
//! Cases: `PROPTEST_CASES` (default 64: each accepted case runs a real
//! run). A longer run:
//! `PROPTEST_CASES=2000 cargo test --release -p weft-engine --test payload_props`.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use weft_engine::{Engine, EngineError, Inbound, LoadedGraph};
use weft_runtime::capabilities::llm::Scripted;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// `relay` takes `{"n": integer}`, `input` a user text, `sink` anything.
const GRAPH: &str = r#"
name: payloads
entry: relay
nodes:
  relay: { plugin: guest-relay, config: { reply: true } }
  input: { plugin: input, grants: [llm, hud, memory, log], config: { think: sink, reflex: sink } }
  sink: { plugin: guest-echo }
edges:
  - { from: relay, to: [input, sink] }
  - { from: input, to: sink }
"#;

struct World {
    rt: tokio::runtime::Runtime,
    engine: Arc<Engine>,
    graph: Arc<LoadedGraph>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (engine, graph) = rt.block_on(async {
            // No scripted answers: the input node's model call fails and it
            // falls back, which is all these runs need.
            let engine = engine(Arc::new(Scripted::new(Vec::<String>::new()))).await;
            let graph = graph(&engine, "payloads.yaml", GRAPH).await;
            (engine, graph)
        });
        World { rt, engine, graph }
    })
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("n".to_owned()),
                    Just("text".to_owned()),
                    "\\PC{0,5}".boxed()
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body: mostly JSON near what the nodes take, sometimes not JSON at all.
fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<i64>().prop_map(|n| json!({"n": n}).to_string()),
        3 => "\\PC{0,20}".prop_map(|t| json!({"text": t}).to_string()),
        4 => any_json().prop_map(|v| v.to_string()),
        1 => "\\PC{0,30}",
        1 => (1usize..400).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
    ]
}

fn receiver() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        6 => prop::sample::select(vec!["relay", "input", "sink"]).prop_map(|s| Some(s.to_owned())),
        1 => "\\PC{0,8}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn inbound_messages_start_a_run_exactly_when_the_receiver_takes_them(
        to in receiver(),
        kind in prop_oneof![Just("user".to_owned()), "\\PC{0,8}"],
        body in body(),
    ) {
        let w = world();
        let target = to.clone().unwrap_or_else(|| "relay".to_owned());
        let expected = w.graph.graph().node(&target).map(|node| {
            serde_json::from_str::<Value>(&body).is_ok_and(|value| {
                jsonschema::validator_for(&node.info.input_schema).unwrap().is_valid(&value)
            })
        });
        let outcome = w.rt.block_on(async {
            let thread = w.engine.open_thread(None, &w.graph);
            let inbound = Inbound { to: to.clone(), kind: kind.clone(), body: body.clone() };
            match w.engine.start_run(&thread, inbound).await {
                Ok(handle) => {
                    let trace = tokio::time::timeout(Duration::from_secs(120), handle.finish())
                        .await
                        .expect("the run ended within two minutes");
                    Ok(trace.map(|t| t.frames))
                }
                Err(e) => Err(e),
            }
        });
        match (expected, outcome) {
            (None, Err(EngineError::UnknownNode { node, .. })) => prop_assert_eq!(node, target),
            (Some(false), Err(EngineError::InvalidPayload { node, message })) => {
                prop_assert_eq!(node, target);
                prop_assert!(!message.is_empty());
            }
            (Some(true), Ok(Ok(frames))) => prop_assert!(frames >= 1),
            (expected, outcome) => prop_assert!(
                false,
                "to {:?}, kind {:?}, body {}: expected {:?}, got {:?}",
                to, kind, body, expected, outcome
            ),
        }
    }
}
