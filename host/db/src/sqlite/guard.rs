//! One defended connection: opened read-only with `query_only`, tight
//! limits, an authorizer that allows nothing but reads, and a progress
//! handler that interrupts a statement after its deadline.
//!
//! The authorizer and the progress handler are SQLite callbacks that cannot
//! return a message, so they leave their reason in [`GuardState`], and
//! [`Guarded::run`] turns the resulting SQLite error into the
//! [`CapabilityError`] the node sees.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use weft_runtime::CapabilityError;

/// Virtual-machine instructions between two deadline checks: frequent
/// enough to stop within a millisecond or so, rare enough to cost nothing.
const PROGRESS_OPS: i32 = 1_000;

/// Largest string or blob a statement may build (`randomblob(1e9)` must not
/// exhaust the host's memory).
const MAX_VALUE_BYTES: i32 = 16 * 1024 * 1024;

/// Longest SQL text accepted.
const MAX_SQL_BYTES: i32 = 100 * 1024;

/// SQL functions that are never allowed, even though they cannot write.
const DENIED_FUNCTIONS: &[&str] = &["load_extension", "fts3_tokenizer"];

/// The only pragmas a statement may use (the `pragma_table_info` table
/// function included): they describe a table's columns.
const ALLOWED_PRAGMAS: &[&str] = &["table_info", "table_xinfo"];

/// The time a call may take: `limit` as configured (and reported), of which
/// `remaining` is left once a connection is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeLimit {
    /// The configured limit.
    pub limit: Duration,
    /// What is left of it.
    pub remaining: Duration,
}

impl TimeLimit {
    /// The whole of `limit`.
    #[cfg(test)]
    pub(crate) const fn new(limit: Duration) -> Self {
        Self {
            limit,
            remaining: limit,
        }
    }
}

/// What the callbacks of one connection share with the code driving it.
#[derive(Debug)]
struct GuardState {
    /// Reference point of `deadline`.
    epoch: Instant,
    /// Nanoseconds after `epoch` at which the running statement is
    /// interrupted; `u64::MAX` when idle.
    deadline: AtomicU64,
    /// Set by the progress handler when it interrupted a statement.
    timed_out: AtomicBool,
    /// The first action the authorizer denied since the last reset.
    denied: Mutex<Option<String>>,
}

impl GuardState {
    fn past_deadline(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if now >= self.deadline.load(Ordering::Relaxed) {
            self.timed_out.store(true, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    fn deny(&self, what: String) {
        let mut slot = self.denied.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(what);
    }

    fn take_denied(&self) -> Option<String> {
        self.denied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// A read-only connection with its defences installed.
pub(crate) struct Guarded {
    conn: Connection,
    state: Arc<GuardState>,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded").finish_non_exhaustive()
    }
}

impl Guarded {
    /// Opens `path` read-only (it must exist) with every defence installed.
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        Self::open_with(path, true)
    }

    /// Like [`Guarded::open`], without the authorizer, so tests can show
    /// that the other layers hold on their own.
    #[cfg(test)]
    pub(crate) fn open_without_authorizer(path: &Path) -> rusqlite::Result<Self> {
        Self::open_with(path, false)
    }

    fn open_with(path: &Path, authorizer: bool) -> rusqlite::Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)?;
        conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
        conn.execute_batch("PRAGMA query_only = ON;")?;
        // Opening is lazy: read the schema now, so a file that is not a
        // database fails here rather than on the first query.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;

        let state = Arc::new(GuardState {
            epoch: Instant::now(),
            deadline: AtomicU64::new(u64::MAX),
            timed_out: AtomicBool::new(false),
            denied: Mutex::new(None),
        });
        let progress = Arc::clone(&state);
        conn.progress_handler(PROGRESS_OPS, Some(move || progress.past_deadline()))?;
        if authorizer {
            let auth = Arc::clone(&state);
            conn.authorizer(Some(move |ctx: AuthContext<'_>| {
                match denial(&ctx.action) {
                    None => Authorization::Allow,
                    Some(what) => {
                        auth.deny(what);
                        Authorization::Deny
                    }
                }
            }))?;
        }
        Ok(Self { conn, state })
    }

