//! Interrupts: inserted with the frame that raised them, ended by an
//! answer (with the `resume` notice for the node, and the run running
//! again once none is pending), listed per run, and found when due.

use rusqlite::{Connection, OptionalExtension, Row, params};
use weft_engine::StoreError;
use weft_engine::store::{
    FrameCommit, InterruptStatus, ResolveInterrupt, StoreResult, StoredInterrupt, StoredRun,
    UnfinishedRun,
};

use super::connection::error;
use super::messages::insert_message;
use super::runs::{read_run, unfinished_run};
use crate::codec::{int, json, parse};

const COLUMNS: &str = "id, thread, run, node, frame, question, answer_schema, created_ms, deadline_ms, status, answer, resolved_ms";

/// Inserts the interrupts a frame raised, as pending.
pub(super) fn insert(c: &Connection, f: &FrameCommit) -> StoreResult<()> {
    for i in &f.interrupts {
        let schema = json(&i.answer_schema)?;
        c.prepare_cached(
            "INSERT INTO interrupts (id, thread, run, node, frame, question, answer_schema, created_ms, deadline_ms, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending')",
        )
        .and_then(|mut s| {
            s.execute(params![
                i.id,
                i.thread,
                i.run,
                i.node,
                i.frame,
                i.question,
                schema,
                int(i.created_ms),
                i.deadline_ms.map(int),
            ])
        })
        .map_err(error)?;
    }
    Ok(())
}

/// A row as read: the JSON columns and the status still text.
struct Raw {
    interrupt: StoredInterrupt,
    status: String,
    schema: String,
    answer: Option<String>,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        interrupt: StoredInterrupt {
            id: r.get(0)?,
            thread: r.get(1)?,
            run: r.get(2)?,
            node: r.get(3)?,
            frame: r.get::<_, i64>(4)? as u32,
            question: r.get(5)?,
            answer_schema: serde_json::Value::Null,
            created_ms: r.get::<_, i64>(7)? as u64,
            deadline_ms: r.get::<_, Option<i64>>(8)?.map(|n| n as u64),
            status: InterruptStatus::Pending,
            answer: None,
            resolved_ms: r.get::<_, Option<i64>>(11)?.map(|n| n as u64),
        },
        schema: r.get(6)?,
        status: r.get(9)?,
        answer: r.get(10)?,
    })
}

impl Raw {
    fn decode(self) -> StoreResult<StoredInterrupt> {
        let mut i = self.interrupt;
        i.status = InterruptStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Backend(format!(
                "interrupt `{}` has an unknown status `{}`",
                i.id, self.status
            ))
        })?;
        i.answer_schema = parse(&self.schema, "an interrupt's answer schema")?;
        i.answer = self
            .answer
            .map(|a| parse(&a, "an interrupt's answer"))
            .transpose()?;
        Ok(i)
    }
}

fn select(
    c: &Connection,
    filter: &str,
    param: impl rusqlite::Params,
) -> StoreResult<Vec<StoredInterrupt>> {
    let mut s = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM interrupts {filter}"))
        .map_err(error)?;
    let rows: Vec<_> = s
        .query_map(param, raw)
        .and_then(Iterator::collect)
        .map_err(error)?;
    rows.into_iter().map(Raw::decode).collect()
}

/// A run's interrupts, oldest first.
pub(super) fn of_run(c: &Connection, run: &str) -> StoreResult<Vec<StoredInterrupt>> {
    select(c, "WHERE run = ?1 ORDER BY frame, id", [run])
}

/// Pending interrupts due at `now_ms`, earliest first.
pub(super) fn due(c: &Connection, now_ms: u64) -> StoreResult<Vec<StoredInterrupt>> {
    select(
        c,
        "WHERE status = 'pending' AND deadline_ms <= ?1 ORDER BY deadline_ms, id LIMIT 100",
        [int(now_ms)],
    )
}

/// Runs waiting on interrupts, oldest first.
pub(super) fn interrupted_runs(c: &Connection) -> StoreResult<Vec<StoredRun>> {
    let mut s = c
        .prepare_cached(
            "SELECT id, thread, graph_version, status, frames, reply, started_ms, ended_ms
             FROM runs WHERE status = 'interrupted' ORDER BY started_ms, id",
        )
        .map_err(error)?;
    s.query_map([], read_run)
        .and_then(Iterator::collect)
        .map_err(error)
}

/// Ends a pending interrupt; see `Store::resolve_interrupt`.
pub(super) fn resolve(c: &Connection, r: &ResolveInterrupt) -> StoreResult<Option<UnfinishedRun>> {
    let found: Option<(String, String, String)> = c
        .prepare_cached(
            "SELECT i.status, i.node, r.status FROM interrupts i JOIN runs r ON r.id = i.run
             WHERE i.id = ?1 AND i.run = ?2",
        )
        .and_then(|mut s| {
            s.query_row([&r.interrupt, &r.run], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()
        })
        .map_err(error)?;
    let Some((status, node, run_status)) = found else {
        return Err(StoreError::Conflict(format!(
            "run `{}` has no interrupt `{}`",
            r.run, r.interrupt
        )));
    };
    if status != "pending" || run_status != "interrupted" {
        return Err(StoreError::Conflict(format!(
            "interrupt `{}` is {status} and its run {run_status}",
            r.interrupt
        )));
    }
    let answer = r.answer.as_ref().map(json).transpose()?;
    c.prepare_cached(
        "UPDATE interrupts SET status = ?2, answer = ?3, resolved_ms = ?4 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            r.interrupt,
            r.status.as_str(),
            answer,
            int(r.at_ms)
        ])
    })
    .map_err(error)?;
    insert_message(c, &r.thread, &r.run, &node, &r.notice, None, None)?;
    let waiting: i64 = c
        .prepare_cached("SELECT count(*) FROM interrupts WHERE run = ?1 AND status = 'pending'")
        .and_then(|mut s| s.query_row([&r.run], |row| row.get(0)))
        .map_err(error)?;
    if waiting > 0 {
        return Ok(None);
    }
    c.prepare_cached("UPDATE runs SET status = 'running' WHERE id = ?1")
        .and_then(|mut s| s.execute([&r.run]))
        .map_err(error)?;
    c.prepare_cached("UPDATE threads SET status = 'running', updated_ms = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![r.thread, int(r.at_ms)]))
        .map_err(error)?;
    unfinished_run(c, &r.run)
}

/// Cancels a killed run's pending interrupts.
pub(super) fn cancel(c: &Connection, run: &str, at_ms: u64) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE interrupts SET status = 'cancelled', resolved_ms = ?2 WHERE run = ?1 AND status = 'pending'",
    )
    .and_then(|mut s| s.execute(params![run, int(at_ms)]))
    .map_err(error)?;
    Ok(())
}
