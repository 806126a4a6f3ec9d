//! Each UI tool, and the errors each can report.

use std::slice;

use serde_json::json;
use weft_sdk::testing::TestHost;

use super::{call, errors, host_with, light, run, saved, ui};
use crate::Ui;

#[test]
fn create_machine_starts_in_the_first_state_unless_initial_is_given() {
    let host = TestHost::for_node::<Ui>();
    let errors = run(
        &host,
        ui(&[
            call(
                "create_machine",
                json!({"name": " door ", "states": [{"name": "shut"}, {"name": "open"}]}),
            ),
            call(
                "create_machine",
                json!({"name": "lamp", "states": [{"name": "off"}, {"name": "on"}], "initial": "on"}),
            ),
            call(
                "create_machine",
                json!({"name": "fan", "states": [{"name": "slow"}], "initial": ""}),
            ),
        ]),
    );

    assert!(errors.is_empty(), "{errors:?}");
    let machines = &saved(&host)["machines"];
    assert_eq!(
        machines["door"],
        json!({"states": {"open": {"content": "", "buttons": []}, "shut": {"content": "", "buttons": []}},
               "initial": "shut", "current": "shut"})
    );
    assert_eq!(machines["lamp"]["initial"], "on");
    assert_eq!(machines["lamp"]["current"], "on");
    assert_eq!(machines["fan"]["current"], "slow");
}

#[test]
fn create_machine_errors() {
    let host = host_with(&[light()]);
    let cases = [
        (light(), "create_machine: machine `light` already exists"),
        (
            call("create_machine", json!({"states": [{"name": "a"}]})),
            "create_machine: missing field `name`",
        ),
        (
            call(
                "create_machine",
                json!({"name": " ", "states": [{"name": "a"}]}),
            ),
            "create_machine: `name` is empty",
        ),
        (
            call("create_machine", json!({"name": "m", "states": []})),
            "create_machine: `states` is empty",
        ),
        (
            call(
                "create_machine",
                json!({"name": "m", "states": [{"name": "a"}, {"name": "a "}]}),
            ),
            "create_machine: state `a` is listed twice",
        ),
        (
            call(
                "create_machine",
                json!({"name": "m", "states": [{"name": "a"}], "initial": "b"}),
            ),
            "create_machine: initial state `b` is not one of the states",
        ),
        (
            call(
                "create_machine",
                json!({"name": "m", "states": [{"name": "a", "buttons": [{"label": "", "action": "go:a"}]}]}),
            ),
            "create_machine: state `a` has a button without a label or an action",
        ),
        (
            call(
                "create_machine",
                json!({"name": "m", "states": [{"name": "a", "buttons": [{"label": "x"}]}]}),
            ),
            "create_machine: missing field `action`",
        ),
        (
            call("create_machine", json!({"name": "m", "states": "a, b"})),
            "create_machine: invalid type: string \"a, b\", expected a sequence",
        ),
    ];
    for (bad, expected) in cases {
        assert_eq!(run(&host, ui(slice::from_ref(&bad))), [expected], "{bad}");
    }
    // Nothing changed: still only the light, untouched.
    let machines = saved(&host)["machines"].clone();
    assert_eq!(machines.as_object().unwrap().len(), 1);
    assert_eq!(machines["light"]["current"], "red");
}

#[test]
fn add_state_adds_a_state_with_its_buttons() {
    let host = host_with(&[light()]);
    let errors = run(
        &host,
        ui(&[call(
            "add_state",
            json!({"machine": "light", "state": {"name": "amber", "content": "Wait",
                   "buttons": [{"label": "Red", "action": "go:red"}]}}),
        )]),
    );

    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        saved(&host)["machines"]["light"]["states"]["amber"],
        json!({"content": "Wait", "buttons": [{"label": "Red", "action": "go:red"}]})
    );
    assert_eq!(saved(&host)["machines"]["light"]["current"], "red");
}

#[test]
fn add_state_errors() {
    let host = host_with(&[light()]);
    let cases = [
        (
            call(
                "add_state",
                json!({"machine": "nope", "state": {"name": "x"}}),
            ),
            "add_state: no machine named `nope`",
        ),
        (
            call(
                "add_state",
                json!({"machine": "light", "state": {"name": "red"}}),
            ),
            "add_state: machine `light` already has state `red`",
        ),
        (
            call("add_state", json!({"machine": "light"})),
            "add_state: missing field `state`",
        ),
        (
            call(
                "add_state",
                json!({"machine": "light", "state": {"content": "x"}}),
            ),
            "add_state: missing field `name`",
        ),
    ];
    for (bad, expected) in cases {
        assert_eq!(run(&host, ui(slice::from_ref(&bad))), [expected], "{bad}");
    }
    let states = saved(&host)["machines"]["light"]["states"].clone();
    assert_eq!(states.as_object().unwrap().len(), 2);
}

