//! What `input` makes of a user message: the `user` body, its analysis,
//! and the `command` it sends on.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
