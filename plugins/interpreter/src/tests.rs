//! Native tests of the interpreter node against `weft_sdk::testing::TestHost`.

use serde_json::{Value, json};
use weft_protocol::{Interpret, Interpreted, Respond, ToolCall, ToolOutput, UiActions};
use weft_sdk::testing::{TestHost, describe};
use weft_sdk::{Capability, Error, EventKind, Message, NodeError, TickOutput};

use crate::fallback::FALLBACK_CONFIDENCE;
use crate::{INTERPRETING_PROGRESS, Interpreter, prompt};

fn devices(rows: usize) -> ToolOutput {
    ToolOutput {
        tool: "query_db".into(),
        args: json!({"sql": "SELECT name FROM devices"}),
        result: Some(json!({
            "columns": ["name"],
            "rows": (1..=rows).map(|n| json!([format!("m-{n}")])).collect::<Vec<_>>(),
            "truncated": false
        })),
        error: None,
    }
}

fn interpret(outputs: Vec<ToolOutput>) -> Interpret {
    Interpret {
        request: "which devices are there?".into(),
        language: "en".into(),
        response_hint: "list them".into(),
        outputs,
    }
}

fn inbox(outputs: Vec<ToolOutput>) -> [Message; 1] {
    [Message::new("thinker", "interpret", &interpret(outputs))]
}

fn answer() -> Value {
    json!({"summary": "There are 2 devices.", "row_count": 2,
           "key_facts": ["m-1", "m-2"], "confidence": 0.9})
}

/// The `respond` to output and the `ui` to ui, in that order.
fn sent(output: &TickOutput) -> (Respond, UiActions) {
    let routes: Vec<_> = output
        .messages
        .iter()
        .map(|message| (message.to.as_str(), message.kind.as_str()))
        .collect();
    assert_eq!(routes, [("output", "respond"), ("ui", "ui")]);
    (
        output.messages[0].json().unwrap(),
        output.messages[1].json().unwrap(),
    )
}

#[test]
fn the_result_goes_to_output_and_the_facts_to_the_ui() {
    let host = TestHost::for_node::<Interpreter>().answer_json(&answer());
    let output = host.tick::<Interpreter>(&inbox(vec![devices(2)])).unwrap();

    let (respond, ui) = sent(&output);
    let expected: Interpreted = serde_json::from_value(answer()).unwrap();
    assert_eq!(
        respond,
        Respond {
            request: "which devices are there?".into(),
            language: "en".into(),
            response_hint: "list them".into(),
            draft: None,
            result: Some(expected),
            error: None,
        }
    );
    assert_eq!(
        ui.actions,
        [ToolCall {
            tool: "emit_display".into(),
            args: json!({"title": "summary", "items": ["m-1", "m-2"]})
        }]
    );
    assert_eq!(
        host.events_of(EventKind::Interpreted),
        [json!({"result": answer()})]
    );
    assert_eq!(host.events().len(), 1);
    assert_eq!(host.progress(), [INTERPRETING_PROGRESS]);
    assert_eq!(output.reply, None);
    assert!(host.warnings().is_empty());
}

