//! Memory: the keys a thread's nodes wrote, read back and written.

use rusqlite::{Connection, params};
use weft_engine::store::StoreResult;
use weft_runtime::capabilities::memory::MemoryWrite;

use super::connection::error;

pub(super) fn memory(c: &Connection, thread: &str) -> StoreResult<Vec<MemoryWrite>> {
    let mut s = c
        .prepare_cached("SELECT node, key, value FROM memory WHERE thread = ?1 ORDER BY node, key")
        .map_err(error)?;
    s.query_map([thread], |r| {
        let node: String = r.get(0)?;
        Ok(MemoryWrite {
            thread: thread.to_owned(),
            node: (!node.is_empty()).then_some(node),
            key: r.get(1)?,
            value: Some(r.get(2)?),
        })
    })
    .and_then(Iterator::collect)
    .map_err(error)
}

pub(super) fn write_memory(c: &Connection, writes: &[MemoryWrite]) -> StoreResult<()> {
    for w in writes {
        let node = w.node.as_deref().unwrap_or("");
        match &w.value {
            Some(v) => c
                .prepare_cached(
                    "INSERT INTO memory (thread, node, key, value) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (thread, node, key) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute(params![w.thread, node, w.key, v])),
            None => c
                .prepare_cached("DELETE FROM memory WHERE thread = ?1 AND node = ?2 AND key = ?3")
                .and_then(|mut s| s.execute(params![w.thread, node, w.key])),
        }
        .map_err(error)?;
    }
    Ok(())
}
