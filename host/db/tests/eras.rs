//! The generated Eras sample: shape, consistency, determinism, `ensure`.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::path::Path;
use std::time::Instant;

use common::{TempDir, content_digest, ctx};
use rusqlite::Connection;
use weft_db::eras::{self, ErasSpec, TABLES};
use weft_db::{DbError, SqliteDb, SqliteDbConfig};
use weft_runtime::Value;
use weft_runtime::capabilities::db::Database;

fn small() -> ErasSpec {
    ErasSpec {
        customers: 60,
        properties: 130,
        units: 600,
        ..ErasSpec::default()
    }
}

fn scalar(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Consistency checks any generated database must pass.
fn check_consistency(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let fk_problems: i64 = scalar(&conn, "SELECT count(*) FROM pragma_foreign_key_check");
    assert_eq!(fk_problems, 0, "dangling foreign keys");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let checks = [
        // Customer numbers are consecutive from 1000.
        (
            "SELECT max(KundenNr) - min(KundenNr) + 1 - count(*) FROM Kunden",
            0,
        ),
        ("SELECT min(KundenNr) FROM Kunden", 1000),
        // Everybody owns something; every property and unit is used.
        (
            "SELECT count(*) FROM Kunden k WHERE NOT EXISTS (SELECT 1 FROM Objekte o WHERE o.KundenNr = k.KundenNr)",
            0,
        ),
        (
            "SELECT count(*) FROM Objekte o WHERE NOT EXISTS (SELECT 1 FROM Nutzeinheiten n WHERE n.ObjektNr = o.ObjektNr)",
            0,
        ),
        (
            "SELECT count(*) FROM Nutzeinheiten n WHERE NOT EXISTS (SELECT 1 FROM Geraete g WHERE g.NutzeinheitNr = n.NutzeinheitNr)",
            0,
        ),
        // A property's living area is the sum of its units'.
        (
            "SELECT count(*) FROM Objekte o WHERE abs(o.Wohnflaeche - (SELECT sum(Flaeche) FROM Nutzeinheiten n WHERE n.ObjektNr = o.ObjektNr)) > 0.005",
            0,
        ),
        // Readings grow, in time order, per device.
        (
            "SELECT count(*) FROM (SELECT Wert, Datum, lag(Wert) OVER w AS pw, lag(Datum) OVER w AS pd FROM Ablesungen WINDOW w AS (PARTITION BY GeraetNr ORDER BY AblesungNr)) WHERE Wert < pw OR Datum <= pd",
            0,
        ),
        // Smoke alarms are not read; every other device is.
        (
            "SELECT count(*) FROM Ablesungen a JOIN Geraete g USING (GeraetNr) WHERE g.Typ = 'Rauchwarnmelder'",
            0,
        ),
        (
            "SELECT count(*) FROM Geraete g WHERE g.Typ <> 'Rauchwarnmelder' AND NOT EXISTS (SELECT 1 FROM Ablesungen a WHERE a.GeraetNr = g.GeraetNr)",
            0,
        ),
        // Units match device types.
        (
            "SELECT count(*) FROM Ablesungen a JOIN Geraete g USING (GeraetNr) WHERE Einheit <> CASE g.Typ WHEN 'Heizkostenverteiler' THEN 'Einheiten' WHEN 'Wärmezähler' THEN 'kWh' ELSE 'm³' END",
            0,
        ),
        // Only meters have a calibration date, a past one.
        (
            "SELECT count(*) FROM Geraete WHERE (Eichdatum IS NULL) <> (Typ IN ('Heizkostenverteiler', 'Rauchwarnmelder'))",
            0,
        ),
        (
            "SELECT count(*) FROM Geraete WHERE date(Eichdatum) IS NOT Eichdatum OR Eichdatum > '2025-12-31' OR date(Einbaudatum) IS NOT Einbaudatum OR Einbaudatum > '2025-12-31'",
            0,
        ),
        (
            "SELECT count(*) FROM Ablesungen a JOIN Geraete g USING (GeraetNr) WHERE a.Datum < g.Einbaudatum",
            0,
        ),
        // Dates are ISO dates.
        (
            "SELECT count(*) FROM Ablesungen WHERE date(Datum) IS NOT Datum",
            0,
        ),
        (
            "SELECT count(*) FROM Kunden WHERE date(KundeSeit) IS NOT KundeSeit",
            0,
        ),
        (
            "SELECT count(*) FROM Kunden WHERE Email NOT LIKE '%_@_%._%' OR Email GLOB '*[^a-z0-9.@-]*'",
            0,
        ),
        (
            "SELECT count(*) FROM Nutzeinheiten WHERE (Nutzer = 'Leerstand') <> (Personen = 0)",
            0,
        ),
    ];
    for (sql, expected) in checks {
        assert_eq!(scalar(&conn, sql), expected, "{sql}");
    }
}

/// The sample is varied: every kind of customer, device and reading occurs.
fn check_variety(path: &Path) {
    let conn = Connection::open(path).unwrap();
    for typ in [
        "Heizkostenverteiler",
        "Wärmezähler",
        "Warmwasserzähler",
        "Kaltwasserzähler",
        "Rauchwarnmelder",
    ] {
        let n: i64 = conn
            .query_row("SELECT count(*) FROM Geraete WHERE Typ = ?1", [typ], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(n > 0, "no {typ}");
    }
    for art in ["Funk", "vor Ort", "Schätzung"] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM Ablesungen WHERE Ableseart = ?1",
                [art],
                |r| r.get(0),
            )
            .unwrap();
        assert!(n > 0, "no reading by {art}");
    }
    let firms = scalar(&conn, "SELECT count(*) FROM Kunden WHERE Firma IS NOT NULL");
    let people = scalar(&conn, "SELECT count(*) FROM Kunden WHERE Firma IS NULL");
    assert!(
        firms > 0 && people > firms,
        "{firms} firms, {people} people"
    );
}

