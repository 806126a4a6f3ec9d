//! One run: frames until nothing is pending, the frame limit, or a kill.
//!
//! A frame invokes every node that has messages (and every `every_tick`
//! node) once, concurrently, each in a fresh instance. Their outputs are
//! buffered and applied together when all have finished, in graph order, so
//! the result of a frame never depends on which node finished first:
//! messages are routed (edges checked, payloads validated against the
//! receiver's input schema) and queued for the next frame, memory writes are
//! committed, and a [`FrameRecord`] is written per invocation.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;
use serde_json::json;
use tokio::sync::watch;
use weft_runtime::capabilities::memory::MemoryWrite;
use weft_runtime::{CallContext, Invocation, InvokeError, Message, Outcome};

use crate::engine::Engine;
use crate::events::EventBody;
use crate::loaded::LoadedGraph;
use crate::store::{FrameCommit, InvocationRecord, RecordedOutput, SentMessage, Store, StoreError};
use crate::trace::{
    FrameRecord, FrameTrace, MessageSummary, RouteSummary, RunStatus, Tokens, TraceError,
};
use crate::usage::{InvocationEvent, Ledger};

/// The sender of engine notices to nodes.
pub const SYSTEM_SENDER: &str = "system";
/// The kind of the notice a node gets in the next frame when a message it
/// sent was rejected. Body: `{"to", "kind", "code", "message"}`; not
/// validated against the node's input schema.
pub const UNDELIVERABLE_KIND: &str = "undeliverable";

/// Where a run starts (or resumes): its pending messages per node, its next
/// frame, the thread's next frame `seq`, and the reply given so far.
pub(crate) struct RunState {
    pub pending: Vec<Vec<Message>>,
    pub frame: u32,
    pub seq: u64,
    pub reply: Option<String>,
}

/// What applying a frame's outcomes produces besides the records.
#[derive(Default)]
struct FrameOut {
    /// Memory writes to commit.
    writes: Vec<MemoryWrite>,
    /// Messages routed in the frame, with their receivers' names.
    sent: Vec<(String, Message)>,
    /// Messages the frame consumed, with their receivers' names.
    delivered: Vec<(String, Message)>,
}

