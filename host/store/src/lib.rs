//! weft's durable store on SQLite: the engine's [`Store`] trait,
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

pub mod schema;
mod sql;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};
use weft_engine::store::{
    ForkStart, FrameCommit, GraphVersion, NodePause, Page, PluginBlob, PruneReport, RunEnd,
    RunStart, StoreResult, StoredFrame, StoredInstance, StoredMessage, StoredRun, StoredThread,
    ThreadFilter, UnfinishedRun, UsageHistory,
};
use weft_engine::{MoneyBudget, Store, StoreError};
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::memory::MemoryWrite;

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sync {
    /// fsync on every commit: survives power loss (the default).
    #[default]
    Full,
    /// fsync at WAL checkpoints: survives a crash of the process, not of
    /// the machine.
    Normal,
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Durability of commits.
    pub sync: Sync,
    /// The most jobs committed in one transaction.
    pub max_batch: usize,
    /// Jobs waiting for the writer before callers wait to submit more.
    pub queue: usize,
    /// The largest the database file may grow, in bytes; a commit that
    /// needs more fails with [`StoreError::Full`], like a full disk.
    pub max_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sync: Sync::Full,
            max_batch: 512,
            queue: 8192,
            max_bytes: None,
        }
    }
}

/// A part of a frame's commit, for fault injection in tests.
pub use sql::FramePart;

/// The SQLite store. Cheap to share in an `Arc`; dropping the last one
/// stops the writer after the jobs already submitted.
pub struct SqliteStore {
    path: PathBuf,
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    faults: Arc<sql::Faults>,
    /// Submit-to-commit latency of frame commits (the first million).
    frame_commits: Mutex<Vec<std::time::Duration>>,
    _lock: File,
}

/// Frame-commit latencies kept for [`SqliteStore::take_frame_commit_latencies`].
const LATENCY_SAMPLES: usize = 1 << 20;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

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
        check_header(&path)?;
        let lock = take_lock(&path)?;
        let mut writer = Connection::open(&path).map_err(|e| opening(&path, e))?;
        configure(&writer, options.sync).map_err(|e| opening(&path, e))?;
        migrate(&path, &mut writer)?;
        if let Some(max) = options.max_bytes {
            let page: i64 = writer
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(|e| opening(&path, e))?;
            let pages = (max / page.max(512) as u64).max(1);
            writer
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                .map_err(|e| opening(&path, e))?;
        }
        let faults = Arc::new(sql::Faults::default());
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
        check_header(&path)?;
        let conn = open_reader(&path)?;
        let app: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| opening(&path, e))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| opening(&path, e))?;
        if app != schema::APPLICATION_ID || version != schema::latest() {
            return Err(StoreError::Incompatible(format!(
                "{} is not a weft store of schema version {} (application_id {app:#x}, version {version});                  open it read-write with this weft to migrate it",
                path.display(),
                schema::latest()
            )));
        }
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
    pub fn take_frame_commit_latencies(&self) -> Vec<std::time::Duration> {
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
        work: impl FnOnce(&Connection, &sql::Faults) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        let job = Typed {
            work: Some(work),
            result: None,
            reply: Some(tx),
        };
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

/// Refuses files that are not SQLite databases before SQLite sees them.
fn check_header(path: &Path) -> StoreResult<()> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StoreError::Backend(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let mut head = Vec::with_capacity(16);
    Read::by_ref(&mut file)
        .take(16)
        .read_to_end(&mut head)
        .map_err(|e| StoreError::Backend(format!("cannot read {}: {e}", path.display())))?;
    if head.is_empty() || head.as_slice() == SQLITE_HEADER {
        return Ok(());
    }
    let shown: String = head
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    Err(StoreError::Incompatible(format!(
        "{} is not a SQLite database (it starts with \"{shown}\"); weft will not touch it: \
         point --store at another file or move this one away",
        path.display()
    )))
}

/// Takes `<store>.lock` so that two weft processes never write (and
/// resume runs from) the same store.
fn take_lock(path: &Path) -> StoreResult<File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another process".to_owned()
            } else {
                format!("process {holder}")
            };
            return Err(StoreError::Locked(format!(
                "{} is in use by {who} (lock file {}); stop it, or give this weft another --store",
                path.display(),
                lock_path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StoreError::Backend(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            )));
        }
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(file)
}

