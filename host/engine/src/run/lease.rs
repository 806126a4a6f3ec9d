//! A run's lease, when the store is shared by several hosts: claimed as
//! the run starts (a run taken over arrives with its lease), renewed in
//! the background while the run executes, released when it stops. A
//! renewal refused because another host took the run over is logged; the
//! run's next frame commit is then refused too ([`StoreError::Fenced`]),
//! which stops the run on this host without making the frame visible.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{RunContext, RunState};
use crate::loaded::LoadedGraph;
use crate::store::{Lease, Store, StoreError};
use crate::trace::{FrameTrace, RunStatus};

/// This host's lease figures, for its heartbeat in a shared store and
/// `GET /api/v1/hosts`.
#[derive(Debug, Default)]
pub struct LeaseStats {
    /// Runs holding a lease here now.
    pub runs_held: AtomicU64,
    /// Lease renewals made since the host started.
    pub lease_renewals: AtomicU64,
}

/// The lease a run holds while it executes, and its renewer.
pub(crate) struct Held {
    lease: Option<Lease>,
    store: Option<Arc<dyn Store>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    /// Counted in `runs_held` until dropped.
    stats: Option<Arc<LeaseStats>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(stats) = self.stats.take() {
            stats.runs_held.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Held {
    /// The lease, if the store is shared.
    pub(crate) fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Stops renewing and gives the lease up (a lease taken over since is
    /// left alone by the store).
    pub(crate) async fn release(mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if let (Some(store), Some(lease)) = (self.store.take(), self.lease.take())
            && let Err(error) = store.release_lease(&lease).await
        {
            tracing::warn!(run = %lease.run, %error, "the run's lease was not released; it expires");
        }
    }
}

/// Claims the run's lease (unless it arrived with one) and starts renewing
/// it; nothing to hold when the store is not shared.
pub(crate) async fn hold(
    ctx: &RunContext,
    run: &str,
    lease: Option<Lease>,
) -> Result<Held, StoreError> {
    let Some(store) = ctx.store.as_ref().filter(|s| s.shared()) else {
        return Ok(Held {
            lease: None,
            store: None,
            renewer: None,
            stats: None,
        });
    };
    let (host, config) = &ctx.leasing;
    let ttl_ms = millis(config.ttl);
    let lease = match lease {
        Some(lease) => lease,
        None => store.claim_run(run, host, ttl_ms).await?,
    };
    let stats = Arc::clone(&ctx.lease_stats);
    stats.runs_held.fetch_add(1, Ordering::Relaxed);
    let renewer = {
        let store = Arc::clone(store);
        let stats = Arc::clone(&stats);
        let mut held = lease.clone();
        let every = config.renew_every.max(std::time::Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                match store.renew_lease(&held, ttl_ms).await {
                    Ok(renewed) => {
                        held = renewed;
                        stats.lease_renewals.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(StoreError::Fenced(message)) => {
                        tracing::warn!(run = %held.run, %message, "the run's lease was taken over by another host; its next commit will be refused");
                        return;
                    }
                    // The store is unreachable: keep trying while the lease lasts.
                    Err(error) => {
                        tracing::warn!(run = %held.run, %error, "the run's lease was not renewed");
                    }
                }
            }
        })
    };
    Ok(Held {
        lease: Some(lease),
        store: Some(Arc::clone(store)),
        renewer: Some(renewer),
        stats: Some(stats),
    })
}

/// The trace of a run that could not claim its lease: it did not execute
/// here (it stays unfinished in the store for the host holding it).
pub(crate) fn not_held(
    graph: &LoadedGraph,
    (thread, run): (&str, &str),
    state: &RunState,
    error: &StoreError,
) -> FrameTrace {
    tracing::error!(thread, run, %error, "the run's lease could not be claimed: it does not execute on this host");
    FrameTrace {
        thread: thread.to_owned(),
        run: run.to_owned(),
        graph: graph.graph().name().to_owned(),
        graph_hash: graph.graph().content_hash().to_hex(),
        status: RunStatus::StoreFailed,
        frames: state.frame,
        reply: state.reply.clone(),
        records: Vec::new(),
        undelivered: Vec::new(),
        duration_us: 0,
    }
}

/// A duration in whole milliseconds.
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
