//! Interrupts: a run that stopped for a person's answer, parked on this
//! host; the answer (or rejection, or timeout) that lets it go on; and the
//! kill of a run that waits.
//!
//! A run that raised an interrupt holds its thread (a new message gets
//! `thread_busy`) but no instance, task or budget. With a store, the store
//! is the truth: the interrupt is committed with its frame, an answer is
//! committed with the `resume` notice for the node as one unit, and the
//! run continues from what the store holds, on whichever host took the
//! answer. Without one, the parked run keeps its pending messages here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use weft_runtime::contract::ResumeOutcome;

use super::apply::resume_notice;
use super::{RunContext, RunHandle, RunState};
use crate::error::EngineError;
use crate::events::EventBody;
use crate::loaded::LoadedGraph;
use crate::store::{InterruptStatus, ResolveInterrupt, StoreError, StoredInterrupt};
use crate::trace::{FrameTrace, RunStatus};

/// A run waiting on interrupts, as this host holds it.
pub(crate) struct ParkedRun {
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// The graph version it runs on.
    pub graph: Arc<LoadedGraph>,
    /// Its interrupts (pending and ended).
    pub interrupts: Vec<StoredInterrupt>,
    /// Where it goes on from, without a store (with one, the store has it).
    pub state: Option<RunState>,
}

/// The runs waiting on interrupts on this host.
#[derive(Default)]
pub(crate) struct Parked(Mutex<HashMap<String, ParkedRun>>);

impl Parked {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ParkedRun>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `run` until it is answered or killed.
    pub fn park(&self, run: ParkedRun) {
        self.lock().insert(run.run.clone(), run);
    }

    fn take(&self, run: &str) -> Option<ParkedRun> {
        self.lock().remove(run)
    }

    /// Whether `run` waits here.
    pub fn contains(&self, run: &str) -> bool {
        self.lock().contains_key(run)
    }

    fn interrupts(&self, thread: &str, run: &str) -> Option<Vec<StoredInterrupt>> {
        let parked = self.lock();
        let p = parked.get(run).filter(|p| p.thread == thread)?;
        Some(p.interrupts.clone())
    }

    fn note(&self, resolved: &StoredInterrupt) {
        if let Some(p) = self.lock().get_mut(&resolved.run)
            && let Some(i) = p.interrupts.iter_mut().find(|i| i.id == resolved.id)
        {
            *i = resolved.clone();
        }
    }

    /// Pending interrupts parked here whose deadline passed.
    fn due(&self, now_ms: u64) -> Vec<StoredInterrupt> {
        self.lock()
            .values()
            .flat_map(|p| &p.interrupts)
            .filter(|i| {
                i.status == InterruptStatus::Pending && i.deadline_ms.is_some_and(|d| d <= now_ms)
            })
            .cloned()
            .collect()
    }
}

/// What a person (or the clock) says to an interrupt.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// An answer, checked against the interrupt's answer schema.
    Value(serde_json::Value),
    /// The question is declined, with a reason (may be empty).
    Reject(String),
    /// Nobody answered in time (the engine's own answer).
    TimedOut,
}

/// What answering an interrupt did.
#[derive(Debug)]
pub struct Answered {
    /// The interrupt, as it ended.
    pub interrupt: StoredInterrupt,
    /// The run, going on again, when this was its last pending interrupt.
    pub run: Option<RunHandle>,
}

/// A run's interrupts, oldest first; `unknown_run` when `thread` has no
/// run `run` that ever asked, `run_not_interrupted` when it has one that
/// never did.
pub(crate) async fn list(
    ctx: &RunContext,
    thread: &str,
    run: &str,
) -> Result<Vec<StoredInterrupt>, EngineError> {
    let interrupts = match &ctx.store {
        Some(store) => store.interrupts(run).await?,
        None => ctx.parked.interrupts(thread, run).unwrap_or_default(),
    };
    if interrupts.first().is_some_and(|i| i.thread == thread) {
        return Ok(interrupts);
    }
    Err(match run_status(ctx, thread, run).await? {
        Some(status) => EngineError::NotInterrupted {
            run: run.to_owned(),
            why: format!("it is {status} and never asked a question"),
        },
        None => EngineError::UnknownRun(run.to_owned()),
    })
}

/// The status of `thread`'s run `run`, if the engine knows it.
async fn run_status(
    ctx: &RunContext,
    thread: &str,
    run: &str,
) -> Result<Option<String>, EngineError> {
    if let Some(store) = &ctx.store {
        let runs = store.runs(thread).await?;
        return Ok(runs.into_iter().find(|r| r.id == run).map(|r| r.status));
    }
    if ctx.threads.active_run(thread).as_deref() == Some(run) {
        return Ok(Some(RunStatus::Running.as_str().to_owned()));
    }
    Ok(ctx
        .history
        .recent(usize::MAX)
        .iter()
        .find(|t| t.thread == thread && t.run == run)
        .map(|t| t.status.as_str().to_owned()))
}

