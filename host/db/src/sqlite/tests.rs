//! Each defence on its own: these tests bypass the layers in front of the
//! one they exercise.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use weft_runtime::{CapabilityError, Value};

use super::exec::{describe, list_tables, query, query_unchecked};
use super::guard::{Failure, Guarded, TimeLimit};

const T: TimeLimit = TimeLimit::new(Duration::from_secs(5));

/// A scratch database file, removed on drop.
struct Fixture {
    dir: PathBuf,
    path: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("weft-db-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        let path = dir.join("test.db");
        let conn = Connection::open(&path).expect("create db");
        conn.execute_batch(
            "CREATE TABLE Kunden (KundenNr INTEGER PRIMARY KEY, Name TEXT NOT NULL, Ort TEXT);
             CREATE TABLE sqlitelike (a INT, b TEXT, PRIMARY KEY (a, b));
             CREATE VIEW KundenOrte AS SELECT DISTINCT Ort FROM Kunden;
             INSERT INTO Kunden VALUES (1000, 'Müller', 'Köln'), (1001, 'Schmidt', NULL),
                                       (1002, 'Weber', 'Bonn');
             ANALYZE;",
        )
        .expect("fill db");
        Self { dir, path }
    }

    fn count(&self) -> i64 {
        Connection::open(&self.path)
            .and_then(|c| c.query_row("SELECT count(*) FROM Kunden", [], |r| r.get(0)))
            .expect("count")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn invalid(result: Result<impl std::fmt::Debug, CapabilityError>) -> String {
    match result {
        Err(CapabilityError::InvalidInput(m)) => m,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn one_statement_only_even_without_the_text_check() {
    let fx = Fixture::new("tail");
    let g = Guarded::open(&fx.path).unwrap();
    let m = invalid(query_unchecked(&g, T, "SELECT 1; SELECT 2", &[], 10));
    assert_eq!(m, "only one statement per query");
    // With the authorizer the DELETE in the tail is refused while preparing;
    // without it, the tail check alone refuses the query.
    let m = invalid(query_unchecked(
        &g,
        T,
        "SELECT 1; DELETE FROM Kunden",
        &[],
        10,
    ));
    assert!(m.contains("DELETE from `Kunden`"), "{m}");
    let bare = Guarded::open_without_authorizer(&fx.path).unwrap();
    let m = invalid(query_unchecked(
        &bare,
        T,
        "SELECT 1; DELETE FROM Kunden",
        &[],
        10,
    ));
    assert_eq!(m, "only one statement per query");
    // A trailing semicolon or comment is not a second statement.
    for sql in ["SELECT 1;", "SELECT 1; -- done", "SELECT 1 /* x */ ;  "] {
        let rows = query_unchecked(&g, T, sql, &[], 10).unwrap();
        assert_eq!(rows.rows, vec![vec![Value::Integer(1)]], "{sql}");
    }
    assert_eq!(fx.count(), 3);
}

#[test]
fn statement_must_be_read_only_even_without_the_authorizer() {
    let fx = Fixture::new("readonly");
    let bare = Guarded::open_without_authorizer(&fx.path).unwrap();
    for sql in [
        "DELETE FROM Kunden",
        "INSERT INTO Kunden VALUES (1, 'x', 'y')",
        "UPDATE Kunden SET Name = 'x'",
        "CREATE TABLE t (x)",
    ] {
        let m = invalid(query_unchecked(&bare, T, sql, &[], 10));
        assert!(m.contains("not read-only"), "{sql}: {m}");
    }
    assert_eq!(fx.count(), 3);
}

#[test]
fn attach_is_limited_even_without_the_authorizer() {
    // ATTACH counts as read-only for SQLite (it writes no file content),
    // so without the authorizer the attached-database limit of 0 stops it.
    let fx = Fixture::new("attach");
    let target = fx.dir.join("other.db");
    let sql = format!("ATTACH DATABASE '{}' AS other", target.display());
    let bare = Guarded::open_without_authorizer(&fx.path).unwrap();
    let m = invalid(query_unchecked(&bare, T, &sql, &[], 10));
    assert!(m.contains("too many attached databases"), "{m}");
    assert!(!target.exists());
}

#[test]
fn connection_itself_refuses_writes() {
    // Below every check: the connection is opened read-only with
    // `query_only`, so even a direct `execute` cannot write.
    let fx = Fixture::new("flags");
    let bare = Guarded::open_without_authorizer(&fx.path).unwrap();
    let err = bare
        .run(T, |conn| Ok(conn.execute("DELETE FROM Kunden", [])?))
        .unwrap_err();
    assert!(
        matches!(&err, CapabilityError::InvalidInput(m) if m.contains("readonly")),
        "{err:?}"
    );
    let err = bare
        .run(T, |conn| {
            conn.execute_batch("PRAGMA query_only = OFF; DELETE FROM Kunden;")
                .map_err(Failure::from)
        })
        .unwrap_err();
    assert!(matches!(err, CapabilityError::InvalidInput(_)), "{err:?}");
    assert_eq!(fx.count(), 3);
}

#[test]
fn authorizer_allows_only_reads() {
    let fx = Fixture::new("auth");
    let g = Guarded::open(&fx.path).unwrap();
    let denied = [
        ("DELETE FROM Kunden", "DELETE from `Kunden`"),
        (
            "INSERT INTO Kunden VALUES (1, 'x', 'y')",
            "INSERT into `Kunden`",
        ),
        (
            "WITH x AS (SELECT 1) DELETE FROM Kunden",
            "DELETE from `Kunden`",
        ),
        ("EXPLAIN DELETE FROM Kunden", "DELETE from `Kunden`"),
        ("ATTACH DATABASE '/tmp/x' AS y", "ATTACH"),
        ("DETACH DATABASE main", "DETACH"),
        ("PRAGMA writable_schema = 1", "PRAGMA writable_schema = 1"),
        ("PRAGMA query_only = OFF", "PRAGMA query_only"),
        ("PRAGMA database_list", "PRAGMA database_list"),
        ("SELECT * FROM pragma_database_list", "PRAGMA database_list"),
        (
            "SELECT load_extension('/tmp/evil')",
            "function `load_extension`",
        ),
        ("CREATE TABLE t (x)", "changing the schema"),
        ("DROP TABLE Kunden", "changing the schema"),
        ("BEGIN", "transaction"),
    ];
    for (sql, expected) in denied {
        let m = invalid(query_unchecked(&g, T, sql, &[], 10));
        assert!(
            m.contains(expected) && m.contains("not allowed"),
            "{sql}: {m}"
        );
    }
    // Reads, recursion and column introspection are allowed.
    for sql in [
        "SELECT count(*) FROM Kunden",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5) SELECT sum(x) FROM c",
        "SELECT * FROM KundenOrte",
        "PRAGMA table_info(Kunden)",
        "SELECT name FROM pragma_table_xinfo('Kunden')",
        "SELECT name FROM sqlite_schema",
    ] {
        query_unchecked(&g, T, sql, &[], 10).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    assert_eq!(fx.count(), 3);
}

#[test]
fn slow_statement_is_interrupted_and_connection_reusable() {
    let fx = Fixture::new("slow");
    let g = Guarded::open(&fx.path).unwrap();
    let slow =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let started = Instant::now();
    let err = query(&g, TimeLimit::new(Duration::from_millis(50)), slow, &[], 10).unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        err,
        CapabilityError::LimitExceeded("query took longer than 50ms".into())
    );
    assert!(took < Duration::from_secs(2), "interrupt took {took:?}");
    // The deadline is per call: the next query on the same connection runs.
    let rows = query(&g, T, "SELECT count(*) FROM Kunden", &[], 10).unwrap();
    assert_eq!(rows.rows, vec![vec![Value::Integer(3)]]);
}

#[test]
fn binds_every_value_type_and_checks_the_count() {
    let fx = Fixture::new("params");
    let g = Guarded::open(&fx.path).unwrap();
    let params = vec![
        Value::Null,
        Value::Integer(-7),
        Value::Real(2.5),
        Value::Text("Köln".into()),
        Value::Blob(vec![0, 1, 255]),
    ];
    let rows = query(&g, T, "SELECT ?1, ?2, ?3, ?4, ?5", &params, 10).unwrap();
    assert_eq!(rows.rows, vec![params.clone()]);
    let rows = query(
        &g,
        T,
        "SELECT Name FROM Kunden WHERE Ort = ?1",
        &[Value::Text("Bonn".into())],
        10,
    )
    .unwrap();
    assert_eq!(rows.columns, vec!["Name"]);
    assert_eq!(rows.rows, vec![vec![Value::Text("Weber".into())]]);

    let m = invalid(query(&g, T, "SELECT ?1, ?2", &params[..1], 10));
    assert!(m.contains("2 parameter(s) but 1 value(s)"), "{m}");
    let m = invalid(query(&g, T, "SELECT 1", &params[..1], 10));
    assert!(m.contains("0 parameter(s) but 1 value(s)"), "{m}");
}

#[test]
fn reports_sqlite_messages_and_truncates() {
    let fx = Fixture::new("rows");
    let g = Guarded::open(&fx.path).unwrap();
    let m = invalid(query(&g, T, "SELECT Foo FROM Kunden", &[], 10));
    assert_eq!(m, "no such column: Foo");
    let m = invalid(query(&g, T, "SELECT * FROM Nope", &[], 10));
    assert_eq!(m, "no such table: Nope");
    invalid(query(&g, T, "SELEC 1", &[], 10));

    let sql = "SELECT KundenNr FROM Kunden ORDER BY KundenNr";
    let rows = query(&g, T, sql, &[], 2).unwrap();
    assert_eq!(rows.rows.len(), 2);
    assert!(rows.truncated);
    let rows = query(&g, T, sql, &[], 3).unwrap();
    assert_eq!(rows.rows.len(), 3);
    assert!(!rows.truncated);
    let rows = query(&g, T, sql, &[], 0).unwrap();
    assert!(rows.rows.is_empty() && rows.truncated);
    let rows = query(&g, T, "SELECT * FROM Kunden WHERE 0", &[], 0).unwrap();
    assert_eq!(rows.columns, vec!["KundenNr", "Name", "Ort"]);
    assert!(rows.rows.is_empty() && !rows.truncated);
}

#[test]
fn lists_and_describes_tables_safely() {
    let fx = Fixture::new("schema");
    let g = Guarded::open(&fx.path).unwrap();
    // `sqlite_stat1` (from ANALYZE) is internal; `sqlitelike` is not.
    assert_eq!(
        list_tables(&g, T).unwrap(),
        vec!["Kunden", "KundenOrte", "sqlitelike"]
    );

    let cols = describe(&g, T, "kunden").unwrap();
    let summary: Vec<_> = cols
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.data_type.as_str(),
                c.nullable,
                c.primary_key,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("KundenNr", "INTEGER", false, true),
            ("Name", "TEXT", false, false),
            ("Ort", "TEXT", true, false),
        ]
    );
    let composite = describe(&g, T, "sqlitelike").unwrap();
    assert!(composite.iter().all(|c| c.primary_key && c.nullable));

    for name in [
        "Nope",
        "Kunden\"; DROP TABLE Kunden; --",
        "Kunden') UNION SELECT 1 --",
        "sqlite_stat1",
        "",
    ] {
        assert_eq!(
            invalid(describe(&g, T, name)),
            format!("no table named `{name}`")
        );
    }
    assert_eq!(fx.count(), 3);
}
