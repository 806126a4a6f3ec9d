//! The SDK's own types for everything that crosses the host boundary.
//!
//! They mirror the WIT contract (`wit/types.wit` and the capability
//! interfaces) but are plain Rust: `Display` and `std::error::Error` on the
//! errors, `serde_json` helpers on payloads, builders where a record has
//! optional parts. The generated bindings stay hidden in [`crate::bindings`];
//! `convert.rs` maps between the two, so a contract change touches one file.

mod db;
mod llm;

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use db::{Column, Rows, Value};
pub use llm::{ChatMessage, Completion, CompletionRequest, Role};

/// A host capability a node may be granted (`llm`, `db`, `memory`, `hud`, `log`).
///
/// A node lists what it needs in [`NodeInfo::capabilities`]; the graph file
/// grants them. Calling one that was not granted returns [`Error::Denied`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Chat completion through the host's LLM providers.
    Llm,
    /// Read-only access to the graph's database.
    Db,
    /// Durable key/value state scoped to the thread or the node.
    Memory,
    /// Progress text and typed events for traces and the UI.
    Hud,
    /// Diagnostic log lines.
    Log,
}

impl Capability {
    /// Every capability, in contract order.
    pub const ALL: [Capability; 5] = [Self::Llm, Self::Db, Self::Memory, Self::Hud, Self::Log];

    /// The capability's name in the WIT contract and in graph files.
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

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error returned by a host capability. None of them abort the tick: the
/// node decides whether to recover or to fail with [`NodeError::Capability`].
///
/// `Display` uses the contract's names, e.g. `denied(llm)` or
/// `budget-exhausted: thread token budget spent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The node was not granted the capability this call belongs to.
    Denied(Capability),
    /// The thread's (or project's) token or money budget is spent; retrying in
    /// the same run will not help.
    BudgetExhausted(String),
    /// The request is malformed (bad SQL, invalid JSON Schema, key too long …).
    InvalidInput(String),
    /// A per-invocation limit was hit (rows, bytes, calls); the text names it.
    LimitExceeded(String),
    /// The backing service is temporarily unavailable; a later frame may succeed.
    Unavailable(String),
    /// The call failed for another reason, described by the text.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(capability) => write!(f, "denied({capability})"),
            Self::BudgetExhausted(text) => write!(f, "budget-exhausted: {text}"),
            Self::InvalidInput(text) => write!(f, "invalid-input: {text}"),
            Self::LimitExceeded(text) => write!(f, "limit-exceeded: {text}"),
            Self::Unavailable(text) => write!(f, "unavailable: {text}"),
            Self::Failed(text) => write!(f, "failed: {text}"),
        }
    }
}

impl std::error::Error for Error {}

/// Why a tick failed. The host records it in the frame trace and keeps serving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeError {
    /// The inbox did not make sense to the node; the text says why.
    InvalidInput(String),
    /// A host capability failed and the node could not recover.
    Capability(Error),
    /// Any other failure, described by the text.
    Failed(String),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput(text) => write!(f, "invalid input: {text}"),
            Self::Capability(error) => write!(f, "capability error: {error}"),
            Self::Failed(text) => write!(f, "failed: {text}"),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Capability(error) => Some(error),
            _ => None,
        }
    }
}

impl From<Error> for NodeError {
    fn from(error: Error) -> Self {
        Self::Capability(error)
    }
}

/// A JSON error becomes [`NodeError::Failed`]: it usually means a payload the
/// node built or expected did not fit its type. Inbox bodies parsed with
/// [`Message::json`] become [`NodeError::InvalidInput`] instead.
impl From<serde_json::Error> for NodeError {
    fn from(error: serde_json::Error) -> Self {
        Self::Failed(format!("json: {error}"))
    }
}

/// Where an invocation sits: thread, run, frame and node name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Context {
    /// The conversation (thread) id.
    pub thread: String,
    /// The run: the processing of one inbound message on the thread.
    pub run: String,
    /// The frame (superstep) number within the run, starting at 0.
    pub frame: u32,
    /// The name of this node in the graph (not the plugin's name).
    pub node: String,
    /// The project (tenant) of the thread: `default` unless an operator
    /// gave one.
    pub project: String,
    /// The node's `config` from the graph file: a JSON object, `{}` when none.
    pub config: String,
}

/// The sender name of host notices (see [`Undeliverable`]).
pub const SYSTEM_SENDER: &str = "system";
/// The kind of the host notice about a rejected message.
pub const UNDELIVERABLE_KIND: &str = "undeliverable";

/// A message this node sent that the host did not deliver, and why. The
/// reason never reveals the graph's topology beyond "no route".
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Undeliverable {
    /// The receiver the node named.
    pub to: String,
    /// The message kind.
    pub kind: String,
    /// `not_a_peer` or `invalid_payload`.
    pub code: String,
    /// What was wrong (for `invalid_payload`, the schema violation).
    pub message: String,
}

/// The kind of the host notice about the thread's token budget.
pub const BUDGET_WARNING_KIND: &str = "budget_warning";

/// The thread's token budget crossed a threshold.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct BudgetWarning {
    /// 75, 90 or 95.
    pub percent: u8,
    /// Tokens used.
    pub used: u64,
    /// Tokens allowed.
    pub limit: u64,
}

