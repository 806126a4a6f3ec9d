//! The messages weft's shipped nodes exchange.
//!
//! Every node of `graphs/assistant.yaml` and `graphs/framed.yaml` speaks
//! this protocol; a third-party node that wants to take part in those graphs
//! (say, another expert the PA can route to) uses these types and declares
//! these schemas. Each message has a *kind* (the tag in
//! [`Message::kind`](https://docs.rs/weft-sdk)) and a JSON body:
//!
//! | kind            | body                | from → to                                   |
//! |-----------------|---------------------|---------------------------------------------|
//! | `user`          | [`UserText`]        | the user → `input`                          |
//! | `command`       | [`Command`]         | `input` → `pa`, `director`, `output` (reflex), `memorizer` |
//! | `job`           | [`Job`]             | `pa` → an expert (`eras`)                   |
//! | `expert_failed` | [`ExpertFailed`]    | an expert → `pa`                            |
//! | `plan`          | [`PlanMessage`]     | `director` → `thinker`                      |
//! | `interpret`     | [`Interpret`]       | `thinker` → `interpreter`                   |
//! | `respond`       | [`Respond`]         | `pa`, experts, `thinker`, `interpreter` → `output` |
//! | `ui`            | [`UiActions`]       | `pa`, experts, `thinker`, `interpreter` → `ui` |
//! | `action`        | [`UiAction`]        | the user (a button) → `ui`                  |
//!
//! Receivers declare the union of the bodies they accept as their input
//! schema ([`any_of`]); the host validates every payload against it before
//! delivery, so a node can trust the shape of what it receives.
//!
//! Thread memory keys shared between nodes are constants here too
//! ([`LAST_ANALYSIS_KEY`], [`MEMORIZER_STATE_KEY`]).

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Thread-memory key: the [`Analysis`] of the latest user message (written by `input`).
pub const LAST_ANALYSIS_KEY: &str = "input.last_analysis";
/// Thread-memory key: the [`MemorizerState`] (written by `memorizer`, read by `pa`).
pub const MEMORIZER_STATE_KEY: &str = "memorizer.state";

/// Matching message words against configured vocabularies.
pub mod vocabulary;

/// Message kinds, as constants so senders and receivers cannot drift apart.
pub mod kind {
    /// A user's chat message.
    pub const USER: &str = "user";
    /// A classified user message.
    pub const COMMAND: &str = "command";
    /// A self-contained task for an expert.
    pub const JOB: &str = "job";
    /// An expert could not do its job.
    pub const EXPERT_FAILED: &str = "expert_failed";
    /// The director's plan for the thinker.
    pub const PLAN: &str = "plan";
    /// Tool output for the interpreter.
    pub const INTERPRET: &str = "interpret";
    /// Material for the final answer.
    pub const RESPOND: &str = "respond";
    /// UI tool calls.
    pub const UI: &str = "ui";
    /// A button the user pressed.
    pub const ACTION: &str = "action";
}

/// The body of a `user` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserText {
    /// What the user wrote.
    pub text: String,
}

impl UserText {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {"text": {"type": "string", "minLength": 1}},
            "required": ["text"]
        })
    }
}

/// What the user wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    /// Asks for information.
    Question,
    /// Asks the assistant to do something.
    Request,
    /// Greetings, thanks, small talk.
    Social,
    /// Comments on an earlier answer.
    Feedback,
    /// Anything else, and the fallback when the model's answer is unusable.
    Other,
}

/// How much thinking the message needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Complexity {
    /// One step, no lookup.
    Simple,
    /// Several steps, a lookup or a plan.
    Complex,
}

/// The classification of one user message (the seed's `InputAnalysis`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// What the user wants.
    pub intent: Intent,
    /// A short phrase naming the subject.
    pub topic: String,
    /// ISO 639-1 code of the message's language (`en`, `de` …).
    pub language: String,
    /// The user's tone in a word (`neutral`, `friendly`, `frustrated` …).
    pub tone: String,
    /// How much thinking the message needs.
    pub complexity: Complexity,
    /// True for a short social message that needs no thinking.
    pub reflex: bool,
}

impl Analysis {
    /// The safe analysis used when the model's answer is unusable: nothing
    /// is assumed, and the message takes the thinking path.
    pub fn fallback() -> Self {
        Self {
            intent: Intent::Other,
            topic: "unknown".to_owned(),
            language: "unknown".to_owned(),
            tone: "unknown".to_owned(),
            complexity: Complexity::Complex,
            reflex: false,
        }
    }

    /// The JSON Schema (also used to constrain the model).
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "intent": {
                    "type": "string",
                    "enum": ["question", "request", "social", "feedback", "other"],
                    "description": "What the user wants."
                },
                "topic": {"type": "string", "maxLength": 120, "description": "A short phrase naming the subject."},
                "language": {
                    "type": "string",
                    "maxLength": 12,
                    "description": "ISO 639-1 code of the message's language, e.g. en."
                },
                "tone": {"type": "string", "maxLength": 40, "description": "The user's tone in one word."},
                "complexity": {
                    "type": "string",
                    "enum": ["simple", "complex"],
                    "description": "complex when answering needs several steps or a lookup."
                },
                "reflex": {
                    "type": "boolean",
                    "description": "true only for a short social message that needs no thinking."
                }
            },
            "required": ["intent", "topic", "language", "tone", "complexity", "reflex"],
            "additionalProperties": false
        })
    }
}

/// The body of a `command`: a user message with its analysis (the seed's `Command`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The classification of the user's message.
    pub analysis: Analysis,
    /// The user's message, verbatim.
    pub source_text: String,
}

impl Command {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "analysis": Analysis::schema(),
                "source_text": {"type": "string"}
            },
            "required": ["analysis", "source_text"],
            "additionalProperties": false
        })
    }
}

