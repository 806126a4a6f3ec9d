//! The units of a run's life the engine hands the store: its start (or
//! fork), each frame, its end, the lease it runs under, and runs queued
//! or left unfinished.

use serde::{Deserialize, Serialize};
use weft_runtime::Message;
use weft_runtime::capabilities::memory::MemoryWrite;
use weft_runtime::capabilities::store::KvWrite;

use super::{InvocationRecord, StoredInterrupt};
use crate::metering::{InvocationEvent, UsageEvent};
use crate::trace::RunStatus;

/// The durable start of a run: commit before the run's first frame, so
/// that an accepted message is never lost.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// Thread id (created if new).
    pub thread: String,
    /// The thread's project.
    pub project: String,
    /// Run id.
    pub run: String,
    /// The graph version the run is pinned to (stored beforehand with
    /// [`Store::put_graph`]).
    pub graph_version: String,
    /// The messages it starts with, with their receivers.
    pub inbound: Vec<(String, Message)>,
    /// The thread's token limit, if an operator set or raised it.
    pub budget_limit: Option<u64>,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// A fork: a new thread with a copy of another's memory as it stood after
/// frame `seq`, and a run for the messages that were still pending then.
#[derive(Debug, Clone, PartialEq)]
pub struct ForkStart {
    /// The thread forked from.
    pub from_thread: String,
    /// The frame forked after.
    pub from_seq: u64,
    /// The new thread's memory.
    pub memory: Vec<MemoryWrite>,
    /// The run continuing the pending messages, if there were any
    /// (`inbound` holds them; `thread` is the new thread). Without one, the
    /// new thread is stored `completed`, with nothing to run.
    pub start: RunStart,
    /// Whether `start` has messages to run.
    pub has_run: bool,
}

/// One frame's work, committed in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameCommit {
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// Frame within the run.
    pub frame: u32,
    /// Frame within the thread.
    pub seq: u64,
    /// The graph version the frame ran (it changes within a run when a
    /// plugin is swapped).
    pub graph_version: String,
    /// The wall time the frame's plugins saw, Unix milliseconds.
    pub wall_time_ms: u64,
    /// Every invocation, in graph order.
    pub invocations: Vec<InvocationRecord>,
    /// Messages routed in this frame (undeliverable notices included), with
    /// their receivers: pending for the next frame.
    pub sent: Vec<(String, Message)>,
    /// Messages the frame consumed, with their receivers: each must be
    /// pending for the run, except engine notices (sender `system`), which
    /// are stored as delivered. A node refused for budget keeps its
    /// messages pending.
    pub delivered: Vec<(String, Message)>,
    /// Committed memory writes (thread and node scopes).
    pub memory: Vec<MemoryWrite>,
    /// Committed `store` writes (the projects' key/value state).
    pub kv: Vec<KvWrite>,
    /// `llm` calls of the frame.
    pub usage: Vec<UsageEvent>,
    /// Invocation metering of the frame.
    pub metering: Vec<InvocationEvent>,
    /// Interrupts the frame raised (pending): the run's status is then
    /// `interrupted`.
    pub interrupts: Vec<StoredInterrupt>,
    /// The run's status after the frame.
    pub status: RunStatus,
    /// The run's reply so far.
    pub reply: Option<String>,
    /// The fencing token of the lease the frame is committed under
    /// (`None`: the host holds no lease, as with one host on SQLite). A
    /// store that keeps leases refuses the commit with
    /// [`StoreError::Fenced`] when the token is not the run's current one.
    pub fence: Option<u64>,
}

/// A host's hold on a run: while it is current, frames of the run are
/// committed by this host only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// Run id.
    pub run: String,
    /// The host holding it.
    pub host: String,
    /// The fencing token: it grows with every claim of any run, so that a
    /// later holder's token is always greater.
    pub token: u64,
    /// When it lapses unless renewed, Unix milliseconds.
    pub expires_ms: u64,
}

impl Lease {
    /// The lease of a store that has one host only: never contested.
    pub fn sole(run: &str, host: &str) -> Self {
        Self {
            run: run.to_owned(),
            host: host.to_owned(),
            token: 1,
            expires_ms: u64::MAX,
        }
    }
}

/// The end of a run, when it did not end with a frame (kill, frame limit).
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// Final status.
    pub status: RunStatus,
    /// Unix milliseconds.
    pub at_ms: u64,
    /// Memory writes committed with the end: what undoes a rolled-back
    /// run's writes (empty otherwise).
    pub restore: Vec<MemoryWrite>,
}

/// A run accepted for a busy thread, waiting for it (`queued`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedRun {
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// The graph version its message was checked against.
    pub graph_version: String,
    /// The receiving node.
    pub to: String,
    /// The inbound message.
    pub message: Message,
}

/// A run the store holds as not finished: what resuming it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct UnfinishedRun {
    /// Thread id.
    pub thread: String,
    /// The thread's project.
    pub project: String,
    /// Run id.
    pub run: String,
    /// The graph version it is pinned to.
    pub graph_version: String,
    /// The next frame within the run.
    pub frame: u32,
    /// The thread's next frame `seq`.
    pub seq: u64,
    /// Messages sent and not yet delivered, in the order they were sent,
    /// with their receivers.
    pub pending: Vec<(String, Message)>,
    /// The reply given so far.
    pub reply: Option<String>,
}
