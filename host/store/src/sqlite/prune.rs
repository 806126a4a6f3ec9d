//! Pruning: finished, idle threads that no fork needs are deleted, their
//! invocations folded into totals first.

use rusqlite::Connection;
use weft_engine::store::{PruneReport, StoreResult};

use super::connection::error;
use crate::codec::int;

/// The positions of the doomed threads' invocations, found through their
/// frames.
macro_rules! doomed_invocations {
    () => {
        concat!(
            "SELECT i.pos FROM doomed d CROSS JOIN ",
            super::frames::frame_invocations!(),
            " WHERE f.thread = d.id"
        )
    };
}

pub(super) fn prune(c: &Connection, before_ms: u64) -> StoreResult<PruneReport> {
    // Finished threads, idle since before the cut-off, that no fork needs.
    c.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY); DELETE FROM doomed;",
    )
    .map_err(error)?;
    let threads = c
        .execute(
            "INSERT INTO doomed (id)
             SELECT t.id FROM threads t
             WHERE t.updated_ms < ?1 AND t.status NOT IN ('running', 'interrupted')
               AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread = t.id AND r.status IN ('running', 'interrupted', 'queued'))
               AND NOT EXISTS (SELECT 1 FROM threads f WHERE f.forked_from = t.id)",
            [int(before_ms)],
        )
        .map_err(error)? as u64;
    // Webhook deliveries that are over (delivered or failed), with their
    // attempts.
    c.execute(
        "DELETE FROM webhook_attempts WHERE delivery IN
             (SELECT id FROM webhook_deliveries WHERE status != 'pending' AND created_ms < ?1)",
        [int(before_ms)],
    )
    .map_err(error)?;
    c.execute(
        "DELETE FROM webhook_deliveries WHERE status != 'pending' AND created_ms < ?1",
        [int(before_ms)],
    )
    .map_err(error)?;
    if threads == 0 {
        return Ok(PruneReport::default());
    }
    c.execute(
        concat!(
            "INSERT INTO invocation_totals (project, node, invocations, failed, fuel, duration_us)
         SELECT project, node, count(*), sum(outcome != 'ok'), sum(fuel), sum(duration_us)
         FROM invocations WHERE pos IN (",
            doomed_invocations!(),
            ") GROUP BY project, node
         ON CONFLICT (project, node) DO UPDATE SET
             invocations = invocations + excluded.invocations,
             failed = failed + excluded.failed,
             fuel = fuel + excluded.fuel,
             duration_us = duration_us + excluded.duration_us"
        ),
        [],
    )
    .map_err(error)?;
    let delete = |table: &str| -> StoreResult<u64> {
        c.execute(
            &format!("DELETE FROM {table} WHERE thread IN (SELECT id FROM doomed)"),
            [],
        )
        .map(|n| n as u64)
        .map_err(error)
    };
    // A frame's invocations are found through it: they go first.
    c.execute(
        concat!(
            "DELETE FROM invocations WHERE pos IN (",
            doomed_invocations!(),
            ")"
        ),
        [],
    )
    .map_err(error)?;
    let report = PruneReport {
        threads,
        frames: delete("frames")?,
        journal: delete("journal")?,
        messages: c
            .execute(
                concat!(
                    "DELETE FROM messages WHERE pos IN (",
                    super::messages::thread_messages!("d.id", "doomed d CROSS JOIN "),
                    ")"
                ),
                [],
            )
            .map_err(error)? as u64,
        memory: delete("memory")?,
        runs: delete("runs")?,
    };
    delete("interrupts")?;
    c.execute(
        "DELETE FROM threads WHERE id IN (SELECT id FROM doomed)",
        [],
    )
    .map_err(error)?;
    Ok(report)
}
