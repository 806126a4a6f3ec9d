//! The live event stream: what nodes show while they work, frame traces as
//! runs finish, and errors. Subscribers get every event of every thread in
//! order, each with a sequence number so that a client can resume a stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use weft_runtime::capabilities::hud::{EventSink, HudEvent};
use weft_runtime::{CallContext, EventKind};

use crate::store::StoredInterrupt;
use crate::trace::{FrameRecord, FrameTrace, RunStatus, TraceError};

/// One event on the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Increases by one per event, engine-wide.
    pub seq: u64,
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// Frame, for events from inside a frame.
    pub frame: Option<u32>,
    /// Emitting node, for events from a node.
    pub node: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// What an [`Event`] says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum EventBody {
    /// A node is thinking (payload from the node).
    Thinking(serde_json::Value),
    /// A node perceived its input.
    Perceived(serde_json::Value),
    /// A node decided a route or plan.
    Decided(serde_json::Value),
    /// A node called a tool.
    ToolCall(serde_json::Value),
    /// A node interpreted tool output.
    Interpreted(serde_json::Value),
    /// A node updated (UI or memory) state.
    Updated(serde_json::Value),
    /// Progress text for the user.
    Progress {
        /// The text.
        text: String,
    },
    /// A piece of streamed LLM output.
    Streaming {
        /// The text delta.
        delta: String,
    },
    /// A run started.
    RunStarted {
        /// The graph it runs on.
        graph: String,
    },
    /// A run was accepted for a busy thread and waits for it (policy
    /// `enqueue`, `interrupt` or `rollback`).
    RunQueued {
        /// Its place in the thread's queue (0: next).
        position: usize,
        /// The run in flight it waits for.
        behind: String,
        /// The policy it came with.
        multitask: crate::threads::Multitask,
    },
    /// One node invocation finished (its record, without the journal).
    Frame(Box<FrameRecord>),
    /// A run's status changed (waiting, resumed).
    Status {
        /// The new status.
        status: RunStatus,
    },
    /// A run finished, with its whole trace.
    FrameTrace(Box<FrameTrace>),
    /// Something failed: a node, a route, a payload.
    Error(TraceError),
    /// A thread's token budget (`{scope: "thread", percent, used, limit}`)
    /// or a project's money budget (`{scope: "project", project, percent,
    /// spent, limit, windowStartMs}`) crossed 75, 90 or 95 %.
    BudgetWarning(serde_json::Value),
    /// A call was refused for lack of budget (`{scope: "thread"|"project",
    /// project?, budget, message}`, `budget` being the thread's or the
    /// project's status).
    BudgetExhausted(serde_json::Value),
    /// A node asked a person a question: the run waits (status
    /// `interrupted`) until it is answered, rejected or timed out.
    Interrupt(Box<StoredInterrupt>),
    /// An interrupt ended: answered, rejected, timed out or cancelled (its
    /// run killed). The run goes on when none of its interrupts is pending.
    InterruptResolved(Box<StoredInterrupt>),
    /// A plugin was swapped while serving (a host event: no thread). Runs
    /// use the new version from their next frame.
    PluginSwapped {
        /// Plugin name.
        plugin: String,
        /// Its new version (`describe`).
        version: String,
        /// Content hash of the version replaced, if there was one.
        from: Option<String>,
        /// Content hash of the new version.
        to: String,
        /// Graphs with nodes that run it.
        graphs: Vec<String>,
    },
    /// A graph was switched to, edited, added or removed (a host event: no
    /// thread). New runs use it; runs in flight finish on their version.
    GraphChanged {
        /// Graph name.
        graph: String,
        /// Its version id now (empty when removed).
        version: String,
        /// `activated`, `edited`, `added` or `removed`.
        change: String,
    },
    /// Progress of a scenario suite started over the API (`POST
    /// /api/v1/tests`), on the thread its current step runs on:
    /// `{"test": id, "event": "suite_start" | "step_start" | "step_result"
    /// | "suite_end", …}`.
    Test(serde_json::Value),
}

impl EventBody {
    /// The `type` tag as serialized.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Thinking(_) => "thinking",
            Self::Perceived(_) => "perceived",
            Self::Decided(_) => "decided",
            Self::ToolCall(_) => "tool_call",
            Self::Interpreted(_) => "interpreted",
            Self::Updated(_) => "updated",
            Self::Progress { .. } => "progress",
            Self::Streaming { .. } => "streaming",
            Self::RunStarted { .. } => "run_started",
            Self::RunQueued { .. } => "run_queued",
            Self::Frame(_) => "frame",
            Self::Status { .. } => "status",
            Self::FrameTrace(_) => "frame_trace",
            Self::Error(_) => "error",
            Self::BudgetWarning(_) => "budget_warning",
            Self::BudgetExhausted(_) => "budget_exhausted",
            Self::Interrupt(_) => "interrupt",
            Self::InterruptResolved(_) => "interrupt_resolved",
            Self::PluginSwapped { .. } => "plugin_swapped",
            Self::GraphChanged { .. } => "graph_changed",
            Self::Test(_) => "test",
        }
    }
}

