//! The projects' `store` state (contract 0.3.0's key/value capability):
//! written with the frames that set it, read by namespace and prefix.

use rusqlite::{Connection, OptionalExtension, params};
use weft_engine::store::StoreResult;
use weft_runtime::capabilities::store::KvWrite;

use super::connection::error;
use crate::codec::int;

/// Applies a frame's writes (`value: None` deletes), stamped `at_ms`.
pub(super) fn write_kv(c: &Connection, writes: &[KvWrite], at_ms: u64) -> StoreResult<()> {
    for w in writes {
        match &w.value {
            Some(v) => c
                .prepare_cached(
                    "INSERT INTO kv (project, namespace, key, value, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (project, namespace, key) DO UPDATE
                     SET value = excluded.value, updated_ms = excluded.updated_ms",
                )
                .and_then(|mut s| s.execute(params![w.project, w.namespace, w.key, v, int(at_ms)])),
            None => c
                .prepare_cached("DELETE FROM kv WHERE project = ?1 AND namespace = ?2 AND key = ?3")
                .and_then(|mut s| s.execute(params![w.project, w.namespace, w.key])),
        }
        .map_err(error)?;
    }
    Ok(())
}

pub(super) fn get(
    c: &Connection,
    project: &str,
    namespace: &str,
    key: &str,
) -> StoreResult<Option<String>> {
    c.prepare_cached("SELECT value FROM kv WHERE project = ?1 AND namespace = ?2 AND key = ?3")
        .and_then(|mut s| {
            s.query_row(params![project, namespace, key], |r| r.get(0))
                .optional()
        })
        .map_err(error)
}

/// Keys in byte order (SQLite compares text with memcmp).
pub(super) fn list(
    c: &Connection,
    project: &str,
    namespace: &str,
    prefix: &str,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<String>> {
    let mut s = c
        .prepare_cached(
            "SELECT key FROM kv
             WHERE project = ?1 AND namespace = ?2 AND key >= ?3
               AND substr(key, 1, length(?3)) = ?3
               AND (?4 IS NULL OR key > ?4)
             ORDER BY key LIMIT ?5",
        )
        .map_err(error)?;
    s.query_map(params![project, namespace, prefix, after, limit], |r| {
        r.get(0)
    })
    .and_then(Iterator::collect)
    .map_err(error)
}

pub(super) fn count(c: &Connection, project: &str) -> StoreResult<u64> {
    c.prepare_cached("SELECT COUNT(*) FROM kv WHERE project = ?1")
        .and_then(|mut s| s.query_row([project], |r| r.get::<_, i64>(0)))
        .map(|n| n.max(0) as u64)
        .map_err(error)
}
