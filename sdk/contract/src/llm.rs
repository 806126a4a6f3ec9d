//! Types of the `llm` capability.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::NodeError;

/// Who said a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model (the system prompt).
    System,
    /// The user's turn.
    User,
    /// The model's own earlier turn.
    Assistant,
}

/// One message of the conversation sent to the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl ChatMessage {
    /// A system prompt.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant turn (for few-shot examples or conversation history).
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A chat completion request from a node.
///
/// ```
/// use weft_contract::{ChatMessage, CompletionRequest};
/// let request = CompletionRequest::new([
///     ChatMessage::system("Answer in one word."),
///     ChatMessage::user("Capital of France?"),
/// ])
/// .max_tokens(16)
/// .json_schema(&serde_json::json!({"type": "string"}));
/// assert_eq!(request.json_schema.as_deref(), Some(r#"{"type":"string"}"#));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The conversation, oldest first; usually a system prompt then the user turn.
    pub messages: Vec<ChatMessage>,
    /// Upper bound on completion tokens; the host may lower it to fit the budget.
    pub max_tokens: u32,
    /// When set, a JSON Schema (as a JSON string) the answer must satisfy.
    pub json_schema: Option<String>,
    /// When true, the host streams tokens to the thread's listeners while generating.
    pub stream: bool,
}

impl CompletionRequest {
    /// The default for [`CompletionRequest::max_tokens`].
    pub const DEFAULT_MAX_TOKENS: u32 = 512;

    /// A request for `messages`, with [`Self::DEFAULT_MAX_TOKENS`], no schema
    /// and no streaming.
    pub fn new(messages: impl IntoIterator<Item = ChatMessage>) -> Self {
        Self {
            messages: messages.into_iter().collect(),
            max_tokens: Self::DEFAULT_MAX_TOKENS,
            json_schema: None,
            stream: false,
        }
    }

    /// The common shape: a system prompt and one user turn.
    pub fn prompt(system: impl Into<String>, user: impl Into<String>) -> Self {
        Self::new([ChatMessage::system(system), ChatMessage::user(user)])
    }

    /// Append a message.
    pub fn message(mut self, message: ChatMessage) -> Self {
        self.messages.push(message);
        self
    }

    /// Set the completion token limit.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Constrain the answer to a JSON Schema.
    pub fn json_schema(mut self, schema: &serde_json::Value) -> Self {
        self.json_schema = Some(schema.to_string());
        self
    }

    /// Stream tokens to the thread's listeners while generating.
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }
}

/// A completed answer with its metering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// The generated text (JSON when a schema was given).
    pub text: String,
    /// Tokens in the prompt, as counted by the model's tokenizer.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// The model that answered.
    pub model: String,
    /// The configured name of the provider that answered (`scripted` for
    /// the scripted provider). Host-side metering only: it does not cross
    /// into WIT, so a node always sees it empty.
    #[serde(default)]
    pub provider: String,
    /// The provider did not report token counts; `prompt_tokens` and
    /// `completion_tokens` are estimates. Host-side only, like `provider`:
    /// a node always sees `false`.
    #[serde(default)]
    pub usage_estimated: bool,
}

impl Completion {
    /// Parse the answer as `T`; a mismatch is [`NodeError::Failed`] quoting
    /// the start of the answer.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, NodeError> {
        serde_json::from_str(&self.text).map_err(|error| {
            let start: String = self.text.chars().take(120).collect();
            NodeError::Failed(format!(
                "llm answer is not the expected JSON ({error}): {start:?}"
            ))
        })
    }
}
