//! Button actions: `go:<state>` is handled locally, with no model call.

use serde_json::json;
use weft_sdk::testing::TestHost;

use super::{call, host_with, light, press, run, saved};

/// The light, and a door that also has a `red` state (for ambiguity).
fn two_machines() -> TestHost {
    host_with(&[
        light(),
        call(
            "create_machine",
            json!({"name": "door", "states": [{"name": "shut"}, {"name": "red"}]}),
        ),
    ])
}

#[test]
fn go_moves_the_named_machine_without_any_llm_call() {
    // `TestHost::new` grants every capability, llm included: the node could
    // call the model, and must not.
    let host = TestHost::new().with_memory(
        weft_sdk::Scope::Node,
        crate::UI_STATE_KEY,
        saved(&two_machines()).to_string(),
    );
    let errors = run(&host, press("go:green", Some("light")));

    assert!(errors.is_empty(), "{errors:?}");
    assert!(host.llm_requests().is_empty());
    let state = saved(&host);
    assert_eq!(state["machines"]["light"]["current"], "green");
    assert_eq!(state["machines"]["door"]["current"], "shut");
    assert_eq!(
        state["controls"],
        json!([{"machine": "light", "label": "Stop", "action": "go:red"}])
    );
}

#[test]
fn go_without_a_machine_moves_the_only_machine_with_that_state() {
    let host = two_machines();
    let errors = run(&host, press("go:green", None));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(saved(&host)["machines"]["light"]["current"], "green");

    let errors = run(&host, press("go:red", Some("door")));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(saved(&host)["machines"]["door"]["current"], "red");
    assert!(host.llm_requests().is_empty());
}

#[test]
fn an_ambiguous_or_unknown_state_is_an_error_with_a_warning() {
    let host = two_machines();
    let before = saved(&host);
    let cases = [
        (
            press("go:red", None),
            "action \"go:red\": state `red` is ambiguous: machines door, light have it",
        ),
        (
            press("go:blue", None),
            "action \"go:blue\": no machine has state `blue`",
        ),
        (
            press("go:blue", Some("light")),
            "action \"go:blue\": machine `light` has no state `blue`",
        ),
        (
            press("go:red", Some("lamp")),
            "action \"go:red\": no machine named `lamp`",
        ),
        (press("go:", None), "action \"go:\": `state` is empty"),
    ];
    for (message, expected) in cases {
        assert_eq!(run(&host, message), [expected]);
    }
    assert_eq!(saved(&host), before);
    assert_eq!(host.warnings().len(), 5);
}

#[test]
fn other_actions_are_error_entries() {
    let host = two_machines();
    let errors = run(&host, press("open:details", Some("light")));
    assert_eq!(
        errors,
        ["action \"open:details\": only go:<state> actions are handled"]
    );
    assert!(host.llm_requests().is_empty());
    assert_eq!(saved(&host)["machines"]["light"]["current"], "red");
}
