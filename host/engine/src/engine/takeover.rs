//! Taking over the runs of hosts that died or were cut off, on a shared
//! store.

use std::sync::Arc;

use super::Engine;

/// The most runs one takeover claims (the rest wait for the next round).
pub(super) const TAKEOVER_BATCH: u64 = 256;

/// On a shared store, every `every` until the engine is dropped: records
/// this host's heartbeat, and takes over the runs whose lease expired (the
/// runs of hosts that died or were cut off).
pub(super) fn spawn_takeover(engine: &Arc<Engine>, every: std::time::Duration) {
    let engine = Arc::downgrade(engine);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(engine) = engine.upgrade() else {
                return;
            };
            engine.beat().await;
            match engine.resume_runs().await {
                Ok((taken, failed)) => {
                    if !taken.is_empty() || !failed.is_empty() {
                        tracing::info!(
                            taken = taken.len(),
                            failed = failed.len(),
                            "took over runs whose lease expired"
                        );
                    }
                }
                Err(error) => tracing::warn!(%error, "looking for runs to take over failed"),
            }
        }
    });
}
