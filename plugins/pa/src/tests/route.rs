//! Routing a `command`: to `none`, to an expert, and the degraded paths.

use serde_json::json;
use weft_protocol::{Job, MEMORIZER_STATE_KEY, MemorizerState, Respond, UiActions};
use weft_sdk::testing::TestHost;
use weft_sdk::{Capability, Error, EventKind, NodeError, Scope};

use super::{ERAS, body, command, host, job, prompt, routes, routing, schema, topic_ui};
use crate::route::{ROUTE_SYSTEM, Routing};
use crate::{HISTORY_KEY, PENDING_KEY, Pa, PendingJob, Turn};

const QUESTION: &str = "Wie viele Geräte hat Kunde 4711?";

#[test]
fn none_sends_the_answer_to_output_and_the_topic_to_ui() {
    let host = host().answer_json(&routing("none", "Hallo! Wie kann ich helfen?"));
    let output = host.tick::<Pa>(&[command("Hallo")]).unwrap();

    assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
    let respond: Respond = body(&output.messages[0]);
    assert_eq!(
        respond,
        Respond {
            request: "Hallo".into(),
            language: "de".into(),
            response_hint: "short".into(),
            draft: Some("Hallo! Wie kann ich helfen?".into()),
            result: None,
            error: None,
        }
    );
    assert_eq!(body::<UiActions>(&output.messages[1]), topic_ui("devices"));
    assert_eq!(host.memory(Scope::Node, PENDING_KEY), None);
    assert_eq!(output.reply, None);
}

#[test]
fn an_expert_gets_a_self_contained_job_and_the_pa_remembers_it() {
    let task = "Count the devices of customer 4711.";
    let host = host().answer_json(&routing("eras", task));
    let output = host.tick::<Pa>(&[command(QUESTION)]).unwrap();

    assert_eq!(routes(&output), [("eras", "job")]);
    assert_eq!(body::<Job>(&output.messages[0]), job(task, 1));
    let pending: PendingJob = host.memory_json(Scope::Node, PENDING_KEY).unwrap();
    assert_eq!(
        pending,
        PendingJob {
            expert: "eras".into(),
            topic: "devices".into(),
            job: job(task, 1),
        }
    );
}

#[test]
fn the_thinking_message_streams_and_the_decision_is_emitted() {
    let host = host().answer_json(&routing("eras", "Count the devices of customer 4711."));
    host.tick::<Pa>(&[command(QUESTION)]).unwrap();

    assert_eq!(host.progress(), ["Ich schaue nach…"]);
    let events = host.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, EventKind::Thinking);
    assert_eq!(events[0].data, json!({"message": "Ich schaue nach…"}));
    assert_eq!(events[1].kind, EventKind::Decided);
    assert_eq!(
        events[1].data,
        json!({"expert": "eras", "job": "Count the devices of customer 4711.", "language": "de"})
    );
}

#[test]
fn one_constrained_call_lists_the_experts_and_allows_none() {
    let host = host().answer_json(&routing("none", "Hallo!"));
    host.tick::<Pa>(&[command(QUESTION)]).unwrap();

    let requests = host.llm_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].messages[0].content, ROUTE_SYSTEM);
    assert!(ROUTE_SYSTEM.contains("stateless"));
    let schema = schema(&host, 0);
    assert_eq!(
        schema["properties"]["expert"]["enum"],
        json!(["eras", "none"])
    );
    assert_eq!(
        schema["required"],
        json!([
            "expert",
            "job",
            "thinking_message",
            "response_hint",
            "language"
        ])
    );
    let prompt = prompt(&host, 0);
    assert!(prompt.contains(&format!("- eras: {ERAS}")), "{prompt}");
    assert!(prompt.contains("nothing yet"), "{prompt}");
    assert!(prompt.ends_with(QUESTION), "{prompt}");
    assert!(prompt.contains("intent question"), "{prompt}");
}

#[test]
fn the_memorizers_facts_are_in_the_prompt() {
    let state = MemorizerState {
        user_name: Some("Ada".into()),
        topic: "billing".into(),
        topic_history: vec!["greeting".into(), "billing".into()],
        facts: vec!["customer number 4711".into(), "lives in Kassel".into()],
        ..MemorizerState::default()
    };
    let host = host()
        .with_memory(
            Scope::Thread,
            MEMORIZER_STATE_KEY,
            serde_json::to_string(&state).unwrap(),
        )
        .answer_json(&routing("eras", "Count the devices of customer 4711."));
    host.tick::<Pa>(&[command("Wie viele Geräte habe ich?")])
        .unwrap();

    let prompt = prompt(&host, 0);
    for line in [
        "- user name: Ada",
        "- topic: billing",
        "- earlier topics: greeting, billing",
        "  - customer number 4711",
        "  - lives in Kassel",
    ] {
        assert!(prompt.contains(line), "{line:?} missing from {prompt}");
    }
    assert!(!prompt.contains("nothing yet"), "{prompt}");
    assert!(
        !prompt.contains("mood"),
        "empty fields are left out: {prompt}"
    );
}

#[test]
fn an_unusable_memorizer_state_is_ignored_with_a_warning() {
    let host = host()
        .with_memory(Scope::Thread, MEMORIZER_STATE_KEY, "{not json")
        .answer_json(&routing("none", "Hallo!"));
    host.tick::<Pa>(&[command("Hallo")]).unwrap();

    assert!(prompt(&host, 0).contains("nothing yet"));
    assert_eq!(host.warnings().len(), 1, "{:?}", host.warnings());
    assert!(host.warnings()[0].contains(MEMORIZER_STATE_KEY));
}

