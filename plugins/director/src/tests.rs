//! Native tests of the director node against `weft_sdk::testing::TestHost`.

use serde_json::{Value, json};
use weft_protocol::{
    Analysis, Command, Complexity, DATA_TOOLS, DirectorPlan, Intent, PlanMessage, ToolCall,
    UI_TOOLS,
};
use weft_sdk::testing::{TestHost, describe};
use weft_sdk::{Capability, Error, EventKind, Message, NodeError, Role, TickOutput};

use crate::{Director, FALLBACK_HINT, PLANNING_PROGRESS, TOOL_GUIDE, fallback_plan, prompt};

fn command(text: &str) -> Command {
    Command {
        analysis: Analysis {
            intent: Intent::Request,
            topic: "traffic light".into(),
            language: "de".into(),
            tone: "neutral".into(),
            complexity: Complexity::Complex,
            reflex: false,
        },
        source_text: text.into(),
    }
}

fn inbox(text: &str) -> [Message; 1] {
    [Message::new("input", "command", &command(text))]
}

fn plan_json(tools: Value) -> Value {
    json!({
        "goal": "show a traffic light",
        "steps": ["create the machine"],
        "present_as": "machine",
        "tool_sequence": tools,
        "reasoning": "the user asked for a UI",
        "response_hint": "confirm briefly"
    })
}

/// The only message sent: to the thinker, kind `plan`.
fn only_plan(output: &TickOutput) -> PlanMessage {
    assert_eq!(output.messages.len(), 1, "{output:?}");
    let message = &output.messages[0];
    assert_eq!(
        (message.to.as_str(), message.kind.as_str()),
        ("thinker", "plan")
    );
    message.json().unwrap()
}

#[test]
fn the_plan_goes_to_the_thinker_with_the_request_and_language() {
    let answer = plan_json(json!([
        {"tool": "create_machine", "args": {"name": "light", "states": [{"name": "red"}]}},
        {"tool": "query_db", "args": {"sql": "SELECT count(*) FROM devices"}}
    ]));
    let host = TestHost::for_node::<Director>().answer_json(&answer);
    let output = host.tick::<Director>(&inbox("Bau mir eine Ampel")).unwrap();

    let expected: DirectorPlan = serde_json::from_value(answer.clone()).unwrap();
    assert_eq!(
        only_plan(&output),
        PlanMessage {
            plan: expected,
            request: "Bau mir eine Ampel".into(),
            language: "de".into(),
        }
    );
    assert_eq!(output.reply, None);
    assert!(!output.done);
    assert_eq!(host.progress(), [PLANNING_PROGRESS]);
    assert_eq!(
        host.events_of(EventKind::Decided),
        [json!({"plan": answer})]
    );
    assert_eq!(host.events().len(), 1);
    assert!(host.warnings().is_empty());
}

