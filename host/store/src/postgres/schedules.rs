//! Schedules on PostgreSQL: added, listed, paused and resumed, removed;
//! due ones found; ticks claimed with a compare-and-set on the next tick
//! (of several hosts claiming one tick, exactly one wins); and what each
//! fire started.

use tokio_postgres::{Client, Row};
use weft_engine::store::{FireClaim, ScheduleFire, StoreResult, StoredSchedule};

use super::error::ReadResult;
use crate::codec::{int, json, parse, unsigned as u};

const COLUMNS: &str = "id, project, spec, next_ms, paused, created_ms, fires";

pub(super) async fn put(c: &Client, s: &StoredSchedule) -> StoreResult<()> {
    let spec = json(&s.spec)?;
    c.execute(
        "INSERT INTO schedules (id, project, spec, next_ms, paused, created_ms, fires)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &s.id,
            &s.project,
            &spec,
            &s.next_ms.map(int),
            &s.paused,
            &int(s.created_ms),
            &int(s.fires),
        ],
    )
    .await
    .read()?;
    Ok(())
}

fn schedule(r: &Row) -> StoreResult<StoredSchedule> {
    let spec: String = r.get(2);
    Ok(StoredSchedule {
        id: r.get(0),
        project: r.get(1),
        spec: parse(&spec, "a schedule")?,
        next_ms: r.get::<_, Option<i64>>(3).map(u),
        paused: r.get(4),
        created_ms: u(r.get(5)),
        fires: u(r.get(6)),
    })
}

pub(super) async fn list(c: &Client, project: Option<&str>) -> StoreResult<Vec<StoredSchedule>> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM schedules WHERE $1::TEXT IS NULL OR project = $1
                 ORDER BY created_ms, id"
            ),
            &[&project],
        )
        .await
        .read()?;
    rows.iter().map(schedule).collect()
}

pub(super) async fn due(c: &Client, now_ms: u64) -> StoreResult<Vec<StoredSchedule>> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM schedules WHERE NOT paused AND next_ms <= $1
                 ORDER BY next_ms, id LIMIT 100"
            ),
            &[&int(now_ms)],
        )
        .await
        .read()?;
    rows.iter().map(schedule).collect()
}

pub(super) async fn set(
    c: &Client,
    id: &str,
    paused: bool,
    next_ms: Option<u64>,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE schedules SET paused = $2, next_ms = $3 WHERE id = $1",
            &[&id, &paused, &next_ms.map(int)],
        )
        .await
        .read()?;
    Ok(n > 0)
}

pub(super) async fn delete(c: &mut Client, id: &str) -> StoreResult<bool> {
    let tx = c.transaction().await.read()?;
    tx.execute("DELETE FROM schedule_fires WHERE schedule = $1", &[&id])
        .await
        .read()?;
    let n = tx
        .execute("DELETE FROM schedules WHERE id = $1", &[&id])
        .await
        .read()?;
    tx.commit().await.read()?;
    Ok(n > 0)
}

pub(super) async fn claim(c: &mut Client, f: &FireClaim) -> StoreResult<bool> {
    let tx = c.transaction().await.read()?;
    let won = tx
        .execute(
            "UPDATE schedules SET next_ms = $3, fires = fires + $4
             WHERE id = $1 AND next_ms = $2 AND NOT paused",
            &[
                &f.schedule,
                &int(f.expected_ms),
                &f.next_ms.map(int),
                &i64::from(f.fire),
            ],
        )
        .await
        .read()?
        == 1;
    if won && f.fire {
        tx.execute(
            "INSERT INTO schedule_fires (schedule, tick_ms, fired_ms) VALUES ($1, $2, $3)
             ON CONFLICT (schedule, tick_ms) DO NOTHING",
            &[&f.schedule, &int(f.tick_ms), &int(f.at_ms)],
        )
        .await
        .read()?;
    }
    tx.commit().await.read()?;
    Ok(won)
}

pub(super) async fn started(c: &Client, f: &ScheduleFire) -> StoreResult<()> {
    c.execute(
        "UPDATE schedule_fires SET thread = $3, run = $4, error = $5 WHERE schedule = $1 AND tick_ms = $2",
        &[&f.schedule, &int(f.tick_ms), &f.thread, &f.run, &f.error],
    )
    .await
    .read()?;
    Ok(())
}

fn fire(r: &Row) -> ScheduleFire {
    ScheduleFire {
        schedule: r.get(0),
        tick_ms: u(r.get(1)),
        fired_ms: u(r.get(2)),
        thread: r.get(3),
        run: r.get(4),
        error: r.get(5),
    }
}

pub(super) async fn unstarted(c: &Client, before_ms: u64) -> StoreResult<Vec<ScheduleFire>> {
    let rows = c
        .query(
            "SELECT schedule, tick_ms, fired_ms, thread, run, error FROM schedule_fires
             WHERE run IS NULL AND error IS NULL AND fired_ms < $1
             ORDER BY fired_ms, schedule LIMIT 100",
            &[&int(before_ms)],
        )
        .await
        .read()?;
    Ok(rows.iter().map(fire).collect())
}

pub(super) async fn of_schedule(
    c: &Client,
    id: &str,
    limit: u64,
) -> StoreResult<Vec<ScheduleFire>> {
    let rows = c
        .query(
            "SELECT schedule, tick_ms, fired_ms, thread, run, error FROM schedule_fires
             WHERE schedule = $1 ORDER BY tick_ms DESC LIMIT $2",
            &[&id, &int(limit)],
        )
        .await
        .read()?;
    Ok(rows.iter().map(fire).collect())
}
