//! Native tests of the output node against `weft_sdk::testing::TestHost`.

use serde_json::json;
use weft_protocol::{Analysis, Command, Complexity, Intent, Interpreted, Respond};
use weft_sdk::testing::{TestHost, describe};
use weft_sdk::{Capability, Error, Message, NodeError, Role};

use crate::{Output, WRITING_PROGRESS};

fn respond() -> Respond {
    Respond {
        request: "how many devices?".into(),
        language: "fr".into(),
        response_hint: "short".into(),
        draft: None,
        result: Some(Interpreted {
            summary: "There are 2 devices.".into(),
            row_count: Some(2),
            key_facts: vec!["m-1 is a meter".into(), "m-2 is a valve".into()],
            confidence: 0.9,
        }),
        error: None,
    }
}

fn reflex(text: &str, language: &str) -> Command {
    Command {
        analysis: Analysis {
            intent: Intent::Social,
            topic: "greeting".into(),
            language: language.into(),
            tone: "friendly".into(),
            complexity: Complexity::Simple,
            reflex: true,
        },
        source_text: text.into(),
    }
}

fn from_interpreter(body: &Respond) -> Message {
    Message::new("interpreter", "respond", body)
}

fn from_input(body: &Command) -> Message {
    Message::new("input", "command", body)
}

fn user_turn(host: &TestHost) -> String {
    let requests = host.llm_requests();
    assert_eq!(requests.len(), 1, "exactly one llm call");
    assert_eq!(requests[0].messages[0].role, Role::System);
    requests[0].messages[1].content.clone()
}

fn system_prompt(host: &TestHost) -> String {
    host.llm_requests()[0].messages[0].content.clone()
}

#[test]
fn one_streamed_call_phrases_the_result() {
    let host = TestHost::for_node::<Output>().answer("  Es gibt 2 Geräte.\n");
    let output = host
        .tick::<Output>(&[from_interpreter(&respond())])
        .unwrap();

    assert_eq!(output.reply.as_deref(), Some("Es gibt 2 Geräte."));
    assert!(output.done);
    assert!(output.messages.is_empty());
    let request = &host.llm_requests()[0];
    assert!(request.stream);
    assert_eq!(request.max_tokens, 300);
    assert_eq!(request.json_schema, None);
    // One message is asked chat-natively: the user's words are the user
    // turn, the material is in the system prompt.
    assert_eq!(user_turn(&host), "how many devices?");
    assert!(system_prompt(&host).ends_with(
        "How to answer: short\nFacts: There are 2 devices.\n- m-1 is a meter\n- m-2 is a valve\n\
         Reply in the language with ISO 639-1 code fr."
    ));
    assert_eq!(host.progress(), [WRITING_PROGRESS]);
    assert!(host.warnings().is_empty());
}

#[test]
fn a_german_message_gets_a_german_prompt_and_fallback() {
    let german = Respond {
        request: "Wie viele Geräte?".into(),
        language: "de".into(),
        result: Some(Interpreted {
            summary: "Es gibt 2 Geräte.".into(),
            row_count: Some(1),
            key_facts: Vec::new(),
            confidence: 0.9,
        }),
        error: Some("Zeitlimit".into()),
        ..respond()
    };
    let host = TestHost::for_node::<Output>().answer("Es gibt 2 Geräte.");
    host.tick::<Output>(&[from_interpreter(&german)]).unwrap();
    assert_eq!(
        system_prompt(&host),
        "Du bist ein hilfreicher Assistent. Antworte dem Nutzer auf Deutsch. Verwende nur \
         dieses Material und erfinde nie Fakten, Zahlen oder Namen:\nWie antworten: short\n\
         Fakten: Es gibt 2 Geräte.\nProblem: Zeitlimit"
    );

    // A reply that repeats the German labels is replaced by the material,
    // whose error line is German too.
    let host = TestHost::for_node::<Output>().answer("Fakten: Es gibt 2 Geräte.");
    let output = host.tick::<Output>(&[from_interpreter(&german)]).unwrap();
    assert_eq!(
        output.reply.as_deref(),
        Some("Es gibt 2 Geräte.\nEtwas ist schiefgegangen: Zeitlimit")
    );
}