pub(crate) async fn execute(
    engine: &Arc<Engine>,
    graph: &Arc<LoadedGraph>,
    thread: &str,
    run: &str,
    mut kill: watch::Receiver<bool>,
    state: RunState,
) -> FrameTrace {
    let started = Instant::now();
    // Swapped plugins take effect at the next frame boundary.
    let mut graph = Arc::clone(graph);
    let mut swaps_seen = 0;
    let mut swaps = engine.swap_count.subscribe();
    let RunState {
        mut pending,
        mut frame,
        mut seq,
        reply,
    } = state;
    let mut paused_rx = engine.paused.subscribe();
    let mut stopping = engine.stopping.subscribe();
    let mut raised = engine.budgets.subscribe();
    let project = engine.budgets.project_of(thread);
    let mut trace = FrameTrace {
        thread: thread.to_owned(),
        run: run.to_owned(),
        graph: graph.graph().name().to_owned(),
        graph_hash: graph.graph().content_hash().to_hex(),
        status: RunStatus::Running,
        frames: frame,
        reply,
        records: Vec::new(),
        undelivered: Vec::new(),
        duration_us: 0,
    };
    // The status the store holds for the run.
    let mut stored = RunStatus::Running;
    loop {
        if pending.iter().all(Vec::is_empty) {
            trace.status = RunStatus::Completed;
            break;
        }
        if *swaps.borrow_and_update() != swaps_seen {
            (graph, swaps_seen) = engine.rebind((thread, run), &graph, swaps_seen).await;
        }
        let nodes = graph.graph().nodes();
        if *kill.borrow() {
            trace.status = RunStatus::Killed;
            break;
        }
        if *stopping.borrow_and_update() {
            trace.status = RunStatus::Interrupted;
            break;
        }
        let paused = paused_rx.borrow_and_update().clone();
        let runnable = |i: usize| !paused.iter().any(|p| p.holds(&project, &nodes[i].name));
        if !(0..nodes.len()).any(|i| !pending[i].is_empty() && runnable(i)) {
            // Only paused nodes hold messages: wait for a resume or a kill.
            engine.bus.publish(
                thread,
                run,
                None,
                None,
                EventBody::Status {
                    status: RunStatus::Waiting,
                },
            );
            tokio::select! {
                _ = paused_rx.changed() => {}
                _ = kill.changed() => {}
                _ = stopping.changed() => {}
            }
            engine.bus.publish(
                thread,
                run,
                None,
                None,
                EventBody::Status {
                    status: RunStatus::Running,
                },
            );
            continue;
        }
        if frame >= graph.graph().max_frames() {
            trace.status = RunStatus::FrameLimit;
            break;
        }
        let active: Vec<usize> = (0..nodes.len())
            .filter(|&i| runnable(i) && (!pending[i].is_empty() || nodes[i].every_tick))
            .collect();
        // Budget warnings wait for the node's next tick; they never cause one.
        let inboxes: Vec<Vec<Message>> = active
            .iter()
            .map(|&i| {
                let mut inbox = engine.budgets.take_notices(thread, &nodes[i].name);
                inbox.append(&mut pending[i]);
                inbox
            })
            .collect();
        // Plugins see whole milliseconds, so that a replay sees the same time.
        let wall_time_ms = engine.budgets.now_ms();
        let outcomes = invoke_frame(
            engine,
            &graph,
            (&project, thread, run, frame),
            wall_time_ms,
            &active,
            &inboxes,
        )
        .await;
        let mut out = FrameOut::default();
        let mut invocations = Vec::with_capacity(active.len());
        let mut metering = Vec::with_capacity(active.len());
        for ((&i, inbox), outcome) in active.iter().zip(&inboxes).zip(outcomes) {
            let (record, output) = apply(
                engine,
                &graph,
                (thread, run, frame, i),
                inbox,
                outcome,
                &mut pending,
                &mut out,
                &mut trace.reply,
            );
            metering.push(InvocationEvent {
                project: project.clone(),
                thread: record.thread.clone(),
                run: record.run.clone(),
                frame,
                node: record.node.clone(),
                plugin: record.plugin.clone(),
                plugin_version: graph.loaded(i).plugin.info().version.clone(),
                plugin_hash: record.plugin_hash.clone(),
                fuel_used: record.fuel_used,
                duration_us: record.duration_us,
                outcome: record
                    .error
                    .as_ref()
                    .map_or_else(|| "ok".to_owned(), |e| e.code.clone()),
                at_ms: engine.budgets.now_ms(),
            });
            let name = &nodes[i].name;
            if refused_for_budget(&record) {
                // Retried after a raise: the node gets its messages back
                // (budget notices are consumed).
                let (retry, notices): (Vec<Message>, Vec<Message>) =
                    inbox.iter().cloned().partition(|m| m.from != SYSTEM_SENDER);
                pending[i].splice(0..0, retry);
                out.delivered
                    .extend(notices.into_iter().map(|m| (name.clone(), m)));
            } else {
                out.delivered
                    .extend(inbox.iter().map(|m| (name.clone(), m.clone())));
            }
            invocations.push(InvocationRecord {
                record,
                inbox: inbox.clone(),
                output,
            });
        }
        if let Some(store) = &engine.store {
            let status = if pending.iter().all(Vec::is_empty) {
                RunStatus::Completed
            } else {
                RunStatus::Running
            };
            let commit = Arc::new(FrameCommit {
                thread: thread.to_owned(),
                run: run.to_owned(),
                frame,
                seq,
                graph_version: graph.version_id().to_owned(),
                wall_time_ms,
                invocations,
                sent: out.sent,
                delivered: out.delivered,
                memory: out.writes.clone(),
                usage: engine.take_staged_usage(run),
                metering: metering.clone(),
                status,
                reply: trace.reply.clone(),
            });
            if let Err(e) = commit_frame(engine, store.as_ref(), &commit, &mut kill).await {
                tracing::error!(thread, run, frame, error = %e, "frame not committed: the run stops and resumes from its last committed frame at the next start");
                trace.status = RunStatus::StoreFailed;
                trace.records.extend(
                    Arc::try_unwrap(commit)
                        .map_or_else(|c| c.invocations.clone(), |c| c.invocations)
                        .into_iter()
                        .map(|i| i.record),
                );
                break;
            }
            stored = status;
            invocations =
                Arc::try_unwrap(commit).map_or_else(|c| c.invocations.clone(), |c| c.invocations);
        }
        // Committed: now the frame is visible.
        for (invocation, event) in invocations.into_iter().zip(metering) {
            let mut record = invocation.record;
            if engine.bus.has_subscribers() {
                // The event carries the record without its journal (which
                // can be large, and is not copied); the journal is in the
                // run's trace.
                let journal = std::mem::take(&mut record.journal);
                let shown = record.clone();
                record.journal = journal;
                engine.bus.publish(
                    thread,
                    run,
                    Some(frame),
                    Some(&record.node),
                    EventBody::Frame(Box::new(shown)),
                );
            }
            engine.ledger.record_invocation(event);
            trace.records.push(record);
        }
        engine.memory.apply(&out.writes);
        frame += 1;
        seq += 1;
        trace.frames = frame;
        engine.note_frames(thread, seq);
        if engine.budgets.is_exhausted(thread) {
            trace.status = RunStatus::BudgetExhausted;
            let status = |status| EventBody::Status { status };
            engine
                .bus
                .publish(thread, run, None, None, status(RunStatus::BudgetExhausted));
            raised.borrow_and_update();
            // A raise wakes the run at once; a new budget window is noticed
            // on the next tick (or by `is_exhausted` itself).
            while engine.budgets.is_exhausted(thread) && !*kill.borrow() && !*stopping.borrow() {
                tokio::select! {
                    _ = raised.changed() => {}
                    _ = kill.changed() => {}
                    _ = stopping.changed() => {}
                    _ = tokio::time::sleep(engine.config.budget_tick) => engine.budgets.tick(),
                }
            }
            trace.status = RunStatus::Running;
            engine
                .bus
                .publish(thread, run, None, None, status(RunStatus::Running));
        }
    }
    // A run stopped by a failing store or a shutdown stays unfinished in
    // the store, to resume at the next start.
    if trace.status != stored
        && !matches!(
            trace.status,
            RunStatus::StoreFailed | RunStatus::Interrupted
        )
    {
        engine.commit_end(thread, run, trace.status).await;
    }
    trace.undelivered = pending.iter().flatten().map(MessageSummary::from).collect();
    trace.duration_us = started.elapsed().as_micros() as u64;
    tracing::info!(
        thread,
        run,
        status = trace.status.as_str(),
        frames = trace.frames,
        "run finished"
    );
    trace
}