    /// Runs `f` on the connection with a deadline `time.remaining` from
    /// now, turning any SQLite error into what the node should see.
    pub(crate) fn run<T>(
        &self,
        time: TimeLimit,
        f: impl FnOnce(&Connection) -> Result<T, Failure>,
    ) -> Result<T, CapabilityError> {
        let start = u64::try_from(self.state.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let budget = u64::try_from(time.remaining.as_nanos()).unwrap_or(u64::MAX);
        self.state.timed_out.store(false, Ordering::Relaxed);
        self.state.take_denied();
        self.state
            .deadline
            .store(start.saturating_add(budget), Ordering::Relaxed);
        let result = f(&self.conn);
        self.state.deadline.store(u64::MAX, Ordering::Relaxed);
        result.map_err(|failure| match failure {
            Failure::Rejected(e) => e,
            Failure::Sqlite(e) => self.explain(e, time.limit),
        })
    }

    /// Converts a SQLite error raised inside [`Guarded::run`], using what the
    /// callbacks recorded.
    fn explain(&self, err: rusqlite::Error, limit: Duration) -> CapabilityError {
        if self.state.timed_out.load(Ordering::Relaxed)
            && err.sqlite_error_code() == Some(ErrorCode::OperationInterrupted)
        {
            return CapabilityError::LimitExceeded(format!("query took longer than {limit:?}"));
        }
        // A denial aborts the statement, so one recorded during this call
        // is the cause (SQLite reports some as `SQLITE_AUTH`, others, such
        // as functions, as plain errors).
        if let Some(what) = self.state.take_denied() {
            return CapabilityError::InvalidInput(format!(
                "{what} is not allowed: the database is read-only"
            ));
        }
        map_sqlite_error(err)
    }
}

/// Why a closure given to [`Guarded::run`] stopped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// SQLite failed; [`Guarded::run`] explains why.
    Sqlite(rusqlite::Error),
    /// The request was refused before or after SQLite ran it.
    Rejected(CapabilityError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<CapabilityError> for Failure {
    fn from(e: CapabilityError) -> Self {
        Self::Rejected(e)
    }
}

/// Why the authorizer refuses `action`, or `None` to allow it.
fn denial(action: &AuthAction<'_>) -> Option<String> {
    match action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => None,
        AuthAction::Function { function_name } => DENIED_FUNCTIONS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(function_name))
            .then(|| format!("function `{function_name}`")),
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            if ALLOWED_PRAGMAS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(pragma_name))
            {
                None
            } else if let Some(value) = pragma_value {
                Some(format!("PRAGMA {pragma_name} = {value}"))
            } else {
                Some(format!("PRAGMA {pragma_name}"))
            }
        }
        // DDL first asks to write the schema table itself.
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
            if table_name.starts_with("sqlite_") =>
        {
            Some("changing the schema".to_owned())
        }
        AuthAction::Insert { table_name } => Some(format!("INSERT into `{table_name}`")),
        AuthAction::Update { table_name, .. } => Some(format!("UPDATE of `{table_name}`")),
        AuthAction::Delete { table_name } => Some(format!("DELETE from `{table_name}`")),
        AuthAction::Attach { .. } => Some("ATTACH".to_owned()),
        AuthAction::Detach { .. } => Some("DETACH".to_owned()),
        AuthAction::CreateTable { .. } | AuthAction::CreateTempTable { .. } => {
            Some("CREATE TABLE".to_owned())
        }
        AuthAction::DropTable { .. } | AuthAction::DropTempTable { .. } => {
            Some("DROP TABLE".to_owned())
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Some("a transaction statement".to_owned())
        }
        other => Some(format!("{other:?}")),
    }
}

/// Maps a SQLite error that no callback explains.
pub(crate) fn map_sqlite_error(err: rusqlite::Error) -> CapabilityError {
    use rusqlite::Error as E;
    match err {
        E::MultipleStatement => {
            CapabilityError::InvalidInput("only one statement per query".into())
        }
        E::SqlInputError { msg, .. } => CapabilityError::InvalidInput(msg),
        E::InvalidParameterCount(given, expected) => CapabilityError::InvalidInput(format!(
            "the query has {expected} parameters but {given} values were given"
        )),
        E::NulError(_) => CapabilityError::InvalidInput("the SQL text contains a NUL byte".into()),
        E::SqliteFailure(e, msg) => {
            let msg = msg.unwrap_or_else(|| e.to_string());
            match e.code {
                // Plain SQLITE_ERROR: syntax errors, unknown tables and
                // columns, bad function arguments.
                ErrorCode::Unknown
                | ErrorCode::ReadOnly
                | ErrorCode::AuthorizationForStatementDenied
                | ErrorCode::TypeMismatch
                | ErrorCode::ParameterOutOfRange
                | ErrorCode::ConstraintViolation => CapabilityError::InvalidInput(msg),
                ErrorCode::TooBig => CapabilityError::LimitExceeded(msg),
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    CapabilityError::Unavailable(msg)
                }
                _ => CapabilityError::Failed(msg),
            }
        }
        other => CapabilityError::Failed(other.to_string()),
    }
}
