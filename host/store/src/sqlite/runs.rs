//! A run's life outside its frames: its start (and a fork's), its end,
//! the runs of a thread, and the unfinished runs resumed at start-up.

use rusqlite::{Connection, OptionalExtension, params};
use weft_engine::StoreError;
use weft_engine::store::{
    ForkStart, QueuedRun, RunEnd, RunStart, StoreResult, StoredRun, UnfinishedRun,
};
use weft_runtime::Message;

use super::connection::error;
use super::memory::write_memory;
use super::messages::insert_message;
use crate::codec::int;

/// Creates the thread if new (else points it at the run), the run, and
/// its inbound messages. `fork` names the thread and frame a new thread
/// was forked from.
pub(super) fn begin_run(
    c: &Connection,
    start: &RunStart,
    fork: Option<(&str, u64)>,
) -> StoreResult<()> {
    let now = int(start.at_ms);
    let (parent, at) = fork.unzip();
    let frames = at.map_or(0, |a| a + 1);
    let updated = c.prepare_cached(
        "INSERT INTO threads (id, project, graph_version, status, runs, frames, forked_from, forked_at, created_ms, updated_ms, budget_limit)
         VALUES (?1, ?2, ?3, 'running', 1, ?4, ?5, ?6, ?7, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET graph_version = excluded.graph_version,
             status = 'running', runs = runs + 1, updated_ms = excluded.updated_ms,
             budget_limit = coalesce(excluded.budget_limit, budget_limit)
         WHERE threads.status != 'interrupted'",
    )
    .and_then(|mut s| {
        s.execute(params![
            start.thread,
            start.project,
            start.graph_version,
            int(frames),
            parent,
            at.map(int),
            now,
            start.budget_limit.map(int)
        ])
    })
    .map_err(error)?;
    if updated == 0 {
        return Err(StoreError::Conflict(format!(
            "thread `{}` has a run waiting for an answer to its interrupt: answer it, or kill the run, first",
            start.thread
        )));
    }
    insert_run(c, start, "running")
}

/// The run, with `status`, and its inbound messages.
fn insert_run(c: &Connection, start: &RunStart, status: &str) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO runs (id, thread, graph_version, status, frames, started_ms)
         VALUES (?1, ?2, ?3, ?4, 0, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            start.run,
            start.thread,
            start.graph_version,
            status,
            int(start.at_ms)
        ])
    })
    .map_err(|e| match error(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("run `{}` exists already", start.run))
        }
        other => other,
    })?;
    for (to, m) in &start.inbound {
        insert_message(c, &start.thread, &start.run, to, m, None, None)?;
    }
    Ok(())
}

pub(super) fn fork(c: &Connection, f: &ForkStart) -> StoreResult<()> {
    let s = &f.start;
    begin_run(c, s, Some((&f.from_thread, f.from_seq)))?;
    if !f.has_run {
        c.execute(
            "UPDATE runs SET status = 'completed', ended_ms = started_ms WHERE id = ?1",
            [&s.run],
        )
        .map_err(error)?;
        c.execute(
            "UPDATE threads SET status = 'completed' WHERE id = ?1",
            [&s.thread],
        )
        .map_err(error)?;
    }
    write_memory(c, &f.memory)?;
    Ok(())
}

pub(super) fn end_run(c: &Connection, e: &RunEnd) -> StoreResult<()> {
    let status = e.status.as_str();
    let n = c
        .execute(
            "UPDATE runs SET status = ?2, ended_ms = ?3
             WHERE id = ?1 AND status IN ('running', 'interrupted')",
            params![e.run, status, int(e.at_ms)],
        )
        .map_err(error)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "run `{}` is not running",
            e.run
        )));
    }
    super::interrupts::cancel(c, &e.run, e.at_ms)?;
    c.execute(
        "UPDATE threads SET status = ?2, updated_ms = ?3 WHERE id = ?1",
        params![e.thread, status, int(e.at_ms)],
    )
    .map_err(error)?;
    write_memory(c, &e.restore)?;
    Ok(())
}

pub(super) fn queue_run(c: &Connection, start: &RunStart) -> StoreResult<()> {
    let now = int(start.at_ms);
    let counted = c
        .prepare_cached("UPDATE threads SET runs = runs + 1, updated_ms = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![start.thread, now]))
        .map_err(error)?;
    if counted == 0 {
        return Err(StoreError::NotFound(format!(
            "no thread `{}` to queue a run on",
            start.thread
        )));
    }
    insert_run(c, start, "queued")
}

pub(super) fn start_queued(c: &Connection, thread: &str, run: &str, at_ms: u64) -> StoreResult<()> {
    let n = c
        .prepare_cached(
            "UPDATE runs SET status = 'running', started_ms = ?3
             WHERE id = ?1 AND thread = ?2 AND status = 'queued'",
        )
        .and_then(|mut s| s.execute(params![run, thread, int(at_ms)]))
        .map_err(error)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("run `{run}` is not queued")));
    }
    c.prepare_cached(
        "UPDATE threads SET status = 'running', graph_version =
             (SELECT graph_version FROM runs WHERE id = ?3), updated_ms = ?2 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![thread, int(at_ms), run]))
    .map_err(error)?;
    Ok(())
}

