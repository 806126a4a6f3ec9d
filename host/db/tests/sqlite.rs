//! `SqliteDb` through the `Database` trait, as the `db` capability uses it.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TempDir, ctx};
use rusqlite::Connection;
use weft_db::{DbError, SqliteDb, SqliteDbConfig};
use weft_runtime::capabilities::db::Database;
use weft_runtime::{CapabilityError, Value};

/// A small customer table.
fn fixture(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.join("kunden.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE Kunden (KundenNr INTEGER PRIMARY KEY, Nachname TEXT NOT NULL, Ort TEXT);
         CREATE TABLE Objekte (ObjektNr INTEGER PRIMARY KEY,
                               KundenNr INTEGER NOT NULL REFERENCES Kunden);
         WITH RECURSIVE n(i) AS (SELECT 1000 UNION ALL SELECT i + 1 FROM n WHERE i < 1099)
         INSERT INTO Kunden SELECT i, 'Name' || i, CASE WHEN i % 2 THEN 'Köln' END FROM n;",
    )
    .unwrap();
    path
}

fn config(timeout: Duration) -> SqliteDbConfig {
    SqliteDbConfig {
        timeout,
        ..SqliteDbConfig::default()
    }
}

#[test]
fn open_reports_missing_and_foreign_files() {
    let dir = TempDir::new("open");
    let missing = dir.join("nope.db");
    match SqliteDb::open(&missing, SqliteDbConfig::default()) {
        Err(DbError::Open { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected DbError::Open, got {other:?}"),
    }
    assert!(!missing.exists(), "opening must not create the file");

    let text = dir.join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just some text that is long enough",
    )
    .unwrap();
    let err = SqliteDb::open(&text, SqliteDbConfig::default()).unwrap_err();
    assert!(matches!(err, DbError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
}

#[tokio::test]
async fn every_write_is_refused_and_the_file_is_untouched() {
    let dir = TempDir::new("writes");
    let path = fixture(&dir);
    let before = std::fs::read(&path).unwrap();
    let db = SqliteDb::open(&path, SqliteDbConfig::default()).unwrap();
    let cx = ctx();
    let statements = [
        "DELETE FROM Kunden",
        "INSERT INTO Kunden VALUES (1, 'x', 'y')",
        "UPDATE Kunden SET Nachname = 'x'",
        "REPLACE INTO Kunden VALUES (1000, 'x', 'y')",
        "CREATE TABLE t (x)",
        "DROP TABLE Kunden",
        "ATTACH DATABASE '/tmp/x' AS y",
        "PRAGMA writable_schema = 1",
        "PRAGMA query_only = OFF",
        "SELECT 1; DELETE FROM Kunden",
        "WITH x AS (DELETE FROM Kunden RETURNING *) SELECT * FROM x",
        // These pass the textual check and are refused by SQLite's layers.
        "WITH x AS (SELECT 1) DELETE FROM Kunden",
        "WITH x AS (SELECT 1) INSERT INTO Kunden VALUES (1, 'x', 'y')",
        "EXPLAIN DELETE FROM Kunden",
        "select load_extension('/tmp/evil.so')",
        "VACUUM",
        "BEGIN IMMEDIATE",
    ];
    for sql in statements {
        match db.query(&cx, sql, &[], 100).await {
            Err(CapabilityError::InvalidInput(_)) => {}
            other => panic!("{sql}: expected InvalidInput, got {other:?}"),
        }
    }
    let rows = db
        .query(&cx, "SELECT count(*) FROM Kunden", &[], 10)
        .await
        .unwrap();
    assert_eq!(rows.rows, vec![vec![Value::Integer(100)]]);
    drop(db);
    assert!(std::fs::read(&path).unwrap() == before, "the file changed");
    assert_eq!(
        dir.entries(),
        vec!["kunden.db"],
        "no journal or other files"
    );
}

#[tokio::test]
async fn slow_query_hits_the_time_limit() {
    let dir = TempDir::new("slow");
    let db = SqliteDb::open(fixture(&dir), config(Duration::from_millis(100))).unwrap();
    let started = Instant::now();
    let err = db
        .query(
            &ctx(),
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            &[],
            10,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CapabilityError::LimitExceeded("query took longer than 100ms".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The pool is still usable afterwards.
    let rows = db.query(&ctx(), "SELECT 42", &[], 1).await.unwrap();
    assert_eq!(rows.rows, vec![vec![Value::Integer(42)]]);
}

#[tokio::test]
async fn default_timeout_message_says_2s() {
    let dir = TempDir::new("two");
    let db = SqliteDb::open(fixture(&dir), SqliteDbConfig::default()).unwrap();
    assert_eq!(db.config().timeout, Duration::from_secs(2));
    let err = db
        .query(
            &ctx(),
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            &[],
            10,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CapabilityError::LimitExceeded("query took longer than 2s".into())
    );
}

#[tokio::test]
async fn rows_params_and_limits() {
    let dir = TempDir::new("rows");
    let path = fixture(&dir);
    let db = SqliteDb::open(&path, SqliteDbConfig::default()).unwrap();
    let cx = ctx();

    let rows = db
        .query(
            &cx,
            "SELECT KundenNr, Nachname, Ort FROM Kunden WHERE KundenNr = ?1",
            &[Value::Integer(1042)],
            10,
        )
        .await
        .unwrap();
    assert_eq!(rows.columns, vec!["KundenNr", "Nachname", "Ort"]);
    assert_eq!(
        rows.rows,
        vec![vec![
            Value::Integer(1042),
            Value::Text("Name1042".into()),
            Value::Null
        ]]
    );
    assert!(!rows.truncated);

    let all = "SELECT KundenNr FROM Kunden ORDER BY KundenNr";
    let rows = db.query(&cx, all, &[], 10).await.unwrap();
    assert_eq!(rows.rows.len(), 10);
    assert!(rows.truncated);
    assert_eq!(rows.rows[9], vec![Value::Integer(1009)]);

    let err = db
        .query(&cx, "SELECT ?1 + ?2", &[Value::Integer(1)], 10)
        .await;
    assert!(
        matches!(err, Err(CapabilityError::InvalidInput(_))),
        "{err:?}"
    );
    let err = db.query(&cx, "SELECT Foo FROM Kunden", &[], 10).await;
    assert_eq!(
        err,
        Err(CapabilityError::InvalidInput("no such column: Foo".into()))
    );

    // The backend's own cap applies on top of the caller's limit.
    let capped = SqliteDb::open(
        &path,
        SqliteDbConfig {
            max_rows: Some(3),
            ..SqliteDbConfig::default()
        },
    )
    .unwrap();
    let rows = capped.query(&cx, all, &[], 50).await.unwrap();
    assert_eq!((rows.rows.len(), rows.truncated), (3, true));
    let rows = capped.query(&cx, all, &[], 2).await.unwrap();
    assert_eq!((rows.rows.len(), rows.truncated), (2, true));
}

#[tokio::test]
async fn lists_and_describes() {
    let dir = TempDir::new("describe");
    let db = SqliteDb::open(fixture(&dir), SqliteDbConfig::default()).unwrap();
    let cx = ctx();
    assert_eq!(
        db.list_tables(&cx).await.unwrap(),
        vec!["Kunden", "Objekte"]
    );
    let cols = db.describe(&cx, "Objekte").await.unwrap();
    assert_eq!(cols.len(), 2);
    assert_eq!(cols[1].name, "KundenNr");
    assert!(!cols[1].nullable && !cols[1].primary_key);
    assert_eq!(
        db.describe(&cx, "Kunden; DROP TABLE Kunden").await,
        Err(CapabilityError::InvalidInput(
            "no table named `Kunden; DROP TABLE Kunden`".into()
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_pool_serves_many_concurrent_calls() {
    let dir = TempDir::new("pool");
    let db = Arc::new(
        SqliteDb::open(
            fixture(&dir),
            SqliteDbConfig {
                pool_size: 2,
                ..SqliteDbConfig::default()
            },
        )
        .unwrap(),
    );
    let tasks: Vec<_> = (0..32i64)
        .map(|i| {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                let rows = db
                    .query(
                        &ctx(),
                        "SELECT count(*) FROM Kunden WHERE KundenNr >= ?1",
                        &[Value::Integer(1000 + i)],
                        1,
                    )
                    .await
                    .unwrap();
                assert_eq!(rows.rows, vec![vec![Value::Integer(100 - i)]]);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn waiting_for_a_connection_counts_against_the_time_limit() {
    let dir = TempDir::new("busy");
    let db = SqliteDb::open(
        fixture(&dir),
        SqliteDbConfig {
            pool_size: 1,
            timeout: Duration::from_secs(1),
            max_rows: None,
        },
    )
    .unwrap();
    let slow =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let cx = ctx();
    let started = Instant::now();
    let (first, second) = tokio::join!(db.query(&cx, slow, &[], 1), async {
        // Asked while the only connection is busy: this call waits about
        // 0.9 s and then has about 0.1 s left, not a fresh second.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = db.query(&cx, slow, &[], 1).await;
        (r, started.elapsed())
    });
    assert!(
        matches!(first, Err(CapabilityError::LimitExceeded(_))),
        "{first:?}"
    );
    let (second, finished) = second;
    assert!(
        matches!(second, Err(CapabilityError::LimitExceeded(_))),
        "{second:?}"
    );
    assert!(
        finished < Duration::from_millis(1_600),
        "the second call ended after {finished:?}"
    );
}
