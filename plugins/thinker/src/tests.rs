//! Native tests of the thinker node against `weft_sdk::testing::TestHost`.

use serde_json::{Value as Json, json};
use weft_protocol::{
    DirectorPlan, Interpret, PlanMessage, Respond, ToolCall, ToolOutput, UiActions,
};
use weft_sdk::testing::{TestHost, describe};
use weft_sdk::{Capability, Column, Error, EventKind, Message, NodeError, Rows, TickOutput, Value};

use crate::Thinker;

fn call(tool: &str, args: Json) -> ToolCall {
    ToolCall {
        tool: tool.into(),
        args,
    }
}

fn plan(tools: Vec<ToolCall>) -> [Message; 1] {
    let message = PlanMessage {
        plan: DirectorPlan {
            goal: "help".into(),
            steps: vec![],
            present_as: "text".into(),
            tool_sequence: tools,
            reasoning: "because".into(),
            response_hint: "be brief".into(),
        },
        request: "the request".into(),
        language: "en".into(),
    };
    [Message::new("director", "plan", &message)]
}

fn create_light() -> ToolCall {
    call(
        "create_machine",
        json!({"name": "light", "states": [{"name": "red"}, {"name": "green"}]}),
    )
}

fn set_mode() -> ToolCall {
    call("set_state", json!({"key": "mode", "value": "dark"}))
}

fn count_query() -> ToolCall {
    call(
        "query_db",
        json!({"sql": "SELECT name FROM devices WHERE kind = ? AND active = ?", "params": ["meter", true]}),
    )
}

/// (to, kind) of every message sent, in order.
fn routes(output: &TickOutput) -> Vec<(&str, &str)> {
    output
        .messages
        .iter()
        .map(|message| (message.to.as_str(), message.kind.as_str()))
        .collect()
}

fn devices_host() -> TestHost {
    TestHost::for_node::<Thinker>().on_query(|_, _| {
        Ok(Rows::new(
            ["name"],
            [vec![Value::from("m-1")], vec![Value::from("m-2")]],
        ))
    })
}

#[test]
fn only_ui_tools_send_the_calls_to_ui_and_a_draft_to_output() {
    let host = TestHost::for_node::<Thinker>();
    let output = host
        .tick::<Thinker>(&plan(vec![create_light(), set_mode()]))
        .unwrap();

    assert_eq!(routes(&output), [("ui", "ui"), ("output", "respond")]);
    let ui: UiActions = output.messages[0].json().unwrap();
    assert_eq!(ui.actions, [create_light(), set_mode()]);
    let respond: Respond = output.messages[1].json().unwrap();
    assert_eq!(
        respond,
        Respond {
            request: "the request".into(),
            language: "en".into(),
            response_hint: "be brief".into(),
            draft: Some("created machine light with states red, green; set mode to dark".into()),
            result: None,
            error: None,
        }
    );
    assert_eq!(output.reply, None);
    assert!(!output.done);
    assert!(host.queries().is_empty());
    assert!(host.progress().is_empty());
    assert!(host.events().is_empty());
}

#[test]
fn a_query_sends_the_outputs_to_the_interpreter() {
    let host = devices_host();
    let output = host
        .tick::<Thinker>(&plan(vec![create_light(), count_query()]))
        .unwrap();

    assert_eq!(
        routes(&output),
        [("ui", "ui"), ("interpreter", "interpret")]
    );
    let ui: UiActions = output.messages[0].json().unwrap();
    assert_eq!(ui.actions, [create_light()]);
    let interpret: Interpret = output.messages[1].json().unwrap();
    assert_eq!(
        interpret,
        Interpret {
            request: "the request".into(),
            language: "en".into(),
            response_hint: "be brief".into(),
            outputs: vec![
                ToolOutput {
                    tool: "create_machine".into(),
                    args: create_light().args,
                    result: Some(json!("created machine light with states red, green")),
                    error: None,
                },
                ToolOutput {
                    tool: "query_db".into(),
                    args: count_query().args,
                    result: Some(
                        json!({"columns": ["name"], "rows": [["m-1"], ["m-2"]], "truncated": false})
                    ),
                    error: None,
                },
            ],
        }
    );
    assert_eq!(
        host.queries(),
        [(
            "SELECT name FROM devices WHERE kind = ? AND active = ?".to_owned(),
            vec![Value::from("meter"), Value::Integer(1)]
        )]
    );
    assert_eq!(host.progress(), ["querying the database…"]);
    assert_eq!(
        host.events_of(EventKind::ToolCall),
        [json!({"tool": "query_db", "args": count_query().args})]
    );
    assert_eq!(host.events().len(), 1);
}

