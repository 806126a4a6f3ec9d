//! The OpenAI chat-completions wire format, as far as weft uses it.
//!
//! Response types accept missing fields: compatible servers (llama.cpp,
//! vLLM, Ollama, ...) differ in what they fill in, and a missing field is
//! reported where it matters rather than as a parse error.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weft_runtime::ChatMessage;

/// The body of `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [ChatMessage],
    pub max_tokens: u32,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
}

/// Asks a streaming server for a final chunk carrying `usage`.
#[derive(Debug, Serialize)]
pub(crate) struct StreamOptions {
    pub include_usage: bool,
}

/// A non-streamed answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatResponse {
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub model: Option<String>,
}

/// One choice of a non-streamed answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    pub message: ChoiceMessage,
}

/// The message of a [`Choice`].
#[derive(Debug, Deserialize)]
pub(crate) struct ChoiceMessage {
    #[serde(default)]
    pub content: Option<String>,
}

/// Token counts as the provider reports them.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// One `data:` event of a streamed answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatChunk {
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub model: Option<String>,
    /// Some servers report a failure mid-stream as an `error` object.
    #[serde(default)]
    pub error: Option<Value>,
}

/// One choice of a [`ChatChunk`].
#[derive(Debug, Deserialize)]
pub(crate) struct ChunkChoice {
    #[serde(default)]
    pub delta: Option<ChunkDelta>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The new text of a [`ChunkChoice`].
#[derive(Debug, Deserialize)]
pub(crate) struct ChunkDelta {
    #[serde(default)]
    pub content: Option<String>,
}

/// The `response_format` asking for JSON matching `schema`.
pub(crate) fn json_schema_format(schema: Value) -> Value {
    serde_json::json!({
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": true},
    })
}

/// The human-readable message of an error body: `error.message`,
/// `error` as a string, or `message`; else an excerpt of the body.
pub(crate) fn error_message(body: &str) -> String {
    let parsed = serde_json::from_str::<Value>(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
    });
    match message {
        Some(message) => message.to_owned(),
        None if body.trim().is_empty() => "(empty body)".to_owned(),
        None => excerpt(body),
    }
}

/// The start of `text`, for error messages about unparseable answers.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 120;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_from_common_body_shapes() {
        assert_eq!(
            error_message(r#"{"error": {"message": "bad max_tokens", "type": "x"}}"#),
            "bad max_tokens"
        );
        assert_eq!(error_message(r#"{"error": "nope"}"#), "nope");
        assert_eq!(error_message(r#"{"message": "m"}"#), "m");
        assert_eq!(error_message("plain text"), "plain text");
        assert_eq!(error_message(""), "(empty body)");
        assert_eq!(excerpt(&"é".repeat(200)).chars().count(), 121);
    }
}
