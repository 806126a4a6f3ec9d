//! The projects' `store` state (contract 0.3.0's key/value capability):
//! written with the frames that set it, read by namespace and prefix.
//! Keys compare bytewise (`COLLATE "C"`), as on SQLite.

use tokio_postgres::Client;
use weft_engine::store::StoreResult;
use weft_runtime::capabilities::store::KvWrite;

use super::error::ReadResult;
use super::pipeline::{Pipeline, params};
use crate::codec::{int, unsigned};

/// Adds a frame's writes (`value: None` deletes), stamped `at_ms`, to `p`.
pub(super) fn push(p: &mut Pipeline, writes: &[KvWrite], at_ms: u64) {
    for w in writes {
        match &w.value {
            Some(v) => p.push(
                "INSERT INTO kv (project, namespace, key, value, updated_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (project, namespace, key) DO UPDATE
                 SET value = excluded.value, updated_ms = excluded.updated_ms",
                params![
                    w.project.clone(),
                    w.namespace.clone(),
                    w.key.clone(),
                    v.clone(),
                    int(at_ms)
                ],
            ),
            None => p.push(
                "DELETE FROM kv WHERE project = $1 AND namespace = $2 AND key = $3",
                params![w.project.clone(), w.namespace.clone(), w.key.clone()],
            ),
        };
    }
}

pub(super) async fn get(
    c: &Client,
    project: &str,
    namespace: &str,
    key: &str,
) -> StoreResult<Option<String>> {
    let row = c
        .query_opt(
            "SELECT value FROM kv WHERE project = $1 AND namespace = $2 AND key = $3",
            &[&project, &namespace, &key],
        )
        .await
        .read()?;
    Ok(row.map(|r| r.get(0)))
}

pub(super) async fn list(
    c: &Client,
    project: &str,
    namespace: &str,
    prefix: &str,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<String>> {
    let rows = c
        .query(
            "SELECT key FROM kv
             WHERE project = $1 AND namespace = $2 AND key >= $3
               AND left(key, char_length($3)) = $3
               AND ($4::TEXT IS NULL OR key > $4)
             ORDER BY key LIMIT $5",
            &[&project, &namespace, &prefix, &after, &i64::from(limit)],
        )
        .await
        .read()?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(super) async fn count(c: &Client, project: &str) -> StoreResult<u64> {
    let row = c
        .query_one("SELECT COUNT(*) FROM kv WHERE project = $1", &[&project])
        .await
        .read()?;
    Ok(unsigned(row.get(0)))
}