pub(super) fn queued_runs(c: &Connection) -> StoreResult<Vec<QueuedRun>> {
    let mut s = c
        .prepare(
            "SELECT r.thread, r.id, r.graph_version, m.to_node, m.id, m.from_node, m.kind, m.body
             FROM runs r JOIN messages m ON m.run = r.id AND m.sent_seq IS NULL
             WHERE r.status = 'queued' ORDER BY r.started_ms, r.rowid",
        )
        .map_err(error)?;
    s.query_map([], |r| {
        Ok(QueuedRun {
            thread: r.get(0)?,
            run: r.get(1)?,
            graph_version: r.get(2)?,
            to: r.get(3)?,
            message: Message {
                id: r.get(4)?,
                from: r.get(5)?,
                kind: r.get(6)?,
                body: r.get(7)?,
            },
        })
    })
    .and_then(Iterator::collect)
    .map_err(error)
}

pub(super) fn runs(c: &Connection, thread: &str) -> StoreResult<Vec<StoredRun>> {
    let mut s = c
        .prepare_cached(
            "SELECT id, thread, graph_version, status, frames, reply, started_ms, ended_ms
             FROM runs WHERE thread = ?1 ORDER BY started_ms, rowid",
        )
        .map_err(error)?;
    s.query_map([thread], read_run)
        .and_then(Iterator::collect)
        .map_err(error)
}

/// A run from `SELECT id, thread, graph_version, status, frames, reply,
/// started_ms, ended_ms`.
pub(super) fn read_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRun> {
    Ok(StoredRun {
        id: r.get(0)?,
        thread: r.get(1)?,
        graph_version: r.get(2)?,
        status: r.get(3)?,
        frames: r.get(4)?,
        reply: r.get(5)?,
        started_ms: r.get::<_, i64>(6)? as u64,
        ended_ms: r.get::<_, Option<i64>>(7)?.map(|n| n as u64),
    })
}

const UNFINISHED: &str =
    "SELECT r.id, r.thread, t.project, r.graph_version, r.frames, t.frames, r.reply
     FROM runs r JOIN threads t ON t.id = r.thread";

fn read_unfinished(r: &rusqlite::Row<'_>) -> rusqlite::Result<UnfinishedRun> {
    Ok(UnfinishedRun {
        run: r.get(0)?,
        thread: r.get(1)?,
        project: r.get(2)?,
        graph_version: r.get(3)?,
        frame: r.get::<_, i64>(4)? as u32,
        seq: r.get::<_, i64>(5)? as u64,
        reply: r.get(6)?,
        pending: Vec::new(),
    })
}

/// A run's messages sent and not yet delivered, in the order they were
/// sent, with their receivers.
/// (Read through the thread's messages: no index lists them by run.)
fn pending(c: &Connection, thread: &str, run: &str) -> StoreResult<Vec<(String, Message)>> {
    let mut pending = c
        .prepare_cached(concat!(
            "SELECT id, to_node, from_node, kind, body FROM messages WHERE pos IN (",
            super::messages::thread_messages!("?1", ""),
            ") AND run = ?2 AND delivered_seq IS NULL ORDER BY pos"
        ))
        .map_err(error)?;
    pending
        .query_map([thread, run], |r| {
            Ok((
                r.get::<_, String>(1)?,
                Message {
                    id: r.get(0)?,
                    from: r.get(2)?,
                    kind: r.get(3)?,
                    body: r.get(4)?,
                },
            ))
        })
        .and_then(Iterator::collect)
        .map_err(error)
}

pub(super) fn unfinished_runs(c: &Connection) -> StoreResult<Vec<UnfinishedRun>> {
    let mut s = c
        .prepare(&format!(
            "{UNFINISHED} WHERE r.status = 'running' ORDER BY r.started_ms, r.id"
        ))
        .map_err(error)?;
    let mut runs: Vec<UnfinishedRun> = s
        .query_map([], read_unfinished)
        .and_then(Iterator::collect)
        .map_err(error)?;
    for run in &mut runs {
        run.pending = pending(c, &run.thread, &run.run)?;
    }
    Ok(runs)
}

/// One running run, ready to continue.
pub(super) fn unfinished_run(c: &Connection, run: &str) -> StoreResult<Option<UnfinishedRun>> {
    let found = c
        .prepare_cached(&format!(
            "{UNFINISHED} WHERE r.id = ?1 AND r.status = 'running'"
        ))
        .and_then(|mut s| s.query_row([run], read_unfinished).optional())
        .map_err(error)?;
    let Some(mut found) = found else {
        return Ok(None);
    };
    found.pending = pending(c, &found.thread, run)?;
    Ok(Some(found))
}
