//! The planning request: system prompt, the tool guide, the user turn and
//! the schema that constrains the model.

use serde_json::Value;
use weft_protocol::{Command, DirectorPlan, all_tools};
use weft_sdk::{ChatMessage, CompletionRequest, Tool};

const SYSTEM_PROMPT: &str = "You plan how an assistant answers one user message. \
Answer with a JSON object only. goal: what the answer achieves. steps: the steps in a few \
words each. present_as: text, table or machine. tool_sequence: the tool calls to run in \
order, each {\"tool\": name, \"args\": {..}}; use only the tools listed, with the arguments \
shown (? marks an optional one), and an empty list when the message needs no tool. UI tools \
change what the user sees; data tools look things up in the database; external tools, when \
listed, are services named server.tool. reasoning: why, in one \
sentence. response_hint: how the final reply should be phrased.";

/// A plan with its tool arguments fits comfortably; more means rambling.
const MAX_TOKENS: u32 = 600;

/// Upper bounds on the plan's lists, so grammar-constrained decoding by a
/// small model cannot loop on them until the token limit cuts the JSON.
const MAX_STEPS: u64 = 8;
/// See [`MAX_STEPS`].
const MAX_TOOL_CALLS: u64 = 8;

/// Every tool of `weft_protocol::UI_TOOLS` and `DATA_TOOLS` with its
/// arguments and what it does, as the model reads them.
pub const TOOL_GUIDE: [(&str, &str); 10] = [
    (
        "create_machine",
        "{name, states: [{name, content?, buttons?: [{label, action}]}], initial?} creates a UI \
         state machine; a button with action \"go:<state>\" moves it to that state",
    ),
    (
        "add_state",
        "{machine, state: {name, content?, buttons?}} adds a state to a machine",
    ),
    (
        "reset_machine",
        "{machine} moves a machine back to its initial state",
    ),
    ("destroy_machine", "{machine} removes a machine"),
    (
        "transition_machine",
        "{machine, to} moves a machine to the state named to",
    ),
    ("set_state", "{key, value} shows a key/value pair in the UI"),
    (
        "emit_display",
        "{title?, items?: [..], columns?: [..], rows?: [[..]]} shows a list or a table",
    ),
    ("list_tables", "{} lists the database tables"),
    ("describe_table", "{table} lists the columns of a table"),
    (
        "query_db",
        "{sql, params?: [..]} runs one read-only SQL SELECT with ? placeholders for params",
    ),
];

/// The schema the model's answer must satisfy: the protocol's
/// [`DirectorPlan::schema`] with bounded lists, and the tool names limited
/// to the built-in tools and the `external` ones (`server.tool`).
pub fn schema(external: &[Tool]) -> Value {
    let mut schema = DirectorPlan::schema();
    schema["properties"]["steps"]["maxItems"] = MAX_STEPS.into();
    schema["properties"]["tool_sequence"]["maxItems"] = MAX_TOOL_CALLS.into();
    let mut names: Vec<String> = all_tools().into_iter().map(str::to_owned).collect();
    names.extend(external.iter().map(external_name));
    schema["properties"]["tool_sequence"]["items"]["properties"]["tool"] =
        serde_json::json!({"type": "string", "enum": names});
    schema
}

/// How a plan names an MCP tool: `server.tool`.
pub fn external_name(tool: &Tool) -> String {
    format!("{}.{}", tool.server, tool.name)
}

/// An MCP tool's arguments as the guide shows them: `{a, b?}` from its
/// input schema's properties (`?` when not required).
fn arguments(schema: &Value) -> String {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let names: Vec<String> = schema["properties"]
        .as_object()
        .map(|p| {
            p.keys()
                .map(|k| {
                    if required.contains(&k.as_str()) {
                        k.clone()
                    } else {
                        format!("{k}?")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    format!("{{{}}}", names.join(", "))
}

/// The longest description of an MCP tool the guide shows, in characters.
const MAX_DESCRIPTION: usize = 200;

/// The user turn: the tools, the analysis and the user's message.
pub fn user_turn(command: &Command, external: &[Tool]) -> String {
    let mut text = String::from("Tools (UI):\n");
    let (ui, data) = TOOL_GUIDE.split_at(weft_protocol::UI_TOOLS.len());
    for (name, guide) in ui {
        text.push_str(&format!("- {name} {guide}\n"));
    }
    text.push_str("Tools (data):\n");
    for (name, guide) in data {
        text.push_str(&format!("- {name} {guide}\n"));
    }
    if !external.is_empty() {
        text.push_str("Tools (external):\n");
        for tool in external {
            let description: String = tool
                .description
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(MAX_DESCRIPTION)
                .collect();
            text.push_str(&format!(
                "- {} {} {description}\n",
                external_name(tool),
                arguments(&tool.input_schema)
            ));
        }
    }
    // An `Analysis` is plain strings and booleans; it always serializes.
    let analysis = serde_json::to_string(&command.analysis).unwrap_or_default();
    text.push_str(&format!("Analysis: {analysis}\n"));
    text.push_str(&format!("User message: {}", command.source_text));
    text
}

/// The schema-constrained request that plans the answer to `command`,
/// offering the `external` (MCP) tools beside the built-in ones.
pub fn request(command: &Command, external: &[Tool]) -> CompletionRequest {
    CompletionRequest::new([
        ChatMessage::system(SYSTEM_PROMPT),
        ChatMessage::user(user_turn(command, external)),
    ])
    .max_tokens(MAX_TOKENS)
    .json_schema(&schema(external))
}
