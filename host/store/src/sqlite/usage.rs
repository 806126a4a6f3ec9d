//! Usage: model calls' events, invocation totals (pruned threads
//! included), and the reset mark.

use rusqlite::{Connection, OptionalExtension, params};
use weft_engine::UsageEvent;
use weft_engine::store::{InvocationTotals, StoreResult, UsageHistory};

use super::connection::error;
use crate::codec::int;

pub(super) fn insert_usage(c: &Connection, u: &UsageEvent) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO usage_events (project, thread, run, frame, node, model, provider, prompt_tokens,
             completion_tokens, estimated, latency_ms, cost, outcome, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut s| {
        s.execute(params![
            u.project,
            u.thread,
            u.run,
            u.frame,
            u.node,
            u.model,
            u.provider,
            int(u.prompt_tokens),
            int(u.completion_tokens),
            u.estimated,
            int(u.latency_ms),
            u.cost,
            u.outcome,
            int(u.at_ms)
        ])
    })
    .map_err(error)?;
    Ok(())
}

pub(super) fn reset_usage(c: &Connection, at_ms: u64) -> StoreResult<()> {
    c.execute(
        "INSERT INTO settings (key, value) VALUES ('usage_reset_ms', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [at_ms.to_string()],
    )
    .map_err(error)?;
    Ok(())
}

pub(super) fn usage(c: &Connection) -> StoreResult<UsageHistory> {
    let since_ms: u64 = c
        .query_row(
            "SELECT value FROM settings WHERE key = 'usage_reset_ms'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(error)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut s = c
        .prepare(
            "SELECT project, thread, run, frame, node, model, provider, prompt_tokens, completion_tokens,
                    estimated, latency_ms, cost, outcome, at_ms
             FROM usage_events ORDER BY id",
        )
        .map_err(error)?;
    let events = s
        .query_map([], |r| {
            Ok(UsageEvent {
                project: r.get(0)?,
                thread: r.get(1)?,
                run: r.get(2)?,
                frame: r.get(3)?,
                node: r.get(4)?,
                model: r.get(5)?,
                provider: r.get(6)?,
                prompt_tokens: r.get::<_, i64>(7)? as u64,
                completion_tokens: r.get::<_, i64>(8)? as u64,
                estimated: r.get(9)?,
                latency_ms: r.get::<_, i64>(10)? as u64,
                cost: r.get(11)?,
                outcome: r.get(12)?,
                at_ms: r.get::<_, i64>(13)? as u64,
            })
        })
        .and_then(Iterator::collect)
        .map_err(error)?;
    let mut s = c
        .prepare(
            "SELECT project, thread, node, count(*), sum(outcome != 'ok'), sum(fuel), sum(duration_us)
             FROM invocations WHERE at_ms >= ?1 GROUP BY project, thread, node
             UNION ALL
             SELECT project, NULL, node, invocations, failed, fuel, duration_us FROM invocation_totals
             WHERE ?1 = 0",
        )
        .map_err(error)?;
    let invocations = s
        .query_map([int(since_ms)], |r| {
            Ok(InvocationTotals {
                project: r.get(0)?,
                thread: r.get(1)?,
                node: r.get(2)?,
                invocations: r.get::<_, i64>(3)? as u64,
                failed: r.get::<_, i64>(4)? as u64,
                fuel: r.get::<_, i64>(5)? as u64,
                duration_us: r.get::<_, i64>(6)? as u64,
            })
        })
        .and_then(Iterator::collect)
        .map_err(error)?;
    Ok(UsageHistory {
        events,
        invocations,
        since_ms,
    })
}
