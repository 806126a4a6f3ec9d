//! Opening the store: new files, migrations kept across opens, and every
//! kind of file weft must refuse without touching it.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

use std::path::PathBuf;

use rusqlite::Connection;
use weft_engine::StoreError;
use weft_store::{Options, SqliteStore, schema};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("weft-store-files-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("weft.db")
}

fn open(path: &PathBuf) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(path, Options::default())
}

#[test]
fn a_new_store_is_created_with_the_latest_schema_in_wal_mode() {
    let path = temp("new");
    let nested = path.parent().unwrap().join("a/b/weft.db");
    let store = open(&nested).expect("created with its folders");
    drop(store);
    let conn = Connection::open(&nested).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::latest());
    assert_eq!(app, schema::APPLICATION_ID);
    assert_eq!(mode, "wal");
    // Opening again migrates nothing and keeps what is there.
    conn.execute(
        "INSERT INTO projects (id, budget, updated_ms) VALUES ('p', NULL, 1)",
        [],
    )
    .unwrap();
    drop(conn);
    drop(open(&nested).expect("reopened"));
    let conn = Connection::open(&nested).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM projects", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let path = temp("foreign");
    let text = b"name: assistant\nnodes: {}\n";
    std::fs::write(&path, text).unwrap();
    let err = open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Incompatible(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("is not a SQLite database"), "{message}");
    assert!(message.contains("name: assistant"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), text, "untouched");
}

#[test]
fn a_database_of_another_application_is_refused() {
    let path = temp("other-app");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY); INSERT INTO customers VALUES (1);",
    )
    .unwrap();
    drop(conn);
    let err = open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Incompatible(_)), "{err:?}");
    assert!(err.to_string().contains("another application"), "{err}");
    let conn = Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "untouched");
}

#[test]
fn a_store_from_a_newer_weft_is_refused() {
    let path = temp("newer");
    drop(open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", schema::latest() + 3)
        .unwrap();
    drop(conn);
    let err = open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Incompatible(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("newer weft"), "{message}");
    assert!(
        message.contains(&format!("schema version {}", schema::latest() + 3)),
        "{message}"
    );
}

#[test]
fn a_corrupt_database_is_refused_with_a_clear_error() {
    let path = temp("corrupt");
    drop(open(&path).unwrap());
    // Keep the header, destroy the rest of the first page and beyond.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 200);
    for b in &mut bytes[100..] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
    let err = open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Incompatible(_)), "{err:?}");
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[test]
fn a_store_in_use_by_another_process_is_refused() {
    let path = temp("locked");
    let first = open(&path).unwrap();
    let err = open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("is in use by process"), "{message}");
    assert!(
        message.contains(&std::process::id().to_string()),
        "names the holder: {message}"
    );
    drop(first);
    drop(open(&path).expect("free again once the first is closed"));
}

#[test]
fn an_older_store_is_migrated_and_keeps_its_data() {
    let path = temp("older");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
    conn.execute_batch(schema::MIGRATIONS[1]).unwrap();
    conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
        .unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    conn.execute(
        "INSERT INTO projects (id, budget, updated_ms) VALUES ('acme', NULL, 1)",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO node_states (node, state, updated_ms) VALUES ('output', 'paused', 1)",
        [],
    )
    .unwrap();
    drop(conn);
    drop(open(&path).expect("migrated"));
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::latest());
    let kept: String = conn
        .query_row("SELECT id FROM projects", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, "acme");
    // Migration 5 keeps a version-2 pause, now for every project.
    let pause: (String, String) = conn
        .query_row("SELECT project, node FROM node_pauses", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("the pause of version 2 is kept");
    assert_eq!(pause, (String::new(), "output".to_owned()));
}

#[test]
fn frames_and_invocations_keep_every_column_when_moved_to_storage_order() {
    // A store of schema version 14, where frames and invocations were
    // keyed by thread, with a frame of two invocations in each of two
    // threads.
    let path = temp("by-pos");
    let conn = Connection::open(&path).unwrap();
    for migration in &schema::MIGRATIONS[..14] {
        conn.execute_batch(migration).unwrap();
    }
    conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
        .unwrap();
    conn.pragma_update(None, "user_version", 14).unwrap();
    let frames = "SELECT thread, seq, run, frame, graph_version, wall_time_ms, committed_ms
                  FROM frames ORDER BY thread, seq";
    let invocations = "SELECT thread, seq, idx, node, project, plugin_hash, fuel, duration_us,
                       outcome, at_ms, record, inbox, output FROM invocations ORDER BY thread, seq, idx";
    for thread in ["thread-b", "thread-a"] {
        conn.execute(
            "INSERT INTO frames VALUES (?1, 0, ?1 || '.run-0', 0, 'v1', 10, 11)",
            [thread],
        )
        .unwrap();
        for idx in [1, 0] {
            conn.execute(
                "INSERT INTO invocations VALUES (?1, 0, ?2, 'n' || ?2, 'acme', 'h', 5, 6, 'ok', 7,
                 '{\"r\":' || ?2 || '}', '[]', '{}')",
                rusqlite::params![thread, idx],
            )
            .unwrap();
        }
    }
    let rows = |conn: &Connection, sql: &str| -> Vec<Vec<rusqlite::types::Value>> {
        let mut s = conn.prepare(sql).unwrap();
        let n = s.column_count();
        s.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let (frames_before, invocations_before) = (rows(&conn, frames), rows(&conn, invocations));
    assert_eq!((frames_before.len(), invocations_before.len()), (2, 4));
    drop(conn);

    drop(open(&path).expect("migrated"));
    let conn = Connection::open(&path).unwrap();
    assert_eq!(rows(&conn, frames), frames_before);
    assert_eq!(rows(&conn, invocations), invocations_before);
    // Each frame points at its own invocations, in order.
    let pointed = rows(
        &conn,
        "SELECT f.thread, f.seq, i.thread, i.seq, i.idx FROM frames f
         JOIN invocations i ON i.pos >= f.inv_first AND i.pos < f.inv_first + f.inv_count
         ORDER BY f.thread, f.seq, i.pos",
    );
    let pointed: Vec<String> = pointed.iter().map(|r| format!("{r:?}")).collect();
    let expected: Vec<String> = ["thread-a", "thread-a", "thread-b", "thread-b"]
        .iter()
        .zip([0, 1, 0, 1])
        .map(|(t, idx)| {
            use rusqlite::types::Value::{Integer, Text};
            format!(
                "{:?}",
                vec![
                    Text((*t).into()),
                    Integer(0),
                    Text((*t).into()),
                    Integer(0),
                    Integer(idx)
                ]
            )
        })
        .collect();
    assert_eq!(pointed, expected);
    // A frame committed twice is still refused.
    let again = conn
        .execute(
            "INSERT INTO frames (thread, seq, run, frame, graph_version, wall_time_ms, committed_ms, inv_first, inv_count)
             VALUES ('thread-a', 0, 'x', 0, 'v1', 1, 1, 0, 0)",
            [],
        )
        .unwrap_err();
    assert!(again.to_string().contains("UNIQUE"), "{again}");
    // A thread's frames are found through their index, and their
    // invocations by position.
    let plan = rows(
        &conn,
        "EXPLAIN QUERY PLAN SELECT i.record FROM frames f CROSS JOIN invocations i
         ON i.pos >= f.inv_first AND i.pos < f.inv_first + f.inv_count
         WHERE f.thread = 'thread-a' AND f.seq >= 0",
    );
    let plan = format!("{plan:?}");
    assert!(plan.contains("frames_by_thread"), "{plan}");
    assert!(
        plan.contains("INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN"), "{plan}");
}
