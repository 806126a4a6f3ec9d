//! Resume after a crash: the runs the store holds as unfinished, each
//! rebuilt on the graph and plugin versions it started with, from its last
//! committed frame (the frame that was in flight runs again). On a store
//! shared by several hosts, only the runs whose lease expired are resumed,
//! each claimed with a new lease first (a takeover).

use std::sync::Arc;

use weft_runtime::Message;

use super::{Versions, by_node};
use crate::error::EngineError;
use crate::loaded::LoadedGraph;
use crate::store::{Lease, StoredThread, UnfinishedRun};

/// An unfinished run, ready to continue.
pub(crate) struct Resumable {
    /// Its thread, as stored.
    pub thread: StoredThread,
    /// Run id.
    pub run: String,
    /// The graph version it started with.
    pub graph: Arc<LoadedGraph>,
    /// Its pending messages per node.
    pub pending: Vec<Vec<Message>>,
    /// Its next frame.
    pub frame: u32,
    /// The thread's next frame `seq`.
    pub seq: u64,
    /// The reply given so far.
    pub reply: Option<String>,
    /// The lease it was claimed with (a shared store).
    pub lease: Option<Lease>,
}

/// Every unfinished run in the store: each ready to continue, or why it
/// cannot (it stays unfinished in the store).
pub(crate) async fn unfinished(
    versions: &Versions,
) -> Result<Vec<Result<Resumable, (String, EngineError)>>, EngineError> {
    let store = versions.store()?;
    let mut runs = Vec::new();
    for u in store.unfinished_runs().await? {
        let run = u.run.clone();
        runs.push(prepare(versions, u, None).await.map_err(|e| (run, e)));
    }
    Ok(runs)
}

/// The unfinished runs of a shared store whose lease expired, claimed for
/// `host` (at most `limit`): each ready to continue, or why it cannot.
pub(crate) async fn claimed(
    versions: &Versions,
    host: &str,
    ttl_ms: u64,
    limit: u64,
) -> Result<Vec<Result<Resumable, (String, EngineError)>>, EngineError> {
    let store = versions.store()?;
    let mut runs = Vec::new();
    for (lease, u) in store.claim_expired(host, ttl_ms, limit).await? {
        let run = u.run.clone();
        tracing::info!(
            run,
            token = lease.token,
            "taking over a run whose lease expired"
        );
        runs.push(
            prepare(versions, u, Some(lease))
                .await
                .map_err(|e| (run, e)),
        );
    }
    Ok(runs)
}

/// A run the store holds as running again (an interrupt was answered),
/// ready to continue.
pub(crate) async fn prepare_run(
    versions: &Versions,
    u: UnfinishedRun,
) -> Result<Resumable, EngineError> {
    prepare(versions, u, None).await
}

async fn prepare(
    versions: &Versions,
    u: UnfinishedRun,
    lease: Option<Lease>,
) -> Result<Resumable, EngineError> {
    let store = versions.store()?;
    let graph = versions.graph_version(&u.graph_version).await?;
    let thread = store
        .thread(&u.thread)
        .await?
        .ok_or_else(|| EngineError::UnknownThread(u.thread.clone()))?;
    let pending = by_node(&graph, u.pending)?;
    Ok(Resumable {
        thread,
        run: u.run,
        graph,
        pending,
        frame: u.frame,
        seq: u.seq,
        reply: u.reply,
        lease,
    })
}
