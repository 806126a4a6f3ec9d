//! The SQLite backend: [`SqliteStore`], opened on one database file.
//!
//! - Opening: [`file`] guards the file (a foreign file is refused unread,
//!   a lock file keeps a second process out), [`connection`] sets the
//!   pragmas, [`migrate`] brings the [`schema`] up to date.
//! - Writing: [`writer`] is the one thread that commits, grouping jobs.
//! - The statements, one module per concern: [`graphs`] (graph versions,
//!   plugin blobs), [`threads`], [`runs`] (a run's start, fork and end),
//!   [`commit`] (a frame's commit), [`frames`] and [`messages`] (history
//!   read back), [`memory`], [`operator`] (budgets, pauses, agent
//!   instances), [`usage`] and [`prune`].
//! - [`store`] implements the engine's `Store` trait over them.

mod commit;
mod connection;
mod file;
mod frames;
mod graphs;
mod interrupts;
mod kv;
mod memory;
mod messages;
mod migrate;
mod operator;
mod options;
mod prune;
mod runs;
mod schedules;
pub mod schema;
mod store;
mod threads;
mod usage;
mod webhooks;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use weft_engine::StoreError;
use weft_engine::store::StoreResult;

pub use connection::PAGE_CACHE_BYTES;
pub use options::{Options, Sync};

use crate::faults::{Faults, FramePart};
use connection::{configure, journal_in_memory, open_reader, opening};
use writer::{Job, Typed, write_loop};

/// The SQLite store. Cheap to share in an `Arc`; dropping the last one
/// stops the writer after the jobs already submitted.
pub struct SqliteStore {
    path: PathBuf,
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    faults: Arc<Faults>,
    /// Submit-to-commit latency of frame commits (the first 65,536 since
    /// the last take).
    frame_commits: Mutex<Vec<Duration>>,
    _lock: File,
}

/// Frame-commit latencies kept for [`SqliteStore::take_frame_commit_latencies`].
const LATENCY_SAMPLES: usize = 1 << 16;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`, creating its folder: checks
    /// the file, takes the store's lock, applies pending migrations and
    /// starts the writer thread.
    pub fn open(path: impl AsRef<Path>, options: Options) -> StoreResult<Self> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        file::check_header(&path)?;
        let lock = file::take_lock(&path)?;
        let mut writer = Connection::open(&path).map_err(|e| opening(&path, e))?;
        configure(&writer, options.sync).map_err(|e| opening(&path, e))?;
        migrate::migrate(&path, &mut writer)?;
        journal_in_memory(&writer).map_err(|e| opening(&path, e))?;
        if let Some(max) = options.max_bytes {
            let page: i64 = writer
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(|e| opening(&path, e))?;
            let pages = (max / page.max(512) as u64).max(1);
            writer
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                .map_err(|e| opening(&path, e))?;
        }
        let faults = Arc::new(Faults::default());
        let (jobs, rx) = mpsc::channel(options.queue.max(1));
        let writer_faults = Arc::clone(&faults);
        let max_batch = options.max_batch.max(1);
        let writer = std::thread::Builder::new()
            .name("weft-store-writer".into())
            .spawn(move || write_loop(writer, rx, max_batch, &writer_faults))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        tracing::info!(path = %path.display(), "store opened");
        Ok(Self {
            path,
            jobs: Some(jobs),
            writer: Some(writer),
            readers: Arc::default(),
            faults,
            frame_commits: Mutex::default(),
            _lock: lock,
        })
    }

    /// Opens an existing store for reading only, without its lock, so that
    /// it can be inspected (threads, replay) while a weft process serves
    /// from it. Every write fails.
    pub fn open_read_only(path: impl AsRef<Path>) -> StoreResult<Self> {
        let path = path.as_ref().to_owned();
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "there is no store at {}",
                path.display()
            )));
        }
        file::check_header(&path)?;
        let conn = open_reader(&path)?;
        migrate::check_latest(&path, &conn)?;
        // Some file for the lock field; nothing is locked.
        let lock = File::open(&path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        Ok(Self {
            path,
            jobs: None,
            writer: None,
            readers: Arc::new(Mutex::new(vec![conn])),
            faults: Arc::default(),
            frame_commits: Mutex::default(),
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lets `skip` frame commits through, then makes the next `times`
    /// fail right after writing `part`, as a failing disk would (for tests
    /// of all-or-nothing commits and of the engine's retries).
    pub fn fail_frame_commits(&self, part: FramePart, skip: u32, times: u32) {
        self.faults.set(part, skip, times);
    }

    /// The latencies of the frame commits since the last call, from
    /// submission to durable commit (queueing and grouping included).
    pub fn take_frame_commit_latencies(&self) -> Vec<Duration> {
        std::mem::take(
            &mut *self
                .frame_commits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Submits a job to the writer and waits for its commit.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnMut(&Connection, &Faults) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        let job = Typed::new(work, tx);
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is open for reading only".into()))?;
        jobs.send(Box::new(job))
            .await
            .map_err(|_| StoreError::Backend("the store's writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the store's writer stopped mid-commit".into()))?
    }

    /// Runs a read on a pooled read-only connection, off the executor.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(&path)?,
            };
            let result = work(&conn);
            readers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a store read panicked: {e}")))?
    }
}

impl Drop for SqliteStore {
    /// Stops the writer after the jobs already submitted, so that the
    /// database is closed (and its WAL checkpointed) when this returns.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}
