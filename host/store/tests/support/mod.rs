//! The backends the store tests run on: the same test, on a SQLite file
//! in a fresh folder and on a fresh database of a throwaway PostgreSQL
//! server (one per test binary while its tests run, stopped and deleted
//! when the last of them ends), with a way to look at the stored rows
//! directly on either.

#![allow(dead_code)] // each test binary uses part of it
#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

pub mod engine;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use weft_engine::Store;
use weft_store::{FramePart, Options, PgOptions, PostgresStore, SqliteStore};
use weft_testkit::TempPostgres;

/// A store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("weft-store-tests-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The PostgreSQL server the running tests share.
pub fn postgres() -> Arc<TempPostgres> {
    static SHARED: Mutex<Weak<TempPostgres>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pg) = shared.upgrade() {
        return pg;
    }
    let pg = Arc::new(TempPostgres::start().expect("start PostgreSQL"));
    *shared = Arc::downgrade(&pg);
    pg
}

/// Where one test's store lives, with a folder for its other files.
pub struct Place {
    pub backend: Backend,
    pub dir: PathBuf,
    /// The database's URL and its server, on PostgreSQL.
    pub pg: Option<(String, Arc<TempPostgres>)>,
}

/// A fresh place named `name` on `backend`.
pub fn place(backend: Backend, name: &str) -> Place {
    let dir = temp_dir(&format!("{backend:?}-{name}"));
    let pg = (backend == Backend::Postgres).then(|| {
        let server = postgres();
        let db: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let url = tokio::task::block_in_place(|| server.create_database(&db))
            .expect("create the test database");
        (url, server)
    });
    Place { backend, dir, pg }
}

impl Place {
    /// A file in the place's folder.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.join(name)
    }

    /// The database URL (PostgreSQL only).
    pub fn url(&self) -> &str {
        &self.pg.as_ref().expect("a PostgreSQL place").0
    }

    /// Opens the store.
    pub async fn open(&self) -> AnyStore {
        self.open_with(Options::default()).await
    }

    /// Opens the store with SQLite `options` (PostgreSQL: its defaults).
    pub async fn open_with(&self, options: Options) -> AnyStore {
        match self.backend {
            Backend::Sqlite => AnyStore::Sqlite(Arc::new(
                open_sqlite(&self.dir.join("weft.db"), options).await,
            )),
            Backend::Postgres => AnyStore::Postgres(Arc::new(
                PostgresStore::open(self.url(), PgOptions::default())
                    .await
                    .expect("store"),
            )),
        }
    }
}

/// A store of either backend.
#[derive(Clone)]
pub enum AnyStore {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl AnyStore {
    /// The store as the engine takes it.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(s) => s.clone(),
            Self::Postgres(s) => s.clone(),
        }
    }

    /// See [`SqliteStore::fail_frame_commits`].
    pub fn fail_frame_commits(&self, part: FramePart, skip: u32, times: u32) {
        match self {
            Self::Sqlite(s) => s.fail_frame_commits(part, skip, times),
            Self::Postgres(s) => s.fail_frame_commits(part, skip, times),
        }
    }
}

/// A column's value, as the tests compare them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl Value {
    pub fn int(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Null => None,
            Self::Text(t) => panic!("not an integer: {t}"),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            other => panic!("not text: {other:?}"),
        }
    }
}

/// A direct look at the stored rows.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

