//! Native tests of the memorizer against `weft_sdk::testing::TestHost`.

use serde_json::{Value, json};
use weft_protocol::{Analysis, Command, Complexity, Intent};
use weft_sdk::testing::{TestHost, describe};
use weft_sdk::{Capability, Error, EventKind, Message, NodeError, Scope};

use crate::update::MEMORIZE_SYSTEM;
use crate::{MEMORIZER_STATE_KEY, Memorizer, MemorizerState};

fn analysis(topic: &str, language: &str) -> Analysis {
    Analysis {
        intent: Intent::Question,
        topic: topic.to_owned(),
        language: language.to_owned(),
        tone: "neutral".to_owned(),
        complexity: Complexity::Complex,
        reflex: false,
    }
}

fn command(text: &str, analysis: Analysis) -> Message {
    let body = Command {
        analysis,
        source_text: text.to_owned(),
    };
    Message::new("input", "command", &body)
}

const ASK: &str = "Ich bin Ada, Kundennummer 4711. Wie viele Geräte habe ich?";

fn ask() -> Message {
    command(ASK, analysis("devices", "de"))
}

/// The state the model answers for [`ask`].
fn answered() -> MemorizerState {
    MemorizerState {
        user_name: Some("Ada".into()),
        mood: "neutral".into(),
        topic: "devices".into(),
        topic_history: vec!["devices".into()],
        situation: "Ada asks how many devices she has.".into(),
        language: "de".into(),
        style_hint: "short".into(),
        facts: vec!["Ada's customer number is 4711".into()],
    }
}

fn to_json(state: &MemorizerState) -> Value {
    serde_json::to_value(state).unwrap()
}

fn stored(host: &TestHost) -> MemorizerState {
    host.memory_json(Scope::Thread, MEMORIZER_STATE_KEY)
        .expect("a stored state")
}

fn host_with(state: &MemorizerState) -> TestHost {
    TestHost::for_node::<Memorizer>().with_memory(
        Scope::Thread,
        MEMORIZER_STATE_KEY,
        serde_json::to_string(state).unwrap(),
    )
}

#[test]
fn the_answer_becomes_the_stored_state_and_an_event() {
    let host = TestHost::for_node::<Memorizer>().answer_json(&to_json(&answered()));
    let output = host.tick::<Memorizer>(&[ask()]).unwrap();

    assert!(output.messages.is_empty(), "the memorizer sends nothing");
    assert_eq!(output.reply, None);
    assert_eq!(stored(&host), answered());
    assert_eq!(
        host.events_of(EventKind::Updated),
        [json!({"memorizer": to_json(&answered())})]
    );
    assert_eq!(host.memory(Scope::Node, MEMORIZER_STATE_KEY), None);
}

#[test]
fn one_constrained_call_sees_the_old_state_and_the_message() {
    let old = MemorizerState {
        facts: vec!["lives in Kassel".into()],
        ..MemorizerState::default()
    };
    let host = host_with(&old).answer_json(&to_json(&answered()));
    host.tick::<Memorizer>(&[ask()]).unwrap();

    let requests = host.llm_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].messages[0].content, MEMORIZE_SYSTEM);
    let schema: Value = serde_json::from_str(requests[0].json_schema.as_deref().unwrap()).unwrap();
    assert_eq!(schema, MemorizerState::schema());
    let prompt = &requests[0].messages[1].content;
    assert!(
        prompt.contains(&serde_json::to_string(&old).unwrap()),
        "{prompt}"
    );
    assert!(prompt.contains("lives in Kassel"), "{prompt}");
    assert!(
        prompt.contains("intent question, topic \"devices\", language de, tone neutral"),
        "{prompt}"
    );
    assert!(prompt.ends_with(ASK), "{prompt}");
}

#[test]
fn a_missing_state_starts_from_the_default() {
    let host = TestHost::for_node::<Memorizer>().answer_json(&to_json(&answered()));
    host.tick::<Memorizer>(&[ask()]).unwrap();

    let default = serde_json::to_string(&MemorizerState::default()).unwrap();
    assert!(
        host.llm_requests()[0].messages[1]
            .content
            .contains(&default)
    );
}

#[test]
fn the_host_caps_and_tidies_what_the_model_returns() {
    let mut state = answered();
    state.topic_history = (1..=12).map(|n| format!("topic {n}")).collect();
    state.facts = (1..=24).map(|n| format!("fact {n}")).collect();
    state.facts.insert(3, "fact 1".into());
    state.facts.push(" ".into());
    state.user_name = Some("".into());
    let host = TestHost::for_node::<Memorizer>().answer_json(&to_json(&state));
    host.tick::<Memorizer>(&[ask()]).unwrap();

    let kept = stored(&host);
    let topics: Vec<String> = (3..=12).map(|n| format!("topic {n}")).collect();
    let facts: Vec<String> = (5..=24).map(|n| format!("fact {n}")).collect();
    assert_eq!(kept.topic_history, topics);
    assert_eq!(kept.facts, facts);
    assert_eq!(kept.user_name, None);
}

