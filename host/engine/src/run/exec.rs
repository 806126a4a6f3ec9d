//! The run loop, cut into its steps: at each frame boundary, look at what
//! changed (swaps, kill, shutdown, pauses, the frame limit); then invoke
//! the frame's nodes, apply their outcomes in graph order, commit the
//! frame, make it visible, and wait while a budget is exhausted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;
use tokio::sync::watch;
use tracing::Instrument;
use weft_runtime::capabilities::Services;
use weft_runtime::{CallContext, Message, Outcome};

use weft_runtime::contract::SYSTEM_SENDER;

use super::apply::{FrameOut, NodeRef, apply};
use super::commit::{commit_end, commit_frame};
use super::{RunContext, RunState, plan};
use crate::events::EventBody;
use crate::loaded::LoadedGraph;
use crate::metering::{Counted, InvocationEvent, Ledger, UsageEvent};
use crate::store::{FrameCommit, InterruptStatus, InvocationRecord, NodePause, StoredInterrupt};
use crate::threads::Stop;
use crate::trace::{FrameRecord, FrameTrace, MessageSummary, RunStatus, TraceError};

/// Runs `state` on `graph` until the run ends; returns its trace.
pub(super) async fn execute(
    ctx: &RunContext,
    graph: Arc<LoadedGraph>,
    (thread, run): (&str, &str),
    kill: watch::Receiver<Stop>,
    state: RunState,
    caller: tracing::Span,
) -> FrameTrace {
    // A child of the request that started the run (its trace continues
    // the caller's, see `traceparent`), or a root for a resumed run.
    let span = tracing::info_span!(parent: &caller, "weft.run", thread, run);
    RunLoop::new(ctx, graph, (thread, run), kill, state)
        .run()
        .instrument(span)
        .await
}

/// What the loop does after a frame boundary.
enum Boundary {
    /// The run ends with this status.
    Stop(RunStatus),
    /// Only paused nodes hold messages: look again after a change.
    Wait,
    /// Run a frame with these nodes.
    Frame(Vec<usize>),
}

/// One frame's invocations, applied and ready to commit.
struct Applied {
    invocations: Vec<InvocationRecord>,
    metering: Vec<InvocationEvent>,
    usage: Vec<UsageEvent>,
    out: FrameOut,
}

/// The state of one run's loop.
struct RunLoop<'a> {
    ctx: &'a RunContext,
    thread: &'a str,
    run: &'a str,
    project: String,
    /// The graph version the next frame runs (swaps rebind it).
    graph: Arc<LoadedGraph>,
    /// Swaps this run has looked at.
    swaps_seen: u64,
    pending: Vec<Vec<Message>>,
    /// Budget warnings per node, for its next tick.
    notices: Vec<Vec<Message>>,
    frame: u32,
    seq: u64,
    trace: FrameTrace,
    /// The status the store holds for the run.
    stored: RunStatus,
    kill: watch::Receiver<Stop>,
    swaps: watch::Receiver<u64>,
    paused: watch::Receiver<BTreeSet<NodePause>>,
    stopping: watch::Receiver<bool>,
    raised: watch::Receiver<u64>,
    started: Instant,
    /// The fencing token of the run's lease, carried by every commit.
    fence: Option<u64>,
    /// Interrupts the last frame raised: the run stops to wait for them.
    asked: Vec<StoredInterrupt>,
}

impl<'a> RunLoop<'a> {
    fn new(
        ctx: &'a RunContext,
        graph: Arc<LoadedGraph>,
        (thread, run): (&'a str, &'a str),
        kill: watch::Receiver<Stop>,
        state: RunState,
    ) -> Self {
        let nodes = graph.graph().nodes().len();
        let mut notices = vec![Vec::new(); nodes];
        for (node, waiting) in ctx.threads.take_notices(thread) {
            match graph.position(&node) {
                Some(i) => notices[i] = waiting,
                // The node left the graph: keep them for a graph that has it.
                None => ctx.threads.park_notices(thread, &node, waiting),
            }
        }
        let trace = FrameTrace {
            thread: thread.to_owned(),
            run: run.to_owned(),
            graph: graph.graph().name().to_owned(),
            graph_hash: graph.graph().content_hash().to_hex(),
            status: RunStatus::Running,
            frames: state.frame,
            reply: state.reply,
            records: Vec::new(),
            undelivered: Vec::new(),
            duration_us: 0,
        };
        Self {
            ctx,
            thread,
            run,
            project: ctx.budgets.project_of(thread),
            graph,
            // Swapped plugins take effect at the next frame boundary; a
            // new run looks at every swap made while serving.
            swaps_seen: 0,
            pending: state.pending,
            notices,
            frame: state.frame,
            seq: state.seq,
            trace,
            stored: RunStatus::Running,
            kill,
            swaps: ctx.control.swaps().watch(),
            paused: ctx.control.watch_pauses(),
            stopping: ctx.control.watch_stopping(),
            raised: ctx.budgets.subscribe(),
            started: Instant::now(),
            fence: state.lease.as_ref().map(|l| l.token),
            asked: Vec::new(),
        }
    }

