//! Double-texting: a message for a thread whose run is in flight, handled
//! by the sender's policy ([`Multitask`]): refused (`thread_busy`), queued
//! behind the run, or queued first with the run stopped at its next frame
//! boundary (`preempted`, or `rolled_back` with its effects undone).
//!
//! A queued run is committed (as `queued`, with its message) before the
//! message is accepted, so it is never lost; it starts when the thread
//! frees, in queue order, on the graph version its message was checked
//! against, and is queued again after a restart.

use std::sync::Arc;

use super::start::{first_message, receiver, run_start, start};
use super::{Inbound, RunContext, RunHandle, RunState, spawn};
use crate::error::EngineError;
use crate::events::EventBody;
use crate::threads::{Multitask, NextRun, QueueOutcome, Queued, Stop};

/// What became of a message sent to a thread.
#[derive(Debug)]
pub enum Sent {
    /// Its run started.
    Started(RunHandle),
    /// Its run waits for the thread.
    Queued {
        /// The run's id (it starts under this id).
        run: String,
        /// Its place in the queue (0: next).
        position: usize,
        /// The run in flight it waits for (asked to stop, with policy
        /// `interrupt` or `rollback`).
        behind: String,
    },
}

impl Sent {
    /// The run's id, started or queued.
    pub fn run(&self) -> &str {
        match self {
            Self::Started(handle) => &handle.run,
            Self::Queued { run, .. } => run,
        }
    }
}

/// Sends `inbound` to `thread`: a run starts at once when the thread is
/// free; otherwise `policy` says what happens.
pub(crate) async fn send(
    ctx: &Arc<RunContext>,
    thread: &str,
    inbound: Inbound,
    policy: Multitask,
) -> Result<Sent, EngineError> {
    if policy == Multitask::Reject {
        return start(ctx, thread, inbound).await.map(Sent::Started);
    }
    if policy == Multitask::Rollback && ctx.store.is_none() {
        return Err(EngineError::PolicyUnavailable(
            "multitask `rollback` undoes a run from its committed frames, and this host keeps none (it runs without a store): use `interrupt`".into(),
        ));
    }
    let elsewhere = match start(ctx, thread, inbound.clone()).await {
        // Its run is in flight on another host of the shared store.
        Err(EngineError::ThreadBusy { run, .. }) if ctx.threads.active(thread).is_none() => run,
        Err(EngineError::ThreadBusy { .. }) => String::new(),
        other => return other.map(Sent::Started),
    };
    if ctx.control.is_stopping() {
        return Err(EngineError::ShuttingDown);
    }
    let graph = ctx
        .threads
        .graph(thread)
        .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?;
    let to = receiver(&graph, &inbound)?;
    if !elsewhere.is_empty() {
        return queue_elsewhere(ctx, thread, &graph, to, inbound, policy, elsewhere).await;
    }
    let run = ctx.threads.name_queued(thread)?;
    let first = first_message(&run, inbound);
    if let Some(store) = &ctx.store {
        ctx.versions.store_version(&graph).await?;
        store
            .queue_run(run_start(ctx, thread, &run, &graph, to, &first))
            .await?;
    }
    let stop = policy.stop();
    let queued = Queued {
        run: run.clone(),
        graph,
        to,
        first,
    };
    match ctx.threads.queue(thread, queued, stop)? {
        QueueOutcome::Behind { active, position } => {
            ctx.bus.publish(
                thread,
                &run,
                None,
                None,
                EventBody::RunQueued {
                    position,
                    behind: active.clone(),
                    multitask: policy,
                },
            );
            if let Some(status) = stop.status()
                && ctx.parked.contains(&active)
            {
                // A run waiting for a person's answer has no task to see
                // the stop: it ends here.
                let ctx = Arc::clone(ctx);
                let (thread, parked) = (thread.to_owned(), active.clone());
                tokio::spawn(async move {
                    super::interrupt::kill_parked(&ctx, &thread, &parked, status).await;
                });
            }
            Ok(Sent::Queued {
                run,
                position,
                behind: active,
            })
        }
        QueueOutcome::Claimed(next) => start_next(ctx, thread, *next).await.map(Sent::Started),
    }
}

/// Queues `inbound` in the shared store behind `behind`, the run in
/// flight on `thread` on another host, which starts it when that run ends
/// (or this host does, if it ended meanwhile). Stopping a run of another
/// host (`interrupt`, `rollback`) is refused: send the message to the host
/// running it.
async fn queue_elsewhere(
    ctx: &Arc<RunContext>,
    thread: &str,
    graph: &Arc<crate::loaded::LoadedGraph>,
    to: usize,
    inbound: Inbound,
    policy: Multitask,
    behind: String,
) -> Result<Sent, EngineError> {
    let Some(store) = &ctx.store else {
        return Err(EngineError::ThreadBusy {
            thread: thread.to_owned(),
            run: behind,
        });
    };
    if policy.stop().is_set() {
        return Err(EngineError::PolicyUnavailable(format!(
            "thread `{thread}` has run `{behind}` in flight on another host; multitask `{}` stops it, which only the host running it can do: send the message there, or use `enqueue`",
            policy.as_str()
        )));
    }
    // Named after what the store says the thread ran.
    super::start::hydrate(ctx, thread).await?;
    let run = ctx.threads.name_queued(thread)?;
    let first = first_message(&run, inbound);
    ctx.versions.store_version(graph).await?;
    store
        .queue_run(run_start(ctx, thread, &run, graph, to, &first))
        .await?;
    let position = store
        .runs(thread)
        .await?
        .iter()
        .filter(|r| r.status == "queued" && r.id != run)
        .count();
    ctx.bus.publish(
        thread,
        &run,
        None,
        None,
        EventBody::RunQueued {
            position,
            behind: behind.clone(),
            multitask: policy,
        },
    );
    // The run it waits for may have ended before it was queued, with
    // nobody left to start it.
    if let Err(error) = pick_up(ctx, thread).await {
        tracing::warn!(thread, run = %run, %error, "a run queued behind another host's could not be started here; it waits in the store");
    }
    Ok(Sent::Queued {
        run,
        position,
        behind,
    })
}