#[test]
fn an_unusable_answer_keeps_the_old_state_with_the_new_topic_and_language() {
    let old = answered();
    for answer in ["I remember everything.", r#"{"facts": "4711"}"#] {
        let host = host_with(&old).answer(answer);
        host.tick::<Memorizer>(&[command("Und die Ablesungen?", analysis("readings", "en"))])
            .unwrap();

        let kept = stored(&host);
        assert_eq!(kept.topic, "readings");
        assert_eq!(kept.topic_history, ["devices", "readings"]);
        assert_eq!(kept.language, "en");
        assert_eq!(kept.facts, old.facts);
        assert_eq!(kept.user_name, old.user_name);
        assert_eq!(kept.situation, old.situation);
        assert_eq!(host.warnings().len(), 1);
        assert!(host.warnings()[0].contains("keeping the old one"));
        assert_eq!(
            host.events_of(EventKind::Updated),
            [json!({"memorizer": to_json(&kept)})]
        );
    }
}

#[test]
fn the_fallback_does_not_repeat_a_topic_or_apply_unknowns() {
    let old = answered();
    let host = host_with(&old).answer("nope").answer("nope");
    host.tick::<Memorizer>(&[command(
        "Noch was zu den Geräten",
        analysis("devices", "de"),
    )])
    .unwrap();
    assert_eq!(stored(&host).topic_history, ["devices"]);

    host.tick::<Memorizer>(&[command("???", Analysis::fallback())])
        .unwrap();
    let kept = stored(&host);
    assert_eq!(kept.topic, "devices");
    assert_eq!(kept.language, "de");
    assert_eq!(kept.topic_history, ["devices"]);
}

#[test]
fn the_fallback_caps_the_topic_history() {
    let old = MemorizerState {
        topic_history: (1..=10).map(|n| format!("topic {n}")).collect(),
        ..MemorizerState::default()
    };
    let host = host_with(&old).answer("nope");
    host.tick::<Memorizer>(&[ask()]).unwrap();

    let history = stored(&host).topic_history;
    assert_eq!(history.len(), 10);
    assert_eq!(history.first().unwrap(), "topic 2");
    assert_eq!(history.last().unwrap(), "devices");
}

#[test]
fn an_unusable_stored_state_starts_afresh_with_a_warning() {
    let host = TestHost::for_node::<Memorizer>()
        .with_memory(Scope::Thread, MEMORIZER_STATE_KEY, "[1, 2]")
        .answer_json(&to_json(&answered()));
    host.tick::<Memorizer>(&[ask()]).unwrap();

    assert_eq!(stored(&host), answered());
    assert!(host.warnings()[0].contains("starting afresh"));
}

#[test]
fn commands_in_one_tick_build_on_each_other() {
    let second = MemorizerState {
        topic: "readings".into(),
        topic_history: vec!["devices".into(), "readings".into()],
        ..answered()
    };
    let host = TestHost::for_node::<Memorizer>()
        .answer_json(&to_json(&answered()))
        .answer_json(&to_json(&second));
    let later = command("Und die Ablesungen?", analysis("readings", "de"));
    host.tick::<Memorizer>(&[ask(), later]).unwrap();

    assert!(
        host.llm_requests()[1].messages[1]
            .content
            .contains("Ada's customer number is 4711")
    );
    assert_eq!(stored(&host), second);
    assert_eq!(host.events_of(EventKind::Updated).len(), 2);
}

#[test]
fn an_llm_error_fails_the_tick_and_keeps_the_state() {
    let exhausted = Error::BudgetExhausted("thread token budget spent".into());
    let host = host_with(&answered()).answer_error(exhausted.clone());
    let error = host
        .tick::<Memorizer>(&[command("Und die Ablesungen?", analysis("readings", "de"))])
        .unwrap_err();

    assert_eq!(error, NodeError::Capability(exhausted));
    assert_eq!(stored(&host), answered());
    assert!(host.events().is_empty());
}

#[test]
fn denied_memory_fails_the_tick() {
    let host = TestHost::for_node::<Memorizer>().grant_only([Capability::Llm, Capability::Hud]);
    let error = host.tick::<Memorizer>(&[ask()]).unwrap_err();

    assert_eq!(
        error,
        NodeError::Capability(Error::Denied(Capability::Memory))
    );
    assert!(host.llm_requests().is_empty());
}

#[test]
fn without_hud_the_state_is_still_stored() {
    let host = TestHost::for_node::<Memorizer>()
        .grant_only([Capability::Llm, Capability::Memory])
        .answer_json(&to_json(&answered()));
    host.tick::<Memorizer>(&[ask()]).unwrap();

    assert_eq!(stored(&host), answered());
    // As in a graph granting only `[llm, memory]`: the warning about the
    // event is denied too, and neither fails the tick.
    assert_eq!(host.denied(), [Capability::Hud, Capability::Log]);
}

#[test]
fn an_empty_inbox_or_other_kinds_do_nothing() {
    let host = TestHost::for_node::<Memorizer>();
    host.tick::<Memorizer>(&[]).unwrap();
    let stray = Message::new("pa", "job", &json!({"job": "x"}));
    host.tick::<Memorizer>(&[stray]).unwrap();

    assert!(host.llm_requests().is_empty());
    assert_eq!(host.memory(Scope::Thread, MEMORIZER_STATE_KEY), None);
    assert_eq!(host.warnings().len(), 1);
}

#[test]
fn describe_declares_the_command_schema_and_capabilities() {
    let info = describe::<Memorizer>();
    assert_eq!(info.name, "memorizer");
    assert_eq!(info.input_schema, Command::schema());
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
