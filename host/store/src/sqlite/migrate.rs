//! Bringing a store's schema to this weft's version at start-up, and the
//! check that a store opened for reading is at it already.

use std::path::Path;

use rusqlite::Connection;
use weft_engine::StoreError;
use weft_engine::store::StoreResult;

use super::connection::opening;
use super::schema;

/// Checks the application id and schema version and applies migrations.
pub(super) fn migrate(path: &Path, conn: &mut Connection) -> StoreResult<()> {
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| opening(path, e))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| opening(path, e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| opening(path, e))?;
    if app != schema::APPLICATION_ID && (tables > 0 || app != 0) {
        return Err(StoreError::Incompatible(format!(
            "{} is a SQLite database of another application (application_id {app:#x}, {tables} schema objects), not a weft store; \
             point --store at another file",
            path.display()
        )));
    }
    if version > schema::latest() {
        return Err(StoreError::Incompatible(format!(
            "{} has schema version {version}, but this weft knows versions up to {}: \
             it was written by a newer weft. Upgrade weft, or point --store at another file",
            path.display(),
            schema::latest()
        )));
    }
    for (n, migration) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(|e| opening(path, e))?;
        tx.execute_batch(migration).map_err(|e| {
            StoreError::Backend(format!(
                "{}: migration to schema version {} failed: {e}",
                path.display(),
                n + 1
            ))
        })?;
        tx.pragma_update(None, "application_id", schema::APPLICATION_ID)
            .map_err(|e| opening(path, e))?;
        tx.pragma_update(None, "user_version", (n + 1) as i64)
            .map_err(|e| opening(path, e))?;
        tx.commit().map_err(|e| opening(path, e))?;
        tracing::info!(path = %path.display(), version = n + 1, "store schema migrated");
    }
    Ok(())
}

/// Refuses a store that is not a weft store of this weft's schema version
/// (a read-only connection cannot migrate it).
pub(super) fn check_latest(path: &Path, conn: &Connection) -> StoreResult<()> {
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| opening(path, e))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| opening(path, e))?;
    if app != schema::APPLICATION_ID || version != schema::latest() {
        return Err(StoreError::Incompatible(format!(
            "{} is not a weft store of schema version {} (application_id {app:#x}, version {version});                  open it read-write with this weft to migrate it",
            path.display(),
            schema::latest()
        )));
    }
    Ok(())
}