/// Commits a frame, retrying failures with a growing pause (a kill stops
/// the retries). Every failure is published as an error event.
async fn commit_frame(
    engine: &Engine,
    store: &dyn Store,
    commit: &Arc<FrameCommit>,
    kill: &mut watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let mut pause = engine.config.commit_backoff;
    let mut attempt = 1;
    loop {
        let error = match store.commit_frame(Arc::clone(commit)).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        engine.bus.publish(
            &commit.thread,
            &commit.run,
            Some(commit.frame),
            None,
            EventBody::Error(TraceError {
                code: error.code().into(),
                message: format!(
                    "frame {} not committed (attempt {attempt} of {}): {error}",
                    commit.frame, engine.config.commit_attempts
                ),
            }),
        );
        // A conflict will not go away by trying again.
        if attempt >= engine.config.commit_attempts.max(1)
            || matches!(error, StoreError::Conflict(_))
            || *kill.borrow()
        {
            return Err(error);
        }
        tracing::warn!(thread = %commit.thread, run = %commit.run, frame = commit.frame, attempt, error = %error, "frame commit failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = kill.changed() => {}
        }
        pause = (pause * 2).min(Duration::from_secs(5));
        attempt += 1;
    }
}

/// Whether a node failed because its thread's budget refused an `llm` call.
fn refused_for_budget(record: &FrameRecord) -> bool {
    record.error.is_some()
        && record.journal.iter().any(|j| {
            j.capability == weft_runtime::Capability::Llm
                && j.response["err"]["code"] == "budget_exhausted"
        })
}