impl From<&HudEvent> for EventBody {
    fn from(e: &HudEvent) -> Self {
        match e {
            HudEvent::Progress { text } => Self::Progress { text: text.clone() },
            HudEvent::Event { kind, data } => {
                let data = data.clone();
                match kind {
                    EventKind::Thinking => Self::Thinking(data),
                    EventKind::Perceived => Self::Perceived(data),
                    EventKind::Decided => Self::Decided(data),
                    EventKind::ToolCall => Self::ToolCall(data),
                    EventKind::Interpreted => Self::Interpreted(data),
                    EventKind::Updated => Self::Updated(data),
                }
            }
        }
    }
}

/// The engine's event bus: a broadcast channel with sequence numbers. Slow
/// subscribers lose the oldest events (and are told how many), they never
/// slow the engine down.
#[derive(Debug, Clone)]
pub struct Bus {
    inner: Arc<BusInner>,
}

#[derive(Debug)]
struct BusInner {
    tx: broadcast::Sender<Arc<Event>>,
    seq: AtomicU64,
}

impl Bus {
    /// A bus keeping up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self {
            inner: Arc::new(BusInner {
                tx,
                seq: AtomicU64::new(0),
            }),
        }
    }

    /// A new subscription to every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.tx.subscribe()
    }

    /// Publishes an event (dropped when nobody listens).
    pub fn publish(
        &self,
        thread: &str,
        run: &str,
        frame: Option<u32>,
        node: Option<&str>,
        body: EventBody,
    ) {
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
        // Nobody to receive it: skip building it (three allocations).
        if !self.has_subscribers() {
            return;
        }
        let _ = self.inner.tx.send(Arc::new(Event {
            seq,
            thread: thread.to_owned(),
            run: run.to_owned(),
            frame,
            node: node.map(str::to_owned),
            body,
        }));
    }

    /// Publishes a host event (no thread, run or node): plugin swaps, graph
    /// changes.
    pub fn publish_host(&self, body: EventBody) {
        self.publish("", "", None, None, body);
    }

    /// Whether anyone listens (events that are costly to build can be
    /// skipped when nobody does).
    pub fn has_subscribers(&self) -> bool {
        self.inner.tx.receiver_count() > 0
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.inner.seq.load(Ordering::Relaxed)
    }
}

impl EventSink for Bus {
    fn emit(&self, ctx: &CallContext, event: &HudEvent) {
        self.publish(
            &ctx.thread,
            &ctx.run,
            Some(ctx.frame),
            Some(&ctx.node),
            event.into(),
        );
    }

    fn delta(&self, ctx: &CallContext, text: &str) {
        self.publish(
            &ctx.thread,
            &ctx.run,
            Some(ctx.frame),
            Some(&ctx.node),
            EventBody::Streaming {
                delta: text.to_owned(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streams name events with `kind()`; it must be the serialized tag.
    #[test]
    fn kind_is_the_serialized_type_tag() {
        let bodies = [
            EventBody::Thinking(serde_json::json!({})),
            EventBody::ToolCall(serde_json::json!({})),
            EventBody::Progress { text: "p".into() },
            EventBody::Streaming { delta: "d".into() },
            EventBody::RunStarted { graph: "g".into() },
            EventBody::RunQueued {
                position: 0,
                behind: "r".into(),
                multitask: crate::threads::Multitask::Enqueue,
            },
            EventBody::Status {
                status: RunStatus::Waiting,
            },
            EventBody::Error(crate::trace::TraceError {
                code: "c".into(),
                message: "m".into(),
            }),
            EventBody::BudgetWarning(serde_json::json!({})),
            EventBody::BudgetExhausted(serde_json::json!({})),
            EventBody::PluginSwapped {
                plugin: "p".into(),
                version: "1".into(),
                from: None,
                to: "h".into(),
                graphs: Vec::new(),
            },
            EventBody::GraphChanged {
                graph: "g".into(),
                version: "v".into(),
                change: "edited".into(),
            },
        ];
        for body in bodies {
            let value = serde_json::to_value(&body).unwrap();
            assert_eq!(value["type"], body.kind(), "{value}");
        }
    }
}