#[test]
fn small_spec_is_complete_and_consistent() {
    let dir = TempDir::new("small");
    let path = dir.join("eras.db");
    let spec = small();
    let summary = eras::generate(&path, &spec).unwrap();
    println!("small: {summary}");
    assert!(summary.generated);
    assert_eq!(
        (summary.customers, summary.properties, summary.units),
        (60, 130, 600)
    );
    assert!(
        summary.devices >= 1_200 && summary.devices <= 2_700,
        "{summary}"
    );
    assert!(summary.readings >= 4 * summary.devices / 2, "{summary}");
    check_consistency(&path);
    check_variety(&path);
    // Only the database is left: no temporary file, no journal.
    assert_eq!(dir.entries(), vec!["eras.db"]);
    let conn = Connection::open(&path).unwrap();
    assert_eq!(scalar(&conn, "PRAGMA user_version"), 1);
    let devices = scalar(&conn, "SELECT count(*) FROM Geraete");
    assert_eq!(devices as u64, summary.devices);
}

#[test]
fn default_spec_has_the_advertised_size() {
    let dir = TempDir::new("default");
    let path = dir.join("eras.db");
    let started = Instant::now();
    let summary = eras::generate(&path, &ErasSpec::default()).unwrap();
    let took = started.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();
    println!("default: {summary}; {:.1} MiB", size as f64 / 1_048_576.0);
    assert_eq!(summary.customers, 400);
    assert_eq!(summary.properties, 900);
    assert_eq!(summary.units, 4_000);
    assert!((10_000..=14_000).contains(&summary.devices), "{summary}");
    assert!((40_000..=60_000).contains(&summary.readings), "{summary}");
    assert!(took.as_secs() < 30, "generation took {took:?}");
    check_consistency(&path);
    check_variety(&path);

    // "How many devices does customer 1042 have?" has an answer.
    let conn = Connection::open(&path).unwrap();
    let (properties, devices): (i64, i64) = conn
        .query_row(
            "SELECT count(DISTINCT o.ObjektNr), count(g.GeraetNr)
               FROM Kunden k
               JOIN Objekte o ON o.KundenNr = k.KundenNr
               JOIN Nutzeinheiten n ON n.ObjektNr = o.ObjektNr
               JOIN Geraete g ON g.NutzeinheitNr = n.NutzeinheitNr
              WHERE k.KundenNr = 1042",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    println!("customer 1042: {properties} properties, {devices} devices");
    assert!(properties >= 1 && devices >= 1);
}

#[test]
fn generation_is_deterministic() {
    let dir = TempDir::new("determinism");
    let spec = small();
    let a = dir.join("a.db");
    let b = dir.join("b.db");
    eras::generate(&a, &spec).unwrap();
    eras::generate(&b, &spec).unwrap();
    let digest = content_digest(&a);
    assert_eq!(digest, content_digest(&b));

    let other = dir.join("other.db");
    eras::generate(&other, &ErasSpec { seed: 7, ..spec }).unwrap();
    assert_ne!(digest, content_digest(&other));
}

/// Pins the generator's output, so a change to the data (or to the random
/// source underneath) is noticed. If the change is intended, update the
/// digest.
#[test]
fn small_spec_digest_is_pinned() {
    let dir = TempDir::new("pinned");
    let path = dir.join("eras.db");
    eras::generate(&path, &small()).unwrap();
    assert_eq!(content_digest(&path), PINNED_DIGEST);
}

const PINNED_DIGEST: &str = "4293e2dbd0754b2c04add989cc77c9b168f9d65b203ef32c4ac1a4ccfdd01591";

#[test]
fn ensure_generates_once() {
    let dir = TempDir::new("ensure");
    let path = dir.join("data").join("eras.db");
    let spec = ErasSpec {
        customers: 10,
        properties: 20,
        units: 60,
        ..ErasSpec::default()
    };
    let first = eras::ensure(&path, &spec).unwrap();
    assert!(first.generated);
    let bytes = std::fs::read(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();

    // Even with a different spec, an existing Eras database is kept.
    let again = eras::ensure(&path, &small()).unwrap();
    assert!(!again.generated);
    assert_eq!(
        (
            again.customers,
            again.properties,
            again.units,
            again.devices,
            again.readings
        ),
        (
            first.customers,
            first.properties,
            first.units,
            first.devices,
            first.readings
        )
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
    assert!(again.to_string().contains("found"), "{again}");
}

#[test]
fn ensure_replaces_broken_files_but_not_other_databases() {
    let dir = TempDir::new("ensure-broken");
    let spec = ErasSpec {
        customers: 3,
        properties: 3,
        units: 3,
        ..ErasSpec::default()
    };
    for (name, content) in [("empty.db", &b""[..]), ("garbage.db", &[b'x'; 4096][..])] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let summary = eras::ensure(&path, &spec).unwrap();
        assert!(summary.generated, "{name}");
        check_consistency(&path);
    }

    // An Eras database missing a table is regenerated.
    let partial = dir.join("partial.db");
    eras::generate(&partial, &spec).unwrap();
    Connection::open(&partial)
        .unwrap()
        .execute_batch("DROP TABLE Ablesungen")
        .unwrap();
    assert!(eras::ensure(&partial, &spec).unwrap().generated);

    // Somebody else's database is never overwritten.
    let foreign = dir.join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch(
            "CREATE TABLE Rechnungen (Nr INTEGER PRIMARY KEY); INSERT INTO Rechnungen VALUES (1);",
        )
        .unwrap();
    let before = std::fs::read(&foreign).unwrap();
    match eras::ensure(&foreign, &spec) {
        Err(DbError::NotEras { table, .. }) => assert_eq!(table, "Rechnungen"),
        other => panic!("expected NotEras, got {other:?}"),
    }
    assert_eq!(std::fs::read(&foreign).unwrap(), before);
}

#[test]
fn generate_replaces_an_existing_file_whole() {
    let dir = TempDir::new("replace");
    let path = dir.join("eras.db");
    let small_spec = ErasSpec {
        customers: 4,
        properties: 5,
        units: 9,
        ..ErasSpec::default()
    };
    eras::generate(&path, &small()).unwrap();
    let summary = eras::generate(&path, &small_spec).unwrap();
    assert_eq!(summary.units, 9);
    let conn = Connection::open(&path).unwrap();
    assert_eq!(scalar(&conn, "SELECT count(*) FROM Nutzeinheiten"), 9);
    assert_eq!(dir.entries(), vec!["eras.db"]);
}

#[test]
fn invalid_specs_are_rejected_before_writing() {
    let dir = TempDir::new("invalid");
    let path = dir.join("eras.db");
    let bad = [
        ErasSpec {
            customers: 0,
            ..small()
        },
        ErasSpec {
            properties: 10,
            ..small()
        },
        ErasSpec {
            units: 100,
            ..small()
        },
        ErasSpec {
            first_reading_year: 2026,
            last_reading_year: 2025,
            ..small()
        },
    ];
    for spec in bad {
        let err = eras::generate(&path, &spec).unwrap_err();
        assert!(matches!(err, DbError::InvalidSpec(_)), "{spec:?}: {err:?}");
    }
    assert!(dir.entries().is_empty());
    let tiny = ErasSpec::scaled(0.0);
    assert_eq!((tiny.customers, tiny.properties, tiny.units), (1, 1, 1));
    let half = ErasSpec::scaled(0.5);
    assert_eq!(
        (half.customers, half.properties, half.units),
        (200, 450, 2_000)
    );
    eras::generate(&path, &tiny).unwrap();
    check_consistency(&path);
}

#[tokio::test]
async fn the_capability_reads_the_sample() {
    let dir = TempDir::new("capability");
    let path = dir.join("eras.db");
    eras::generate(&path, &small()).unwrap();
    let db = SqliteDb::open(&path, SqliteDbConfig::default()).unwrap();
    let cx = ctx();

    let mut expected: Vec<&str> = TABLES.to_vec();
    expected.sort_unstable();
    assert_eq!(db.list_tables(&cx).await.unwrap(), expected);

    let cols = db.describe(&cx, "Geraete").await.unwrap();
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "GeraetNr",
            "NutzeinheitNr",
            "Typ",
            "Seriennummer",
            "Hersteller",
            "Raum",
            "Einbaudatum",
            "Eichdatum"
        ]
    );
    assert!(cols[0].primary_key && !cols[0].nullable);
    assert!(!cols[2].nullable && cols[7].nullable);

    let rows = db
        .query(
            &cx,
            "SELECT count(*) FROM Geraete g
               JOIN Nutzeinheiten n ON n.NutzeinheitNr = g.NutzeinheitNr
               JOIN Objekte o ON o.ObjektNr = n.ObjektNr
              WHERE o.KundenNr = ?1",
            &[Value::Integer(1042)],
            10,
        )
        .await
        .unwrap();
    match rows.rows.as_slice() {
        [row] => assert!(matches!(row[0], Value::Integer(n) if n > 0), "{row:?}"),
        other => panic!("{other:?}"),
    }
    let err = db.query(&cx, "DELETE FROM Ablesungen", &[], 10).await;
    assert!(err.is_err());
}
