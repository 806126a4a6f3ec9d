//! [`SqliteDb`]: the `db` capability on a read-only SQLite file.

mod exec;
mod guard;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::db::Database;
use weft_runtime::{CallContext, CapabilityError, Column, Rows, Value};

use crate::DbError;
use guard::{Guarded, TimeLimit, map_sqlite_error};

/// Limits and pool size of a [`SqliteDb`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteDbConfig {
    /// Upper bound on the rows of one query, on top of the limit the
    /// capability passes with each call; `None` keeps the caller's limit.
    pub max_rows: Option<usize>,
    /// How long one call may take, including the wait for a free
    /// connection. A statement still running then is interrupted.
    pub timeout: Duration,
    /// Connections kept open, and so calls served at once (at least 1).
    pub pool_size: usize,
}

impl Default for SqliteDbConfig {
    /// No extra row limit, 2 seconds per call, one connection per core.
    fn default() -> Self {
        Self {
            max_rows: None,
            timeout: Duration::from_secs(2),
            pool_size: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

/// The `db` capability on a SQLite file, opened read-only.
///
/// Calls run on Tokio's blocking pool and wait for a free connection with a
/// Tokio timer, so they need a runtime with time enabled. Cheap to clone:
/// clones share the connection pool.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    config: SqliteDbConfig,
    /// Idle connections. Connections are opened on demand, up to
    /// `pool_size` (one per permit).
    idle: Mutex<Vec<Guarded>>,
    /// One permit per connection: a call holds one while it runs.
    permits: Arc<Semaphore>,
}

impl SqliteDb {
    /// Opens the SQLite database at `path` read-only. The file must exist
    /// and be a SQLite database; nothing is ever written to it.
    pub fn open(path: impl AsRef<Path>, config: SqliteDbConfig) -> Result<Self, DbError> {
        let path = path.as_ref().to_path_buf();
        let first = Guarded::open(&path).map_err(|source| DbError::Open {
            path: path.clone(),
            source,
        })?;
        let config = SqliteDbConfig {
            pool_size: config.pool_size.max(1),
            ..config
        };
        tracing::debug!(path = %path.display(), pool_size = config.pool_size, "opened SQLite database");
        Ok(Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(config.pool_size)),
                idle: Mutex::new(vec![first]),
                path,
                config,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The limits in force.
    pub fn config(&self) -> &SqliteDbConfig {
        &self.inner.config
    }

    /// Runs `op` on a pooled connection on the blocking pool, waiting at
    /// most the configured timeout for a free connection.
    async fn with_connection<T, F>(&self, op: F) -> Result<T, CapabilityError>
    where
        T: Send + 'static,
        F: FnOnce(&Guarded, TimeLimit) -> Result<T, CapabilityError> + Send + 'static,
    {
        let timeout = self.inner.config.timeout;
        let waited = Instant::now();
        let permit = tokio::time::timeout(timeout, Arc::clone(&self.inner.permits).acquire_owned())
            .await
            .map_err(|_| {
                CapabilityError::Unavailable(format!(
                    "all {} database connections stayed busy for {timeout:?}",
                    self.inner.config.pool_size
                ))
            })?
            .map_err(|_| CapabilityError::Unavailable("the database is closed".into()))?;
        let time = TimeLimit {
            limit: timeout,
            remaining: timeout.saturating_sub(waited.elapsed()),
        };
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = inner.checkout()?;
            let result = op(&conn, time);
            inner.checkin(conn);
            result
        })
        .await
        .map_err(|e| CapabilityError::Failed(format!("database worker failed: {e}")))?
    }
}

impl Inner {
    /// An idle connection, or a new one (the permit bounds how many exist;
    /// a connection lost to a panic is replaced here).
    fn checkout(&self) -> Result<Guarded, CapabilityError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => Guarded::open(&self.path).map_err(|e| {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot open another database connection");
                match map_sqlite_error(e) {
                    CapabilityError::Failed(m) | CapabilityError::InvalidInput(m) => {
                        CapabilityError::Unavailable(format!("cannot open the database: {m}"))
                    }
                    other => other,
                }
            }),
        }
    }

    fn checkin(&self, conn: Guarded) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }

    fn row_limit(&self, requested: usize) -> usize {
        self.config
            .max_rows
            .map_or(requested, |cap| cap.min(requested))
    }
}

impl Database for SqliteDb {
    fn list_tables<'a>(
        &'a self,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<String>, CapabilityError>> {
        Box::pin(self.with_connection(exec::list_tables))
    }

    fn describe<'a>(
        &'a self,
        _ctx: &'a CallContext,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Column>, CapabilityError>> {
        let table = table.to_owned();
        Box::pin(self.with_connection(move |g, time| exec::describe(g, time, &table)))
    }

    fn query<'a>(
        &'a self,
        ctx: &'a CallContext,
        sql: &'a str,
        params: &'a [Value],
        max_rows: usize,
    ) -> BoxFuture<'a, Result<Rows, CapabilityError>> {
        let owned_sql = sql.to_owned();
        let params = params.to_vec();
        let max_rows = self.inner.row_limit(max_rows);
        Box::pin(async move {
            let started = Instant::now();
            let result = self
                .with_connection(move |g, time| exec::query(g, time, &owned_sql, &params, max_rows))
                .await;
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            match &result {
                Ok(rows) => tracing::debug!(
                    node = %ctx.node,
                    sql,
                    rows = rows.rows.len(),
                    truncated = rows.truncated,
                    elapsed_ms,
                    "db query"
                ),
                Err(error) => {
                    tracing::debug!(node = %ctx.node, sql, %error, elapsed_ms, "db query failed")
                }
            }
            result
        })
    }
}