#[test]
fn history_is_remembered_capped_and_shown() {
    let host = host()
        .config(json!({"experts": {"eras": ERAS}, "history": 2}))
        .answer_json(&routing("none", "Hallo!"))
        .answer_json(&routing("eras", "Count the devices of customer 4711."))
        .answer_json(&routing("none", "Gern!"));
    for text in ["Hallo", QUESTION, "Danke"] {
        host.tick::<Pa>(&[command(text)]).unwrap();
    }

    let history: Vec<Turn> = host.memory_json(Scope::Node, HISTORY_KEY).unwrap();
    let turn = |request: &str, route: &str| Turn {
        request: request.into(),
        route: route.into(),
    };
    assert_eq!(history, [turn(QUESTION, "eras"), turn("Danke", "none")]);
    assert!(!prompt(&host, 0).contains("Recent requests"));
    let third = prompt(&host, 2);
    assert!(third.contains("\"Hallo\" went to none"), "{third}");
    assert!(
        third.contains(&format!("{QUESTION:?} went to eras")),
        "{third}"
    );
}

#[test]
fn a_history_of_zero_keeps_nothing() {
    let host = host()
        .config(json!({"experts": {"eras": ERAS}, "history": 0}))
        .answer_json(&routing("none", "Hallo!"));
    host.tick::<Pa>(&[command("Hallo")]).unwrap();

    assert_eq!(host.memory(Scope::Node, HISTORY_KEY), None);
}

#[test]
fn an_unknown_expert_is_treated_as_none_with_a_warning() {
    let host = host().answer_json(&routing("plankiste", "Find the plan of house 3."));
    let output = host.tick::<Pa>(&[command(QUESTION)]).unwrap();

    assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
    let respond: Respond = body(&output.messages[0]);
    assert_eq!(respond.draft.as_deref(), Some("Find the plan of house 3."));
    assert_eq!(host.events_of(EventKind::Decided)[0]["expert"], "none");
    assert_eq!(host.warnings().len(), 1);
    assert!(host.warnings()[0].contains("plankiste"));
    let history: Vec<Turn> = host.memory_json(Scope::Node, HISTORY_KEY).unwrap();
    assert_eq!(history[0].route, "none");
}

#[test]
fn an_unusable_answer_falls_back_to_answering_without_an_expert() {
    for answer in ["I think eras should do it.", r#"{"expert": "eras"}"#] {
        let host = host().answer(answer);
        let output = host.tick::<Pa>(&[command(QUESTION)]).unwrap();

        assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
        let respond: Respond = body(&output.messages[0]);
        let fallback = Routing::fallback(&serde_json::from_str(&command(QUESTION).body).unwrap());
        assert_eq!(respond.draft, None, "there is no answer to draft");
        assert_eq!(respond.response_hint, fallback.response_hint);
        assert_eq!(respond.language, "de", "the analysis' language");
        assert!(host.progress().is_empty(), "no thinking message to show");
        assert_eq!(
            host.events_of(EventKind::Decided),
            [json!({"expert": "none", "job": "", "language": "de"})]
        );
        assert_eq!(host.warnings().len(), 1);
        assert!(host.warnings()[0].contains("unusable routing"));
    }
}

#[test]
fn missing_language_and_job_are_filled_from_the_command() {
    let mut answer = routing("eras", " ");
    answer["language"] = json!("");
    let host = host().answer_json(&answer);
    let output = host.tick::<Pa>(&[command(QUESTION)]).unwrap();

    let sent: Job = body(&output.messages[0]);
    assert_eq!(sent.job, QUESTION);
    assert_eq!(sent.language, "de");
    assert!(host.warnings()[0].contains("empty job"));
}

#[test]
fn configured_peers_receive_the_answer() {
    let host = TestHost::for_node::<Pa>()
        .config(json!({"output": "speaker", "ui": "screen"}))
        .answer_json(&routing("none", "Hallo!"));
    let output = host.tick::<Pa>(&[command("Hallo")]).unwrap();

    assert_eq!(routes(&output), [("speaker", "respond"), ("screen", "ui")]);
    assert_eq!(
        schema(&host, 0)["properties"]["expert"]["enum"],
        json!(["none"])
    );
}

#[test]
fn an_llm_error_fails_the_tick_and_sends_nothing() {
    let exhausted = Error::BudgetExhausted("thread token budget spent".into());
    let host = host().answer_error(exhausted.clone());
    let error = host.tick::<Pa>(&[command(QUESTION)]).unwrap_err();

    assert_eq!(error, NodeError::Capability(exhausted));
    assert!(host.events().is_empty());
    assert_eq!(host.memory(Scope::Node, HISTORY_KEY), None);
}

#[test]
fn without_memory_and_hud_the_pa_still_routes() {
    let host = host()
        .grant_only([Capability::Llm, Capability::Log])
        .answer_json(&routing("eras", "Count the devices of customer 4711."));
    let output = host.tick::<Pa>(&[command(QUESTION)]).unwrap();

    assert_eq!(routes(&output), [("eras", "job")]);
    assert!(host.denied().contains(&Capability::Memory));
    assert!(host.denied().contains(&Capability::Hud));
    let warnings = host.warnings();
    assert!(
        warnings.iter().any(|w| w.contains("progress")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains(PENDING_KEY)),
        "{warnings:?}"
    );
}