/// Ends interrupt `interrupt` of `thread`'s run `run` (its oldest pending
/// one when `None`) with `answer`; when none of the run's interrupts is
/// pending any more, the run goes on from its next frame, where the node
/// that asked finds the `resume` notice.
pub(crate) async fn answer(
    ctx: &Arc<RunContext>,
    (thread, run): (&str, &str),
    interrupt: Option<&str>,
    answer: Answer,
) -> Result<Answered, EngineError> {
    let interrupts = list(ctx, thread, run).await?;
    let target =
        match interrupt {
            Some(id) => interrupts.iter().find(|i| i.id == id).ok_or_else(|| {
                EngineError::UnknownInterrupt {
                    run: run.to_owned(),
                    interrupt: id.to_owned(),
                }
            })?,
            None => interrupts
                .iter()
                .find(|i| i.status == InterruptStatus::Pending)
                .ok_or_else(|| EngineError::NotInterrupted {
                    run: run.to_owned(),
                    why: "every question it asked has been answered, rejected or timed out".into(),
                })?,
        };
    if target.status != InterruptStatus::Pending {
        return Err(EngineError::NotInterrupted {
            run: run.to_owned(),
            why: format!(
                "interrupt `{}` is {} already",
                target.id,
                target.status.as_str()
            ),
        });
    }
    let (status, stored_answer, outcome) = match answer {
        Answer::Value(value) => {
            check_answer(target, &value)?;
            let outcome = ResumeOutcome::Answered {
                value: value.clone(),
            };
            (InterruptStatus::Answered, Some(value), outcome)
        }
        Answer::Reject(reason) => {
            let stored = serde_json::Value::String(reason.clone());
            (
                InterruptStatus::Rejected,
                Some(stored),
                ResumeOutcome::Rejected { reason },
            )
        }
        Answer::TimedOut => (InterruptStatus::TimedOut, None, ResumeOutcome::TimedOut),
    };
    let notice = resume_notice(&target.id, &outcome);
    let at_ms = ctx.budgets.now_ms();
    let resolved = StoredInterrupt {
        status,
        answer: stored_answer,
        resolved_ms: Some(at_ms),
        ..target.clone()
    };
    let handle = match &ctx.store {
        Some(store) => {
            let resolve = ResolveInterrupt {
                thread: thread.to_owned(),
                run: run.to_owned(),
                interrupt: resolved.id.clone(),
                status,
                answer: resolved.answer.clone(),
                notice,
                at_ms,
            };
            let going_on = store
                .resolve_interrupt(resolve)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(why) => EngineError::NotInterrupted {
                        run: run.to_owned(),
                        why,
                    },
                    other => other.into(),
                })?;
            ctx.parked.note(&resolved);
            match going_on {
                None => None,
                Some(unfinished) => {
                    ctx.parked.take(run);
                    let r = crate::durable::prepare_run(&ctx.versions, unfinished).await?;
                    Some(match ctx.threads.rearm(thread, run) {
                        Some(kill) => {
                            let state = RunState {
                                lease: None,
                                pending: r.pending,
                                frame: r.frame,
                                seq: r.seq,
                                reply: r.reply,
                            };
                            super::spawn(ctx, thread, run, r.graph, kill, state)
                        }
                        None => super::resume(ctx, r).await?,
                    })
                }
            }
        }
        None => go_on_in_memory(ctx, (thread, run), &resolved, notice)?,
    };
    ctx.bus.publish(
        thread,
        run,
        Some(resolved.frame),
        Some(&resolved.node),
        EventBody::InterruptResolved(Box::new(resolved.clone())),
    );
    Ok(Answered {
        interrupt: resolved,
        run: handle,
    })
}

/// Without a store: the notice joins the parked run's pending messages,
/// and the run goes on when nothing else waits.
fn go_on_in_memory(
    ctx: &Arc<RunContext>,
    (thread, run): (&str, &str),
    resolved: &StoredInterrupt,
    notice: weft_runtime::Message,
) -> Result<Option<RunHandle>, EngineError> {
    let mut parked = ctx
        .parked
        .take(run)
        .ok_or_else(|| EngineError::UnknownRun(run.to_owned()))?;
    if let Some(i) = parked.interrupts.iter_mut().find(|i| i.id == resolved.id) {
        *i = resolved.clone();
    }
    let mut state = parked
        .state
        .take()
        .ok_or_else(|| EngineError::UnknownRun(run.to_owned()))?;
    if let Some(i) = parked.graph.position(&resolved.node) {
        state.pending[i].push(notice);
    }
    let waiting = parked
        .interrupts
        .iter()
        .any(|i| i.status == InterruptStatus::Pending);
    if waiting {
        parked.state = Some(state);
        ctx.parked.park(parked);
        return Ok(None);
    }
    let kill = ctx
        .threads
        .rearm(thread, run)
        .ok_or_else(|| EngineError::UnknownRun(run.to_owned()))?;
    Ok(Some(super::spawn(
        ctx,
        thread,
        run,
        parked.graph,
        kill,
        state,
    )))
}