#[test]
fn the_draft_and_the_error_are_in_the_prompt() {
    let body = Respond {
        draft: Some("created machine light with states red, green".into()),
        result: None,
        error: Some("create_machine: `name` is missing".into()),
        ..respond()
    };
    let host = TestHost::for_node::<Output>().answer("Done.");
    host.tick::<Output>(&[from_interpreter(&body)]).unwrap();

    assert_eq!(user_turn(&host), "how many devices?");
    assert!(system_prompt(&host).ends_with(
        "How to answer: short\nDraft: created machine light with states red, green\n\
         Problem: create_machine: `name` is missing\nReply in the language with ISO 639-1 code fr."
    ));
}

#[test]
fn a_reply_that_changes_the_numbers_is_replaced_by_the_material() {
    for (answer, why) in [
        ("There are 5 devices.", "the number 5"),
        ("The devices are listed below.", "leaves out 2"),
        (
            "The user wrote: how many devices? There are 2.",
            "repeats the prompt",
        ),
    ] {
        let host = TestHost::for_node::<Output>().answer(answer);
        let output = host
            .tick::<Output>(&[from_interpreter(&respond())])
            .unwrap();
        let reply = output.reply.unwrap();
        assert!(
            reply.starts_with("There are 2 devices."),
            "{answer}: {reply}"
        );
        assert!(reply.contains("- m-2 is a valve"), "{reply}");
        let warnings = host.warnings().join("\n");
        assert!(warnings.contains(why), "{answer}: {warnings}");
    }
}

#[test]
fn a_reflex_gets_a_short_friendly_reply() {
    let host = TestHost::for_node::<Output>().answer("Hallo!");
    let output = host
        .tick::<Output>(&[from_input(&reflex("hallo!", "unknown"))])
        .unwrap();

    assert_eq!(output.reply.as_deref(), Some("Hallo!"));
    assert!(output.done);
    assert!(host.llm_requests()[0].stream);
    assert_eq!(user_turn(&host), "hallo!");
    assert_eq!(
        system_prompt(&host),
        "You are a helpful assistant. Answer the user."
    );
}

#[test]
fn several_messages_make_one_reply_from_one_call() {
    let ui_done = Respond {
        request: "make a light".into(),
        language: "en".into(),
        response_hint: String::new(),
        draft: Some("created machine light".into()),
        result: None,
        error: None,
    };
    let host = TestHost::for_node::<Output>().answer("Here you go.");
    let output = host
        .tick::<Output>(&[from_input(&reflex("hi", "en")), from_interpreter(&ui_done)])
        .unwrap();

    assert_eq!(output.reply.as_deref(), Some("Here you go."));
    assert_eq!(
        user_turn(&host),
        "Part 1:\nReply language: en\nThe user wrote: hi\nTone: friendly\n\
         This is small talk: reply with one short, friendly sentence.\n\n\
         Part 2:\nReply language: en\nThe user wrote: make a light\n\
         Draft: created machine light\n\nCombine the parts into one reply."
    );
}

#[test]
fn an_llm_error_falls_back_to_the_material_with_a_warning() {
    let first = Respond {
        draft: Some("created machine light".into()),
        error: Some("query_db: invalid-input: no such table: x".into()),
        ..respond()
    };
    let second = Respond {
        result: None,
        draft: Some("set mode to dark".into()),
        ..respond()
    };
    let host = TestHost::for_node::<Output>()
        .answer_error(Error::BudgetExhausted("thread token budget spent".into()));
    let output = host
        .tick::<Output>(&[
            from_interpreter(&first),
            from_input(&reflex("hi", "en")),
            from_interpreter(&second),
        ])
        .unwrap();

    assert_eq!(
        output.reply.as_deref(),
        Some(
            "created machine light\nThere are 2 devices.\n- m-1 is a meter\n- m-2 is a valve\n\
             Something went wrong: query_db: invalid-input: no such table: x\n\n\
             set mode to dark"
        )
    );
    assert!(output.done);
    assert_eq!(host.llm_requests().len(), 1);
    let warnings = host.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("budget-exhausted"), "{warnings:?}");
}

#[test]
fn an_empty_answer_falls_back_too() {
    let host = TestHost::for_node::<Output>().answer(" \n ");
    let output = host
        .tick::<Output>(&[from_interpreter(&respond())])
        .unwrap();
    assert_eq!(
        output.reply.as_deref(),
        Some("There are 2 devices.\n- m-1 is a meter\n- m-2 is a valve")
    );
    assert!(host.warnings()[0].contains("empty reply"));
}