#[test]
fn one_constrained_call_lists_the_tools_the_analysis_and_the_text() {
    let host = TestHost::for_node::<Director>().answer_json(&plan_json(json!([])));
    host.tick::<Director>(&inbox("Wie viele Geräte gibt es?"))
        .unwrap();

    let requests = host.llm_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(!request.stream);
    assert_eq!(request.max_tokens, 600);
    assert_eq!(request.messages.len(), 2);
    assert_eq!(request.messages[0].role, Role::System);
    let user = &request.messages[1].content;
    for (tool, guide) in TOOL_GUIDE {
        assert!(
            user.contains(&format!("- {tool} {guide}")),
            "{tool}: {user}"
        );
    }
    assert!(user.contains(r#""topic":"traffic light""#), "{user}");
    assert!(
        user.ends_with("User message: Wie viele Geräte gibt es?"),
        "{user}"
    );

    let schema: Value = serde_json::from_str(request.json_schema.as_ref().unwrap()).unwrap();
    assert_eq!(schema, prompt::schema(&[]));
    assert_eq!(schema["properties"]["tool_sequence"]["maxItems"], 8);
    assert_eq!(schema["properties"]["steps"]["maxItems"], 8);
    // Apart from the bounds and the exact tool names, it is the protocol's
    // schema.
    let mut unbounded = schema.clone();
    for list in ["steps", "tool_sequence"] {
        unbounded["properties"][list]
            .as_object_mut()
            .unwrap()
            .remove("maxItems");
    }
    assert_eq!(
        unbounded["properties"]["tool_sequence"]["items"]["properties"]["tool"]["enum"],
        json!(weft_protocol::all_tools())
    );
    let mut protocol = DirectorPlan::schema();
    protocol["properties"]["tool_sequence"]["items"]["properties"]["tool"] =
        unbounded["properties"]["tool_sequence"]["items"]["properties"]["tool"].clone();
    assert_eq!(unbounded, protocol);
    assert!(!user.contains("Tools (external)"), "{user}");
}

#[test]
fn the_tool_guide_covers_every_tool_in_protocol_order() {
    let guided: Vec<&str> = TOOL_GUIDE.iter().map(|(tool, _)| *tool).collect();
    let protocol: Vec<&str> = UI_TOOLS.iter().chain(DATA_TOOLS.iter()).copied().collect();
    assert_eq!(guided, protocol);
}

#[test]
fn unknown_tools_and_non_object_args_are_dropped_with_a_warning() {
    let tools = json!([
        {"tool": "launch_rockets", "args": {}},
        {"tool": "list_tables", "args": {}},
        {"tool": "describe_table", "args": "devices"},
        {"tool": "set_state", "args": {"key": "mode", "value": "dark"}}
    ]);
    let host = TestHost::for_node::<Director>().answer_json(&plan_json(tools));
    let output = host.tick::<Director>(&inbox("do things")).unwrap();

    let sent = only_plan(&output);
    assert_eq!(
        sent.plan.tool_sequence,
        [
            ToolCall {
                tool: "list_tables".into(),
                args: json!({})
            },
            ToolCall {
                tool: "set_state".into(),
                args: json!({"key": "mode", "value": "dark"})
            },
        ]
    );
    let warnings = host.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("launch_rockets") && warnings[0].contains("unknown tool"));
    assert!(warnings[1].contains("describe_table") && warnings[1].contains("object"));
    // The event shows the plan that was sent, not the raw answer.
    assert_eq!(
        host.events_of(EventKind::Decided)[0]["plan"]["tool_sequence"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn an_unparseable_answer_sends_the_fallback_plan_with_a_warning() {
    for answer in ["I would create a machine.", r#"{"goal": "x", "steps": []}"#] {
        let host = TestHost::for_node::<Director>().answer(answer);
        let output = host.tick::<Director>(&inbox("hello?")).unwrap();

        let sent = only_plan(&output);
        assert_eq!(sent.plan, fallback_plan());
        assert!(sent.plan.tool_sequence.is_empty());
        assert_eq!(sent.plan.response_hint, FALLBACK_HINT);
        assert_eq!(sent.request, "hello?");
        let warnings = host.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("fallback"));
        assert_eq!(
            host.events_of(EventKind::Decided),
            [json!({"plan": fallback_plan()})]
        );
    }
}

#[test]
fn an_llm_error_fails_the_tick_and_sends_nothing() {
    let exhausted = Error::BudgetExhausted("thread token budget spent".into());
    let host = TestHost::for_node::<Director>().answer_error(exhausted.clone());
    let error = host.tick::<Director>(&inbox("hi")).unwrap_err();
    assert_eq!(error, NodeError::Capability(exhausted));
    assert!(host.events().is_empty());
}

#[test]
fn the_thinker_peer_comes_from_the_config() {
    let host = TestHost::for_node::<Director>()
        .config(json!({"thinker": "executor"}))
        .answer_json(&plan_json(json!([])));
    let output = host.tick::<Director>(&inbox("hi")).unwrap();
    assert_eq!(output.messages.len(), 1);
    assert_eq!(output.messages[0].to, "executor");

    for bad in [json!({"thinker": ""}), json!({"thinkr": "x"})] {
        let host = TestHost::for_node::<Director>().config(bad);
        let error = host.tick::<Director>(&inbox("hi")).unwrap_err();
        assert!(matches!(error, NodeError::InvalidInput(_)), "{error:?}");
        assert!(host.llm_requests().is_empty());
    }
}

#[test]
fn each_command_is_planned_in_order_and_other_kinds_are_skipped() {
    let host = TestHost::for_node::<Director>()
        .answer_json(&plan_json(json!([])))
        .answer("garbage");
    let stray = Message::new("ui", "action", &json!({"action": "go:red"}));
    let [first] = inbox("first");
    let [second] = inbox("second");
    let output = host.tick::<Director>(&[first, stray, second]).unwrap();

    let requests: Vec<PlanMessage> = output
        .messages
        .iter()
        .map(|message| message.json().unwrap())
        .collect();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].request, "first");
    assert_eq!(requests[0].plan.goal, "show a traffic light");
    assert_eq!(requests[1].request, "second");
    assert_eq!(requests[1].plan, fallback_plan());
    assert_eq!(host.llm_requests().len(), 2);
    assert!(host.warnings().iter().any(|line| line.contains("action")));
}

#[test]
fn describe_declares_schemas_and_capabilities() {
    let info = describe::<Director>();
    assert_eq!(info.name, "director");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        info.capabilities,
        [
            Capability::Llm,
            Capability::Tools,
            Capability::Hud,
            Capability::Log
        ]
    );
    assert_eq!(info.input_schema, Command::schema());
    assert_eq!(info.output_schema, PlanMessage::schema());
}

#[test]
fn granted_mcp_tools_are_offered_and_may_be_planned() {
    let tool = weft_sdk::Tool {
        server: "clock".into(),
        name: "days_between".into(),
        description: "Days between\n two dates.".into(),
        input_schema: json!({
            "type": "object",
            "properties": {"from": {"type": "string"}, "to": {"type": "string"}, "inclusive": {"type": "boolean"}},
            "required": ["from", "to"]
        }),
    };
    let answer = json!([
        {"tool": "clock.days_between", "args": {"from": "2026-01-01", "to": "2026-02-01"}},
        {"tool": "clock.unknown", "args": {}}
    ]);
    let host = TestHost::for_node::<Director>()
        .with_tool(
            tool,
            weft_sdk::ToolResult {
                text: String::new(),
                content: json!({}),
                is_error: false,
            },
        )
        .answer_json(&plan_json(answer));
    let output = host
        .tick::<Director>(&inbox("How many days until February?"))
        .unwrap();
    let request = &host.llm_requests()[0];
    let user = &request.messages[1].content;
    assert!(
        user.contains("Tools (external):\n- clock.days_between {from, inclusive?, to} Days between two dates.\n"),
        "{user}"
    );
    let schema: Value = serde_json::from_str(request.json_schema.as_ref().unwrap()).unwrap();
    let names = &schema["properties"]["tool_sequence"]["items"]["properties"]["tool"]["enum"];
    assert!(
        names
            .as_array()
            .unwrap()
            .contains(&json!("clock.days_between")),
        "{names}"
    );
    // The granted tool stays in the plan; one the node was not offered is dropped.
    let plan = only_plan(&output).plan;
    let tools: Vec<&str> = plan.tool_sequence.iter().map(|c| c.tool.as_str()).collect();
    assert_eq!(tools, ["clock.days_between"]);
    assert_eq!(host.warnings().len(), 1, "{:?}", host.warnings());
}