/// A message delivered to a node in this frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Unique message id, stable across replays.
    pub id: String,
    /// The sending node's name, or `user` for input from outside the graph.
    pub from: String,
    /// The message kind, a short tag chosen by the sender (`user`, `job` …).
    pub kind: String,
    /// The payload: a JSON document valid against this node's input schema.
    pub body: String,
}

impl Message {
    /// Build a message with a JSON body, mostly for tests and harnesses.
    ///
    /// The id is derived from the content (`msg-` and a hash), so identical
    /// messages get identical ids; use [`Message::with_id`] when it matters.
    ///
    /// # Panics
    ///
    /// If `body` cannot be serialized to JSON (a map with non-string keys).
    pub fn new(from: impl Into<String>, kind: impl Into<String>, body: &impl Serialize) -> Self {
        let body = serde_json::to_string(body)
            .unwrap_or_else(|error| panic!("Message::new: body is not serializable: {error}"));
        Self::raw(from, kind, body)
    }

    /// Build a message whose body is taken verbatim (it may be invalid JSON,
    /// which is what a test of input validation wants).
    pub fn raw(from: impl Into<String>, kind: impl Into<String>, body: impl Into<String>) -> Self {
        let (from, kind, body) = (from.into(), kind.into(), body.into());
        let id = format!("msg-{:016x}", fnv1a([&from, &kind, &body]));
        Self {
            id,
            from,
            kind,
            body,
        }
    }

    /// Replace the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Parse the body as `T`; a mismatch is [`NodeError::InvalidInput`]
    /// naming the message.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, NodeError> {
        serde_json::from_str(&self.body).map_err(|error| {
            NodeError::InvalidInput(format!(
                "message {} ({} from {}): {error}",
                self.id, self.kind, self.from
            ))
        })
    }
}

/// 64-bit FNV-1a over the parts, with a separator so ("ab","c") != ("a","bc").
fn fnv1a<'a>(parts: impl IntoIterator<Item = &'a String>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// A message a node sends to a peer; delivered in the next frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// The receiving node's name; must be allowed by the graph's edges.
    pub to: String,
    /// The message kind.
    pub kind: String,
    /// The payload: a JSON document valid against the receiver's input schema.
    pub body: String,
}

impl Outbound {
    /// Parse the body as `T` (handy in tests of what a node sent).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, NodeError> {
        Ok(serde_json::from_str(&self.body)?)
    }
}

/// What a node produced in one tick; built through [`crate::Ctx`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickOutput {
    /// Messages to peers, delivered in the next frame, in send order.
    pub messages: Vec<Outbound>,
    /// Text for the end user (the chat reply), if this node answers.
    pub reply: Option<String>,
    /// True when this node considers the run finished.
    pub done: bool,
}

impl TickOutput {
    /// The messages sent to `peer`, in send order.
    pub fn sent_to<'a>(&'a self, peer: &'a str) -> impl Iterator<Item = &'a Outbound> + 'a {
        self.messages
            .iter()
            .filter(move |message| message.to == peer)
    }
}

/// What a node is and what it needs, returned by [`crate::Node::describe`].
///
/// ```
/// use weft_sdk::{Capability, NodeInfo};
/// let info = NodeInfo::new("echo", "0.1.0", "Replies with what it got")
///     .input_schema(serde_json::json!({"type": "object"}))
///     .capabilities([Capability::Log]);
/// assert_eq!(info.capabilities, [Capability::Log]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    /// The plugin's name, e.g. `input`.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// One-line description for operators.
    pub description: String,
    /// JSON Schema every inbox message body must satisfy (default: `{}`, anything).
    pub input_schema: serde_json::Value,
    /// JSON Schema of the bodies this node sends (default: `{}`, anything).
    pub output_schema: serde_json::Value,
    /// The host capabilities this node calls (default: none).
    pub capabilities: Vec<Capability>,
}

impl NodeInfo {
    /// Start describing a node; schemas accept anything and no capability is
    /// requested until set.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            input_schema: serde_json::json!({}),
            output_schema: serde_json::json!({}),
            capabilities: Vec::new(),
        }
    }

    /// Set the JSON Schema of inbox bodies.
    pub fn input_schema(mut self, schema: serde_json::Value) -> Self {
        self.input_schema = schema;
        self
    }

    /// Set the JSON Schema of the bodies this node sends.
    pub fn output_schema(mut self, schema: serde_json::Value) -> Self {
        self.output_schema = schema;
        self
    }

    /// Set the capabilities the node calls (duplicates are dropped).
    pub fn capabilities(mut self, capabilities: impl IntoIterator<Item = Capability>) -> Self {
        self.capabilities = Vec::new();
        for capability in capabilities {
            if !self.capabilities.contains(&capability) {
                self.capabilities.push(capability);
            }
        }
        self
    }
}

/// Which state a memory key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Shared by every node of the thread.
    Thread,
    /// Private to this node within the thread.
    Node,
}

/// The kind of a HUD event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The node is thinking (e.g. the PA's "looking that up…").
    Thinking,
    /// The node perceived the input (classification, analysis).
    Perceived,
    /// The node decided on a route or plan.
    Decided,
    /// The node called a tool (a database query, say).
    ToolCall,
    /// The node interpreted tool output into facts.
    Interpreted,
    /// The node updated UI state or controls.
    Updated,
}

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected the node recovered from.
    Warn,
    /// Something failed.
    Error,
}
