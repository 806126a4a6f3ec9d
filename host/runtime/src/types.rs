//! Domain types of the node contract, independent of any WIT version.
//!
//! The generated bindings of each supported contract version convert into
//! these (see `bindings.rs`), so the rest of weft never depends on one
//! version's generated code. All of them serialize, because host-call
//! requests and responses are journaled for replay.

use serde::{Deserialize, Serialize};

/// A host capability a node may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Chat completion.
    Llm,
    /// Read-only database access.
    Db,
    /// Durable key/value state.
    Memory,
    /// Progress text and events.
    Hud,
    /// Diagnostic logging.
    Log,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Capability; 5] = [Self::Llm, Self::Db, Self::Memory, Self::Hud, Self::Log];

    /// The capability's name as written in graph files and WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llm => "llm",
            Self::Db => "db",
            Self::Memory => "memory",
            Self::Hud => "hud",
            Self::Log => "log",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Capability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("unknown capability `{s}` (expected one of llm, db, memory, hud, log)")
            })
    }
}

/// The set of capabilities granted to a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Grants(u8);

impl Grants {
    /// No capability at all.
    pub const NONE: Grants = Grants(0);

    /// Every capability.
    pub fn all() -> Self {
        Self::from_iter(Capability::ALL)
    }

    /// Whether `cap` is granted.
    pub fn allows(self, cap: Capability) -> bool {
        self.0 & (1 << cap as u8) != 0
    }

    /// The granted capabilities, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.allows(*c))
    }
}

impl FromIterator<Capability> for Grants {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        Grants(iter.into_iter().fold(0, |bits, c| bits | (1 << c as u8)))
    }
}

/// An error a host capability returns to the plugin (WIT `error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum CapabilityError {
    /// The node was not granted this capability.
    #[error("capability `{0}` was not granted to this node")]
    Denied(Capability),
    /// The thread's or project's budget is spent.
    #[error("budget exhausted: {0}")]
    BudgetExhausted(String),
    /// The request was malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A per-invocation limit was hit.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The backing service is temporarily unavailable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Any other failure.
    #[error("failed: {0}")]
    Failed(String),
}

/// Where an invocation sits: thread, run, frame and node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    /// The conversation id.
    pub thread: String,
    /// The run id (one inbound message on the thread).
    pub run: String,
    /// The frame number within the run.
    pub frame: u32,
    /// The node's name in the graph.
    pub node: String,
    /// The project (tenant) of the thread.
    #[serde(default)]
    pub project: String,
}

/// A message delivered to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Unique message id.
    pub id: String,
    /// The sender's node name, or `user`.
    pub from: String,
    /// The message kind tag.
    pub kind: String,
    /// JSON payload.
    pub body: String,
}

/// A message a node sends to a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    /// Receiving node.
    pub to: String,
    /// Message kind tag.
    pub kind: String,
    /// JSON payload.
    pub body: String,
}

/// What a node produced in one tick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickOutput {
    /// Messages to peers, delivered next frame.
    pub messages: Vec<Outbound>,
    /// Reply text for the end user.
    pub reply: Option<String>,
    /// The node considers the run finished.
    pub done: bool,
}

impl TickOutput {
    /// Bytes of payload the output carries (bodies, names and reply), used
    /// for the output size cap.
    pub fn payload_bytes(&self) -> usize {
        let msgs: usize = self
            .messages
            .iter()
            .map(|m| m.to.len() + m.kind.len() + m.body.len())
            .sum();
        msgs + self.reply.as_ref().map_or(0, String::len)
    }
}

/// What a node is and needs, from its `describe` export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// JSON Schema of accepted message bodies (parsed and checked to be JSON on load).
    pub input_schema: serde_json::Value,
    /// JSON Schema of sent message bodies.
    pub output_schema: serde_json::Value,
    /// Capabilities the node calls.
    pub capabilities: Vec<Capability>,
}

/// Why a tick failed, as reported by the node itself (WIT `node-error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum NodeError {
    /// The inbox made no sense to the node.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A capability failed and the node gave up.
    #[error("capability error: {0}")]
    Capability(CapabilityError),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

/// Who said a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// System prompt.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
}

/// One chat message sent to a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Speaker.
    pub role: Role,
    /// Text.
    pub content: String,
}

/// A chat completion request from a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The conversation, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Upper bound on completion tokens.
    pub max_tokens: u32,
    /// Optional JSON Schema the answer must satisfy.
    pub json_schema: Option<String>,
    /// Stream tokens to listeners while generating.
    pub stream: bool,
}

/// A completed answer with its metering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// Generated text.
    pub text: String,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
    /// The model that answered.
    pub model: String,
    /// The configured name of the provider that answered (`scripted` for
    /// the scripted provider). Host-side metering only: it does not cross
    /// into WIT.
    #[serde(default)]
    pub provider: String,
    /// The provider did not report token counts; `prompt_tokens` and
    /// `completion_tokens` are estimates. Host-side only, like `provider`.
    #[serde(default)]
    pub usage_estimated: bool,
}

/// A SQL value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Value {
    /// SQL NULL.
    Null,
    /// 64-bit integer.
    Integer(i64),
    /// Double.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A table column as `describe` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Declared SQL type.
    pub data_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Whether the column is (part of) the primary key.
    pub primary_key: bool,
}

/// A query result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rows {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of values.
    pub rows: Vec<Vec<Value>>,
    /// The host stopped at its row limit.
    pub truncated: bool,
}

/// Which state a memory key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Shared by all nodes of the thread.
    Thread,
    /// Private to the node within the thread.
    Node,
}

/// Kinds of HUD events a node can emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Thinking.
    Thinking,
    /// Perceived the input.
    Perceived,
    /// Decided a route or plan.
    Decided,
    /// Called a tool.
    ToolCall,
    /// Interpreted tool output.
    Interpreted,
    /// Updated UI state.
    Updated,
}

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warning.
    Warn,
    /// Error.
    Error,
}
