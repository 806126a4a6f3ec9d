//! Connections: the writer's pragmas, read-only reader connections, and
//! SQLite's errors mapped to the store's.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use weft_engine::StoreError;
use weft_engine::store::StoreResult;

use super::options::Sync;

/// Sets the writer connection's pragmas: WAL, `sync`, statement
/// journals in memory, the page cache and the checkpoint interval.
pub(super) fn configure(conn: &Connection, sync: Sync) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // 1 KiB pages for a new store (an existing one keeps its own). A
    // frame's rows go to many b-trees keyed by thread (frames,
    // invocations, messages, runs), so with many threads committing at
    // once nearly every row lands on a page of its own, and the WAL gets
    // the whole page for it: profiled at 100 runs in flight, the commit
    // wrote about ten 4 KiB pages per frame of 4.7 KB of rows, and the
    // kernel's copying and write-back of them was about half the writer's
    // time. 1 KiB pages write a quarter of that for the same rows (a
    // frame's share of the store: 2.7 KB instead of 4.7; durable frames/s
    // at 100 runs in flight: median 5,650 against 5,370 in paired runs on
    // a 2-core VM whose I/O varies by more than that).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "the store could not switch to WAL mode");
    }
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Every job of a batch runs in a savepoint, whose statement journal
    // would otherwise be a temporary file written for every page a job
    // touches (profiled: 15% of the writer's time with 100 runs at once).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 64 MiB of page cache instead of 2 MiB: the tables' and indexes' hot
    // pages stay cached between batches.
    conn.pragma_update(None, "cache_size", -((PAGE_CACHE_BYTES >> 10) as i64))?;
    // Checkpoint every 32 MiB of WAL (SQLite's default is 1,000 pages): the hot
    // pages (index and table tails), rewritten by every commit, are copied
    // into the database file once per checkpoint, so fewer checkpoints
    // copy fewer pages (profiled: checkpoints took a fifth of the writer's
    // time with 100 runs at once).
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_BYTES / page.max(512))?;
    Ok(())
}

/// The page size of a new store, in bytes.
pub const PAGE_SIZE: i64 = 1024;

/// How much WAL accumulates between automatic checkpoints.
const CHECKPOINT_BYTES: i64 = 32 << 20;

/// The page cache of the store's writing connection: resident memory that
/// fills as the store grows, then stays.
pub const PAGE_CACHE_BYTES: u64 = 64 << 20;

/// A read-only connection to the store at `path`.
pub(super) fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| opening(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(error)?;
    Ok(conn)
}

/// An error while opening, named with the file.
pub(super) fn opening(path: &Path, e: rusqlite::Error) -> StoreError {
    match error(e) {
        StoreError::Incompatible(m) => StoreError::Incompatible(format!(
            "{} cannot be used: {m}; restore it from a backup or point --store at another file",
            path.display()
        )),
        StoreError::Backend(m) => StoreError::Backend(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// Maps SQLite's errors to the store's.
pub(super) fn error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::DatabaseCorrupt | C::NotADatabase => {
                StoreError::Incompatible(format!("the database file is corrupt ({e})"))
            }
            C::DiskFull => StoreError::Full(e.to_string()),
            C::DatabaseBusy | C::DatabaseLocked => StoreError::Locked(format!(
                "the database is locked by another connection ({e})"
            )),
            C::ConstraintViolation => StoreError::Conflict(e.to_string()),
            _ => StoreError::Backend(e.to_string()),
        },
        _ => StoreError::Backend(e.to_string()),
    }
}