fn configure(conn: &Connection, sync: Sync) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "the store could not switch to WAL mode");
    }
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Every job of a batch runs in a savepoint, whose statement journal
    // would otherwise be a temporary file written for every page a job
    // touches (profiled: 15% of the writer's time with 100 runs at once).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 64 MiB of page cache instead of 2 MiB: the tables' and indexes' hot
    // pages stay cached between batches.
    conn.pragma_update(None, "cache_size", -65536)?;
    // Checkpoint every 8,000 WAL pages (32 MiB) instead of 1,000: the hot
    // pages (index and table tails), rewritten by every commit, are copied
    // into the database file once per checkpoint, so fewer checkpoints
    // copy fewer pages (profiled: checkpoints took a fifth of the writer's
    // time with 100 runs at once).
    conn.pragma_update(None, "wal_autocheckpoint", 8000)?;
    Ok(())
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| opening(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql::error)?;
    Ok(conn)
}

/// An error while opening, named with the file.
fn opening(path: &Path, e: rusqlite::Error) -> StoreError {
    match sql::error(e) {
        StoreError::Incompatible(m) => StoreError::Incompatible(format!(
            "{} cannot be used: {m}; restore it from a backup or point --store at another file",
            path.display()
        )),
        StoreError::Backend(m) => StoreError::Backend(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// Checks the application id and schema version and applies migrations.
fn migrate(path: &Path, conn: &mut Connection) -> StoreResult<()> {
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

/// A unit of work for the writer, with its reply.
trait Job: Send {
    /// Runs the work inside the batch's transaction; an error rolls this
    /// job back (its savepoint) and keeps the others.
    fn apply(&mut self, conn: &Connection, faults: &sql::Faults) -> StoreResult<()>;
    /// Sends the result, or `failed` if the whole batch did not commit.
    fn finish(self: Box<Self>, failed: Option<&StoreError>);
}

struct Typed<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: Option<oneshot::Sender<StoreResult<T>>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnOnce(&Connection, &sql::Faults) -> StoreResult<T> + Send,
{
    fn apply(&mut self, conn: &Connection, faults: &sql::Faults) -> StoreResult<()> {
        let Some(work) = self.work.take() else {
            return Err(StoreError::Backend("the job ran twice".into()));
        };
        let result = work(conn, faults);
        let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
        self.result = Some(result);
        outcome
    }

    fn finish(mut self: Box<Self>, failed: Option<&StoreError>) {
        let result = match (failed, self.result.take()) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(r)) => r,
            (None, None) => Err(StoreError::Backend("the job did not run".into())),
        };
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

/// The writer thread: takes every waiting job (up to `max_batch`), runs
/// each in a savepoint of one transaction, commits once, answers all.
fn write_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    faults: &sql::Faults,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let failed = commit_batch(&conn, &mut batch, faults).err();
        if let Some(e) = &failed {
            tracing::error!(error = %e, jobs = batch.len(), "store commit failed");
        }
        for job in batch {
            job.finish(failed.as_ref());
        }
    }
    tracing::debug!("store writer stopped");
}

fn commit_batch(
    conn: &Connection,
    batch: &mut [Box<dyn Job>],
    faults: &sql::Faults,
) -> StoreResult<()> {
    // Cached statements: these run for every job.
    let run = |sql: &str| -> StoreResult<()> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
            .map_err(sql::error)
    };
    run("BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        let step = run("SAVEPOINT job").and_then(|()| match job.apply(conn, faults) {
            Ok(()) => run("RELEASE job"),
            // Some errors (a full disk, I/O) make SQLite roll the whole
            // transaction back: then every job of the batch fails, with
            // this job's error.
            Err(e) if conn.is_autocommit() => Err(e),
            Err(_) => conn
                .execute_batch("ROLLBACK TO job; RELEASE job")
                .map_err(sql::error),
        });
        if let Err(e) = step {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(e);
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(sql::error(e));
    }
    Ok(())
}

