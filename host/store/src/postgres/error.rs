//! PostgreSQL's errors mapped to the store's, and told apart: a lost
//! connection (the server restarting, a network cut) is retried by the
//! writer; anything else fails the unit of work.

use weft_engine::StoreError;
use weft_engine::store::StoreResult;

/// Why a statement failed.
#[derive(Debug, Clone)]
pub(super) enum Fail {
    /// The unit of work failed; the error says why.
    Store(StoreError),
    /// The connection was lost or the server is restarting: the batch is
    /// retried on a new connection.
    Lost(String),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        if lost(&e) {
            Self::Lost(e.to_string())
        } else {
            Self::Store(error(&e))
        }
    }
}

impl Fail {
    /// The store's error for this failure.
    pub(super) fn into_store(self) -> StoreError {
        match self {
            Self::Store(e) => e,
            Self::Lost(m) => {
                StoreError::Backend(format!("the PostgreSQL connection was lost: {m}"))
            }
        }
    }
}

/// Shorthand for a statement's result.
pub(super) type PgResult<T> = Result<T, Fail>;

/// Whether `e` means the connection is gone or the server is going away
/// (its work was not committed; a new connection may succeed).
pub(super) fn lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Class 08 (connection exception), admin/crash shutdown, cannot
        // connect now (the server is starting or stopping).
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03")
        }
        // No SQLSTATE: an I/O error on the socket.
        None => e.as_db_error().is_none(),
    }
}

/// Maps a server's error to the store's.
pub(super) fn error(e: &tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        return StoreError::Backend(format!("PostgreSQL: {e}"));
    };
    let text = format!("PostgreSQL: {} ({})", db.message(), db.code().code());
    match db.code().code() {
        // unique_violation, exclusion_violation
        "23505" | "23P01" => StoreError::Conflict(text),
        // disk_full, out_of_memory, program_limit_exceeded
        "53100" | "53200" | "54000" => StoreError::Full(text),
        _ => StoreError::Backend(text),
    }
}

/// A read's error.
pub(super) fn read_error(e: tokio_postgres::Error) -> StoreError {
    Fail::from(e).into_store()
}

/// A result's error mapped for reads.
pub(super) trait ReadResult<T> {
    /// The store's result.
    fn read(self) -> StoreResult<T>;
}

impl<T> ReadResult<T> for Result<T, tokio_postgres::Error> {
    fn read(self) -> StoreResult<T> {
        self.map_err(read_error)
    }
}