#[test]
fn a_db_error_becomes_the_output_error_and_the_plan_goes_on() {
    let host = TestHost::for_node::<Thinker>().table(
        "devices",
        [
            Column::new("id", "INTEGER").primary_key(),
            Column::new("name", "TEXT"),
        ],
        [],
    );
    let tools = vec![
        call("query_db", json!({"sql": "DELETE FROM devices"})),
        call("describe_table", json!({"table": "devices"})),
        call("list_tables", json!({})),
    ];
    let output = host.tick::<Thinker>(&plan(tools)).unwrap();

    assert_eq!(routes(&output), [("interpreter", "interpret")]);
    let interpret: Interpret = output.messages[0].json().unwrap();
    let outputs = interpret.outputs;
    assert_eq!(outputs.len(), 3);
    assert_eq!(outputs[0].result, None);
    let error = outputs[0].error.as_deref().unwrap();
    assert!(error.starts_with("invalid-input: "), "{error}");
    assert_eq!(
        outputs[1].result,
        Some(json!({"table": "devices", "columns": [
            {"name": "id", "type": "INTEGER", "nullable": false, "primary_key": true},
            {"name": "name", "type": "TEXT", "nullable": true, "primary_key": false}
        ]}))
    );
    assert_eq!(outputs[2].result, Some(json!({"tables": ["devices"]})));
    assert_eq!(
        host.progress(),
        [
            "querying the database…",
            "reading the columns of devices…",
            "listing the tables…"
        ]
    );
    let tools: Vec<Json> = host
        .events_of(EventKind::ToolCall)
        .into_iter()
        .map(|event| event["tool"].clone())
        .collect();
    assert_eq!(tools, ["query_db", "describe_table", "list_tables"]);
    let warnings = host.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("query_db failed"), "{warnings:?}");
}

#[test]
fn a_malformed_ui_call_is_reported_not_sent() {
    let host = TestHost::for_node::<Thinker>();
    let nameless = call("create_machine", json!({"states": [{"name": "a"}]}));
    let output = host
        .tick::<Thinker>(&plan(vec![nameless, set_mode()]))
        .unwrap();

    assert_eq!(routes(&output), [("ui", "ui"), ("output", "respond")]);
    let ui: UiActions = output.messages[0].json().unwrap();
    assert_eq!(ui.actions, [set_mode()]);
    let respond: Respond = output.messages[1].json().unwrap();
    assert_eq!(respond.draft.as_deref(), Some("set mode to dark"));
    assert_eq!(
        respond.error.as_deref(),
        Some("create_machine: `name` is missing")
    );
    assert_eq!(host.warnings().len(), 1);
}

#[test]
fn a_malformed_data_call_does_not_reach_the_database() {
    let host = TestHost::for_node::<Thinker>();
    let output = host
        .tick::<Thinker>(&plan(vec![call("query_db", json!({"params": [1]}))]))
        .unwrap();

    assert_eq!(routes(&output), [("output", "respond")]);
    let respond: Respond = output.messages[0].json().unwrap();
    assert_eq!(respond.draft, None);
    assert_eq!(respond.error.as_deref(), Some("query_db: `sql` is missing"));
    assert!(host.queries().is_empty());
    assert!(host.progress().is_empty());
    assert!(host.events().is_empty());
}

#[test]
fn an_empty_plan_asks_output_to_answer_from_the_hint() {
    let host = TestHost::for_node::<Thinker>();
    let output = host.tick::<Thinker>(&plan(vec![])).unwrap();

    assert_eq!(routes(&output), [("output", "respond")]);
    let respond: Respond = output.messages[0].json().unwrap();
    assert_eq!(
        respond,
        Respond {
            request: "the request".into(),
            language: "en".into(),
            response_hint: "be brief".into(),
            draft: None,
            result: None,
            error: None,
        }
    );
}

#[test]
fn queries_keep_at_most_max_rows_rows() {
    let host = TestHost::for_node::<Thinker>()
        .config(json!({"max_rows": 2}))
        .on_query(|_, _| Ok(Rows::new(["n"], (1..=5).map(|n| vec![Value::from(n)]))));
    let output = host
        .tick::<Thinker>(&plan(vec![call(
            "query_db",
            json!({"sql": "SELECT n FROM t"}),
        )]))
        .unwrap();

    let interpret: Interpret = output.messages[0].json().unwrap();
    assert_eq!(
        interpret.outputs[0].result,
        Some(json!({"columns": ["n"], "rows": [[1], [2]], "truncated": true}))
    );

    // The host's own truncation is passed on too.
    let host = TestHost::for_node::<Thinker>().on_query(|_, _| {
        let mut rows = Rows::new(["n"], [vec![Value::from(1)]]);
        rows.truncated = true;
        Ok(rows)
    });
    let output = host
        .tick::<Thinker>(&plan(vec![call(
            "query_db",
            json!({"sql": "SELECT n FROM t"}),
        )]))
        .unwrap();
    let interpret: Interpret = output.messages[0].json().unwrap();
    assert_eq!(
        interpret.outputs[0].result.as_ref().unwrap()["truncated"],
        true
    );
}