impl Store for SqliteStore {
    fn put_graph(&self, version: GraphVersion) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| sql::put_graph(c, &version)))
    }

    fn graph(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<GraphVersion>>> {
        let id = id.to_owned();
        Box::pin(self.read(move |c| sql::graph(c, &id)))
    }

    fn has_plugin(&self, hash: &str) -> BoxFuture<'_, StoreResult<bool>> {
        let hash = hash.to_owned();
        Box::pin(self.read(move |c| sql::has_plugin(c, &hash)))
    }

    fn put_plugin(&self, plugin: PluginBlob) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| sql::put_plugin(c, &plugin)))
    }

    fn plugin(&self, hash: &str) -> BoxFuture<'_, StoreResult<Option<PluginBlob>>> {
        let hash = hash.to_owned();
        Box::pin(self.read(move |c| sql::plugin(c, &hash)))
    }

    fn thread(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<StoredThread>>> {
        let id = id.to_owned();
        Box::pin(self.read(move |c| sql::thread(c, &id)))
    }

    fn threads(
        &self,
        filter: ThreadFilter,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredThread>>> {
        Box::pin(self.read(move |c| sql::threads(c, &filter, limit, offset)))
    }

    fn runs(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<StoredRun>>> {
        let thread = thread.to_owned();
        Box::pin(self.read(move |c| sql::runs(c, &thread)))
    }

    fn memory(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<MemoryWrite>>> {
        let thread = thread.to_owned();
        Box::pin(self.read(move |c| sql::memory(c, &thread)))
    }

    fn set_thread_budget(&self, thread: &str, limit: u64) -> BoxFuture<'_, StoreResult<()>> {
        let thread = thread.to_owned();
        Box::pin(self.write(move |c, _| sql::set_thread_budget(c, &thread, limit)))
    }

    fn project_budgets(
        &self,
    ) -> BoxFuture<'_, StoreResult<std::collections::BTreeMap<String, Option<MoneyBudget>>>> {
        Box::pin(self.read(sql::project_budgets))
    }

    fn set_project_budget(
        &self,
        project: &str,
        budget: Option<MoneyBudget>,
    ) -> BoxFuture<'_, StoreResult<()>> {
        let project = project.to_owned();
        Box::pin(self.write(move |c, _| sql::set_project_budget(c, &project, budget)))
    }

    fn instances(&self) -> BoxFuture<'_, StoreResult<Vec<StoredInstance>>> {
        Box::pin(self.read(sql::instances))
    }

    fn put_instance(&self, instance: StoredInstance) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| sql::put_instance(c, &instance)))
    }

    fn paused_nodes(&self) -> BoxFuture<'_, StoreResult<Vec<NodePause>>> {
        Box::pin(self.read(sql::paused_nodes))
    }

    fn set_node_paused(&self, pause: &NodePause, paused: bool) -> BoxFuture<'_, StoreResult<()>> {
        let pause = pause.clone();
        Box::pin(self.write(move |c, _| sql::set_node_paused(c, &pause, paused)))
    }

    fn begin_run(&self, start: RunStart) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| sql::begin_run(c, &start, None)))
    }

    fn commit_frame(&self, frame: Arc<FrameCommit>) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let result = self
                .write(move |c, faults| sql::commit_frame(c, &frame, faults))
                .await;
            let mut samples = self
                .frame_commits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if samples.len() < LATENCY_SAMPLES {
                samples.push(started.elapsed());
            }
            result
        })
    }

    fn end_run(&self, end: RunEnd) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| sql::end_run(c, &end)))
    }

    fn fork(&self, fork: ForkStart) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| sql::fork(c, &fork)))
    }

    fn unfinished_runs(&self) -> BoxFuture<'_, StoreResult<Vec<UnfinishedRun>>> {
        Box::pin(self.read(sql::unfinished_runs))
    }

    fn frames(
        &self,
        thread: &str,
        from: u64,
        to: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredFrame>>> {
        let thread = thread.to_owned();
        Box::pin(self.read(move |c| sql::frames(c, &thread, from, to)))
    }

    fn node_messages(
        &self,
        node: Option<String>,
        project: Option<String>,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredMessage>>> {
        Box::pin(self.read(move |c| sql::node_messages(c, node, project, limit, offset)))
    }

    fn messages(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<StoredMessage>>> {
        let thread = thread.to_owned();
        Box::pin(self.read(move |c| sql::messages(c, &thread)))
    }

    fn usage(&self) -> BoxFuture<'_, StoreResult<UsageHistory>> {
        Box::pin(self.read(sql::usage))
    }

    fn reset_usage(&self, at_ms: u64) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| sql::reset_usage(c, at_ms)))
    }

    fn prune(&self, before_ms: u64) -> BoxFuture<'_, StoreResult<PruneReport>> {
        Box::pin(self.write(move |c, _| sql::prune(c, before_ms)))
    }
}
