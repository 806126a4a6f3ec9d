//! The prompt that classifies one user message into a
//! [`weft_protocol::Analysis`], constrained by [`Analysis::schema`].

use weft_protocol::Analysis;
use weft_sdk::{ChatMessage, CompletionRequest};

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
        .json_schema(&constrained_schema())
}

/// [`Analysis::schema`] with the language held to two lowercase letters,
/// so that a small model cannot fill it with prose.
fn constrained_schema() -> serde_json::Value {
    let mut schema = Analysis::schema();
    schema["properties"]["language"] = serde_json::json!({
        "type": "string",
        "pattern": "^[a-z][a-z]$",
        "description": "ISO 639-1 code of the message's language, e.g. en."
    });
    schema
}
