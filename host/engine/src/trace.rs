//! What the engine records: a [`FrameRecord`] per node invocation and a
//! [`FrameTrace`] per run. Both serialize (camelCase) for the API, the store
//! and `weft run`'s output.

use serde::{Deserialize, Serialize};
use weft_runtime::capabilities::JournalEntry;
use weft_runtime::capabilities::log::LogLine;
use weft_runtime::{Capability, Message};

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Frames are still being executed.
    Running,
    /// Only paused nodes have messages: the run waits for a resume.
    Waiting,
    /// The thread's token budget or its project's money budget is spent:
    /// the run waits for an operator's raise (or the project's next window).
    BudgetExhausted,
    /// Nothing was pending any more.
    Completed,
    /// The graph's `max_frames` was reached with messages still pending.
    FrameLimit,
    /// An operator killed it.
    Killed,
    /// A newer message on its thread took over (double-texting policy
    /// `interrupt`): it stopped at a frame boundary, its effects kept.
    Preempted,
    /// A newer message on its thread took over and this run's effects were
    /// taken out of the thread (policy `rollback`): its memory writes
    /// undone, its messages out of the thread's history, its frames kept.
    RolledBack,
    /// A node asked a person a question (an interrupt): the run waits,
    /// holding no instance, until it is answered, rejected or timed out,
    /// and then goes on from its next frame.
    Interrupted,
    /// The host is shutting down: the run stopped after its last committed
    /// frame and resumes from there when the host starts again.
    Suspended,
    /// The store failed to commit a frame (after retries): the run stopped
    /// here, with that frame uncommitted, and resumes from its last
    /// committed frame when the host next starts.
    StoreFailed,
}

impl RunStatus {
    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Self::Running | Self::Waiting | Self::BudgetExhausted | Self::Interrupted
        )
    }

    /// The status as written in traces and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::BudgetExhausted => "budget_exhausted",
            Self::Completed => "completed",
            Self::FrameLimit => "frame_limit",
            Self::Killed => "killed",
            Self::Preempted => "preempted",
            Self::RolledBack => "rolled_back",
            Self::StoreFailed => "store_failed",
            Self::Interrupted => "interrupted",
            Self::Suspended => "suspended",
        }
    }
}

/// An error in a trace: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceError {
    /// `node_error`, `out_of_fuel`, `deadline_exceeded`, `not_a_peer`, `unknown_node`, `invalid_payload` …
    pub code: String,
    /// What happened, with every detail an operator needs.
    pub message: String,
}

/// A message as a trace shows it: who, what kind, how big.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSummary {
    /// Message id.
    pub id: String,
    /// Sender.
    pub from: String,
    /// Kind.
    pub kind: String,
    /// Body size in bytes.
    pub bytes: usize,
}

impl From<&Message> for MessageSummary {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.clone(),
            from: m.from.clone(),
            kind: m.kind.clone(),
            bytes: m.body.len(),
        }
    }
}

/// One message a node sent and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSummary {
    /// Receiver.
    pub to: String,
    /// Kind.
    pub kind: String,
    /// Body size in bytes.
    pub bytes: usize,
    /// The id it was delivered under, if it was.
    pub delivered_as: Option<String>,
    /// Why it was rejected, if it was.
    pub rejected: Option<TraceError>,
}

/// Tokens an invocation's `llm` calls used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// Prompt tokens.
    pub prompt: u64,
    /// Completion tokens.
    pub completion: u64,
    /// Number of `llm` calls.
    pub calls: u32,
}

impl Tokens {
    /// Sums the successful `llm` calls of a journal.
    pub fn from_journal(journal: &[JournalEntry]) -> Self {
        let mut tokens = Self::default();
        for entry in journal.iter().filter(|e| e.capability == Capability::Llm) {
            tokens.calls += 1;
            if let Some(ok) = entry.response.get("ok") {
                let n = |k: &str| ok.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
                tokens.prompt += n("prompt_tokens");
                tokens.completion += n("completion_tokens");
            }
        }
        tokens
    }

    /// Prompt plus completion tokens.
    pub fn total(&self) -> u64 {
        self.prompt + self.completion
    }
}