#[test]
fn reset_machine_goes_back_to_the_initial_state() {
    let host = host_with(&[
        light(),
        call(
            "transition_machine",
            json!({"machine": "light", "to": "green"}),
        ),
    ]);
    assert_eq!(saved(&host)["machines"]["light"]["current"], "green");

    let errors = run(
        &host,
        ui(&[call("reset_machine", json!({"machine": "light"}))]),
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(saved(&host)["machines"]["light"]["current"], "red");
    assert_eq!(
        saved(&host)["controls"],
        json!([{"machine": "light", "label": "Go", "action": "go:green"}])
    );

    assert_eq!(
        run(
            &host,
            ui(&[call("reset_machine", json!({"machine": "lamp"}))])
        ),
        ["reset_machine: no machine named `lamp`"]
    );
    assert_eq!(
        run(&host, ui(&[call("reset_machine", json!({}))])),
        ["reset_machine: missing field `machine`"]
    );
}

#[test]
fn destroy_machine_removes_it_and_its_controls() {
    let host = host_with(&[
        light(),
        call(
            "create_machine",
            json!({"name": "lamp", "states": [
            {"name": "off", "buttons": [{"label": "On", "action": "go:on"}]}, {"name": "on"}]}),
        ),
    ]);
    assert_eq!(saved(&host)["controls"].as_array().unwrap().len(), 2);

    let errors = run(
        &host,
        ui(&[call("destroy_machine", json!({"machine": "light"}))]),
    );
    assert!(errors.is_empty(), "{errors:?}");
    let state = saved(&host);
    assert_eq!(
        state["machines"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["lamp"]
    );
    assert_eq!(
        state["controls"],
        json!([{"machine": "lamp", "label": "On", "action": "go:on"}])
    );

    assert_eq!(
        run(
            &host,
            ui(&[call("destroy_machine", json!({"machine": "light"}))])
        ),
        ["destroy_machine: no machine named `light`"]
    );
}

#[test]
fn transition_machine_moves_it_and_updates_the_controls() {
    let host = host_with(&[light()]);
    let errors = run(
        &host,
        ui(&[call(
            "transition_machine",
            json!({"machine": "light", "to": "green"}),
        )]),
    );

    assert!(errors.is_empty(), "{errors:?}");
    let state = saved(&host);
    assert_eq!(state["machines"]["light"]["current"], "green");
    assert_eq!(
        state["controls"],
        json!([{"machine": "light", "label": "Stop", "action": "go:red"}])
    );

    let cases = [
        (
            call(
                "transition_machine",
                json!({"machine": "light", "to": "blue"}),
            ),
            "transition_machine: machine `light` has no state `blue`",
        ),
        (
            call(
                "transition_machine",
                json!({"machine": "lamp", "to": "red"}),
            ),
            "transition_machine: no machine named `lamp`",
        ),
        (
            call("transition_machine", json!({"machine": "light"})),
            "transition_machine: missing field `to`",
        ),
    ];
    for (bad, expected) in cases {
        assert_eq!(run(&host, ui(slice::from_ref(&bad))), [expected], "{bad}");
    }
    assert_eq!(saved(&host)["machines"]["light"]["current"], "green");
}

#[test]
fn set_state_stores_any_json_value_under_its_key() {
    let host = TestHost::for_node::<Ui>();
    let errors = run(
        &host,
        ui(&[
            call("set_state", json!({"key": "mode", "value": "dark"})),
            call("set_state", json!({"key": "count", "value": 3})),
            call("set_state", json!({"key": "picked", "value": null})),
            call("set_state", json!({"key": "mode", "value": "light"})),
        ]),
    );

    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        saved(&host)["state"],
        json!({"count": 3, "mode": "light", "picked": null})
    );

    let cases = [
        (
            call("set_state", json!({"key": "k"})),
            "set_state: missing field `value`",
        ),
        (
            call("set_state", json!({"key": "", "value": 1})),
            "set_state: `key` is empty",
        ),
        (
            call("set_state", json!({"value": 1})),
            "set_state: missing field `key`",
        ),
    ];
    for (bad, expected) in cases {
        assert_eq!(run(&host, ui(slice::from_ref(&bad))), [expected], "{bad}");
    }
}

#[test]
fn emit_display_keeps_the_latest_display() {
    let host = TestHost::for_node::<Ui>();
    let table = json!({"title": "devices", "columns": ["name"], "rows": [["m-1"], ["m-2"]]});
    let summary = json!({"title": "summary", "items": ["2 devices", "both meters"]});
    run(&host, ui(&[call("emit_display", table.clone())]));
    assert_eq!(saved(&host)["display"], json!([table]));

    let errors = run(&host, ui(&[call("emit_display", summary.clone())]));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(saved(&host)["display"], json!([summary]));

    let errors = run(&host, ui(&[call("emit_display", json!({"title": 5}))]));
    assert_eq!(
        errors,
        ["emit_display: invalid type: integer `5`, expected a string"]
    );
    let errors = run(&host, ui(&[call("emit_display", json!({"rows": ["m-1"]}))]));
    assert_eq!(
        errors,
        ["emit_display: invalid type: string \"m-1\", expected a sequence"]
    );
    assert_eq!(saved(&host)["display"], json!([summary]));
}

#[test]
fn an_unknown_tool_is_an_error() {
    let host = TestHost::for_node::<Ui>();
    let reported = run(&host, ui(&[call("query_db", json!({"sql": "SELECT 1"}))]));
    assert_eq!(reported, ["query_db: \"query_db\" is not a UI tool"]);
    assert_eq!(errors(&host), [reported]);
}
