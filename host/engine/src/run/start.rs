//! Starting a run: the thread is claimed, its durable state loaded, the
//! inbound message committed, and the run's task spawned.

use std::sync::Arc;

use tokio::sync::watch;
use weft_runtime::Message;

use super::{Inbound, RunContext, RunHandle, RunState, exec};
use crate::durable::Resumable;
use crate::error::EngineError;
use crate::events::EventBody;
use crate::loaded::LoadedGraph;
use crate::store::{RunStart, StoredThread};
use crate::threads::{Release, Stop};
use crate::trace::RunStatus;

/// Starts a run on `thread` with one inbound message. The message is
/// checked (node, payload) before anything starts; with a store, the
/// thread's durable state is loaded (once) and the message is committed
/// before this returns, so an accepted message is never lost.
pub(crate) async fn start(
    ctx: &Arc<RunContext>,
    thread: &str,
    inbound: Inbound,
) -> Result<RunHandle, EngineError> {
    if ctx.control.is_stopping() {
        return Err(EngineError::ShuttingDown);
    }
    let (mut claim, claimed, to) = ctx
        .threads
        .claim(thread, |graph| receiver(graph, &inbound))?;
    let graph = claimed.graph;
    // On a store shared by several hosts the thread may have moved on
    // elsewhere since this host last ran it: its state is read again.
    if !claimed.hydrated || shared(ctx) {
        hydrate(ctx, thread).await?;
    }
    let (run, seq) = ctx.threads.name_run(&mut claim)?;
    let first = first_message(&run, inbound);
    if let Some(store) = &ctx.store {
        ctx.versions.store_version(&graph).await?;
        store
            .begin_run(run_start(ctx, thread, &run, &graph, to, &first))
            .await
            .map_err(busy_elsewhere)?;
    }
    claim.keep();
    let state = RunState::first(&graph, to, first, seq);
    Ok(spawn(ctx, thread, &run, graph, claimed.kill, state))
}

/// Whether the store is shared by several hosts.
pub(crate) fn shared(ctx: &RunContext) -> bool {
    ctx.store.as_ref().is_some_and(|s| s.shared())
}

/// A thread busy on another host, as the engine says a busy thread.
pub(crate) fn busy_elsewhere(e: crate::store::StoreError) -> EngineError {
    match e {
        crate::store::StoreError::ThreadBusy { thread, run } => {
            EngineError::ThreadBusy { thread, run }
        }
        e => e.into(),
    }
}

/// `inbound` as the first message of `run` (`{run}/in`, from `user`).
pub(super) fn first_message(run: &str, inbound: Inbound) -> Message {
    Message {
        id: format!("{run}/in"),
        from: "user".into(),
        kind: inbound.kind,
        body: inbound.body,
    }
}

/// What the store is told of `run` starting (or queued) on `thread` with
/// `first` for node `to`.
pub(super) fn run_start(
    ctx: &RunContext,
    thread: &str,
    run: &str,
    graph: &LoadedGraph,
    to: usize,
    first: &Message,
) -> RunStart {
    RunStart {
        thread: thread.to_owned(),
        project: ctx.budgets.project_of(thread),
        run: run.to_owned(),
        graph_version: graph.version_id().to_owned(),
        inbound: vec![(graph.graph().nodes()[to].name.clone(), first.clone())],
        budget_limit: ctx.budgets.explicit_limit(thread),
        at_ms: ctx.budgets.now_ms(),
    }
}

/// The position in `graph` of `inbound`'s receiver (the entry node when it
/// names none), once its payload is checked against the node's schema.
pub(super) fn receiver(graph: &LoadedGraph, inbound: &Inbound) -> Result<usize, EngineError> {
    let to_name = inbound
        .to
        .clone()
        .unwrap_or_else(|| graph.graph().entry().name.clone());
    let to = graph
        .position(&to_name)
        .ok_or_else(|| EngineError::UnknownNode {
            graph: graph.graph().name().to_owned(),
            node: to_name.clone(),
        })?;
    graph
        .check_payload(to, &inbound.body)
        .map_err(|message| EngineError::InvalidPayload {
            node: to_name,
            message,
        })?;
    Ok(to)
}