    async fn run(mut self) -> FrameTrace {
        loop {
            let active = match self.boundary().await {
                Boundary::Stop(status) => {
                    self.trace.status = status;
                    break;
                }
                Boundary::Wait => {
                    self.wait_for_resume().await;
                    continue;
                }
                Boundary::Frame(active) => active,
            };
            let span = tracing::info_span!("weft.frame", frame = self.frame);
            if !self.frame(active).instrument(span).await {
                self.trace.status = RunStatus::StoreFailed;
                break;
            }
            if !self.asked.is_empty() {
                for interrupt in &self.asked {
                    let event = EventBody::Interrupt(Box::new(interrupt.clone()));
                    self.ctx.bus.publish(
                        self.thread,
                        self.run,
                        Some(interrupt.frame),
                        Some(&interrupt.node),
                        event,
                    );
                }
                self.trace.status = RunStatus::Interrupted;
                break;
            }
            if self.ctx.budgets.is_exhausted(self.thread) {
                self.wait_for_budget().await;
            }
        }
        self.finish().await
    }

    /// What happens at this frame boundary.
    async fn boundary(&mut self) -> Boundary {
        if plan::is_done(&self.pending) {
            return Boundary::Stop(RunStatus::Completed);
        }
        if *self.swaps.borrow_and_update() != self.swaps_seen {
            self.rebind().await;
        }
        if let Some(status) = self.kill.borrow().status() {
            return Boundary::Stop(status);
        }
        if *self.stopping.borrow_and_update() {
            return Boundary::Stop(RunStatus::Suspended);
        }
        let paused = self.paused.borrow_and_update().clone();
        let nodes = self.graph.graph().nodes();
        let runnable = |i: usize| {
            !paused
                .iter()
                .any(|p| p.holds(&self.project, &nodes[i].name))
        };
        if plan::held_by_pauses(&self.pending, runnable) {
            return Boundary::Wait;
        }
        if self.frame >= self.graph.graph().max_frames() {
            return Boundary::Stop(RunStatus::FrameLimit);
        }
        Boundary::Frame(plan::active_nodes(
            &self.pending,
            |i| nodes[i].every_tick,
            |i| nodes[i].defer,
            runnable,
        ))
    }

