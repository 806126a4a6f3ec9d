//! One node invocation as committed with its frame: its record, and the
//! outputs a replay must reproduce.

use serde::{Deserialize, Serialize};
use weft_runtime::Message;
use weft_runtime::capabilities::memory::MemoryWrite;
use weft_runtime::capabilities::store::KvWrite;

use crate::trace::FrameRecord;

/// One node invocation as committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRecord {
    /// The record the trace shows (journal included).
    pub record: FrameRecord,
    /// The messages delivered, whole.
    pub inbox: Vec<Message>,
    /// What the node produced: what replay compares.
    pub output: RecordedOutput,
}

/// What one invocation produced, whole: the outputs replay must reproduce.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedOutput {
    /// Messages sent, in order, before routing.
    pub messages: Vec<SentMessage>,
    /// The reply given.
    pub reply: Option<String>,
    /// Whether it declared the run done.
    pub done: bool,
    /// Memory writes, in key order.
    pub memory_writes: Vec<MemoryWrite>,
    /// `store` writes (the project's key/value state), in key order
    /// (absent in frames recorded before contract 0.3.0's `store`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kv_writes: Vec<KvWrite>,
    /// The error code, when the invocation failed.
    pub error: Option<String>,
}

/// A message a node sent, as it sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Receiver.
    pub to: String,
    /// Kind.
    pub kind: String,
    /// Body.
    pub body: String,
}

impl RecordedOutput {
    /// What an invocation produced, whole (what replay compares).
    pub fn of(outcome: &weft_runtime::Outcome) -> Self {
        match &outcome.result {
            Ok(output) => Self {
                messages: output
                    .messages
                    .iter()
                    .map(|m| SentMessage {
                        to: m.to.clone(),
                        kind: m.kind.clone(),
                        body: m.body.clone(),
                    })
                    .collect(),
                reply: output.reply.clone(),
                done: output.done,
                memory_writes: outcome.memory_writes.clone(),
                kv_writes: outcome.kv_writes.clone(),
                error: None,
            },
            Err(error) => Self {
                error: Some(crate::trace::TraceError::of(error).code),
                ..Self::default()
            },
        }
    }
}
