//! Round trips and schema shapes of the bodies.

use super::*;

#[test]
fn bodies_round_trip_through_json() {
    let respond = Respond {
        request: "how many devices?".into(),
        language: "en".into(),
        response_hint: "short".into(),
        draft: None,
        result: Some(Interpreted {
            summary: "3 devices".into(),
            row_count: Some(3),
            key_facts: vec!["3 devices".into()],
            confidence: 0.9,
        }),
        error: None,
    };
    let text = serde_json::to_string(&respond).unwrap();
    assert_eq!(serde_json::from_str::<Respond>(&text).unwrap(), respond);
    let call: ToolCall = serde_json::from_str(r#"{"tool": "list_tables"}"#).unwrap();
    assert_eq!(call.args, json!({}));
}

#[test]
fn schemas_are_objects_naming_their_required_fields() {
    for schema in [
        UserText::schema(),
        Command::schema(),
        Job::schema(),
        ExpertFailed::schema(),
        PlanMessage::schema(),
        Interpret::schema(),
        Respond::schema(),
        UiActions::schema(),
        UiAction::schema(),
        MemorizerState::schema(),
    ] {
        assert_eq!(schema["type"], "object", "{schema}");
        assert!(schema["required"].as_array().is_some_and(|r| !r.is_empty()));
    }
}
