//! Native tests of the PA against `weft_sdk::testing::TestHost`.

mod retry;
mod route;

use serde_json::{Value, json};
use weft_protocol::{Analysis, Command, Complexity, ExpertFailed, Intent, Job, UiActions};
use weft_sdk::testing::{TestHost, describe};
use weft_sdk::{Capability, Message, NodeError, Outbound, TickOutput};

use crate::Pa;

/// What the `eras` expert knows, as configured.
const ERAS: &str = "heating-cost billing data: customers, properties, devices, readings";

/// A PA with one expert, `eras`.
fn host() -> TestHost {
    TestHost::for_node::<Pa>().config(json!({"experts": {"eras": ERAS}}))
}

fn analysis() -> Analysis {
    Analysis {
        intent: Intent::Question,
        topic: "devices".to_owned(),
        language: "de".to_owned(),
        tone: "neutral".to_owned(),
        complexity: Complexity::Complex,
        reflex: false,
    }
}

fn command(text: &str) -> Message {
    let body = Command {
        analysis: analysis(),
        source_text: text.to_owned(),
    };
    Message::new("input", "command", &body)
}

/// A routing answer.
fn routing(expert: &str, job: &str) -> Value {
    json!({"expert": expert, "job": job, "thinking_message": "Ich schaue nach…",
           "response_hint": "short", "language": "de"})
}

/// The job the PA sends for `job` on attempt `attempt`.
fn job(job: &str, attempt: u32) -> Job {
    Job {
        job: job.to_owned(),
        request: "Wie viele Geräte hat Kunde 4711?".to_owned(),
        language: "de".to_owned(),
        response_hint: "short".to_owned(),
        attempt,
    }
}

fn expert_failed(job: Job, error: &str) -> Message {
    let body = ExpertFailed {
        job,
        error: error.to_owned(),
    };
    Message::new("eras", "expert_failed", &body)
}

/// The messages sent as (to, kind) pairs, in order.
fn routes(output: &TickOutput) -> Vec<(&str, &str)> {
    let pairs = output.messages.iter();
    pairs.map(|m| (m.to.as_str(), m.kind.as_str())).collect()
}

/// The `ui` message that sets the topic.
fn topic_ui(topic: &str) -> UiActions {
    serde_json::from_value(json!({"actions": [
        {"tool": "set_state", "args": {"key": "topic", "value": topic}}
    ]}))
    .unwrap()
}

fn body<T: serde::de::DeserializeOwned>(message: &Outbound) -> T {
    message.json().unwrap()
}

/// The user turn of the `index`th model request.
fn prompt(host: &TestHost, index: usize) -> String {
    host.llm_requests()[index]
        .messages
        .last()
        .unwrap()
        .content
        .clone()
}

/// The schema of the `index`th model request.
fn schema(host: &TestHost, index: usize) -> Value {
    let request = &host.llm_requests()[index];
    serde_json::from_str(request.json_schema.as_deref().unwrap()).unwrap()
}

#[test]
fn describe_declares_both_inputs_and_its_capabilities() {
    let info = describe::<Pa>();
    assert_eq!(info.name, "pa");
    assert_eq!(
        info.input_schema,
        weft_protocol::any_of([Command::schema(), ExpertFailed::schema()])
    );
    assert_eq!(
        info.capabilities,
        [
            Capability::Llm,
            Capability::Memory,
            Capability::Hud,
            Capability::Log
        ]
    );
}

#[test]
fn a_bad_config_is_invalid_input_before_any_call() {
    for config in [
        json!({"experts": {"none": "everything"}}),
        json!({"experts": {" ": "everything"}}),
        json!({"experts": ["eras"]}),
        json!({"history": -1}),
        json!({"expert": {"eras": ERAS}}),
    ] {
        let host = TestHost::for_node::<Pa>().config(config.clone());
        let error = host.tick::<Pa>(&[command("hallo")]).unwrap_err();
        assert!(
            matches!(&error, NodeError::InvalidInput(text) if text.contains("bad config")),
            "{config}: {error:?}"
        );
        assert!(host.llm_requests().is_empty());
    }
}

#[test]
fn other_kinds_are_skipped_with_a_warning() {
    let host = host();
    let stray = Message::new("input", "user", &json!({"text": "hi"}));
    let output = host.tick::<Pa>(&[stray]).unwrap();

    assert!(output.messages.is_empty());
    assert!(host.llm_requests().is_empty());
    assert_eq!(host.warnings().len(), 1);
    assert!(host.warnings()[0].contains("\"user\""));
}
