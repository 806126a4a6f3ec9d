//! Errors of the crate's own API (opening a database, generating the Eras
//! sample). Errors a node sees travel as
//! [`CapabilityError`](weft_runtime::CapabilityError) instead.

use std::path::PathBuf;

/// Why a database could not be opened, inspected or generated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database file could not be opened or is not a SQLite database.
    #[error("cannot open database `{}`: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// An existing database could not be read.
    #[error("cannot read database `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// Writing the generated Eras database failed.
    #[error("cannot write the Eras database `{}`: {source}", path.display())]
    Write {
        /// The file being written (a temporary file next to the target).
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// A file-system operation failed.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done, e.g. `rename the new database to`.
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The path holds a SQLite database with other data; it is never
    /// overwritten with the sample.
    #[error(
        "`{}` is a SQLite database but not an Eras database (it has table `{table}`); \
         refusing to overwrite it",
        path.display()
    )]
    NotEras {
        /// The file.
        path: PathBuf,
        /// A table that the Eras schema does not have.
        table: String,
    },
    /// The Eras generation parameters are inconsistent.
    #[error("invalid Eras spec: {0}")]
    InvalidSpec(String),
}
