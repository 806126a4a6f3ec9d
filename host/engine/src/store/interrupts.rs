//! Interrupts as the store keeps them: a node's question for a person,
//! raised in a committed frame, pending until it is answered, rejected,
//! timed out, or its run is killed.

use serde::{Deserialize, Serialize};
use weft_runtime::Message;

/// Where an interrupt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterruptStatus {
    /// Waiting for a person.
    Pending,
    /// A person answered; the answer is the value.
    Answered,
    /// A person declined; the answer is the reason (a string).
    Rejected,
    /// Its deadline passed unanswered.
    TimedOut,
    /// Its run was killed while it waited.
    Cancelled,
}

impl InterruptStatus {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Answered => "answered",
            Self::Rejected => "rejected",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status named `s` (as [`as_str`](Self::as_str) writes it).
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Answered,
            Self::Rejected,
            Self::TimedOut,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// An interrupt: who asked what, in which frame, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredInterrupt {
    /// `<run>/f<frame>/<node>`: stable across replays.
    pub id: String,
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// The node that asked.
    pub node: String,
    /// The frame (within the run) that raised it.
    pub frame: u32,
    /// The question, as the node wrote it.
    pub question: String,
    /// The JSON Schema an answer must satisfy.
    pub answer_schema: serde_json::Value,
    /// When it was raised (the frame's wall time), Unix milliseconds.
    pub created_ms: u64,
    /// When it times out, from the node's `interrupt_timeout_ms`; never
    /// when `None`.
    pub deadline_ms: Option<u64>,
    /// Where it stands.
    pub status: InterruptStatus,
    /// The answer (`answered`) or the reason (`rejected`).
    pub answer: Option<serde_json::Value>,
    /// When it stopped being pending, Unix milliseconds.
    pub resolved_ms: Option<u64>,
}

/// How a pending interrupt ends, as the store commits it: the interrupt's
/// new status and answer, and the `resume` notice for the node that asked,
/// stored as pending for the run's next frame. When it was the run's last
/// pending interrupt, the run is running again.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolveInterrupt {
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// Interrupt id.
    pub interrupt: String,
    /// Answered, rejected or timed out.
    pub status: InterruptStatus,
    /// The answer or the reason.
    pub answer: Option<serde_json::Value>,
    /// The notice for the node that asked (sender `system`, kind `resume`).
    pub notice: Message,
    /// Unix milliseconds.
    pub at_ms: u64,
}
