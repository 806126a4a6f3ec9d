//! Retention: threads whose runs all finished long ago are removed (their
//! frames, journal, messages and memory), keeping usage totals.

use std::time::Duration;

use super::Versions;
use crate::error::EngineError;
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
