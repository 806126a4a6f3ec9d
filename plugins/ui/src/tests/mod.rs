//! Native tests of the ui node against `weft_sdk::testing::TestHost`: node
//! behaviour here, each tool in `tools.rs`, button actions in `actions.rs`.

mod actions;
mod tools;

use serde_json::{Value, json};
use weft_protocol::{UiAction, UiActions};
use weft_sdk::testing::{TestHost, describe};
use weft_sdk::{Capability, EventKind, Level, Message, Scope, TickOutput};

use crate::{UI_STATE_KEY, Ui, UiState};

/// A `ui` message with these calls.
fn ui(calls: &[Value]) -> Message {
    Message::new("thinker", "ui", &json!({ "actions": calls }))
}

/// One tool call.
fn call(tool: &str, args: Value) -> Value {
    json!({"tool": tool, "args": args})
}

/// An `action` message.
fn press(action: &str, machine: Option<&str>) -> Message {
    Message::new(
        "user",
        "action",
        &json!({"action": action, "machine": machine}),
    )
}

/// `create_machine` for a traffic light: red (initial, a `go:green`
/// button), green (a `go:red` button).
fn light() -> Value {
    call(
        "create_machine",
        json!({"name": "light", "states": [
            {"name": "red", "content": "Stop", "buttons": [{"label": "Go", "action": "go:green"}]},
            {"name": "green", "content": "Walk", "buttons": [{"label": "Stop", "action": "go:red"}]}
        ]}),
    )
}

/// A host that already ran `calls` (one message), with its records cleared
/// by starting over from the saved state.
fn host_with(calls: &[Value]) -> TestHost {
    let host = TestHost::for_node::<Ui>();
    host.tick::<Ui>(&[ui(calls)]).unwrap();
    let saved = host.memory(Scope::Node, UI_STATE_KEY).unwrap();
    TestHost::for_node::<Ui>().with_memory(Scope::Node, UI_STATE_KEY, saved)
}

/// The saved state, as JSON.
fn saved(host: &TestHost) -> Value {
    host.memory_json(Scope::Node, UI_STATE_KEY)
        .expect("the ui node saved its state")
}

/// The `errors` of every `updated` event, in order.
fn errors(host: &TestHost) -> Vec<Vec<String>> {
    host.events_of(EventKind::Updated)
        .into_iter()
        .map(|event| serde_json::from_value(event["errors"].clone()).unwrap())
        .collect()
}

/// Run one message and return the errors it produced (asserting one event).
fn run(host: &TestHost, message: Message) -> Vec<String> {
    let before = errors(host).len();
    let output = host.tick::<Ui>(&[message]).unwrap();
    assert_silent(&output);
    let all = errors(host);
    assert_eq!(all.len(), before + 1, "one updated event per message");
    all.last().unwrap().clone()
}

/// The ui node never sends, replies or finishes the run.
fn assert_silent(output: &TickOutput) {
    assert!(output.messages.is_empty(), "{output:?}");
    assert_eq!(output.reply, None);
    assert!(!output.done);
}

#[test]
fn a_message_emits_one_updated_event_with_the_saved_state() {
    let host = TestHost::for_node::<Ui>();
    let errors = run(
        &host,
        ui(&[
            light(),
            call("set_state", json!({"key": "mode", "value": "dark"})),
        ]),
    );

    assert!(errors.is_empty(), "{errors:?}");
    let expected = json!({
        "machines": {"light": {
            "states": {
                "green": {"content": "Walk", "buttons": [{"label": "Stop", "action": "go:red"}]},
                "red": {"content": "Stop", "buttons": [{"label": "Go", "action": "go:green"}]}
            },
            "initial": "red",
            "current": "red"
        }},
        "state": {"mode": "dark"},
        "display": [],
        "controls": [{"machine": "light", "label": "Go", "action": "go:green"}]
    });
    assert_eq!(saved(&host), expected);
    assert_eq!(
        host.events_of(EventKind::Updated),
        [json!({"state": expected, "errors": []})]
    );
    assert_eq!(host.memory(Scope::Thread, UI_STATE_KEY), None);
    assert!(host.llm_requests().is_empty());
    assert!(host.warnings().is_empty());
}

