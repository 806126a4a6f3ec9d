//! What a tick receives and returns, and what a node says about itself
//! (WIT `types`, capabilities and their errors aside).

use std::ops::Deref;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Capability, CapabilityError};

/// Where an invocation sits: thread, run, frame and node name (and the
/// thread's project). The host journals it with every host call.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallContext {
    /// The conversation (thread) id.
    pub thread: String,
    /// The run: the processing of one inbound message on the thread.
    pub run: String,
    /// The frame (superstep) number within the run, starting at 0.
    pub frame: u32,
    /// The name of this node in the graph (not the plugin's name).
    pub node: String,
    /// The project (tenant) of the thread: `default` unless an operator
    /// gave one. New in contract 0.2.0: empty for 0.1.0 entries.
    #[serde(default)]
    pub project: String,
}

/// What a node is told about its tick (WIT `context`): where it sits, and
/// its configuration from the graph file.
///
/// It dereferences to its [`CallContext`], so `context.thread` reads the
/// thread.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Context {
    /// Thread, run, frame, node and project.
    #[serde(flatten)]
    pub call: CallContext,
    /// The node's `config` from the graph file: a JSON object, `{}` when none.
    pub config: String,
}

impl Deref for Context {
    type Target = CallContext;

    fn deref(&self) -> &CallContext {
        &self.call
    }
}

/// A message delivered to a node in this frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// What a node produced in one tick.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickOutput {
    /// Messages to peers, delivered in the next frame, in send order.
    pub messages: Vec<Outbound>,
    /// Text for the end user (the chat reply), if this node answers.
    pub reply: Option<String>,
    /// True when this node considers the run finished.
    pub done: bool,
    /// A question for a person: the run stops after this frame until it
    /// is answered, rejected or timed out (contract 0.3.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt: Option<Interrupt>,
}

/// A question for a person that stops the run until it is answered
/// (contract 0.3.0). The node that asked gets a [`Resume`] notice in the
/// run's next frame.
///
/// ```
/// use weft_contract::Interrupt;
/// let ask = Interrupt::new(
///     "Send the invoice to Ada?",
///     serde_json::json!({"type": "boolean"}),
/// );
/// assert_eq!(ask.answer_schema["type"], "boolean");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interrupt {
    /// What to ask, shown to the person as is.
    pub question: String,
    /// The JSON Schema the answer must satisfy.
    pub answer_schema: serde_json::Value,
}

impl Interrupt {
    /// A question whose answer must satisfy `answer_schema`.
    pub fn new(question: impl Into<String>, answer_schema: serde_json::Value) -> Self {
        Self {
            question: question.into(),
            answer_schema,
        }
    }
}

impl TickOutput {
    /// The messages sent to `peer`, in send order.
    pub fn sent_to<'a>(&'a self, peer: &'a str) -> impl Iterator<Item = &'a Outbound> + 'a {
        self.messages
            .iter()
            .filter(move |message| message.to == peer)
    }

    /// Bytes of payload the output carries (bodies, names and reply), used
    /// for the host's output size cap.
    pub fn payload_bytes(&self) -> usize {
        let msgs: usize = self
            .messages
            .iter()
            .map(|m| m.to.len() + m.kind.len() + m.body.len())
            .sum();
        let interrupt = self
            .interrupt
            .as_ref()
            .map_or(0, |i| i.question.len() + i.answer_schema.to_string().len());
        msgs + self.reply.as_ref().map_or(0, String::len) + interrupt
    }
}

/// What a node is and what it needs, from its `describe` export.
///
/// ```
/// use weft_contract::{Capability, NodeInfo};
/// let info = NodeInfo::new("echo", "0.1.0", "Replies with what it got")
///     .input_schema(serde_json::json!({"type": "object"}))
///     .capabilities([Capability::Log]);
/// assert_eq!(info.capabilities, [Capability::Log]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The plugin's name, e.g. `input`.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// One-line description for operators.
    pub description: String,
    /// JSON Schema every inbox message body must satisfy (default: `{}`,
    /// anything). WIT carries it as text; the host parses it on load.
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

/// Why a tick failed, as the node itself reports it (WIT `node-error`). The
/// host records it in the frame trace and keeps serving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum NodeError {
    /// The inbox did not make sense to the node; the text says why.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A host capability failed and the node could not recover.
    #[error("capability error: {0}")]
    Capability(#[from] CapabilityError),
    /// Any other failure, described by the text.
    #[error("failed: {0}")]
    Failed(String),
}

/// A JSON error becomes [`NodeError::Failed`]: it usually means a payload the
/// node built or expected did not fit its type. Inbox bodies parsed with
/// [`Message::json`] become [`NodeError::InvalidInput`] instead.
impl From<serde_json::Error> for NodeError {
    fn from(error: serde_json::Error) -> Self {
        Self::Failed(format!("json: {error}"))
    }
}
