//! The PostgreSQL backend: [`PostgresStore`], opened on one database by
//! URL (`postgres://user:password@host:port/database`).
//!
//! - Opening: [`connect`] reaches the server (a wrong or unreachable URL
//!   is refused naming the store), [`migrate`] checks that the database is
//!   weft's and brings the [`schema`] up to date.
//! - Writing: [`writer`] is the one task that commits, grouping jobs (one
//!   transaction per batch, one savepoint per job, as on SQLite) and
//!   retrying a batch whose connection was lost.
//! - The statements: [`commit`] (a frame's commit), [`runs`] (a run's
//!   start, fork and end), [`operator`] (everything else written),
//!   [`prune`]; [`reads`] and [`usage`] read on pooled connections.
//! - [`leases`]: which host executes a run, with fencing tokens.
//! - [`store`] implements the engine's `Store` trait over them.

mod cluster;
mod commit;
mod error;
mod interrupts;
mod kv;
mod leases;
mod migrate;
mod operator;
mod pipeline;
mod prune;
mod reads;
mod runs;
mod schedules;
pub mod schema;
mod store;
mod usage;
mod webhooks;
mod writer;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, NoTls};
use weft_engine::StoreError;
use weft_engine::store::StoreResult;

use crate::faults::{Faults, FramePart};
use writer::{Done, Job, Write, Writer};

/// The PostgreSQL store's settings.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The most jobs committed in one transaction.
    pub max_batch: usize,
    /// Jobs waiting for the writer before callers wait to submit more.
    pub queue: usize,
    /// Connections kept for reads.
    pub pool_size: usize,
    /// How long the writer keeps retrying a batch whose connection was
    /// lost (PostgreSQL restarting) before failing it.
    pub retry_for: Duration,
    /// How long opening waits for the server.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_batch: 512,
            queue: 8192,
            pool_size: 8,
            retry_for: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL store. Cheap to share in an `Arc`; dropping the last
/// one stops the writer after the jobs already submitted.
pub struct PostgresStore {
    store: String,
    jobs: mpsc::Sender<Job>,
    pool: Pool,
    faults: Arc<Faults>,
    frame_commits: Mutex<Vec<Duration>>,
}

/// Frame-commit latencies kept for [`PostgresStore::take_frame_commit_latencies`].
const LATENCY_SAMPLES: usize = 1 << 16;

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Whether `store` names a PostgreSQL database (`postgres://` or
/// `postgresql://`) rather than a SQLite file.
pub fn is_postgres_url(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// The store named for messages: the URL without its password.
fn describe(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    format!("the PostgreSQL store postgres://{user}@{host}:{port}/{db}")
}

/// One connection, its driver spawned on the runtime.
async fn connect(config: &tokio_postgres::Config, store: &str) -> StoreResult<Client> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        StoreError::Backend(format!("cannot connect to {store}: {}", error::error(&e)))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "store connection closed");
        }
    });
    Ok(client)
}

impl PostgresStore {
    /// Opens the store at `url`: connects, checks that the database is
    /// weft's (or empty), applies pending migrations, and starts the
    /// writer. Must be called within a Tokio runtime.
    pub async fn open(url: &str, options: PgOptions) -> StoreResult<Self> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            StoreError::Backend(format!(
                "--store {}: not a PostgreSQL URL ({e}); expected postgres://user:password@host:port/database",
                redact_url(url)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        config.application_name("weft");
        let store = describe(&config);
        let mut client = connect(&config, &store).await?;
        migrate::migrate(&store, &mut client).await?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .build()
            .map_err(|e| StoreError::Backend(format!("{store}: cannot build the pool: {e}")))?;
        let faults = Arc::new(Faults::default());
        let (jobs, rx) = mpsc::channel(options.queue.max(1));
        let writer = Writer {
            config,
            store: store.clone(),
            id: writer_id()?,
            max_batch: options.max_batch.max(1),
            retry_for: options.retry_for,
            faults: Arc::clone(&faults),
        };
        tokio::spawn(writer.run(Some(client), rx));
        tracing::info!(store = %store, "store opened");
        Ok(Self {
            store,
            jobs,
            pool,
            faults,
            frame_commits: Mutex::default(),
        })
    }

    /// The store, named for messages (its URL without the password).
    pub fn name(&self) -> &str {
        &self.store
    }

    /// Lets `skip` frame commits through, then makes the next `times`
    /// fail right after writing `part` (for tests of all-or-nothing
    /// commits and of the engine's retries).
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

    /// Submits a write to the writer and waits for its commit.
    async fn write(&self, write: Write) -> StoreResult<Done> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| StoreError::Backend("the store's writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the store's writer stopped mid-commit".into()))?
    }

    /// A pooled connection for reads.
    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to {}: {e}", self.store)))
    }
}

/// A URL with its password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A random id for this store's writer (its batches' marks).
fn writer_id() -> StoreResult<String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Backend(format!("no randomness for the writer id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
