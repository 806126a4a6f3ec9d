//! weft's `db` capability on SQLite, and the sample Eras database.
//!
//! [`SqliteDb`] implements [`weft_runtime::capabilities::db::Database`] on a
//! SQLite file opened read-only. Nodes write their own SQL (usually an LLM
//! does), so the backend assumes every statement is hostile and stacks
//! independent defences: the file is opened read-only with `query_only` set,
//! exactly one statement is prepared, the prepared statement must be
//! read-only, an authorizer allows nothing but reads, and a progress handler
//! interrupts a statement that runs past its time limit. Every call runs on
//! the blocking pool, never on the async executor.
//!
//! [`eras`] writes the sample heating-cost billing database ("Eras") that
//! the seed system's `ErasExpert` answers questions from: a deterministic,
//! realistic data set of customers, properties, units, metering devices and
//! their readings.

pub mod eras;
mod error;
mod sqlite;

pub use error::DbError;
pub use sqlite::{SqliteDb, SqliteDbConfig};