/// On a store shared by several hosts: starts the oldest run queued on
/// `thread` in the store when no run is in flight on it anywhere (another
/// host queued it behind a run that has ended since). `None` when there
/// is none, or another host started it first.
pub(crate) async fn pick_up(
    ctx: &Arc<RunContext>,
    thread: &str,
) -> Result<Option<RunHandle>, EngineError> {
    let Some(store) = ctx.store.as_ref().filter(|s| s.shared()) else {
        return Ok(None);
    };
    let Some(q) = store.next_queued(thread).await? else {
        return Ok(None);
    };
    let run = q.run.clone();
    let queued = from_store(ctx, store, q).await?;
    match ctx.threads.queue(thread, queued, Stop::No)? {
        QueueOutcome::Claimed(next) => match start_next(ctx, thread, *next).await {
            Ok(handle) => Ok(Some(handle)),
            Err(error) => {
                ctx.threads.release_to_next(thread, &run);
                match error {
                    // Another host started it, or another run, first.
                    EngineError::ThreadBusy { .. }
                    | EngineError::Store(crate::store::StoreError::Conflict(_)) => Ok(None),
                    error => Err(error),
                }
            }
        },
        // A run of this host holds the thread: the queued run follows it.
        QueueOutcome::Behind { .. } => Ok(None),
    }
}

/// A run the store holds as queued, ready to queue here: its graph
/// version loaded, and its thread read from the store if this host does
/// not hold it.
async fn from_store(
    ctx: &RunContext,
    store: &Arc<dyn crate::store::Store>,
    q: crate::store::QueuedRun,
) -> Result<Queued, EngineError> {
    let graph = ctx.versions.graph_version(&q.graph_version).await?;
    if !ctx.threads.contains(&q.thread) {
        let stored = store
            .thread(&q.thread)
            .await?
            .ok_or_else(|| EngineError::UnknownThread(q.thread.clone()))?;
        super::adopt(ctx, &stored, &graph, None).await?;
    }
    let to = graph
        .position(&q.to)
        .ok_or_else(|| EngineError::UnknownNode {
            graph: graph.graph().name().to_owned(),
            node: q.to.clone(),
        })?;
    Ok(Queued {
        run: q.run,
        graph,
        to,
        first: q.message,
    })
}

/// Starts a queued run that now holds its thread: `running` in the store,
/// then its task. On an error the run still holds the thread (the caller
/// hands it on); it stays queued in the store and is queued again at the
/// next start.
pub(crate) async fn start_next(
    ctx: &Arc<RunContext>,
    thread: &str,
    next: NextRun,
) -> Result<RunHandle, EngineError> {
    let NextRun {
        queued,
        kill,
        mut seq,
    } = next;
    if let Some(store) = &ctx.store {
        store
            .start_queued(thread, &queued.run, ctx.budgets.now_ms())
            .await
            .map_err(super::start::busy_elsewhere)?;
        if store.shared() {
            // The thread as it is now, whichever host ran it last.
            super::start::hydrate(ctx, thread).await?;
            seq = ctx.threads.next_seq(thread).unwrap_or(seq);
        }
    }
    let state = RunState::first(&queued.graph, queued.to, queued.first, seq);
    Ok(spawn(ctx, thread, &queued.run, queued.graph, kill, state))
}

/// Queues again, after a start, the runs the store holds as `queued`,
/// oldest first: behind the run in flight on their thread, or started when
/// it is free. On a store shared by several hosts, a thread with a run in
/// flight (or waiting for an answer) that this host does not hold is left
/// to the host that holds it. Returns how many were queued or started.
pub(crate) async fn requeue(ctx: &Arc<RunContext>) -> Result<usize, EngineError> {
    let Some(store) = &ctx.store else {
        return Ok(0);
    };
    let mut count = 0;
    for q in store.queued_runs().await? {
        let outcome = async {
            if !ctx.threads.contains(&q.thread) {
                let held_elsewhere = store
                    .runs(&q.thread)
                    .await?
                    .iter()
                    .any(|r| r.status == "running" || r.status == "interrupted");
                if held_elsewhere {
                    return Ok(false);
                }
            }
            let queued = from_store(ctx, store, q.clone()).await?;
            if let QueueOutcome::Claimed(next) = ctx.threads.queue(&q.thread, queued, Stop::No)? {
                start_next(ctx, &q.thread, *next).await?;
            }
            Ok::<_, EngineError>(true)
        };
        match outcome.await {
            Ok(true) => count += 1,
            Ok(false) => {}
            Err(error) => {
                tracing::error!(thread = %q.thread, run = %q.run, %error, "a queued run cannot be queued again; it stays queued in the store");
                ctx.threads.release_to_next(&q.thread, &q.run);
            }
        }
    }
    Ok(count)
}