    /// Switches to the plugin versions swapped since the run last looked.
    /// A graph the swapped versions do not fit keeps its versions (the
    /// problem is logged and published on the thread).
    async fn rebind(&mut self) {
        let (swapped, now) = self.ctx.control.swaps().since(self.swaps_seen);
        self.swaps_seen = now;
        let problem = match self.graph.with_plugins(&swapped) {
            Ok(None) => return,
            Ok(Some(new)) => {
                let new = Arc::new(new);
                match self.ctx.versions.store_version(&new).await {
                    Ok(()) => {
                        self.graph = new;
                        return;
                    }
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        tracing::warn!(thread = self.thread, run = self.run, %problem, "the run keeps its plugin versions");
        self.publish(
            None,
            EventBody::Error(TraceError {
                code: "swap_refused".into(),
                message: format!("the run keeps its plugin versions: {problem}"),
            }),
        );
    }

    /// Only paused nodes hold messages: waits for a resume, a kill or a
    /// shutdown.
    async fn wait_for_resume(&mut self) {
        let status = |status| EventBody::Status { status };
        self.publish(None, status(RunStatus::Waiting));
        tokio::select! {
            _ = self.paused.changed() => {}
            _ = self.kill.changed() => {}
            _ = self.stopping.changed() => {}
        }
        self.publish(None, status(RunStatus::Running));
    }

    /// Runs one frame: invoke, apply, commit, make visible. False if the
    /// frame could not be committed (the run stops).
    async fn frame(&mut self, active: Vec<usize>) -> bool {
        let inboxes = plan::take_inboxes(&active, &mut self.pending, &mut self.notices);
        // Plugins see whole milliseconds, so that a replay sees the same time.
        let wall_time_ms = self.ctx.budgets.now_ms();
        let results = self.invoke(wall_time_ms, &active, &inboxes).await;
        let mut applied = self.apply(&active, inboxes, results);
        let Some(invocations) = self.commit(wall_time_ms, &mut applied).await else {
            return false;
        };
        self.make_visible(invocations, applied.metering, &applied.out.writes);
        if let Some(local) = &self.ctx.kv_local {
            local.apply(&applied.out.kv);
        }
        true
    }

    /// Invokes the active nodes concurrently, each with its own tally of
    /// metered calls.
    async fn invoke(
        &self,
        wall_time_ms: u64,
        active: &[usize],
        inboxes: &[Vec<Message>],
    ) -> Vec<(Outcome, Counted)> {
        let ctx = self.ctx;
        let nodes = self.graph.graph().nodes();
        let wall_time = SystemTime::UNIX_EPOCH + Duration::from_millis(wall_time_ms);
        let invocations = active.iter().zip(inboxes).map(|(&i, inbox)| {
            let node = &nodes[i];
            let loaded = self.graph.loaded(i);
            let llm = ctx.llm.for_invocation();
            let services = Services {
                llm: llm.clone(),
                db: Arc::clone(&ctx.db),
                memory: ctx.memory.clone(),
                kv: Arc::clone(&ctx.kv),
                tools: Arc::clone(&ctx.tools),
                events: Arc::clone(&ctx.events),
            };
            async move {
                let outcome = ctx
                    .runtime
                    .invoke(
                        &loaded.plugin,
                        self.graph.invocation(
                            i,
                            CallContext {
                                thread: self.thread.to_owned(),
                                run: self.run.to_owned(),
                                frame: self.frame,
                                node: node.name.clone(),
                                project: self.project.clone(),
                            },
                            inbox,
                            &services,
                            wall_time,
                        ),
                    )
                    .await;
                (outcome, llm.take())
            }
        });
        join_all(invocations).await
    }

    /// Applies the outcomes in graph order: records, routed messages,
    /// memory writes, the reply; a node a budget refused gets its messages
    /// back, and warnings wait for each node's next tick.
    fn apply(
        &mut self,
        active: &[usize],
        inboxes: Vec<Vec<Message>>,
        results: Vec<(Outcome, Counted)>,
    ) -> Applied {
        let graph = Arc::clone(&self.graph);
        let nodes = graph.graph().nodes();
        let mut applied = Applied {
            invocations: Vec::with_capacity(active.len()),
            metering: Vec::with_capacity(active.len()),
            usage: Vec::new(),
            out: FrameOut::default(),
        };
        for ((&i, inbox), (outcome, counted)) in active.iter().zip(inboxes).zip(results) {
            let name = &nodes[i].name;
            let plugin = &graph.loaded(i).plugin;
            let node = NodeRef {
                thread: self.thread,
                run: self.run,
                frame: self.frame,
                index: i,
                name,
                plugin: &plugin.info().name,
                plugin_hash: plugin.hash_hex(),
            };
            let done = apply(
                graph.as_ref(),
                &node,
                &inbox,
                outcome,
                &mut self.pending,
                &mut applied.out,
            );
            for error in done.errors {
                self.publish_at(Some(name), EventBody::Error(error));
            }
            applied
                .metering
                .push(self.invocation_event(&done.record, plugin.info().version.clone()));
            let refused = counted.refused && done.record.error.is_some();
            if refused {
                // Retried after a raise: the node gets its messages back
                // (budget notices are consumed).
                let (retry, notices): (Vec<Message>, Vec<Message>) =
                    inbox.iter().cloned().partition(|m| m.from != SYSTEM_SENDER);
                self.pending[i].splice(0..0, retry);
                applied
                    .out
                    .delivered
                    .extend(notices.into_iter().map(|m| (name.clone(), m)));
            } else {
                applied
                    .out
                    .delivered
                    .extend(inbox.iter().map(|m| (name.clone(), m.clone())));
            }
            self.notices[i].extend(counted.notices);
            applied.usage.extend(counted.usage);
            applied.invocations.push(InvocationRecord {
                record: done.record,
                inbox,
                output: done.output,
            });
        }
        if let Some(reply) = applied.out.reply.take() {
            self.trace.reply = Some(reply);
        }
        applied
    }

    /// The ledger's event for one invocation.
    fn invocation_event(&self, record: &FrameRecord, plugin_version: String) -> InvocationEvent {
        InvocationEvent {
            project: self.project.clone(),
            thread: record.thread.clone(),
            run: record.run.clone(),
            frame: self.frame,
            node: record.node.clone(),
            plugin: record.plugin.clone(),
            plugin_version,
            plugin_hash: record.plugin_hash.clone(),
            fuel_used: record.fuel_used,
            duration_us: record.duration_us,
            outcome: record
                .error
                .as_ref()
                .map_or_else(|| "ok".to_owned(), |e| e.code.clone()),
            at_ms: self.ctx.budgets.now_ms(),
        }
    }

    /// Commits the frame (with a store); returns its invocations, or
    /// `None` if the commit failed for good (the frame's records go to the
    /// trace, and the run stops to resume from its last committed frame).
    async fn commit(
        &mut self,
        wall_time_ms: u64,
        applied: &mut Applied,
    ) -> Option<Vec<InvocationRecord>> {
        let invocations = std::mem::take(&mut applied.invocations);
        self.asked = self.interrupts(wall_time_ms, &mut applied.out);
        let Some(store) = &self.ctx.store else {
            return Some(invocations);
        };
        let status = if !self.asked.is_empty() {
            RunStatus::Interrupted
        } else if plan::is_done(&self.pending) {
            RunStatus::Completed
        } else {
            RunStatus::Running
        };
        let commit = Arc::new(FrameCommit {
            thread: self.thread.to_owned(),
            run: self.run.to_owned(),
            frame: self.frame,
            seq: self.seq,
            graph_version: self.graph.version_id().to_owned(),
            wall_time_ms,
            invocations,
            sent: std::mem::take(&mut applied.out.sent),
            delivered: std::mem::take(&mut applied.out.delivered),
            memory: applied.out.writes.clone(),
            kv: applied.out.kv.clone(),
            usage: std::mem::take(&mut applied.usage),
            metering: applied.metering.clone(),
            interrupts: self.asked.clone(),
            status,
            reply: self.trace.reply.clone(),
            fence: self.fence,
        });
        let committed = commit_frame(self.ctx, store.as_ref(), &commit, &mut self.kill).await;
        let invocations =
            Arc::try_unwrap(commit).map_or_else(|c| c.invocations.clone(), |c| c.invocations);
        if let Err(e) = committed {
            tracing::error!(thread = self.thread, run = self.run, frame = self.frame, error = %e, "frame not committed: the run stops and resumes from its last committed frame at the next start");
            self.trace
                .records
                .extend(invocations.into_iter().map(|i| i.record));
            return None;
        }
        self.stored = status;
        Some(invocations)
    }

    /// The interrupts the frame raised, as the store keeps them: pending,
    /// with a deadline from the node's `interrupt_timeout_ms`.
    fn interrupts(
        &self,
        wall_time_ms: u64,
        out: &mut super::apply::FrameOut,
    ) -> Vec<StoredInterrupt> {
        let nodes = self.graph.graph().nodes();
        std::mem::take(&mut out.interrupts)
            .into_iter()
            .map(|(i, id, interrupt)| StoredInterrupt {
                id,
                thread: self.thread.to_owned(),
                run: self.run.to_owned(),
                node: nodes[i].name.clone(),
                frame: self.frame,
                question: interrupt.question,
                answer_schema: interrupt.answer_schema,
                created_ms: wall_time_ms,
                deadline_ms: nodes[i]
                    .interrupt_timeout
                    .map(|t| wall_time_ms.saturating_add(t.as_millis() as u64)),
                status: InterruptStatus::Pending,
                answer: None,
                resolved_ms: None,
            })
            .collect()
    }

    /// The frame is committed: its events are published, its usage and
    /// memory applied, and the run moves to the next frame.
    fn make_visible(
        &mut self,
        invocations: Vec<InvocationRecord>,
        metering: Vec<InvocationEvent>,
        writes: &[weft_runtime::capabilities::memory::MemoryWrite],
    ) {
        for (invocation, event) in invocations.into_iter().zip(metering) {
            let mut record = invocation.record;
            if self.ctx.bus.has_subscribers() {
                // The event carries the record without its journal (which
                // can be large, and is not copied); the journal is in the
                // run's trace.
                let journal = std::mem::take(&mut record.journal);
                let shown = record.clone();
                record.journal = journal;
                self.ctx.bus.publish(
                    self.thread,
                    self.run,
                    Some(self.frame),
                    Some(&record.node),
                    EventBody::Frame(Box::new(shown)),
                );
            }
            self.ctx.ledger.record_invocation(event);
            self.trace.records.push(record);
        }
        self.ctx.memory.apply(writes);
        self.frame += 1;
        self.seq += 1;
        self.trace.frames = self.frame;
        self.ctx.threads.note_frames(self.thread, self.seq);
    }

    /// A budget refused a call: the run waits, with status
    /// `budget_exhausted`, for a raise, a new window, a kill or a shutdown.
    async fn wait_for_budget(&mut self) {
        let ctx = self.ctx;
        let status = |status| EventBody::Status { status };
        self.trace.status = RunStatus::BudgetExhausted;
        self.publish(None, status(RunStatus::BudgetExhausted));
        self.raised.borrow_and_update();
        // A raise wakes the run at once; a new budget window is noticed
        // on the next tick (or by `is_exhausted` itself).
        while ctx.budgets.is_exhausted(self.thread)
            && !self.kill.borrow().is_set()
            && !*self.stopping.borrow()
        {
            tokio::select! {
                _ = self.raised.changed() => {}
                _ = self.kill.changed() => {}
                _ = self.stopping.changed() => {}
                _ = tokio::time::sleep(ctx.settings.budget_tick) => ctx.budgets.tick(),
            }
        }
        self.trace.status = RunStatus::Running;
        self.publish(None, status(RunStatus::Running));
    }

    /// Ends the run: its end is committed unless the last frame's commit
    /// said it already (a run stopped by a failing store or a shutdown
    /// stays unfinished, to resume at the next start); warnings not yet
    /// delivered wait for the nodes' next tick in a later run.
    async fn finish(mut self) -> FrameTrace {
        if self.trace.status != self.stored
            && !matches!(
                self.trace.status,
                RunStatus::StoreFailed | RunStatus::Suspended | RunStatus::Interrupted
            )
        {
            self.trace.status =
                commit_end(self.ctx, self.thread, self.run, self.trace.status).await;
        }
        if self.trace.status == RunStatus::Interrupted {
            // Without a store, this host keeps what the run goes on from.
            let state = self.ctx.store.is_none().then(|| super::RunState {
                lease: None,
                pending: self.pending.clone(),
                frame: self.frame,
                seq: self.seq,
                reply: self.trace.reply.clone(),
            });
            self.ctx.parked.park(super::interrupt::ParkedRun {
                thread: self.thread.to_owned(),
                run: self.run.to_owned(),
                graph: Arc::clone(&self.graph),
                interrupts: std::mem::take(&mut self.asked),
                state,
            });
        }
        let nodes = self.graph.graph().nodes();
        for (node, waiting) in nodes.iter().zip(std::mem::take(&mut self.notices)) {
            self.ctx
                .threads
                .park_notices(self.thread, &node.name, waiting);
        }
        let mut trace = self.trace;
        trace.undelivered = self
            .pending
            .iter()
            .flatten()
            .map(MessageSummary::from)
            .collect();
        trace.duration_us = self.started.elapsed().as_micros() as u64;
        tracing::info!(
            thread = self.thread,
            run = self.run,
            status = trace.status.as_str(),
            frames = trace.frames,
            "run finished"
        );
        trace
    }

    fn publish(&self, frame: Option<u32>, body: EventBody) {
        self.ctx
            .bus
            .publish(self.thread, self.run, frame, None, body);
    }

    fn publish_at(&self, node: Option<&str>, body: EventBody) {
        self.ctx
            .bus
            .publish(self.thread, self.run, Some(self.frame), node, body);
    }
}
