//! Why the store could not do what was asked, with a stable code per kind.

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The file is not a database this weft can use: corrupt, foreign, or
    /// written by a newer weft. Nothing was changed.
    #[error("{0}")]
    Incompatible(String),
    /// Another process holds the store.
    #[error("{0}")]
    Locked(String),
    /// The disk (or the database's size limit) is full; the unit of work
    /// was not committed.
    #[error("the store is full: {0}")]
    Full(String),
    /// The unit of work contradicts what is stored (e.g. a message
    /// delivered twice); it was not committed.
    #[error("the store refused the write: {0}")]
    Conflict(String),
    /// Anything else the backend reports (I/O, corruption found while
    /// running); the unit of work was not committed.
    #[error("store error: {0}")]
    Backend(String),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The write carried a lease's fencing token that is no longer the
    /// run's current one: another host took the run over (this host was
    /// paused or cut off past its lease). Nothing was written; this host
    /// must stop the run.
    #[error("fenced: {0}")]
    Fenced(String),
    /// The thread has a run in flight, on another host of a shared store:
    /// a new run cannot start on it now.
    #[error("thread `{thread}` has run `{run}` in flight on another host")]
    ThreadBusy {
        /// The thread.
        thread: String,
        /// Its run in flight.
        run: String,
    },
}

impl StoreError {
    /// A stable code for APIs and traces.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Incompatible(_) => "store_incompatible",
            Self::Locked(_) => "store_locked",
            Self::Full(_) => "store_full",
            Self::Conflict(_) => "store_conflict",
            Self::Backend(_) => "store_error",
            Self::NotFound(_) => "not_found",
            Self::Fenced(_) => "fenced",
            Self::ThreadBusy { .. } => "thread_busy",
        }
    }
}

/// Shorthand for the store's results.
pub type StoreResult<T> = Result<T, StoreError>;
