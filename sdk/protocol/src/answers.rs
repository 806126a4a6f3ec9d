//! What reaches the user: the material for the reply and the UI's tool
//! calls and buttons.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Interpreted, ToolCall, UI_TOOLS};

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