/// Runs `state` on `graph` in the background; the thread's slot must
/// already name `run`.
pub(crate) fn spawn(
    ctx: &Arc<RunContext>,
    thread: &str,
    run: &str,
    graph: Arc<LoadedGraph>,
    kill: watch::Receiver<Stop>,
    state: RunState,
) -> RunHandle {
    ctx.bus.publish(
        thread,
        run,
        None,
        None,
        EventBody::RunStarted {
            graph: graph.graph().name().to_owned(),
        },
    );
    let alive = ctx.control.run_started();
    let ctx = Arc::clone(ctx);
    // The span the run was started in (an API request's), its trace's parent.
    let caller = tracing::Span::current();
    let thread_id = thread.to_owned();
    let run_id = run.to_owned();
    let task = tokio::spawn(async move {
        let _alive = alive;
        // Frees the thread if the run's task panics or is dropped; a run
        // that ends hands the thread on in `ended`, and this does nothing.
        let release = Release {
            threads: &ctx.threads,
            thread: &thread_id,
            run: &run_id,
        };
        let trace = match super::lease::hold(&ctx, &run_id, state.lease.clone()).await {
            Ok(held) => {
                let mut state = state;
                state.lease = held.lease().cloned();
                let trace =
                    exec::execute(&ctx, graph, (&thread_id, &run_id), kill, state, caller).await;
                let shared = held.lease().is_some();
                held.release().await;
                // Given up unfinished (this host is stopping, or its store
                // failed): another host may take it over now rather than
                // at its next look.
                if shared
                    && matches!(trace.status, RunStatus::Suspended | RunStatus::StoreFailed)
                    && let Some(bus) = ctx.system.get()
                {
                    bus.work_arrived(&thread_id);
                }
                trace
            }
            Err(error) => super::lease::not_held(&graph, (&thread_id, &run_id), &state, &error),
        };
        // The guard only borrows; the thread is handed on below.
        std::mem::forget(release);
        super::ended(&ctx, &trace).await;
        trace
    });
    RunHandle {
        thread: thread.to_owned(),
        run: run.to_owned(),
        task,
    }
}

/// Loads a thread's durable state: run and frame counters, project,
/// memory and token budget.
pub(crate) async fn hydrate(ctx: &RunContext, thread: &str) -> Result<(), EngineError> {
    let Some(store) = &ctx.store else {
        return Ok(());
    };
    let stored = store.thread(thread).await?;
    if let Some(stored) = &stored {
        ctx.budgets.restore_project(thread, &stored.project);
        if ctx.threads.unchanged(stored) {
            // Read again on a shared store, and no other host touched it:
            // reading its memory and summing its usage (which grows with
            // the thread) again would find what this host holds.
            return Ok(());
        }
        let memory = store.memory(thread).await?;
        // The stored memory replaces what this host held (keys another
        // host removed are gone).
        ctx.memory.forget_thread(thread);
        ctx.memory.apply(&memory);
        // The store sums the thread's usage: the ledger keeps no events.
        let (tokens, totals) = store.thread_usage(thread, ctx.ledger.since_ms()).await?;
        ctx.budgets
            .restore_thread(thread, stored.budget_limit, tokens);
        ctx.ledger.restore_thread(thread, totals);
    }
    ctx.threads.hydrated(thread, stored.as_ref());
    Ok(())
}

/// Continues an unfinished run read from the store.
pub(crate) async fn resume(ctx: &Arc<RunContext>, r: Resumable) -> Result<RunHandle, EngineError> {
    let kill = adopt(ctx, &r.thread, &r.graph, Some(&r.run)).await?;
    let state = RunState {
        lease: r.lease,
        pending: r.pending,
        frame: r.frame,
        seq: r.seq,
        reply: r.reply,
    };
    Ok(spawn(ctx, &r.thread.id, &r.run, r.graph, kill, state))
}

/// Registers a thread read from the store (resume, fork), claimed for
/// `run` when one is given, and loads its memory and budget.
pub(crate) async fn adopt(
    ctx: &RunContext,
    thread: &StoredThread,
    graph: &Arc<LoadedGraph>,
    run: Option<&str>,
) -> Result<watch::Receiver<Stop>, EngineError> {
    let kill = ctx.threads.adopt(thread, graph, run)?;
    hydrate(ctx, &thread.id).await?;
    Ok(kill)
}
