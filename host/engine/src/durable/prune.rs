//! Retention: threads whose runs all finished long ago are removed (their
//! frames, journal, messages and memory), keeping usage totals.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Versions;
use crate::config::Retention;
use crate::error::EngineError;
use crate::metering::Budgets;
use crate::store::PruneReport;

/// Removes the threads whose runs all finished more than `max_age` before
/// `now_ms`.
pub(crate) async fn prune(
    versions: &Versions,
    now_ms: u64,
    max_age: Duration,
) -> Result<PruneReport, EngineError> {
    let store = versions.store()?;
    let before = now_ms.saturating_sub(max_age.as_millis() as u64);
    let report = store.prune(before).await?;
    if report.threads > 0 {
        tracing::info!(
            threads = report.threads,
            frames = report.frames,
            messages = report.messages,
            "pruned finished threads"
        );
    }
    Ok(report)
}

/// Prunes in the background every `retention.every` while the engine lives
/// (the job ends when the engine's versions are dropped).
pub(crate) fn spawn_retention(
    versions: &Arc<Versions>,
    budgets: &Arc<Budgets>,
    retention: Retention,
) {
    let versions: Weak<Versions> = Arc::downgrade(versions);
    let clock = Arc::downgrade(budgets);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(retention.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (Some(versions), Some(clock)) = (versions.upgrade(), clock.upgrade()) else {
                return;
            };
            if let Err(error) = prune(&versions, clock.now_ms(), retention.max_age).await {
                tracing::error!(%error, "retention: pruning failed");
            }
        }
    });
}
