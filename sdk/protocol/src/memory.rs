//! What the memorizer keeps about a conversation.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What the memorizer knows about the conversation (thread memory
/// [`MEMORIZER_STATE_KEY`](crate::MEMORIZER_STATE_KEY)).
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
