//! weft's durable store on SQLite: the engine's [`Store`](weft_engine::Store) trait,
//! committed through one writer thread.
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
//! The crate is laid out so that another backend can sit beside SQLite:
//! `sqlite/` holds everything SQLite-specific (see its module docs), while
//! the fault injection of [`FramePart`] and the encoding of JSON columns
//! are shared.

mod codec;
mod faults;
mod sqlite;

/// A part of a frame's commit, for fault injection in tests.
pub use faults::FramePart;
pub use sqlite::{Options, PAGE_CACHE_BYTES, SqliteStore, Sync, schema};
