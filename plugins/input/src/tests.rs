//! Native tests of the input node against `weft_sdk::testing::TestHost`.

use serde_json::json;
use weft_sdk::testing::{TestHost, describe};
use weft_sdk::{Capability, Error, EventKind, Level, Message, NodeError, Scope, TickOutput};

use crate::{Analysis, Command, Complexity, Config, Input, Intent, LAST_ANALYSIS_KEY};

fn user(text: &str) -> Message {
    Message::new("user", "user", &json!({"text": text}))
}

fn greeting() -> serde_json::Value {
    json!({"intent": "social", "topic": "greeting", "language": "en", "tone": "friendly",
           "complexity": "simple", "reflex": true})
}

fn question() -> serde_json::Value {
    json!({"intent": "question", "topic": "roman emperors", "language": "en", "tone": "neutral",
           "complexity": "complex", "reflex": false})
}

/// The only message sent, with its peer.
fn only_command(output: &TickOutput) -> (String, Command) {
    assert_eq!(output.messages.len(), 1, "{output:?}");
    let message = &output.messages[0];
    assert_eq!(message.kind, "command");
    (message.to.clone(), message.json().unwrap())
}

#[test]
fn a_reflex_goes_to_output() {
    let host = TestHost::for_node::<Input>().answer_json(&greeting());
    let output = host.tick::<Input>(&[user("hi there!")]).unwrap();

    let (peer, command) = only_command(&output);
    assert_eq!(peer, "output");
    assert_eq!(command.source_text, "hi there!");
    assert!(command.analysis.reflex);
    assert_eq!(command.analysis.intent, Intent::Social);
    assert_eq!(output.reply, None);
    assert!(!output.done);
}

#[test]
fn anything_else_goes_to_the_pa() {
    let host = TestHost::for_node::<Input>().answer_json(&question());
    let output = host
        .tick::<Input>(&[user("Who ruled Rome after Nero?")])
        .unwrap();

    let (peer, command) = only_command(&output);
    assert_eq!(peer, "pa");
    assert_eq!(command.analysis.complexity, Complexity::Complex);
    assert_eq!(command.analysis.topic, "roman emperors");
}

#[test]
fn the_model_is_asked_with_the_analysis_schema() {
    let host = TestHost::for_node::<Input>().answer_json(&question());
    host.tick::<Input>(&[user("Who ruled Rome after Nero?")])
        .unwrap();

    let requests = host.llm_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].messages.last().unwrap().content,
        "Who ruled Rome after Nero?"
    );
    let mut schema: serde_json::Value =
        serde_json::from_str(requests[0].json_schema.as_ref().unwrap()).unwrap();
    // The language is held to a two-letter code; the rest is the schema.
    assert_eq!(schema["properties"]["language"]["pattern"], "^[a-z][a-z]$");
    schema["properties"]["language"] = Analysis::schema()["properties"]["language"].clone();
    assert_eq!(schema, Analysis::schema());
}

#[test]
fn a_malformed_answer_falls_back_to_the_pa_with_a_warning() {
    for answer in [
        "Sure! It's a question.",
        r#"{"intent": "rant", "reflex": true}"#,
    ] {
        let host = TestHost::for_node::<Input>().answer(answer);
        let output = host.tick::<Input>(&[user("hello?")]).unwrap();

        let (peer, command) = only_command(&output);
        assert_eq!(peer, "pa");
        assert_eq!(command.analysis, Analysis::fallback());
        assert_eq!(command.analysis.intent, Intent::Other);
        assert!(!command.analysis.reflex);
        let warnings: Vec<_> = host
            .logs()
            .into_iter()
            .filter(|(level, _)| *level == Level::Warn)
            .collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].1.contains("fallback"));
    }
}

#[test]
fn a_denied_llm_fails_the_tick_with_the_capability_error() {
    let host = TestHost::new().grant_only([Capability::Hud, Capability::Memory, Capability::Log]);
    let error = host.tick::<Input>(&[user("hi")]).unwrap_err();

    assert_eq!(error, NodeError::Capability(Error::Denied(Capability::Llm)));
    assert_eq!(host.denied(), [Capability::Llm]);
    assert!(host.events().is_empty());
    assert_eq!(host.memory(Scope::Thread, LAST_ANALYSIS_KEY), None);
}

