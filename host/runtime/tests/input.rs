//! The real `input` plugin, ticked through the runtime with a scripted LLM.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::hud::HudEvent;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall, ScriptRule};
use weft_runtime::{
    CapabilityError, Completion, CompletionRequest, EventKind, InvokeError, Limits, RuntimeError,
    Services,
};

fn analysis(intent: &str, reflex: bool) -> String {
    json!({
        "intent": intent, "topic": "billing", "language": "en", "tone": "neutral",
        "complexity": if reflex { "simple" } else { "complex" }, "reflex": reflex
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_classifies_and_routes_to_the_pa() {
    let rt = runtime();
    let input = load(&rt, "weft-plugin-input").await;
    let answer = analysis("question", false);
    let (services, llm) = scripted(&[answer.as_str()]);
    let inbox = [user_message(
        "m1",
        json!({ "text": "How much did customer 42 pay last year?" }),
    )];
    let outcome = tick(&rt, &input, &services, &inbox, None).await;
    let out = outcome.result.expect("tick succeeds");

    assert_eq!(out.messages.len(), 1);
    let msg = &out.messages[0];
    assert_eq!((msg.to.as_str(), msg.kind.as_str()), ("pa", "command"));
    let body: serde_json::Value = serde_json::from_str(&msg.body).unwrap();
    assert_eq!(body["analysis"]["intent"], "question");
    assert_eq!(
        body["source_text"],
        "How much did customer 42 pay last year?"
    );

    let requests = llm.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].json_schema.is_some(),
        "classification is schema-constrained"
    );
    assert!(
        requests[0]
            .messages
            .iter()
            .any(|m| m.content.contains("customer 42"))
    );

    assert!(outcome.events.iter().any(|e| matches!(
        e,
        HudEvent::Event {
            kind: EventKind::Perceived,
            ..
        }
    )));
    assert_eq!(outcome.memory_writes.len(), 1);
    assert_eq!(outcome.memory_writes[0].key, "input.last_analysis");
    assert_eq!(outcome.memory_writes[0].node, None, "thread-scoped");
    assert!(outcome.journal.iter().any(|j| j.op == "complete"));
    assert!(outcome.fuel_used > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_routes_reflexes_to_the_output() {
    let rt = runtime();
    let input = load(&rt, "weft-plugin-input").await;
    let answer = analysis("social", true);
    let (services, _) = scripted(&[answer.as_str()]);
    let inbox = [user_message("m1", json!({ "text": "hi!" }))];
    let out = tick(&rt, &input, &services, &inbox, None)
        .await
        .result
        .expect("tick");
    assert_eq!(out.messages[0].to, "output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_errors_reach_the_plugin_as_typed_errors() {
    let rt = runtime();
    let input = load(&rt, "weft-plugin-input").await;
    let (services, llm) = scripted(&[]);
    llm.push(ScriptRule::error(CapabilityError::BudgetExhausted(
        "thread t1 spent 100000 of 100000 tokens".into(),
    )));
    let inbox = [user_message("m1", json!({ "text": "hello" }))];
    let outcome = tick(&rt, &input, &services, &inbox, None).await;
    match outcome.result {
        Err(InvokeError::Node(weft_runtime::NodeError::Capability(
            CapabilityError::BudgetExhausted(m),
        ))) => {
            assert!(m.contains("100000"));
        }
        other => panic!("expected budget exhaustion, got {other:?}"),
    }
}

/// A provider that takes longer than any sane deadline.
struct Slow;

impl LlmBackend for Slow {
    fn complete<'a>(
        &'a self,
        _: LlmCall<'a>,
        _: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Err(CapabilityError::Failed("unreachable".into()))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_covers_time_spent_in_host_calls() {
    let rt = runtime();
    let input = load(&rt, "weft-plugin-input").await;
    let mut services = Services::unavailable();
    services.llm = Arc::new(Slow);
    let limits = Limits {
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let inbox = [user_message("m1", json!({ "text": "hello" }))];
    let outcome = tick(&rt, &input, &services, &inbox, Some(limits)).await;
    assert!(
        matches!(
            outcome.result,
            Err(InvokeError::Runtime(RuntimeError::DeadlineExceeded { .. }))
        ),
        "{:?}",
        outcome.result
    );
    assert!(outcome.duration < Duration::from_secs(30));
}