#[test]
fn with_nothing_to_say_an_llm_error_fails_the_tick() {
    let unavailable = Error::Unavailable("model is loading".into());
    let bare = Respond {
        result: None,
        ..respond()
    };
    for inbox in [
        vec![from_input(&reflex("hi", "en"))],
        vec![from_interpreter(&bare)],
    ] {
        let host = TestHost::for_node::<Output>().answer_error(unavailable.clone());
        let error = host.tick::<Output>(&inbox).unwrap_err();
        assert_eq!(error, NodeError::Capability(unavailable.clone()));
    }
}

#[test]
fn max_tokens_comes_from_the_config() {
    let host = TestHost::for_node::<Output>()
        .config(json!({"max_tokens": 120}))
        .answer("ok");
    host.tick::<Output>(&[from_interpreter(&respond())])
        .unwrap();
    assert_eq!(host.llm_requests()[0].max_tokens, 120);

    for bad in [json!({"max_tokens": 0}), json!({"max_token": 10})] {
        let host = TestHost::for_node::<Output>().config(bad);
        let error = host
            .tick::<Output>(&[from_interpreter(&respond())])
            .unwrap_err();
        assert!(matches!(error, NodeError::InvalidInput(_)), "{error:?}");
    }
}

#[test]
fn other_kinds_are_skipped_and_an_empty_inbox_does_nothing() {
    let host = TestHost::for_node::<Output>();
    let stray = Message::new("thinker", "ui", &json!({"actions": []}));
    let output = host.tick::<Output>(&[stray]).unwrap();
    assert_eq!(output.reply, None);
    assert!(!output.done);
    assert!(host.llm_requests().is_empty());
    assert!(host.warnings()[0].contains("\"ui\""));

    let output = host.tick::<Output>(&[]).unwrap();
    assert_eq!(output, Default::default());
}

#[test]
fn describe_declares_schemas_and_capabilities() {
    let info = describe::<Output>();
    assert_eq!(info.name, "output");
    assert_eq!(
        info.capabilities,
        [Capability::Llm, Capability::Hud, Capability::Log]
    );
    assert_eq!(
        info.input_schema,
        json!({"anyOf": [Respond::schema(), Command::schema()]})
    );
}

#[test]
fn a_reply_that_drops_or_adds_a_negation_is_replaced_by_the_material() {
    let absent = |summary: &str, language: &str| Respond {
        language: language.into(),
        result: Some(Interpreted {
            summary: summary.into(),
            row_count: Some(0),
            key_facts: Vec::new(),
            confidence: 1.0,
        }),
        ..respond()
    };
    for (material, answer, kept) in [
        (
            absent("There is no customer 99999.", "en"),
            "Customer 99999 is a device that connects to the internet.",
            false,
        ),
        (
            absent("Kunde 99999 gibt es nicht.", "de"),
            "Das ist die Eigentum der Kunde 99999.",
            false,
        ),
        // The negation is there, but not about the record.
        (
            absent("Kunde 99999 gibt es nicht.", "de"),
            "Wie viele Geräte hat Kunde 99999?\nThe answer is: \"No, no.\"",
            false,
        ),
        (
            absent("There is no customer 99999.", "en"),
            "Sorry, customer 99999 doesn't exist.",
            true,
        ),
        (
            absent("Kunde 99999 gibt es nicht.", "de"),
            "Es gibt keinen Kunden 99999.",
            true,
        ),
        (respond(), "There are not 2 devices.", false),
        // No figure to protect: a rewording without the negation is fine.
        (
            absent("Nothing changed.", "en"),
            "I can only read the database.",
            true,
        ),
        (respond(), "You have 2 devices.", true),
        // A number with a decimal point is one figure of one sentence.
        (
            absent(
                "Der Zählerstand ist 1.413 kWh. Eine Ablesung fehlt nicht.",
                "de",
            ),
            "Der Zählerstand ist 1.413 kWh. Es fehlt keine Ablesung.",
            true,
        ),
    ] {
        let host = TestHost::for_node::<Output>().answer(answer);
        let reply = host
            .tick::<Output>(&[from_interpreter(&material)])
            .unwrap()
            .reply
            .unwrap();
        let summary = material.result.as_ref().unwrap().summary.clone();
        if kept {
            assert_eq!(reply, answer, "{summary}");
        } else {
            assert!(reply.starts_with(&summary), "{answer}: {reply}");
            let warnings = host.warnings().join("\n");
            assert!(warnings.contains("negat"), "{answer}: {warnings}");
        }
    }
}
