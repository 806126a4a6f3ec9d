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
    // Statement journals stay in files while migrations run (SQLite's
    // default, until `journal_in_memory`): a migration that drops a large
    // table may journal the pages it frees. Migrating an 800 MB store to
    // version 15 peaked at 175 MB of resident memory with files against
    // 198 MB in memory (the whole `weft prune` that opened it); SQLite
    // 3.40 (not weft's) held 790 MB against 39 MB for the same drop.
    // 4 MiB of page cache (SQLite's default is 2 MiB): the hot pages of
    // the tables and indexes (a few thousand with 100 runs in flight) stay
    // cached between batches. Not more: when a b-tree page splits, SQLite
    // briefly renumbers a page to the lock-byte page (page 1,048,577 with
    // 1 KiB pages), and the commit that follows then walks the whole page
    // cache to drop pages past the end of the file. With 64 MiB cached
    // that walk was a fifth of the writer's time at 100 runs in flight;
    // 4 MiB gave 7,525–7,588 durable frames/s against 5,316–6,687 in
    // alternating runs of the same binary.
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

/// Keeps statement journals in memory from now on (after the
/// migrations): a statement journal (of a savepoint, or of a statement
/// that may fail halfway) would otherwise go to a temporary file once it
/// passes 64 KiB; in files, durable frames/s at 100 runs in flight were
/// 11,249 against 12,161 (medians of eight alternating runs).
pub(super) fn journal_in_memory(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "temp_store", "MEMORY")
}

/// The page size of a new store, in bytes.
pub const PAGE_SIZE: i64 = 1024;

/// How much WAL accumulates between automatic checkpoints.
const CHECKPOINT_BYTES: i64 = 32 << 20;

/// The page cache of the store's writing connection: resident memory that
/// fills as the store grows, then stays.
pub const PAGE_CACHE_BYTES: u64 = 4 << 20;

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
