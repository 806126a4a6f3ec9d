//! The wire forms the host journals and the texts nodes show: both sides
//! rely on them, so they are pinned here.

use serde_json::json;

use crate::{
    CallContext, Capability, CapabilityError, Context, Message, NodeError, TickOutput, Value,
};

#[test]
fn capabilities_parse_and_print_their_contract_names() {
    for capability in Capability::ALL {
        assert_eq!(capability.as_str().parse(), Ok(capability));
        assert_eq!(json!(capability), json!(capability.as_str()));
    }
    let unknown = "mind".parse::<Capability>().unwrap_err();
    assert!(
        unknown.starts_with("unknown capability `mind`"),
        "{unknown}"
    );
}

#[test]
fn errors_serialize_as_code_and_detail() {
    let error = CapabilityError::BudgetExhausted("thread budget".into());
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({"code": "budget_exhausted", "detail": "thread budget"})
    );
    let denied = serde_json::to_value(CapabilityError::Denied(Capability::Db)).unwrap();
    assert_eq!(denied, json!({"code": "denied", "detail": "db"}));
    let node = NodeError::Capability(CapabilityError::Failed("x".into()));
    let back: NodeError = serde_json::from_value(serde_json::to_value(&node).unwrap()).unwrap();
    assert_eq!(back, node);
}

#[test]
fn errors_display_with_contract_names() {
    assert_eq!(
        CapabilityError::LimitExceeded("rows".into()).to_string(),
        "limit-exceeded: rows"
    );
    assert_eq!(NodeError::Failed("boom".into()).to_string(), "failed: boom");
    assert_eq!(
        NodeError::from(CapabilityError::Unavailable("down".into())).to_string(),
        "capability error: unavailable: down"
    );
}

#[test]
fn values_are_tagged() {
    assert_eq!(
        serde_json::to_value(Value::Integer(3)).unwrap(),
        json!({"type": "integer", "value": 3})
    );
    assert_eq!(
        serde_json::to_value(Value::Null).unwrap(),
        json!({"type": "null"})
    );
    assert_eq!(Value::from(Some("a")), Value::Text("a".into()));
    assert_eq!(Value::from(None::<i64>), Value::Null);
}

#[test]
fn a_context_is_its_call_context_and_config() {
    let call = CallContext {
        thread: "t".into(),
        run: "r".into(),
        frame: 2,
        node: "n".into(),
        project: "p".into(),
    };
    let context = Context {
        call: call.clone(),
        config: "{}".into(),
    };
    assert_eq!((context.thread.as_str(), context.frame), ("t", 2));
    let flat = serde_json::to_value(&context).unwrap();
    assert_eq!(flat["node"], "n");
    assert_eq!(flat["config"], "{}");
    // Journal entries of 0.1.0 plugins have no project.
    let old: CallContext =
        serde_json::from_value(json!({"thread": "t", "run": "r", "frame": 2, "node": "n"}))
            .unwrap();
    assert_eq!(old.project, "");
}

#[test]
fn output_size_counts_names_bodies_and_reply() {
    let output = TickOutput {
        messages: vec![crate::Outbound {
            to: "ab".into(),
            kind: "c".into(),
            body: "{}".into(),
        }],
        reply: Some("hey".into()),
        done: false,
        interrupt: None,
    };
    assert_eq!(output.payload_bytes(), 2 + 1 + 2 + 3);
    assert_eq!(output.sent_to("ab").count(), 1);
}

#[test]
fn message_ids_separate_their_parts() {
    assert_ne!(
        Message::raw("ab", "c", "{}").id,
        Message::raw("a", "bc", "{}").id
    );
    let bad = Message::raw("user", "user", "{").json::<serde_json::Value>();
    assert!(matches!(bad, Err(NodeError::InvalidInput(text)) if text.contains("from user")));
}