/// Invokes the active nodes of one frame concurrently.
async fn invoke_frame(
    engine: &Engine,
    graph: &LoadedGraph,
    (project, thread, run, frame): (&str, &str, &str, u32),
    wall_time_ms: u64,
    active: &[usize],
    inboxes: &[Vec<Message>],
) -> Vec<Outcome> {
    let nodes = graph.graph().nodes();
    let wall_time = SystemTime::UNIX_EPOCH + Duration::from_millis(wall_time_ms);
    join_all(active.iter().zip(inboxes).map(|(&i, inbox)| {
        let node = &nodes[i];
        let loaded = graph.loaded(i);
        engine.runtime.invoke(
            &loaded.plugin,
            Invocation {
                call: CallContext {
                    thread: thread.to_owned(),
                    run: run.to_owned(),
                    frame,
                    node: node.name.clone(),
                    project: project.to_owned(),
                },
                inbox,
                config: &loaded.config,
                model: node.model.as_deref(),
                grants: node.grants,
                services: &engine.services,
                limits: Some(node.limits),
                wall_time: Some(wall_time),
            },
        )
    }))
    .await
}

/// Applies one invocation's outcome: routes its messages into `pending`,
/// collects its memory writes, takes its reply, and returns its record with
/// what it produced.
#[allow(clippy::too_many_arguments)]
fn apply(
    engine: &Engine,
    graph: &LoadedGraph,
    (thread, run, frame, i): (&str, &str, u32, usize),
    inbox: &[Message],
    outcome: Outcome,
    pending: &mut [Vec<Message>],
    out: &mut FrameOut,
    reply: &mut Option<String>,
) -> (FrameRecord, RecordedOutput) {
    let node = &graph.graph().nodes()[i];
    let plugin = &graph.loaded(i).plugin;
    let recorded = recorded_output(&outcome);
    let mut record = FrameRecord {
        thread: thread.to_owned(),
        run: run.to_owned(),
        frame,
        node: node.name.clone(),
        plugin: plugin.info().name.clone(),
        plugin_hash: plugin.hash_hex().to_owned(),
        duration_us: outcome.duration.as_micros() as u64,
        instantiate_us: outcome.instantiate_time.as_micros() as u64,
        fuel_used: outcome.fuel_used,
        tokens: Tokens::from_journal(&outcome.journal),
        inbox: inbox.iter().map(MessageSummary::from).collect(),
        sent: Vec::new(),
        reply: None,
        done: false,
        events: outcome.events.len(),
        memory_writes: 0,
        journal: outcome.journal,
        logs: outcome.logs,
        denied: outcome.denied,
        error: None,
    };
    let output = match outcome.result {
        Ok(output) => output,
        Err(error) => {
            let error = trace_error(&error);
            tracing::warn!(thread, run, frame, node = %node.name, code = %error.code, message = %error.message, "node failed");
            engine.bus.publish(
                thread,
                run,
                Some(frame),
                Some(&node.name),
                EventBody::Error(error.clone()),
            );
            record.error = Some(error);
            return (record, recorded);
        }
    };
    for (k, out_msg) in output.messages.into_iter().enumerate() {
        let out_to = out_msg.to;
        let mut summary = RouteSummary {
            to: out_to.clone(),
            kind: out_msg.kind.clone(),
            bytes: out_msg.body.len(),
            delivered_as: None,
            rejected: None,
        };
        match route(graph, &node.name, &out_to, &out_msg.body) {
            Ok(target) => {
                let id = format!("{run}/{frame}/{}/{k}", node.name);
                summary.delivered_as = Some(id.clone());
                let message = Message {
                    id,
                    from: node.name.clone(),
                    kind: out_msg.kind,
                    body: out_msg.body,
                };
                out.sent.push((out_to.clone(), message.clone()));
                pending[target].push(message);
            }
            Err(rejection) => {
                tracing::warn!(thread, run, frame, node = %node.name, to = %out_to, code = rejection.trace.code, "message rejected");
                engine.bus.publish(
                    thread,
                    run,
                    Some(frame),
                    Some(&node.name),
                    EventBody::Error(rejection.trace.clone()),
                );
                let notice = Message {
                    id: format!("{run}/{frame}/{}/{k}/undeliverable", node.name),
                    from: SYSTEM_SENDER.into(),
                    kind: UNDELIVERABLE_KIND.into(),
                    body: json!({
                        "to": out_to,
                        "kind": out_msg.kind,
                        "code": rejection.trace.code,
                        "message": rejection.to_sender,
                    })
                    .to_string(),
                };
                out.sent.push((node.name.clone(), notice.clone()));
                pending[i].push(notice);
                summary.rejected = Some(rejection.trace);
            }
        }
        record.sent.push(summary);
    }
    if let Some(text) = output.reply {
        *reply = Some(text.clone());
        record.reply = Some(text);
    }
    record.done = output.done;
    record.memory_writes = outcome.memory_writes.len();
    out.writes.extend(outcome.memory_writes);
    (record, recorded)
}