#[test]
fn an_llm_error_fails_the_tick() {
    let exhausted = Error::BudgetExhausted("thread token budget spent".into());
    let host = TestHost::for_node::<Input>().answer_error(exhausted.clone());
    assert_eq!(
        host.tick::<Input>(&[user("hi")]).unwrap_err(),
        NodeError::Capability(exhausted)
    );
}

#[test]
fn the_analysis_is_stored_in_thread_memory() {
    let host = TestHost::for_node::<Input>()
        .answer_json(&question())
        .answer_json(&greeting());
    host.tick::<Input>(&[user("Who ruled Rome after Nero?")])
        .unwrap();
    host.tick::<Input>(&[user("thanks!")]).unwrap();

    let stored: Analysis = host.memory_json(Scope::Thread, LAST_ANALYSIS_KEY).unwrap();
    assert_eq!(serde_json::to_value(stored).unwrap(), greeting());
    assert_eq!(host.memory(Scope::Node, LAST_ANALYSIS_KEY), None);
}

#[test]
fn a_perceived_event_carries_the_analysis() {
    let host = TestHost::for_node::<Input>().answer_json(&greeting());
    host.tick::<Input>(&[user("hi")]).unwrap();

    assert_eq!(host.events_of(EventKind::Perceived), [greeting()]);
    assert_eq!(host.events().len(), 1);
}

#[test]
fn each_user_message_is_handled_in_order_and_others_are_skipped() {
    let host = TestHost::for_node::<Input>()
        .answer_json(&greeting())
        .answer_json(&question());
    let stray = Message::new("director", "job", &json!({"text": "not for me"}));
    let output = host
        .tick::<Input>(&[user("hi"), stray, user("Who ruled Rome?")])
        .unwrap();

    let peers: Vec<_> = output
        .messages
        .iter()
        .map(|message| message.to.as_str())
        .collect();
    assert_eq!(peers, ["output", "pa"]);
    assert_eq!(host.llm_requests().len(), 2);
    assert!(
        host.logs()
            .iter()
            .any(|(level, line)| *level == Level::Warn && line.contains("job"))
    );
}

#[test]
fn bad_bodies_are_invalid_input() {
    let host = TestHost::for_node::<Input>();
    for body in [json!({"txt": "hi"}), json!({"text": "  "})] {
        let error = host
            .tick::<Input>(&[Message::new("user", "user", &body)])
            .unwrap_err();
        assert!(matches!(error, NodeError::InvalidInput(_)), "{error:?}");
    }
    assert!(host.llm_requests().is_empty());
}

#[test]
fn describe_declares_schemas_and_capabilities() {
    let info = describe::<Input>();
    assert_eq!(info.name, "input");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        info.capabilities,
        [
            Capability::Llm,
            Capability::Hud,
            Capability::Memory,
            Capability::Log
        ]
    );
    assert_eq!(info.input_schema, weft_protocol::UserText::schema());
    assert_eq!(info.output_schema, Command::schema());
}

/// The peers of `output`'s messages, in send order; every one is a `command`.
fn peers(output: &TickOutput) -> Vec<&str> {
    assert!(
        output.messages.iter().all(|m| m.kind == "command"),
        "{output:?}"
    );
    output.messages.iter().map(|m| m.to.as_str()).collect()
}

#[test]
fn the_config_defaults_to_pa_output_and_no_notify() {
    let config: Config = serde_json::from_value(json!({})).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.think, "pa");
    assert_eq!(config.reflex.as_deref(), Some("output"));
    assert!(config.notify.is_empty());
}

#[test]
fn configured_peers_replace_the_defaults() {
    let config = json!({"think": "director", "reflex": "fast_output"});
    let host = TestHost::for_node::<Input>()
        .config(config)
        .answer_json(&greeting())
        .answer_json(&question());
    let reflex = host.tick::<Input>(&[user("hi")]).unwrap();
    let thought = host.tick::<Input>(&[user("Who ruled Rome?")]).unwrap();

    assert_eq!(peers(&reflex), ["fast_output"]);
    assert_eq!(peers(&thought), ["director"]);
}

