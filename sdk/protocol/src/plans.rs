//! The director's plans, their tool calls, and the tool output the
//! thinker hands the interpreter.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One tool call of a plan: the tool's name and its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The tool: one of [`UI_TOOLS`] or [`DATA_TOOLS`], or an MCP tool
    /// named `<server>.<tool>` (see [`external_tool`]).
    pub tool: String,
    /// Its arguments (an object; see each tool's documentation).
    #[serde(default = "empty_object")]
    pub args: Value,
}

fn empty_object() -> Value {
    json!({})
}

impl ToolCall {
    /// The JSON Schema of one tool call.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "tool": {"type": "string", "anyOf": [
                    {"enum": all_tools()},
                    {"pattern": EXTERNAL_TOOL_PATTERN}
                ]},
                "args": {"type": "object"}
            },
            "required": ["tool", "args"],
            "additionalProperties": false
        })
    }
}

/// Tools the `ui` node executes (sent to it in [`UiActions`](crate::UiActions)):
///
/// - `create_machine {name, states: [{name, content?, buttons?: [{label, action}]}], initial?}`
/// - `add_state {machine, state: {name, content?, buttons?}}`
/// - `reset_machine {machine}` (back to its initial state)
/// - `destroy_machine {machine}`
/// - `transition_machine {machine, to}`
/// - `set_state {key, value}` (key/value state shown by the UI)
/// - `emit_display {title?, items?: [..], columns?: [..], rows?: [[..]]}`
pub const UI_TOOLS: [&str; 7] = [
    "create_machine",
    "add_state",
    "reset_machine",
    "destroy_machine",
    "transition_machine",
    "set_state",
    "emit_display",
];

/// Tools the `thinker` executes itself through the `db` capability:
///
/// - `list_tables {}`
/// - `describe_table {table}`
/// - `query_db {sql, params?: [json scalars]}`
pub const DATA_TOOLS: [&str; 3] = ["list_tables", "describe_table", "query_db"];

/// The built-in tools: [`UI_TOOLS`] then [`DATA_TOOLS`].
pub fn all_tools() -> Vec<&'static str> {
    UI_TOOLS.iter().chain(DATA_TOOLS.iter()).copied().collect()
}

/// The shape of an MCP tool's name in a plan: `<server>.<tool>`, the
/// server as the host's config names it (letters, digits, `-`, `_`).
pub const EXTERNAL_TOOL_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}[.].+$";

/// An MCP tool's name in a plan split into server and tool:
/// `files.read_file` → `("files", "read_file")`; `None` for a built-in
/// tool or a name of another shape.
pub fn external_tool(name: &str) -> Option<(&str, &str)> {
    let (server, tool) = name.split_once('.')?;
    let server_ok = (1..=64).contains(&server.len())
        && server
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (server_ok && !tool.is_empty()).then_some((server, tool))
}

/// The director's plan (the seed's `DirectorPlan`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectorPlan {
    /// What the plan achieves.
    pub goal: String,
    /// The steps in words.
    pub steps: Vec<String>,
    /// How to present the answer (`text`, `table`, `machine` …).
    pub present_as: String,
    /// The tools the thinker runs, in order.
    pub tool_sequence: Vec<ToolCall>,
    /// Why this plan.
    pub reasoning: String,
    /// How the final answer should be phrased.
    pub response_hint: String,
}

impl DirectorPlan {
    /// The JSON Schema (also used to constrain the model).
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "goal": {"type": "string"},
                "steps": {"type": "array", "items": {"type": "string"}},
                "present_as": {"type": "string"},
                "tool_sequence": {"type": "array", "items": ToolCall::schema()},
                "reasoning": {"type": "string"},
                "response_hint": {"type": "string"}
            },
            "required": ["goal", "steps", "present_as", "tool_sequence", "reasoning", "response_hint"],
            "additionalProperties": false
        })
    }
}

/// The body of a `plan`: the director's plan and the request it answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanMessage {
    /// The plan.
    pub plan: DirectorPlan,
    /// The user's message, verbatim.
    pub request: String,
    /// Language of the final answer.
    pub language: String,
}

impl PlanMessage {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "plan": DirectorPlan::schema(),
                "request": {"type": "string"},
                "language": {"type": "string"}
            },
            "required": ["plan", "request", "language"],
            "additionalProperties": false
        })
    }
}

/// The output of one executed tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    /// The tool.
    pub tool: String,
    /// Its arguments.
    pub args: Value,
    /// What it returned (for `query_db`: `{columns, rows, truncated}`), if it succeeded.
    #[serde(default)]
    pub result: Option<Value>,
    /// Why it failed, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

impl ToolOutput {
    /// The JSON Schema of one tool output.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "tool": {"type": "string"},
                "args": {},
                "result": {},
                "error": {"type": ["string", "null"]}
            },
            "required": ["tool", "args"],
            "additionalProperties": false
        })
    }
}

/// The body of `interpret`: tool output to summarise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interpret {
    /// The user's message, verbatim.
    pub request: String,
    /// Language of the final answer.
    pub language: String,
    /// How the final answer should be phrased.
    pub response_hint: String,
    /// What the tools returned, in order.
    pub outputs: Vec<ToolOutput>,
}

impl Interpret {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "request": {"type": "string"},
                "language": {"type": "string"},
                "response_hint": {"type": "string"},
                "outputs": {"type": "array", "items": ToolOutput::schema(), "minItems": 1}
            },
            "required": ["request", "language", "response_hint", "outputs"],
            "additionalProperties": false
        })
    }
}

/// A factual summary of tool output (the seed's `InterpretedResult`; the
/// ErasExpert composes one too).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interpreted {
    /// One or two sentences.
    pub summary: String,
    /// Rows the data had, when it was a table.
    pub row_count: Option<u64>,
    /// The facts the answer must contain.
    pub key_facts: Vec<String>,
    /// 0 to 1.
    pub confidence: f64,
}

impl Interpreted {
    /// The JSON Schema (also used to constrain the model).
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "summary": {"type": "string"},
                "row_count": {"type": ["integer", "null"], "minimum": 0},
                "key_facts": {"type": "array", "items": {"type": "string"}},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}
            },
            "required": ["summary", "row_count", "key_facts", "confidence"],
            "additionalProperties": false
        })
    }
}