/// What an invocation produced, whole (what replay compares).
pub(crate) fn recorded_output(outcome: &Outcome) -> RecordedOutput {
    match &outcome.result {
        Ok(output) => RecordedOutput {
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
            error: None,
        },
        Err(error) => RecordedOutput {
            error: Some(trace_error(error).code),
            ..RecordedOutput::default()
        },
    }
}

/// The trace's form of an invocation's error.
pub(crate) fn trace_error(error: &InvokeError) -> TraceError {
    match error {
        InvokeError::Node(e) => TraceError {
            code: "node_error".into(),
            message: e.to_string(),
        },
        InvokeError::Runtime(e) => TraceError {
            code: e.code().into(),
            message: e.to_string(),
        },
    }
}

/// A rejected message: the full story for the trace, and what the sender
/// is told (no topology: it never learns who its peers are).
struct Rejection {
    trace: TraceError,
    to_sender: String,
}

/// Checks one outgoing message: an edge must allow it and the body must fit
/// the receiver's input schema. Returns the receiver's index.
fn route(graph: &LoadedGraph, from: &str, to: &str, body: &str) -> Result<usize, Rejection> {
    let target = graph
        .position(to)
        .filter(|_| graph.graph().may_send(from, to));
    let Some(target) = target else {
        let peers = graph.graph().peers(from).join(", ");
        let why = if graph.position(to).is_some() {
            "there is no edge to it"
        } else {
            "the graph has no such node"
        };
        return Err(Rejection {
            trace: TraceError {
                code: "not_a_peer".into(),
                message: format!("`{from}` may not send to `{to}`: {why} (its peers: [{peers}])"),
            },
            to_sender: format!("the message to `{to}` was not delivered: no route"),
        });
    };
    graph.check_payload(target, body).map_err(|message| {
        let message = format!("the body does not match the input schema of `{to}`: {message}");
        Rejection {
            trace: TraceError {
                code: "invalid_payload".into(),
                message: message.clone(),
            },
            to_sender: message,
        }
    })?;
    Ok(target)
}