/// One node invocation in one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameRecord {
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// Frame number, from 0.
    pub frame: u32,
    /// Node name in the graph.
    pub node: String,
    /// The plugin's `describe` name.
    pub plugin: String,
    /// SHA-256 of the plugin's component (hex): which version ran.
    pub plugin_hash: String,
    /// Wall time of the invocation, instantiation included, in microseconds.
    pub duration_us: u64,
    /// Time to instantiate, in microseconds (0 in a kept instance).
    pub instantiate_us: u64,
    /// The tick ran in an instance kept from an earlier tick of the node
    /// (`instance: reuse`); absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reused_instance: bool,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Tokens used by `llm` calls.
    pub tokens: Tokens,
    /// What the node was given.
    pub inbox: Vec<MessageSummary>,
    /// What it sent, and where each message went.
    pub sent: Vec<RouteSummary>,
    /// The reply it gave, if any.
    pub reply: Option<String>,
    /// Whether it declared the run done.
    pub done: bool,
    /// The id of the interrupt (a question for a person) it raised, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt: Option<String>,
    /// HUD events and progress texts emitted.
    pub events: usize,
    /// Memory keys written.
    pub memory_writes: usize,
    /// Every host-capability call, request and response, in order.
    pub journal: Vec<JournalEntry>,
    /// Lines the node logged.
    pub logs: Vec<LogLine>,
    /// Capabilities called without a grant.
    pub denied: Vec<Capability>,
    /// Why the invocation failed, if it did (its output was then discarded).
    pub error: Option<TraceError>,
}

/// Everything a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameTrace {
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// Graph name.
    pub graph: String,
    /// Graph content hash (hex).
    pub graph_hash: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Frames executed.
    pub frames: u32,
    /// The reply for the user (the last one given), if any.
    pub reply: Option<String>,
    /// Per-invocation records, by frame, then in graph order.
    pub records: Vec<FrameRecord>,
    /// Messages still pending when the run stopped (frame limit or kill).
    pub undelivered: Vec<MessageSummary>,
    /// Total wall time in microseconds.
    pub duration_us: u64,
}

impl FrameTrace {
    /// The records of one frame.
    pub fn frame(&self, frame: u32) -> impl Iterator<Item = &FrameRecord> {
        self.records.iter().filter(move |r| r.frame == frame)
    }

    /// The nodes invoked in each frame, e.g. `[["input"], ["pa", "memorizer"], …]`.
    pub fn path(&self) -> Vec<Vec<String>> {
        (0..self.frames)
            .map(|f| self.frame(f).map(|r| r.node.clone()).collect())
            .collect()
    }

    /// Every error recorded, with the frame and node.
    pub fn errors(&self) -> impl Iterator<Item = (&FrameRecord, &TraceError)> {
        self.records.iter().flat_map(|r| {
            r.error.iter().map(move |e| (r, e)).chain(
                r.sent
                    .iter()
                    .filter_map(move |s| s.rejected.as_ref().map(|e| (r, e))),
            )
        })
    }

    /// Total tokens over the run.
    pub fn tokens(&self) -> Tokens {
        self.records.iter().fold(Tokens::default(), |mut t, r| {
            t.prompt += r.tokens.prompt;
            t.completion += r.tokens.completion;
            t.calls += r.tokens.calls;
            t
        })
    }

    /// A compact, human-readable rendering (for `weft run`).
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "run {} on thread {} ({} {}): {} after {} frames, {:.1} ms, {} tokens",
            self.run,
            self.thread,
            self.graph,
            &self.graph_hash[..self.graph_hash.len().min(12)],
            self.status.as_str(),
            self.frames,
            self.duration_us as f64 / 1000.0,
            self.tokens().total()
        );
        for r in &self.records {
            let sent: Vec<String> = r
                .sent
                .iter()
                .map(|s| match &s.rejected {
                    None => format!("{}:{}", s.to, s.kind),
                    Some(e) => format!("{}:{} REJECTED ({})", s.to, s.kind, e.code),
                })
                .collect();
            let _ = write!(
                out,
                "  frame {:>2}  {:<12} {:>8.2} ms  fuel {:>10}  tokens {:>5}  -> [{}]",
                r.frame,
                r.node,
                r.duration_us as f64 / 1000.0,
                r.fuel_used,
                r.tokens.total(),
                sent.join(", ")
            );
            if r.reply.is_some() {
                out.push_str("  (reply)");
            }
            if let Some(e) = &r.error {
                let _ = write!(out, "  ERROR {}: {}", e.code, e.message);
            }
            out.push('\n');
        }
        out
    }
}

impl TraceError {
    /// The trace's form of an invocation's error.
    pub fn of(error: &weft_runtime::InvokeError) -> Self {
        match error {
            weft_runtime::InvokeError::Node(e) => Self {
                code: "node_error".into(),
                message: e.to_string(),
            },
            weft_runtime::InvokeError::Runtime(e) => Self {
                code: e.code().into(),
                message: e.to_string(),
            },
        }
    }
}