/// The body of a `job`: a self-contained task for a stateless expert.
///
/// Experts keep no conversation state, so `job` must carry every fact the
/// expert needs (the PA folds in what the memorizer knows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The task, self-contained.
    pub job: String,
    /// The user's message, verbatim.
    pub request: String,
    /// Language of the final answer (ISO 639-1).
    pub language: String,
    /// How the final answer should be phrased.
    pub response_hint: String,
    /// 1 for the first try, 2 for the PA's reformulated retry.
    pub attempt: u32,
}

impl Job {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "job": {"type": "string", "minLength": 1},
                "request": {"type": "string"},
                "language": {"type": "string"},
                "response_hint": {"type": "string"},
                "attempt": {"type": "integer", "minimum": 1}
            },
            "required": ["job", "request", "language", "response_hint", "attempt"],
            "additionalProperties": false
        })
    }
}

/// The body of `expert_failed`: the job that failed and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpertFailed {
    /// The job as the expert received it.
    pub job: Job,
    /// What went wrong, for the PA's reformulation prompt.
    pub error: String,
}

impl ExpertFailed {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {"job": Job::schema(), "error": {"type": "string"}},
            "required": ["job", "error"],
            "additionalProperties": false
        })
    }
}

/// One tool call of a plan: the tool's name and its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The tool: one of [`UI_TOOLS`] or [`DATA_TOOLS`].
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
                "tool": {"type": "string", "enum": all_tools()},
                "args": {"type": "object"}
            },
            "required": ["tool", "args"],
            "additionalProperties": false
        })
    }
}

/// Tools the `ui` node executes (sent to it in [`UiActions`]):
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

fn all_tools() -> Vec<&'static str> {
    UI_TOOLS.iter().chain(DATA_TOOLS.iter()).copied().collect()
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

/// The body of `respond`: everything `output` needs to write the reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Respond {
    /// The user's message, verbatim.
    pub request: String,
    /// Language of the reply.
    pub language: String,
    /// How to phrase it.
    #[serde(default)]
    pub response_hint: String,
    /// A draft answer to phrase (e.g. the PA's direct answer).
    #[serde(default)]
    pub draft: Option<String>,
    /// Facts found by an expert or the interpreter.
    #[serde(default)]
    pub result: Option<Interpreted>,
    /// What went wrong, when the reply must explain a failure.
    #[serde(default)]
    pub error: Option<String>,
}

impl Respond {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "request": {"type": "string"},
                "language": {"type": "string"},
                "response_hint": {"type": "string"},
                "draft": {"type": ["string", "null"]},
                "result": {"anyOf": [Interpreted::schema(), {"type": "null"}]},
                "error": {"type": ["string", "null"]}
            },
            "required": ["request", "language"],
            "additionalProperties": false
        })
    }
}

/// The body of a `ui` message: tool calls for the UI node, applied in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UiActions {
    /// The calls; each `tool` is one of [`UI_TOOLS`].
    pub actions: Vec<ToolCall>,
}

impl UiActions {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "actions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "tool": {"type": "string", "enum": UI_TOOLS},
                            "args": {"type": "object"}
                        },
                        "required": ["tool", "args"],
                        "additionalProperties": false
                    }
                }
            },
            "required": ["actions"],
            "additionalProperties": false
        })
    }
}

/// The body of an `action`: a button the user pressed. `go:<state>` moves a
/// machine to `<state>` (the machine named, or the one that has the state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiAction {
    /// The button's action, e.g. `go:details`.
    pub action: String,
    /// The machine the button belongs to, if known.
    #[serde(default)]
    pub machine: Option<String>,
}

impl UiAction {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "action": {"type": "string", "minLength": 1},
                "machine": {"type": ["string", "null"]}
            },
            "required": ["action"],
            "additionalProperties": false
        })
    }
}

/// What the memorizer knows about the conversation (thread memory
/// [`MEMORIZER_STATE_KEY`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorizerState {
    /// The user's name, if they said it.
    #[serde(default)]
    pub user_name: Option<String>,
    /// The user's mood in a word.
    #[serde(default)]
    pub mood: String,
    /// The current topic.
    #[serde(default)]
    pub topic: String,
    /// Earlier topics, oldest first (at most 10).
    #[serde(default)]
    pub topic_history: Vec<String>,
    /// What is going on, in a sentence.
    #[serde(default)]
    pub situation: String,
    /// The conversation's language (ISO 639-1).
    #[serde(default)]
    pub language: String,
    /// How the user likes answers (`short`, `detailed` …).
    #[serde(default)]
    pub style_hint: String,
    /// Facts worth remembering (customer numbers, names …), at most 20.
    #[serde(default)]
    pub facts: Vec<String>,
}

impl MemorizerState {
    /// The JSON Schema (also used to constrain the model).
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "user_name": {"type": ["string", "null"], "maxLength": 80},
                "mood": {"type": "string", "maxLength": 40},
                "topic": {"type": "string", "maxLength": 120},
                "topic_history": {"type": "array", "items": {"type": "string", "maxLength": 120}, "maxItems": 10},
                "situation": {"type": "string", "maxLength": 300},
                "language": {"type": "string", "maxLength": 12},
                "style_hint": {"type": "string", "maxLength": 120},
                "facts": {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 20}
            },
            "required": ["user_name", "mood", "topic", "topic_history", "situation", "language", "style_hint", "facts"],
            "additionalProperties": false
        })
    }
}

/// The schema accepting any of `schemas` (a receiver's input schema when it
/// takes several kinds of message).
pub fn any_of(schemas: impl IntoIterator<Item = Value>) -> Value {
    json!({"anyOf": schemas.into_iter().collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
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
}