/// Opens the place's database for looking at its rows.
pub fn db(place: &Place) -> Db {
    match place.backend {
        Backend::Sqlite => Db::Sqlite(
            rusqlite::Connection::open(place.dir.join("weft.db")).expect("open store for reading"),
        ),
        Backend::Postgres => {
            let url = place.url().to_owned();
            Db::Postgres(block_on(async move {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(connection);
                client
            }))
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

impl Db {
    /// The rows `sql` returns with `?1` (SQLite's placeholder; `$1` on
    /// PostgreSQL) bound to `arg`.
    pub fn rows(&self, sql: &str, arg: &str) -> Vec<Vec<Value>> {
        match self {
            Self::Sqlite(c) => {
                let mut s = c.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let n = s.column_count();
                s.query_map([arg], |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Null => Value::Null,
                                rusqlite::types::ValueRef::Integer(n) => Value::Int(n),
                                rusqlite::types::ValueRef::Text(t) => {
                                    Value::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                other => panic!("{sql}: unexpected {other:?}"),
                            })
                        })
                        .collect()
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            }
            Self::Postgres(c) => {
                let sql = sql.replace("?1", "$1");
                let rows =
                    block_on(c.query(&sql, &[&arg])).unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| {
                                use tokio_postgres::types::Type;
                                let ty = r.columns()[i].type_().clone();
                                if ty == Type::INT8 {
                                    r.get::<_, Option<i64>>(i).map_or(Value::Null, Value::Int)
                                } else if ty == Type::INT4 {
                                    r.get::<_, Option<i32>>(i)
                                        .map_or(Value::Null, |n| Value::Int(n.into()))
                                } else if ty == Type::BOOL {
                                    r.get::<_, Option<bool>>(i)
                                        .map_or(Value::Null, |b| Value::Int(b.into()))
                                } else {
                                    r.get::<_, Option<String>>(i)
                                        .map_or(Value::Null, Value::Text)
                                }
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    }
}

/// The one integer `sql` returns.
pub fn count(db: &Db, sql: &str, arg: &str) -> i64 {
    db.rows(sql, arg)
        .first()
        .and_then(|r| r.first())
        .and_then(Value::int)
        .unwrap_or_else(|| panic!("{sql}: no integer"))
}

/// Tests run on both backends: each `name` is an `async fn(Backend)`, run
/// as `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Opens a SQLite store. A host "restarted" within this process may still
/// hold the file for a moment after it was dropped (its engine's last
/// tasks let go of the store asynchronously), so a lock held by this
/// process is waited for, up to ten seconds; any other error fails.
async fn open_sqlite(path: &std::path::Path, options: Options) -> SqliteStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match SqliteStore::open(path, options.clone()) {
            Ok(store) => return store,
            Err(weft_engine::StoreError::Locked(m))
                if m.contains(&format!("in use by process {}", std::process::id()))
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("store: {e:?}"),
        }
    }
}

/// The start of `run` on `thread` at `at_ms`, with one message
/// (`message_id`) to `a`.
pub fn run_start(
    thread: &str,
    run: &str,
    message_id: &str,
    at_ms: u64,
) -> weft_engine::store::RunStart {
    weft_engine::store::RunStart {
        thread: thread.into(),
        project: "default".into(),
        run: run.into(),
        graph_version: "g1".into(),
        inbound: vec![("a".into(), text_message(message_id))],
        budget_limit: None,
        at_ms,
    }
}

pub fn text_message(id: &str) -> weft_runtime::Message {
    weft_runtime::Message {
        id: id.into(),
        from: "user".into(),
        kind: "text".into(),
        body: "hello".into(),
    }
}

/// Frame `frame` (also its `seq`) of `run` on `thread`, graph version
/// `g1`, with no invocations, delivering `delivered`.
pub fn bare_frame(
    thread: &str,
    run: &str,
    frame: u32,
    status: weft_engine::RunStatus,
    delivered: Vec<(String, weft_runtime::Message)>,
) -> weft_engine::store::FrameCommit {
    weft_engine::store::FrameCommit {
        thread: thread.into(),
        run: run.into(),
        frame,
        seq: u64::from(frame),
        graph_version: "g1".into(),
        wall_time_ms: 1,
        invocations: Vec::new(),
        sent: Vec::new(),
        delivered,
        memory: Vec::new(),
        kv: Vec::new(),
        usage: Vec::new(),
        metering: Vec::new(),
        interrupts: Vec::new(),
        status,
        reply: None,
        fence: None,
    }
}
