//! weft's durable store: the engine's [`Store`](weft_engine::Store) trait
//! on SQLite (the embedded default) or PostgreSQL, committed through one
//! writer.
//!
//! - **One transaction per unit of work, grouped.** Every write (a run's
//!   start, a frame, a run's end, a fork) is a job for the writer thread.
//!   The thread takes every job that is waiting, runs each in its own
//!   savepoint inside one transaction and commits once: many threads
//!   finishing frames at the same moment share one fsync, and a job that
//!   fails rolls back alone. Nothing runs on the async executor.
//! - **WAL**, `synchronous=FULL` by default (a commit survives a power
//!   cut; `normal` survives a crash of the process only). Reads use their
//!   own connections, so they never wait for the writer.
//! - **Checked at start-up**: a foreign or corrupt file, a database from a
//!   newer weft, or a store another process holds is refused with a clear
//!   error before anything is written; migrations bring older schemas up
//!   to date ([`schema`]).
//!
//! A second backend, [`PostgresStore`], implements the same trait on
//! PostgreSQL (`postgres/`), for several hosts sharing one store: the same
//! grouped commits, versioned migrations, and commits retried when the
//! server restarts. `sqlite/` and `postgres/` each hold everything
//! specific to their database; the fault injection of [`FramePart`] and
//! the encoding of JSON columns are shared.

mod codec;
mod faults;
mod postgres;
mod sqlite;

/// A part of a frame's commit, for fault injection in tests.
pub use faults::FramePart;
pub use postgres::{PgOptions, PostgresStore, is_postgres_url, redact_url, schema as pg_schema};
pub use sqlite::{Options, PAGE_CACHE_BYTES, SqliteStore, Sync, schema};
