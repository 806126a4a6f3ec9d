//! Schedules: added, listed, paused and resumed, removed; due ones found;
//! ticks claimed with a compare-and-set on the next tick (exactly once);
//! and what each fire started.

use rusqlite::{Connection, Row, params};
use weft_engine::store::{
    CatchUp, FireClaim, ScheduleFire, ScheduleSpec, StoreResult, StoredSchedule,
};

use super::connection::error;
use crate::codec::{int, json, parse};

const COLUMNS: &str = "id, project, spec, next_ms, paused, created_ms, fires";

pub(super) fn put(c: &Connection, s: &StoredSchedule) -> StoreResult<()> {
    let spec = json(&s.spec)?;
    c.prepare_cached(
        "INSERT INTO schedules (id, project, spec, next_ms, paused, created_ms, fires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.id,
            s.project,
            spec,
            s.next_ms.map(int),
            s.paused,
            int(s.created_ms),
            int(s.fires)
        ])
    })
    .map_err(error)?;
    Ok(())
}

/// A row as read, its spec still JSON text.
struct Raw {
    schedule: StoredSchedule,
    spec: String,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        spec: r.get(2)?,
        schedule: StoredSchedule {
            id: r.get(0)?,
            project: r.get(1)?,
            spec: ScheduleSpec {
                cron: None,
                at_ms: None,
                timezone: String::new(),
                graph: None,
                thread: None,
                to: None,
                kind: String::new(),
                body: String::new(),
                catch_up: CatchUp::default(),
                multitask: Default::default(),
            },
            next_ms: r.get::<_, Option<i64>>(3)?.map(|n| n as u64),
            paused: r.get(4)?,
            created_ms: r.get::<_, i64>(5)? as u64,
            fires: r.get::<_, i64>(6)? as u64,
        },
    })
}

fn select(
    c: &Connection,
    filter: &str,
    param: impl rusqlite::Params,
) -> StoreResult<Vec<StoredSchedule>> {
    let mut s = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM schedules {filter}"))
        .map_err(error)?;
    let rows: Vec<Raw> = s
        .query_map(param, raw)
        .and_then(Iterator::collect)
        .map_err(error)?;
    rows.into_iter()
        .map(|raw| {
            let mut schedule = raw.schedule;
            schedule.spec = parse(&raw.spec, "a schedule")?;
            Ok(schedule)
        })
        .collect()
}

pub(super) fn list(c: &Connection, project: Option<&str>) -> StoreResult<Vec<StoredSchedule>> {
    select(
        c,
        "WHERE ?1 IS NULL OR project = ?1 ORDER BY created_ms, id",
        [project],
    )
}

pub(super) fn due(c: &Connection, now_ms: u64) -> StoreResult<Vec<StoredSchedule>> {
    select(
        c,
        "WHERE paused = 0 AND next_ms <= ?1 ORDER BY next_ms, id LIMIT 100",
        [int(now_ms)],
    )
}

pub(super) fn set(
    c: &Connection,
    id: &str,
    paused: bool,
    next_ms: Option<u64>,
) -> StoreResult<bool> {
    let n = c
        .prepare_cached("UPDATE schedules SET paused = ?2, next_ms = ?3 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id, paused, next_ms.map(int)]))
        .map_err(error)?;
    Ok(n > 0)
}

pub(super) fn delete(c: &Connection, id: &str) -> StoreResult<bool> {
    c.prepare_cached("DELETE FROM schedule_fires WHERE schedule = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(error)?;
    let n = c
        .prepare_cached("DELETE FROM schedules WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(error)?;
    Ok(n > 0)
}

pub(super) fn claim(c: &Connection, f: &FireClaim) -> StoreResult<bool> {
    let won = c
        .prepare_cached(
            "UPDATE schedules SET next_ms = ?3, fires = fires + ?4
             WHERE id = ?1 AND next_ms = ?2 AND paused = 0",
        )
        .and_then(|mut s| {
            s.execute(params![
                f.schedule,
                int(f.expected_ms),
                f.next_ms.map(int),
                i64::from(f.fire)
            ])
        })
        .map_err(error)?
        == 1;
    if won && f.fire {
        c.prepare_cached(
            "INSERT OR IGNORE INTO schedule_fires (schedule, tick_ms, fired_ms) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![f.schedule, int(f.tick_ms), int(f.at_ms)]))
        .map_err(error)?;
    }
    Ok(won)
}

pub(super) fn started(c: &Connection, f: &ScheduleFire) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE schedule_fires SET thread = ?3, run = ?4, error = ?5 WHERE schedule = ?1 AND tick_ms = ?2",
    )
    .and_then(|mut s| {
        s.execute(params![
            f.schedule,
            int(f.tick_ms),
            f.thread,
            f.run,
            f.error
        ])
    })
    .map_err(error)?;
    Ok(())
}

fn fires(
    c: &Connection,
    filter: &str,
    param: impl rusqlite::Params,
) -> StoreResult<Vec<ScheduleFire>> {
    let mut s = c
        .prepare_cached(&format!(
            "SELECT schedule, tick_ms, fired_ms, thread, run, error FROM schedule_fires {filter}"
        ))
        .map_err(error)?;
    s.query_map(param, |r| {
        Ok(ScheduleFire {
            schedule: r.get(0)?,
            tick_ms: r.get::<_, i64>(1)? as u64,
            fired_ms: r.get::<_, i64>(2)? as u64,
            thread: r.get(3)?,
            run: r.get(4)?,
            error: r.get(5)?,
        })
    })
    .and_then(Iterator::collect)
    .map_err(error)
}

pub(super) fn unstarted(c: &Connection, before_ms: u64) -> StoreResult<Vec<ScheduleFire>> {
    fires(
        c,
        "WHERE run IS NULL AND error IS NULL AND fired_ms < ?1 ORDER BY fired_ms, schedule LIMIT 100",
        [int(before_ms)],
    )
}

pub(super) fn of_schedule(c: &Connection, id: &str, limit: u64) -> StoreResult<Vec<ScheduleFire>> {
    fires(
        c,
        "WHERE schedule = ?1 ORDER BY tick_ms DESC LIMIT ?2",
        params![id, int(limit)],
    )
}