#[test]
fn a_null_reflex_sends_reflexes_to_the_thinker() {
    let host = TestHost::for_node::<Input>()
        .config(json!({"reflex": null}))
        .answer_json(&greeting());
    let output = host.tick::<Input>(&[user("hi there!")]).unwrap();

    let (peer, command) = only_command(&output);
    assert_eq!(peer, "pa");
    assert!(command.analysis.reflex, "the analysis itself is unchanged");
}

#[test]
fn notify_peers_get_a_copy_of_every_command() {
    let host = TestHost::for_node::<Input>()
        .config(json!({"notify": ["memorizer", "audit"]}))
        .answer_json(&greeting())
        .answer_json(&question());
    let reflex = host.tick::<Input>(&[user("hi")]).unwrap();
    let thought = host.tick::<Input>(&[user("Who ruled Rome?")]).unwrap();

    assert_eq!(peers(&reflex), ["output", "memorizer", "audit"]);
    assert_eq!(peers(&thought), ["pa", "memorizer", "audit"]);
    let first: Command = thought.messages[0].json().unwrap();
    for copy in &thought.messages[1..] {
        assert_eq!(copy.json::<Command>().unwrap(), first);
    }
    assert_eq!(first.source_text, "Who ruled Rome?");
}

#[test]
fn a_peer_is_never_sent_the_same_command_twice() {
    let host = TestHost::for_node::<Input>()
        .config(json!({"notify": ["pa", "memorizer", "memorizer"]}))
        .answer_json(&question());
    let output = host.tick::<Input>(&[user("Who ruled Rome?")]).unwrap();

    assert_eq!(peers(&output), ["pa", "memorizer"]);
}

#[test]
fn a_bad_config_is_invalid_input_before_any_call() {
    for config in [
        json!({"think": 3}),
        json!({"notify": "memorizer"}),
        json!({"thinker": "pa"}),
    ] {
        let host = TestHost::for_node::<Input>().config(config.clone());
        let error = host.tick::<Input>(&[user("hi")]).unwrap_err();
        assert!(
            matches!(&error, NodeError::InvalidInput(text) if text.contains("bad config")),
            "{config}: {error:?}"
        );
        assert!(host.llm_requests().is_empty());
    }
}

#[test]
fn the_messages_words_correct_the_models_language_code() {
    // The model says `en` for a German question: the words say `de`.
    let host = TestHost::for_node::<Input>().answer_json(&question());
    let output = host
        .tick::<Input>(&[user("Wie viele Geräte hat der Kunde 1042?")])
        .unwrap();
    let (_, command) = only_command(&output);
    assert_eq!(command.analysis.language, "de");

    // Too few words to tell: the model's code stays.
    let host = TestHost::for_node::<Input>().answer_json(&question());
    let output = host.tick::<Input>(&[user("Kunde 1042?")]).unwrap();
    assert_eq!(only_command(&output).1.analysis.language, "en");

    // `languages: {}` turns the check off.
    let host = TestHost::for_node::<Input>()
        .config(json!({"languages": {}}))
        .answer_json(&question());
    let output = host
        .tick::<Input>(&[user("Wie viele Geräte hat der Kunde 1042?")])
        .unwrap();
    assert_eq!(only_command(&output).1.analysis.language, "en");
}

#[test]
fn detection_needs_a_clear_majority() {
    use crate::language::{defaults, detect};
    let languages = defaults();
    assert_eq!(
        detect("how many devices does customer 7 have", &languages).as_deref(),
        Some("en")
    );
    assert_eq!(
        detect("Welche Objekte gehören zu Kunde 7?", &languages).as_deref(),
        Some("de")
    );
    assert_eq!(detect("hallo", &languages), None);
    // One word of each: no majority.
    assert_eq!(detect("the der", &languages), None);
}