#[test]
fn an_invalid_call_is_collected_and_the_others_still_apply() {
    let host = TestHost::for_node::<Ui>();
    let errors = run(
        &host,
        ui(&[
            call("transition_machine", json!({"machine": "nope", "to": "x"})),
            light(),
            light(),
            call("set_state", json!({"key": "mode", "value": 1})),
        ]),
    );

    assert_eq!(
        errors,
        [
            "transition_machine: no machine named `nope`",
            "create_machine: machine `light` already exists"
        ]
    );
    let state = saved(&host);
    assert_eq!(state["machines"]["light"]["current"], "red");
    assert_eq!(state["state"], json!({"mode": 1}));
    // Some calls applied: no warning.
    assert!(host.warnings().is_empty());
}

#[test]
fn a_message_whose_every_call_failed_still_succeeds_with_a_warning() {
    let host = TestHost::for_node::<Ui>();
    let errors = run(
        &host,
        ui(&[
            call("reset_machine", json!({"machine": "a"})),
            call("destroy_machine", json!({"machine": "b"})),
        ]),
    );

    assert_eq!(errors.len(), 2);
    let warnings = host.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("nothing of message"), "{warnings:?}");
    assert!(warnings[0].contains("no machine named `a`"), "{warnings:?}");
    assert_eq!(
        saved(&host),
        serde_json::to_value(UiState::default()).unwrap()
    );
}

#[test]
fn state_carries_over_between_ticks_and_messages() {
    let host = TestHost::for_node::<Ui>();
    host.tick::<Ui>(&[ui(&[light()])]).unwrap();
    let output = host
        .tick::<Ui>(&[
            ui(&[call(
                "transition_machine",
                json!({"machine": "light", "to": "green"}),
            )]),
            ui(&[call("set_state", json!({"key": "k", "value": "v"}))]),
        ])
        .unwrap();
    assert_silent(&output);

    let events = host.events_of(EventKind::Updated);
    assert_eq!(events.len(), 3);
    assert_eq!(events[1]["state"]["machines"]["light"]["current"], "green");
    assert_eq!(events[1]["state"]["state"], json!({}));
    assert_eq!(events[2]["state"]["state"], json!({"k": "v"}));
    assert_eq!(events[2]["state"], saved(&host));
}

#[test]
fn a_broken_saved_state_is_replaced_with_an_error_log() {
    let host =
        TestHost::for_node::<Ui>().with_memory(Scope::Node, UI_STATE_KEY, "{\"machines\": 3}");
    let errors = run(
        &host,
        ui(&[call("set_state", json!({"key": "k", "value": true}))]),
    );

    assert!(errors.is_empty());
    assert_eq!(saved(&host)["state"], json!({"k": true}));
    assert!(
        host.logs()
            .iter()
            .any(|(level, line)| *level == Level::Error && line.contains("does not parse"))
    );
}

#[test]
fn other_kinds_are_skipped_with_a_warning() {
    let host = TestHost::for_node::<Ui>();
    let stray = Message::new("pa", "respond", &json!({"request": "x", "language": "en"}));
    let output = host.tick::<Ui>(&[stray]).unwrap();
    assert_silent(&output);
    assert!(host.events().is_empty());
    assert_eq!(host.memory(Scope::Node, UI_STATE_KEY), None);
    assert!(host.warnings()[0].contains("respond"));
}

#[test]
fn describe_declares_schemas_and_capabilities() {
    let info = describe::<Ui>();
    assert_eq!(info.name, "ui");
    assert_eq!(
        info.capabilities,
        [Capability::Memory, Capability::Hud, Capability::Log]
    );
    assert_eq!(
        info.input_schema,
        json!({"anyOf": [UiActions::schema(), UiAction::schema()]})
    );
}
