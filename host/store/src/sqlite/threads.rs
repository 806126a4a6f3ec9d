//! Threads: one by id, pages of them by filter, and their token budgets.

use rusqlite::{Connection, OptionalExtension, params};
use weft_engine::StoreError;
use weft_engine::store::{Page, StoreResult, StoredThread, ThreadFilter};

use super::connection::error;
use crate::codec::{int, now_ms};

const THREAD_COLUMNS: &str = "id, project, graph_version, status, runs, frames, budget_limit, \
                              forked_from, forked_at, created_ms, updated_ms";

fn thread_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredThread> {
    let forked_from: Option<String> = r.get(7)?;
    let forked_at: Option<i64> = r.get(8)?;
    Ok(StoredThread {
        id: r.get(0)?,
        project: r.get(1)?,
        graph_version: r.get(2)?,
        status: r.get(3)?,
        runs: r.get::<_, i64>(4)? as u64,
        frames: r.get::<_, i64>(5)? as u64,
        budget_limit: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
        forked_from: forked_from.zip(forked_at.map(|n| n as u64)),
        created_ms: r.get::<_, i64>(9)? as u64,
        updated_ms: r.get::<_, i64>(10)? as u64,
    })
}

pub(super) fn thread(c: &Connection, id: &str) -> StoreResult<Option<StoredThread>> {
    c.prepare_cached(&format!(
        "SELECT {THREAD_COLUMNS} FROM threads WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], thread_row).optional())
    .map_err(error)
}

pub(super) fn threads(
    c: &Connection,
    filter: &ThreadFilter,
    limit: u64,
    offset: u64,
) -> StoreResult<Page<StoredThread>> {
    let wanted = concat!(
        "(?1 IS NULL OR project = ?1) AND (?2 IS NULL OR status = ?2)
         AND (?3 IS NULL OR EXISTS (SELECT 1 FROM ",
        super::frames::frame_invocations!(),
        " WHERE f.thread = threads.id AND i.node = ?3))
         AND (?4 IS NULL OR updated_ms >= ?4) AND (?5 IS NULL OR updated_ms < ?5)"
    );
    let (since, until) = (filter.since_ms.map(int), filter.until_ms.map(int));
    let total: i64 = c
        .prepare_cached(&format!("SELECT count(*) FROM threads WHERE {wanted}"))
        .and_then(|mut s| {
            s.query_row(
                params![filter.project, filter.status, filter.node, since, until],
                |r| r.get(0),
            )
        })
        .map_err(error)?;
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {THREAD_COLUMNS} FROM threads WHERE {wanted}
             ORDER BY updated_ms DESC, id LIMIT ?6 OFFSET ?7"
        ))
        .map_err(error)?;
    let items = s
        .query_map(
            params![
                filter.project,
                filter.status,
                filter.node,
                since,
                until,
                int(limit),
                int(offset)
            ],
            thread_row,
        )
        .and_then(Iterator::collect)
        .map_err(error)?;
    Ok(Page {
        items,
        total: total as u64,
    })
}

pub(super) fn set_thread_budget(c: &Connection, thread: &str, limit: u64) -> StoreResult<()> {
    let n = c
        .execute(
            "UPDATE threads SET budget_limit = ?2, updated_ms = ?3 WHERE id = ?1",
            params![thread, int(limit), now_ms()],
        )
        .map_err(error)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("no thread `{thread}`")));
    }
    Ok(())
}
