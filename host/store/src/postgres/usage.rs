//! Usage read back: the aggregates the ledger is rebuilt from, and one
//! thread's totals (sums cast back to `BIGINT`: PostgreSQL sums integers
//! as `NUMERIC`).

use tokio_postgres::Client;
use weft_engine::UsageTotals;
use weft_engine::metering::ledger::{CallTotals, DaySpend, SPEND_DAYS};
use weft_engine::store::{InvocationTotals, SeriesPoint, SeriesQuery, StoreResult, UsageHistory};

use super::error::ReadResult;
use crate::codec::{int, unsigned as u};

const DAY_MS: i64 = 86_400_000;

pub(super) async fn usage_series(c: &Client, q: &SeriesQuery) -> StoreResult<Vec<SeriesPoint>> {
    let col = q.by.column();
    Ok(c
        .query(
            &format!(
                "SELECT at_ms / $1 * $1 AS start, {col}, count(*), coalesce(sum(prompt_tokens), 0)::BIGINT,
                        coalesce(sum(completion_tokens), 0)::BIGINT, coalesce(sum(cost), 0.0)
                 FROM usage_events
                 WHERE at_ms >= $2 AND at_ms < $3 AND ($4::TEXT IS NULL OR project = $4)
                 GROUP BY 1, 2 ORDER BY 1, 2"
            ),
            &[
                &int(q.bucket_ms.max(1)),
                &int(q.since_ms),
                &int(q.until_ms),
                &q.project,
            ],
        )
        .await
        .read()?
        .iter()
        .map(|r| SeriesPoint {
            start_ms: u(r.get(0)),
            key: r.get(1),
            calls: u(r.get(2)),
            prompt_tokens: u(r.get(3)),
            completion_tokens: u(r.get(4)),
            cost: r.get(5),
        })
        .collect())
}

pub(super) async fn usage(c: &Client) -> StoreResult<UsageHistory> {
    let since_ms: u64 = c
        .query_opt(
            "SELECT value FROM settings WHERE key = 'usage_reset_ms'",
            &[],
        )
        .await
        .read()?
        .and_then(|r| r.get::<_, String>(0).parse().ok())
        .unwrap_or(0);
    let calls = c
        .query(
            "SELECT project, node, model, count(*), count(*) FILTER (WHERE outcome != 'ok'),
                    sum(prompt_tokens)::BIGINT, sum(completion_tokens)::BIGINT,
                    count(*) FILTER (WHERE estimated), coalesce(sum(cost), 0.0),
                    count(*) FILTER (WHERE cost IS NULL), sum(latency_ms)::BIGINT
             FROM usage_events WHERE at_ms >= $1 GROUP BY project, node, model",
            &[&int(since_ms)],
        )
        .await
        .read()?
        .iter()
        .map(|r| CallTotals {
            project: r.get(0),
            node: r.get(1),
            model: r.get(2),
            totals: UsageTotals {
                calls: u(r.get(3)),
                failed: u(r.get(4)),
                prompt_tokens: u(r.get(5)),
                completion_tokens: u(r.get(6)),
                estimated_calls: u(r.get(7)),
                cost: r.get(8),
                unpriced_calls: u(r.get(9)),
                latency_ms: u(r.get(10)),
                ..UsageTotals::default()
            },
        })
        .collect();
    let spend = c
        .query(
            "SELECT project, NULL::BIGINT, coalesce(sum(cost), 0.0) FROM usage_events GROUP BY project
             UNION ALL
             SELECT project, at_ms / $1 * $1, sum(cost) FROM usage_events
             WHERE cost IS NOT NULL
               AND at_ms >= (SELECT coalesce(max(at_ms), 0) FROM usage_events) - $2
             GROUP BY project, at_ms / $1",
            &[&DAY_MS, &(SPEND_DAYS as i64 * DAY_MS)],
        )
        .await
        .read()?
        .iter()
        .map(|r| DaySpend {
            project: r.get(0),
            day_ms: r.get::<_, Option<i64>>(1).map(u),
            cost: r.get(2),
        })
        .collect();
    let invocations = c
        .query(
            "SELECT project, node, count(*), count(*) FILTER (WHERE outcome != 'ok'),
                    sum(fuel)::BIGINT, sum(duration_us)::BIGINT
             FROM invocations WHERE at_ms >= $1 GROUP BY project, node
             UNION ALL
             SELECT project, node, invocations, failed, fuel, duration_us FROM invocation_totals
             WHERE $1 = 0",
            &[&int(since_ms)],
        )
        .await
        .read()?
        .iter()
        .map(|r| InvocationTotals {
            project: r.get(0),
            thread: None,
            node: r.get(1),
            invocations: u(r.get(2)),
            failed: u(r.get(3)),
            fuel: u(r.get(4)),
            duration_us: u(r.get(5)),
        })
        .collect();
    Ok(UsageHistory {
        calls,
        spend,
        invocations,
        since_ms,
    })
}

/// The tokens `thread`'s calls used over all time, and its totals since
/// `since_ms` (calls and invocations).
pub(super) async fn thread_usage(
    c: &Client,
    thread: &str,
    since_ms: u64,
) -> StoreResult<(u64, UsageTotals)> {
    let since = int(since_ms);
    let r = c
        .query_one(
            "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0)::BIGINT,
                    count(*) FILTER (WHERE at_ms >= $2),
                    count(*) FILTER (WHERE at_ms >= $2 AND outcome != 'ok'),
                    coalesce(sum(prompt_tokens) FILTER (WHERE at_ms >= $2), 0)::BIGINT,
                    coalesce(sum(completion_tokens) FILTER (WHERE at_ms >= $2), 0)::BIGINT,
                    count(*) FILTER (WHERE at_ms >= $2 AND estimated),
                    coalesce(sum(cost) FILTER (WHERE at_ms >= $2), 0.0),
                    count(*) FILTER (WHERE at_ms >= $2 AND cost IS NULL),
                    coalesce(sum(latency_ms) FILTER (WHERE at_ms >= $2), 0)::BIGINT
             FROM usage_events WHERE thread = $1",
            &[&thread, &since],
        )
        .await
        .read()?;
    let tokens = u(r.get(0));
    let mut totals = UsageTotals {
        calls: u(r.get(1)),
        failed: u(r.get(2)),
        prompt_tokens: u(r.get(3)),
        completion_tokens: u(r.get(4)),
        estimated_calls: u(r.get(5)),
        cost: r.get(6),
        unpriced_calls: u(r.get(7)),
        latency_ms: u(r.get(8)),
        ..UsageTotals::default()
    };
    let r = c
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE outcome != 'ok'),
                    coalesce(sum(fuel), 0)::BIGINT, coalesce(sum(duration_us), 0)::BIGINT
             FROM invocations WHERE thread = $1 AND at_ms >= $2",
            &[&thread, &since],
        )
        .await
        .read()?;
    totals.invocations = u(r.get(0));
    totals.failed_invocations = u(r.get(1));
    totals.fuel = u(r.get(2));
    totals.invocation_us = u(r.get(3));
    Ok((tokens, totals))
}
