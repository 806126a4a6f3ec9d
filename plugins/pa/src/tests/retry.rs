//! `expert_failed`: one reformulated retry, then an apology.

use serde_json::json;
use weft_protocol::{Analysis, Job, LAST_ANALYSIS_KEY, Respond, UiActions};
use weft_sdk::{Error, EventKind, Scope};

use super::{ERAS, analysis, body, expert_failed, host, job, prompt, routes, schema, topic_ui};
use crate::retry::{APOLOGY, REFORMULATE_SYSTEM};
use crate::{PENDING_KEY, Pa, PendingJob};

const FIRST: &str = "Count the Geraete of customer 4711.";
const SECOND: &str = "Count the rows of Geraete whose customer number is 4711.";
const NO_COLUMN: &str = "no such column: KundeNr";

/// A host that remembers `job` as pending for the topic `devices`.
fn pending_host(job: Job) -> weft_sdk::testing::TestHost {
    let pending = PendingJob {
        expert: "eras".into(),
        topic: "devices".into(),
        job,
    };
    host().with_memory(
        Scope::Node,
        PENDING_KEY,
        serde_json::to_string(&pending).unwrap(),
    )
}

#[test]
fn a_first_failure_is_reformulated_once_and_sent_back_to_the_expert() {
    let host = pending_host(job(FIRST, 1)).answer_json(&json!({"job": SECOND}));
    let output = host
        .tick::<Pa>(&[expert_failed(job(FIRST, 1), NO_COLUMN)])
        .unwrap();

    assert_eq!(routes(&output), [("eras", "job")]);
    assert_eq!(body::<Job>(&output.messages[0]), job(SECOND, 2));
    let pending: PendingJob = host.memory_json(Scope::Node, PENDING_KEY).unwrap();
    assert_eq!(pending.job, job(SECOND, 2));
    assert_eq!(pending.topic, "devices");
    assert_eq!(
        host.events_of(EventKind::Decided),
        [json!({"expert": "eras", "job": SECOND, "language": "de"})]
    );
}

#[test]
fn the_reformulation_prompt_has_the_failed_job_and_the_error() {
    let host = pending_host(job(FIRST, 1)).answer_json(&json!({"job": SECOND}));
    host.tick::<Pa>(&[expert_failed(job(FIRST, 1), NO_COLUMN)])
        .unwrap();

    let requests = host.llm_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].messages[0].content, REFORMULATE_SYSTEM);
    let prompt = prompt(&host, 0);
    assert!(
        prompt.contains(&format!("The failed job: {FIRST}")),
        "{prompt}"
    );
    assert!(
        prompt.contains(&format!("The error: {NO_COLUMN}")),
        "{prompt}"
    );
    assert!(
        prompt.contains(&format!("Expert: eras ({ERAS})")),
        "{prompt}"
    );
    assert_eq!(
        schema(&host, 0),
        json!({"type": "object", "properties": {"job": {"type": "string", "minLength": 1}},
               "required": ["job"], "additionalProperties": false})
    );
}

#[test]
fn the_retry_goes_to_the_expert_that_failed() {
    let host = host().answer_json(&json!({"job": SECOND}));
    let failed = expert_failed(job(FIRST, 1), NO_COLUMN);
    let failed = weft_sdk::Message {
        from: "eras_b".into(),
        ..failed
    };
    let output = host.tick::<Pa>(&[failed]).unwrap();

    assert_eq!(routes(&output), [("eras_b", "job")]);
}

#[test]
fn a_second_failure_gives_up_with_an_apology() {
    let host = pending_host(job(SECOND, 2));
    let output = host
        .tick::<Pa>(&[expert_failed(job(SECOND, 2), NO_COLUMN)])
        .unwrap();

    assert!(host.llm_requests().is_empty(), "no second reformulation");
    assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
    let respond: Respond = body(&output.messages[0]);
    assert_eq!(respond.request, job(SECOND, 2).request);
    assert_eq!(respond.language, "de");
    assert_eq!(respond.response_hint, "short");
    assert_eq!(respond.draft.as_deref(), Some(APOLOGY));
    assert_eq!(respond.result, None);
    assert_eq!(
        respond.error.as_deref(),
        Some("eras failed attempt 2: no such column: KundeNr")
    );
    assert_eq!(body::<UiActions>(&output.messages[1]), topic_ui("devices"));
    assert_eq!(host.memory(Scope::Node, PENDING_KEY), None);
    assert!(host.warnings()[0].contains("giving up"));
}

#[test]
fn an_unusable_reformulation_gives_up() {
    for answer in ["try harder", r#"{"job": "  "}"#] {
        let host = pending_host(job(FIRST, 1)).answer(answer);
        let output = host
            .tick::<Pa>(&[expert_failed(job(FIRST, 1), NO_COLUMN)])
            .unwrap();

        assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
        let respond: Respond = body(&output.messages[0]);
        let error = respond.error.unwrap();
        assert!(
            error.starts_with("eras failed: no such column: KundeNr; "),
            "{error}"
        );
        assert!(error.contains("reformulat"), "{error}");
        assert_eq!(host.memory(Scope::Node, PENDING_KEY), None);
    }
}

#[test]
fn an_llm_error_while_reformulating_gives_up_gracefully() {
    let host = pending_host(job(FIRST, 1))
        .answer_error(Error::BudgetExhausted("thread token budget spent".into()));
    let output = host
        .tick::<Pa>(&[expert_failed(job(FIRST, 1), NO_COLUMN)])
        .unwrap();

    assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
    let respond: Respond = body(&output.messages[0]);
    assert!(respond.error.unwrap().contains("budget-exhausted"));
}

#[test]
fn without_a_pending_job_the_topic_comes_from_the_last_analysis() {
    let analysis = Analysis {
        topic: "meters".into(),
        ..analysis()
    };
    let host = host().with_memory(
        Scope::Thread,
        LAST_ANALYSIS_KEY,
        serde_json::to_string(&analysis).unwrap(),
    );
    let output = host
        .tick::<Pa>(&[expert_failed(job(SECOND, 2), NO_COLUMN)])
        .unwrap();

    assert_eq!(body::<UiActions>(&output.messages[1]), topic_ui("meters"));
}

#[test]
fn a_stale_pending_job_is_not_used_for_the_topic() {
    let other = Job {
        request: "Wer ist Kunde 12?".into(),
        ..job("Look up customer 12.", 1)
    };
    let host = pending_host(other);
    let output = host
        .tick::<Pa>(&[expert_failed(job(SECOND, 2), NO_COLUMN)])
        .unwrap();

    assert_eq!(routes(&output), [("output", "respond")], "no topic known");
}
