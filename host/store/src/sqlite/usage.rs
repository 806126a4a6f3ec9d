//! Usage: model calls' events, invocation totals (pruned threads
//! included), and the reset mark.

use rusqlite::{Connection, OptionalExtension, params};
use weft_engine::metering::ledger::{CallTotals, DaySpend, SPEND_DAYS};
use weft_engine::store::{InvocationTotals, SeriesPoint, SeriesQuery, StoreResult, UsageHistory};
use weft_engine::{UsageEvent, UsageTotals};

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

pub(super) fn usage_series(c: &Connection, q: &SeriesQuery) -> StoreResult<Vec<SeriesPoint>> {
    let col = q.by.column();
    let mut s = c
        .prepare_cached(&format!(
            "SELECT at_ms / ?1 * ?1 AS start, {col}, count(*), coalesce(sum(prompt_tokens), 0),
                    coalesce(sum(completion_tokens), 0), coalesce(sum(cost), 0.0)
             FROM usage_events
             WHERE at_ms >= ?2 AND at_ms < ?3 AND (?4 IS NULL OR project = ?4)
             GROUP BY start, {col} ORDER BY start, {col}"
        ))
        .map_err(error)?;
    s.query_map(
        params![
            int(q.bucket_ms.max(1)),
            int(q.since_ms),
            int(q.until_ms),
            q.project
        ],
        |r| {
            Ok(SeriesPoint {
                start_ms: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                key: r.get(1)?,
                calls: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                prompt_tokens: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                completion_tokens: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                cost: r.get(5)?,
            })
        },
    )
    .and_then(Iterator::collect)
    .map_err(error)
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
            "SELECT project, node, model, count(*), sum(outcome != 'ok'), sum(prompt_tokens),
                    sum(completion_tokens), sum(estimated != 0), coalesce(sum(cost), 0.0),
                    sum(cost IS NULL), sum(latency_ms)
             FROM usage_events WHERE at_ms >= ?1 GROUP BY project, node, model",
        )
        .map_err(error)?;
    let calls = s
        .query_map([int(since_ms)], |r| {
            Ok(CallTotals {
                project: r.get(0)?,
                node: r.get(1)?,
                model: r.get(2)?,
                totals: UsageTotals {
                    calls: r.get::<_, i64>(3)? as u64,
                    failed: r.get::<_, i64>(4)? as u64,
                    prompt_tokens: r.get::<_, i64>(5)? as u64,
                    completion_tokens: r.get::<_, i64>(6)? as u64,
                    estimated_calls: r.get::<_, i64>(7)? as u64,
                    cost: r.get(8)?,
                    unpriced_calls: r.get::<_, i64>(9)? as u64,
                    latency_ms: r.get::<_, i64>(10)? as u64,
                    ..UsageTotals::default()
                },
            })
        })
        .and_then(Iterator::collect)
        .map_err(error)?;
    let mut s = c
        .prepare(
            "SELECT project, NULL, coalesce(sum(cost), 0.0) FROM usage_events GROUP BY project
             UNION ALL
             SELECT project, at_ms / ?1 * ?1, sum(cost) FROM usage_events
             WHERE cost IS NOT NULL
               AND at_ms >= (SELECT coalesce(max(at_ms), 0) FROM usage_events) - ?2
             GROUP BY project, at_ms / ?1",
        )
        .map_err(error)?;
    let spend = s
        .query_map([DAY_MS, SPEND_DAYS as i64 * DAY_MS], |r| {
            Ok(DaySpend {
                project: r.get(0)?,
                day_ms: r.get::<_, Option<i64>>(1)?.map(|d| d as u64),
                cost: r.get(2)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(error)?;
    let mut s = c
        .prepare(
            "SELECT project, NULL, node, count(*), sum(outcome != 'ok'), sum(fuel), sum(duration_us)
             FROM invocations WHERE at_ms >= ?1 GROUP BY project, node
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
        calls,
        spend,
        invocations,
        since_ms,
    })
}

const DAY_MS: i64 = 86_400_000;

/// The tokens `thread`'s calls used over all time, and its totals since
/// `since_ms` (calls and invocations).
pub(super) fn thread_usage(
    c: &Connection,
    thread: &str,
    since_ms: u64,
) -> StoreResult<(u64, UsageTotals)> {
    let (tokens, mut totals) = c
        .query_row(
            "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0),
                    coalesce(sum(at_ms >= ?2), 0), coalesce(sum(at_ms >= ?2 AND outcome != 'ok'), 0),
                    coalesce(sum(iif(at_ms >= ?2, prompt_tokens, 0)), 0),
                    coalesce(sum(iif(at_ms >= ?2, completion_tokens, 0)), 0),
                    coalesce(sum(at_ms >= ?2 AND estimated != 0), 0),
                    coalesce(sum(iif(at_ms >= ?2, cost, 0.0)), 0.0),
                    coalesce(sum(at_ms >= ?2 AND cost IS NULL), 0),
                    coalesce(sum(iif(at_ms >= ?2, latency_ms, 0)), 0)
             FROM usage_events WHERE thread = ?1",
            params![thread, int(since_ms)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    UsageTotals {
                        calls: r.get::<_, i64>(1)? as u64,
                        failed: r.get::<_, i64>(2)? as u64,
                        prompt_tokens: r.get::<_, i64>(3)? as u64,
                        completion_tokens: r.get::<_, i64>(4)? as u64,
                        estimated_calls: r.get::<_, i64>(5)? as u64,
                        cost: r.get(6)?,
                        unpriced_calls: r.get::<_, i64>(7)? as u64,
                        latency_ms: r.get::<_, i64>(8)? as u64,
                        ..UsageTotals::default()
                    },
                ))
            },
        )
        .map_err(error)?;
    c.query_row(
        concat!(
            "SELECT count(*), coalesce(sum(i.outcome != 'ok'), 0), coalesce(sum(i.fuel), 0),
                coalesce(sum(i.duration_us), 0) FROM ",
            super::frames::frame_invocations!(),
            " WHERE f.thread = ?1 AND i.at_ms >= ?2"
        ),
        params![thread, int(since_ms)],
        |r| {
            totals.invocations = r.get::<_, i64>(0)? as u64;
            totals.failed_invocations = r.get::<_, i64>(1)? as u64;
            totals.fuel = r.get::<_, i64>(2)? as u64;
            totals.invocation_us = r.get::<_, i64>(3)? as u64;
            Ok(())
        },
    )
    .map_err(error)?;
    Ok((tokens, totals))
}