/// Checks `value` against the interrupt's answer schema.
fn check_answer(interrupt: &StoredInterrupt, value: &serde_json::Value) -> Result<(), EngineError> {
    let invalid = |message: String| EngineError::InvalidAnswer {
        interrupt: interrupt.id.clone(),
        message,
    };
    let validator = jsonschema::validator_for(&interrupt.answer_schema)
        .map_err(|e| invalid(format!("its answer schema cannot be used: {e}")))?;
    let problems: Vec<String> = validator
        .iter_errors(value)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(invalid(problems.join("; ")))
    }
}

/// Times out the interrupts whose deadline passed (with a store, those of
/// every host: the store lets exactly one answer count).
pub(crate) async fn time_out_due(ctx: &Arc<RunContext>) -> Result<usize, EngineError> {
    let now = ctx.budgets.now_ms();
    let due = match &ctx.store {
        Some(store) => store.due_interrupts(now).await?,
        None => ctx.parked.due(now),
    };
    let mut timed_out = 0;
    for interrupt in due {
        let at = (interrupt.thread.as_str(), interrupt.run.as_str());
        match answer(ctx, at, Some(&interrupt.id), Answer::TimedOut).await {
            Ok(_) => timed_out += 1,
            // Answered (or timed out by another host) meanwhile.
            Err(EngineError::NotInterrupted { .. }) => {}
            Err(error) => {
                tracing::warn!(interrupt = %interrupt.id, %error, "timing out an interrupt failed");
            }
        }
    }
    Ok(timed_out)
}

/// Holds, on this host, the threads of the runs the store has waiting on
/// interrupts (after a restart), so that a new message gets `thread_busy`
/// and a kill reaches them.
pub(crate) async fn hold_interrupted(ctx: &Arc<RunContext>) -> Result<usize, EngineError> {
    let Some(store) = &ctx.store else {
        return Ok(0);
    };
    let mut held = 0;
    for stored in store.interrupted_runs().await? {
        if ctx.threads.active_run(&stored.thread).is_some() {
            continue;
        }
        let hold = async {
            let graph = ctx.versions.graph_version(&stored.graph_version).await?;
            let thread = store
                .thread(&stored.thread)
                .await?
                .ok_or_else(|| EngineError::UnknownThread(stored.thread.clone()))?;
            super::adopt(ctx, &thread, &graph, Some(&stored.id)).await?;
            let interrupts = store.interrupts(&stored.id).await?;
            ctx.parked.park(ParkedRun {
                thread: stored.thread.clone(),
                run: stored.id.clone(),
                graph,
                interrupts,
                state: None,
            });
            Ok::<_, EngineError>(())
        };
        match hold.await {
            Ok(()) => held += 1,
            Err(error) => {
                tracing::error!(run = %stored.id, %error, "a run waiting on an interrupt cannot be held")
            }
        }
    }
    Ok(held)
}

/// Stops a parked run with `status` (killed, preempted, rolled back): its
/// end is committed (its pending interrupts cancelled), its thread freed
/// or handed to its next queued run, and its trace published.
pub(crate) async fn kill_parked(ctx: &Arc<RunContext>, thread: &str, run: &str, status: RunStatus) {
    let Some(parked) = ctx.parked.take(run) else {
        return;
    };
    let status = super::commit::commit_end(ctx, thread, run, status).await;
    let now = ctx.budgets.now_ms();
    for interrupt in parked.interrupts {
        if interrupt.status == InterruptStatus::Pending {
            let cancelled = StoredInterrupt {
                status: InterruptStatus::Cancelled,
                resolved_ms: Some(now),
                ..interrupt
            };
            let (frame, node) = (cancelled.frame, cancelled.node.clone());
            ctx.bus.publish(
                thread,
                run,
                Some(frame),
                Some(&node),
                EventBody::InterruptResolved(Box::new(cancelled)),
            );
        }
    }
    let graph = parked.graph.graph();
    let trace = FrameTrace {
        thread: thread.to_owned(),
        run: run.to_owned(),
        graph: graph.name().to_owned(),
        graph_hash: graph.content_hash().to_hex(),
        status,
        frames: parked.state.as_ref().map_or(0, |s| s.frame),
        reply: parked.state.and_then(|s| s.reply),
        records: Vec::new(),
        undelivered: Vec::new(),
        duration_us: 0,
    };
    super::ended(ctx, &trace).await;
}
