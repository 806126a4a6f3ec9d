//! Pruning: finished, idle threads that no fork needs are deleted, their
//! invocations folded into totals first.

use tokio_postgres::Transaction;
use weft_engine::store::PruneReport;

use super::error::PgResult;
use crate::codec::int;

pub(super) async fn prune(c: &Transaction<'_>, before_ms: u64) -> PgResult<PruneReport> {
    c.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY); DELETE FROM doomed;",
    )
    .await?;
    let threads = c
        .execute(
            "INSERT INTO doomed (id)
             SELECT t.id FROM threads t
             WHERE t.updated_ms < $1 AND t.status NOT IN ('running', 'interrupted')
               AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread = t.id AND r.status IN ('running', 'interrupted', 'queued'))
               AND NOT EXISTS (SELECT 1 FROM threads f WHERE f.forked_from = t.id)",
            &[&int(before_ms)],
        )
        .await?;
    // Webhook deliveries that are over (delivered or failed), with their
    // attempts.
    c.execute(
        "DELETE FROM webhook_attempts WHERE delivery IN
             (SELECT id FROM webhook_deliveries WHERE status != 'pending' AND created_ms < $1)",
        &[&int(before_ms)],
    )
    .await?;
    c.execute(
        "DELETE FROM webhook_deliveries WHERE status != 'pending' AND created_ms < $1",
        &[&int(before_ms)],
    )
    .await?;
    if threads == 0 {
        return Ok(PruneReport::default());
    }
    c.execute(
        "INSERT INTO invocation_totals AS t (project, node, invocations, failed, fuel, duration_us)
         SELECT project, node, count(*), count(*) FILTER (WHERE outcome != 'ok'), sum(fuel), sum(duration_us)
         FROM invocations WHERE thread IN (SELECT id FROM doomed) GROUP BY project, node
         ON CONFLICT (project, node) DO UPDATE SET
             invocations = t.invocations + excluded.invocations,
             failed = t.failed + excluded.failed,
             fuel = t.fuel + excluded.fuel,
             duration_us = t.duration_us + excluded.duration_us",
        &[],
    )
    .await?;
    c.execute(
        "DELETE FROM leases WHERE run IN (SELECT id FROM runs WHERE thread IN (SELECT id FROM doomed))",
        &[],
    )
    .await?;
    let mut removed = Vec::new();
    for table in [
        "frames",
        "journal",
        "messages",
        "memory",
        "runs",
        "invocations",
        "interrupts",
    ] {
        let n = c
            .execute(
                &format!("DELETE FROM {table} WHERE thread IN (SELECT id FROM doomed)"),
                &[],
            )
            .await?;
        removed.push(n);
    }
    c.execute(
        "DELETE FROM threads WHERE id IN (SELECT id FROM doomed)",
        &[],
    )
    .await?;
    Ok(PruneReport {
        threads,
        frames: removed[0],
        journal: removed[1],
        messages: removed[2],
        memory: removed[3],
        runs: removed[4],
    })
}