#[test]
fn peers_come_from_the_config_and_bad_configs_are_invalid_input() {
    let host = devices_host().config(json!({"ui": "screen", "interpreter": "reader"}));
    let output = host
        .tick::<Thinker>(&plan(vec![set_mode(), count_query()]))
        .unwrap();
    assert_eq!(routes(&output), [("screen", "ui"), ("reader", "interpret")]);

    let host = TestHost::for_node::<Thinker>().config(json!({"output": "voice"}));
    let output = host.tick::<Thinker>(&plan(vec![])).unwrap();
    assert_eq!(routes(&output), [("voice", "respond")]);

    for bad in [
        json!({"max_rows": 0}),
        json!({"ui": " "}),
        json!({"max_rows": -1}),
        json!({"rows": 5}),
    ] {
        let host = TestHost::for_node::<Thinker>().config(bad.clone());
        let error = host.tick::<Thinker>(&plan(vec![])).unwrap_err();
        assert!(
            matches!(error, NodeError::InvalidInput(_)),
            "{bad}: {error:?}"
        );
    }
}

#[test]
fn a_denied_db_fails_the_tick() {
    let host = TestHost::new().grant_only([Capability::Hud, Capability::Log]);
    let error = host
        .tick::<Thinker>(&plan(vec![call("list_tables", json!({}))]))
        .unwrap_err();
    assert_eq!(error, NodeError::Capability(Error::Denied(Capability::Db)));
}

#[test]
fn other_kinds_are_skipped_with_a_warning() {
    let host = TestHost::for_node::<Thinker>();
    let stray = Message::new("input", "command", &json!({"source_text": "hi"}));
    let output = host.tick::<Thinker>(&[stray]).unwrap();
    assert!(output.messages.is_empty());
    assert!(host.warnings()[0].contains("command"));
}

#[test]
fn describe_declares_schemas_and_capabilities() {
    let info = describe::<Thinker>();
    assert_eq!(info.name, "thinker");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        info.capabilities,
        [
            Capability::Db,
            Capability::Tools,
            Capability::Hud,
            Capability::Log
        ]
    );
    assert_eq!(info.input_schema, PlanMessage::schema());
    assert_eq!(info.output_schema["anyOf"].as_array().unwrap().len(), 3);
}

fn clock_tool() -> weft_sdk::Tool {
    weft_sdk::Tool {
        server: "clock".into(),
        name: "days_between".into(),
        description: "Days between two dates".into(),
        input_schema: json!({"type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"}}}),
    }
}

#[test]
fn mcp_tools_run_through_the_tools_capability_and_go_to_the_interpreter() {
    let host = TestHost::for_node::<Thinker>().with_tool(
        clock_tool(),
        weft_sdk::ToolResult {
            text: "31".into(),
            content: json!({"content": [{"type": "text", "text": "31"}], "structuredContent": {"days": 31}}),
            is_error: false,
        },
    );
    let args = json!({"from": "2026-01-01", "to": "2026-02-01"});
    let output = host
        .tick::<Thinker>(&plan(vec![
            call("clock.days_between", args.clone()),
            call("clock.not_granted", json!({})),
        ]))
        .unwrap();
    assert_eq!(routes(&output), [("interpreter", "interpret")]);
    let interpret: Interpret = output.messages[0].json().unwrap();
    assert_eq!(
        interpret.outputs[0],
        ToolOutput {
            tool: "clock.days_between".into(),
            args: args.clone(),
            result: Some(json!({"days": 31})),
            error: None,
        }
    );
    // A tool the node may not call is an output's error; the plan went on.
    assert_eq!(interpret.outputs[1].error.as_deref(), Some("denied(tools)"));
    assert_eq!(
        host.tool_calls()[0],
        ("clock".into(), "days_between".into(), args)
    );
    assert!(
        host.progress().iter().any(|p| p.contains("clock")),
        "{:?}",
        host.progress()
    );
}

#[test]
fn a_tools_own_error_is_the_outputs_error() {
    let host = TestHost::for_node::<Thinker>().with_tool(
        clock_tool(),
        weft_sdk::ToolResult {
            text: "bad date".into(),
            content: json!({"content": [{"type": "text", "text": "bad date"}]}),
            is_error: true,
        },
    );
    let output = host
        .tick::<Thinker>(&plan(vec![call(
            "clock.days_between",
            json!({"from": "x"}),
        )]))
        .unwrap();
    let interpret: Interpret = output.messages[0].json().unwrap();
    assert_eq!(interpret.outputs[0].error.as_deref(), Some("bad date"));
    assert_eq!(interpret.outputs[0].result, None);
}
