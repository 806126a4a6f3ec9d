//! The analysis the model produces for one user message: its type, the JSON
//! Schema that constrains the model, and the prompt.

use serde::{Deserialize, Serialize};
use serde_json::json;
use weft_sdk::{ChatMessage, CompletionRequest};

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

/// The classification of one user message, as sent to peers and stored in
/// thread memory under [`crate::LAST_ANALYSIS_KEY`].
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
    /// True for a short social message that needs no thinking: it goes
    /// straight to `output` instead of the PA.
    pub reflex: bool,
}

impl Analysis {
    /// The safe analysis used when the model's answer is unusable: nothing
    /// is assumed, and the message goes to the PA, which can think.
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
}

/// The JSON Schema of [`Analysis`], used to constrain the model and in the
/// node's output schema.
pub fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "intent": {
                "type": "string",
                "enum": ["question", "request", "social", "feedback", "other"],
                "description": "What the user wants."
            },
            "topic": {"type": "string", "description": "A short phrase naming the subject."},
            "language": {
                "type": "string",
                "description": "ISO 639-1 code of the message's language, e.g. en."
            },
            "tone": {"type": "string", "description": "The user's tone in one word."},
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

const SYSTEM_PROMPT: &str = "You classify one message a user sent to an assistant. \
Answer with a JSON object only. intent: question (asks for information), request (asks \
for an action), social (greeting, thanks, small talk), feedback (comments on an earlier \
answer) or other. topic: a short phrase. language: the ISO 639-1 code of the message's \
language. tone: one word. complexity: simple or complex (complex when answering needs \
several steps or a lookup). reflex: true only for a short social message that can be \
answered without thinking, such as \"hi\" or \"thanks!\".";

/// The model answers in a few dozen tokens; leave room without inviting rambling.
const MAX_TOKENS: u32 = 200;

/// The schema-constrained request that classifies `text`.
pub fn request(text: &str) -> CompletionRequest {
    CompletionRequest::new([ChatMessage::system(SYSTEM_PROMPT), ChatMessage::user(text)])
        .max_tokens(MAX_TOKENS)
        .json_schema(&schema())
}