#[test]
fn one_constrained_call_sees_the_request_and_the_outputs() {
    let host = TestHost::for_node::<Interpreter>().answer_json(&answer());
    host.tick::<Interpreter>(&inbox(vec![devices(2)])).unwrap();

    let requests = host.llm_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(!request.stream);
    assert_eq!(request.max_tokens, 400);
    assert_eq!(
        request.messages[1].content,
        format!(
            "Request: which devices are there?\nTool outputs (JSON): {}",
            prompt::render_outputs(&[devices(2)])
        )
    );
    assert!(request.messages[1].content.contains(r#"["m-1"],["m-2"]"#));
    let schema: Value = serde_json::from_str(request.json_schema.as_ref().unwrap()).unwrap();
    assert_eq!(schema, prompt::schema());
    let mut unbounded = schema.clone();
    unbounded["properties"]["key_facts"]
        .as_object_mut()
        .unwrap()
        .remove("maxItems");
    assert_eq!(unbounded, Interpreted::schema());
}

#[test]
fn big_outputs_are_cut_in_the_prompt_but_not_in_the_fallback() {
    let host = TestHost::for_node::<Interpreter>().answer("not json");
    let output = host
        .tick::<Interpreter>(&inbox(vec![devices(100)]))
        .unwrap();

    let user = &host.llm_requests()[0].messages[1].content;
    assert!(user.contains(r#""rows_omitted":60"#), "{user}");
    assert!(user.contains(r#"["m-40"]"#) && !user.contains(r#"["m-41"]"#));
    let (respond, _) = sent(&output);
    assert_eq!(respond.result.unwrap().row_count, Some(100));
}

#[test]
fn an_unparseable_answer_falls_back_to_the_data() {
    for answer in ["There are two devices.", r#"{"summary": "2"}"#] {
        let host = TestHost::for_node::<Interpreter>().answer(answer);
        let output = host.tick::<Interpreter>(&inbox(vec![devices(4)])).unwrap();

        let (respond, ui) = sent(&output);
        let fallback = Interpreted {
            summary: "The query returned 4 row(s).".into(),
            row_count: Some(4),
            key_facts: vec!["name: m-1".into(), "name: m-2".into(), "name: m-3".into()],
            confidence: FALLBACK_CONFIDENCE,
        };
        assert_eq!(respond.result.as_ref(), Some(&fallback));
        assert_eq!(
            ui.actions[0].args,
            json!({"title": "summary", "items": ["name: m-1", "name: m-2", "name: m-3"]})
        );
        assert_eq!(
            host.events_of(EventKind::Interpreted),
            [json!({"result": fallback})]
        );
        let warnings = host.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("unusable interpretation"),
            "{warnings:?}"
        );
    }
}

#[test]
fn an_llm_error_falls_back_too() {
    let host = TestHost::for_node::<Interpreter>()
        .answer_error(Error::Unavailable("model is loading".into()));
    let output = host.tick::<Interpreter>(&inbox(vec![devices(1)])).unwrap();

    let (respond, _) = sent(&output);
    let result = respond.result.unwrap();
    assert_eq!(result.confidence, FALLBACK_CONFIDENCE);
    assert_eq!(result.key_facts, ["name: m-1"]);
    let warnings = host.warnings();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("unavailable: model is loading"));
}

#[test]
fn failed_tools_are_named_in_the_respond_error() {
    let failed = ToolOutput {
        tool: "query_db".into(),
        args: json!({"sql": "SELECT * FROM nope"}),
        result: None,
        error: Some("invalid-input: no such table: nope".into()),
    };
    let host = TestHost::for_node::<Interpreter>().answer_json(&answer());
    let output = host
        .tick::<Interpreter>(&inbox(vec![failed, devices(2)]))
        .unwrap();

    let (respond, _) = sent(&output);
    assert_eq!(
        respond.error.as_deref(),
        Some("query_db: invalid-input: no such table: nope")
    );
}

#[test]
fn an_out_of_range_confidence_is_clamped_and_empty_facts_dropped() {
    let host = TestHost::for_node::<Interpreter>().answer_json(&json!({
        "summary": "2 devices", "row_count": null, "key_facts": ["", "m-1", "  "], "confidence": 7
    }));
    let output = host.tick::<Interpreter>(&inbox(vec![devices(2)])).unwrap();

    let (respond, ui) = sent(&output);
    let result = respond.result.unwrap();
    assert_eq!(result.confidence, 1.0);
    assert_eq!(result.row_count, None);
    assert_eq!(result.key_facts, ["m-1"]);
    assert_eq!(ui.actions[0].args["items"], json!(["m-1"]));
}

#[test]
fn peers_come_from_the_config() {
    let host = TestHost::for_node::<Interpreter>()
        .config(json!({"output": "voice", "ui": "screen"}))
        .answer_json(&answer());
    let output = host.tick::<Interpreter>(&inbox(vec![devices(2)])).unwrap();
    let peers: Vec<_> = output.messages.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(peers, ["voice", "screen"]);

    for bad in [json!({"ui": ""}), json!({"display": "x"})] {
        let host = TestHost::for_node::<Interpreter>().config(bad);
        let error = host
            .tick::<Interpreter>(&inbox(vec![devices(1)]))
            .unwrap_err();
        assert!(matches!(error, NodeError::InvalidInput(_)), "{error:?}");
    }
}

#[test]
fn other_kinds_are_skipped_with_a_warning() {
    let host = TestHost::for_node::<Interpreter>();
    let stray = Message::new("director", "plan", &json!({}));
    let output = host.tick::<Interpreter>(&[stray]).unwrap();
    assert!(output.messages.is_empty());
    assert!(host.llm_requests().is_empty());
    assert!(host.warnings()[0].contains("plan"));
}

#[test]
fn describe_declares_schemas_and_capabilities() {
    let info = describe::<Interpreter>();
    assert_eq!(info.name, "interpreter");
    assert_eq!(
        info.capabilities,
        [Capability::Llm, Capability::Hud, Capability::Log]
    );
    assert_eq!(info.input_schema, Interpret::schema());
    assert_eq!(
        info.output_schema,
        json!({"anyOf": [Respond::schema(), UiActions::schema()]})
    );
}
