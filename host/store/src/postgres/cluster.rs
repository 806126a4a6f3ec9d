//! The hosts sharing the store: their heartbeats, and the money holds of
//! their calls in flight. A project's money budget is checked in one
//! transaction that locks the project's window row, so that hosts asking
//! at once are answered one after the other and never grant more than
//! the limit between them. The holds of a host that stopped beating no
//! longer count once it is no longer live: its calls died with it.

use tokio_postgres::Client;
use weft_engine::store::{HostBeat, MoneyHeld, MoneyHold, MoneySettle, MoneySettled, StoreResult};

use super::error::ReadResult;
use crate::codec::int;

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Records `beat`, and forgets the money holds of hosts not seen since
/// `live_after_ms` (their calls died with them).
pub(super) async fn heartbeat(c: &Client, beat: &HostBeat, live_after_ms: u64) -> StoreResult<()> {
    c.execute(
        "INSERT INTO hosts (id, address, version, started_ms, last_seen_ms, runs_held, lease_renewals)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, version = excluded.version,
             started_ms = excluded.started_ms, last_seen_ms = excluded.last_seen_ms,
             runs_held = excluded.runs_held, lease_renewals = excluded.lease_renewals",
        &[
            &beat.id,
            &beat.address,
            &beat.version,
            &int(beat.started_ms),
            &int(beat.last_seen_ms),
            &int(beat.runs_held),
            &int(beat.lease_renewals),
        ],
    )
    .await
    .read()?;
    c.execute(
        "DELETE FROM money_holds m WHERE m.created_ms < $1
           AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = m.host AND h.last_seen_ms >= $1)",
        &[&int(live_after_ms)],
    )
    .await
    .read()?;
    Ok(())
}

pub(super) async fn put_setting(c: &Client, key: &str, value: &str) -> StoreResult<()> {
    c.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )
    .await
    .read()?;
    Ok(())
}

pub(super) async fn settings(c: &Client, prefix: &str) -> StoreResult<Vec<(String, String)>> {
    let rows = c
        .query(
            "SELECT key, value FROM settings WHERE left(key, length($1)) = $1 ORDER BY key",
            &[&prefix],
        )
        .await
        .read()?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub(super) async fn hosts(c: &Client, seen_after_ms: u64) -> StoreResult<Vec<HostBeat>> {
    let rows = c
        .query(
            "SELECT id, address, version, started_ms, last_seen_ms, runs_held, lease_renewals
             FROM hosts WHERE last_seen_ms >= $1 ORDER BY id",
            &[&int(seen_after_ms)],
        )
        .await
        .read()?;
    Ok(rows
        .iter()
        .map(|r| HostBeat {
            id: r.get(0),
            address: r.get(1),
            version: r.get(2),
            started_ms: unsigned(r.get(3)),
            last_seen_ms: unsigned(r.get(4)),
            runs_held: unsigned(r.get(5)),
            lease_renewals: unsigned(r.get(6)),
        })
        .collect())
}

pub(super) async fn hold_money(c: &mut Client, h: &MoneyHold) -> StoreResult<MoneyHeld> {
    let tx = c.transaction().await.read()?;
    let (project, start) = (&h.project, int(h.window_start));
    // The window is opened by the first host to hold money in it, at what
    // the usage committed so far says it spent.
    tx.execute(
        "INSERT INTO money_windows (project, window_start, spent, warned) VALUES ($1, $2, $3, 0)
         ON CONFLICT (project, window_start) DO NOTHING",
        &[project, &start, &int(h.seed)],
    )
    .await
    .read()?;
    // The row lock orders the hosts' holds on this window.
    let spent: i64 = tx
        .query_one(
            "SELECT spent FROM money_windows WHERE project = $1 AND window_start = $2 FOR UPDATE",
            &[project, &start],
        )
        .await
        .read()?
        .get(0);
    let held: i64 = tx
        .query_one(
            "SELECT coalesce(sum(m.amount), 0)::BIGINT FROM money_holds m
             LEFT JOIN hosts h ON h.id = m.host
             WHERE m.project = $1 AND m.window_start = $2
               AND (m.host = $3 OR h.last_seen_ms >= $4 OR m.created_ms >= $4)",
            &[project, &start, &h.host, &int(h.live_after_ms)],
        )
        .await
        .read()?
        .get(0);
    let (spent, held) = (unsigned(spent), unsigned(held));
    let granted = spent.saturating_add(held).saturating_add(h.amount) <= h.limit;
    if granted {
        tx.execute(
            "INSERT INTO money_holds (id, project, window_start, host, amount, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &h.id,
                project,
                &start,
                &h.host,
                &int(h.amount),
                &int(h.at_ms),
            ],
        )
        .await
        .read()?;
    }
    tx.commit().await.read()?;
    Ok(MoneyHeld {
        granted,
        spent,
        held: if granted { held + h.amount } else { held },
    })
}

pub(super) async fn settle_money(c: &mut Client, s: &MoneySettle) -> StoreResult<MoneySettled> {
    let tx = c.transaction().await.read()?;
    let (project, start) = (&s.project, int(s.window_start));
    tx.execute("DELETE FROM money_holds WHERE id = $1", &[&s.id])
        .await
        .read()?;
    let row = tx
        .query_opt(
            "UPDATE money_windows SET spent = spent + $3
             WHERE project = $1 AND window_start = $2 RETURNING spent, warned",
            &[project, &start, &int(s.cost)],
        )
        .await
        .read()?;
    let Some(row) = row else {
        // The window was pruned meanwhile (or never opened): nothing to
        // settle against.
        tx.commit().await.read()?;
        return Ok(MoneySettled {
            spent: s.cost,
            crossed: Vec::new(),
        });
    };
    let spent = unsigned(row.get(0));
    let warned = unsigned(i64::from(row.get::<_, i32>(1)));
    let mut bits = 0u64;
    let mut crossed = Vec::new();
    for (i, threshold) in s.thresholds.iter().enumerate() {
        let bit = 1u64 << i;
        let reached =
            s.limit == 0 || u128::from(spent) * 100 >= u128::from(s.limit) * u128::from(*threshold);
        if reached && warned & bit == 0 {
            bits |= bit;
            crossed.push(*threshold);
        }
    }
    if bits != 0 {
        tx.execute(
            "UPDATE money_windows SET warned = warned | $3 WHERE project = $1 AND window_start = $2",
            &[project, &start, &(bits as i32)],
        )
        .await
        .read()?;
    }
    tx.commit().await.read()?;
    Ok(MoneySettled { spent, crossed })
}
