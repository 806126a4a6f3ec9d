//! The sample Eras database: heating-cost billing ("Heizkostenabrechnung")
//! data for the seed system's `ErasExpert`.
//!
//! Customers (`Kunden`) own properties (`Objekte`), which hold
//! units (`Nutzeinheiten`), which hold metering devices (`Geraete`) with
//! readings (`Ablesungen`). Customer numbers start at 1000 and are
//! consecutive; every customer owns at least one property. The data is
//! drawn from a seeded random source with integer arithmetic only, so a
//! spec always yields the same rows, on every platform.
//!
//! [`generate`] writes into a temporary file next to the target and renames
//! it into place only when complete, so a crash never leaves a half-written
//! database behind; [`ensure`] generates only when needed.

mod buildings;
mod calendar;
mod customers;
mod devices;
mod names;
mod random;
mod schema;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::DbError;
use buildings::ReadingYears;

/// The Eras tables, parents before children.
pub const TABLES: [&str; 5] = [
    "Kunden",
    "Objekte",
    "Nutzeinheiten",
    "Geraete",
    "Ablesungen",
];

/// What to generate. The defaults give about 400 customers, 900
/// properties, 4000 units, 12 000 devices and 50 000 readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasSpec {
    /// Seed of the random source: the same spec always gives the same data.
    pub seed: u64,
    /// Number of customers (`Kunden`), numbered from 1000.
    pub customers: u32,
    /// Number of properties (`Objekte`), at least one per customer.
    pub properties: u32,
    /// Number of units (`Nutzeinheiten`), at least one per property.
    /// Devices (about three per unit) and readings follow from it.
    pub units: u32,
    /// First year with readings (devices may be older).
    pub first_reading_year: i32,
    /// Last year with readings (a year-end reading each year).
    pub last_reading_year: i32,
}

impl Default for ErasSpec {
    fn default() -> Self {
        Self {
            seed: 0x4552_4153, // "ERAS"
            customers: 400,
            properties: 900,
            units: 4_000,
            first_reading_year: 2021,
            last_reading_year: 2025,
        }
    }
}

impl ErasSpec {
    /// The default spec with customers, properties and units multiplied by
    /// `factor` (each at least 1; a factor that is not a positive number
    /// gives the smallest database).
    pub fn scaled(factor: f64) -> Self {
        let base = Self::default();
        let scale = |n: u32| -> u32 {
            let x = (f64::from(n) * factor).round();
            if x.is_finite() && x >= 1.0 {
                x.min(f64::from(u32::MAX)) as u32
            } else {
                1
            }
        };
        let customers = scale(base.customers);
        let properties = scale(base.properties).max(customers);
        let units = scale(base.units).max(properties);
        Self {
            customers,
            properties,
            units,
            ..base
        }
    }

    fn validate(&self) -> Result<(), DbError> {
        let fail = |m: String| Err(DbError::InvalidSpec(m));
        if self.customers == 0 || self.customers > 1_000_000 {
            return fail(format!(
                "customers must be 1 to 1000000, not {}",
                self.customers
            ));
        }
        if self.properties < self.customers {
            return fail(format!(
                "every customer owns a property: properties ({}) must be at least customers ({})",
                self.properties, self.customers
            ));
        }
        if self.units < self.properties {
            return fail(format!(
                "every property has a unit: units ({}) must be at least properties ({})",
                self.units, self.properties
            ));
        }
        if !(1900..=9999).contains(&self.first_reading_year)
            || !(self.first_reading_year..=9999).contains(&self.last_reading_year)
        {
            return fail(format!(
                "reading years {}..={} must be a range within 1900..=9999",
                self.first_reading_year, self.last_reading_year
            ));
        }
        Ok(())
    }
}

/// What an Eras database holds, and how long generating or checking it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasSummary {
    /// Rows in `Kunden`.
    pub customers: u64,
    /// Rows in `Objekte`.
    pub properties: u64,
    /// Rows in `Nutzeinheiten`.
    pub units: u64,
    /// Rows in `Geraete`.
    pub devices: u64,
    /// Rows in `Ablesungen`.
    pub readings: u64,
    /// Whether the database was written by this call (rather than found).
    pub generated: bool,
    /// Time spent generating, or checking the existing database.
    pub elapsed: Duration,
}

impl std::fmt::Display for ErasSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} customers, {} properties, {} units, {} devices, {} readings ({} in {:.2?})",
            self.customers,
            self.properties,
            self.units,
            self.devices,
            self.readings,
            if self.generated { "generated" } else { "found" },
            self.elapsed,
        )
    }
}

/// Generates the Eras database at `path` (replacing any file there), and
/// returns its counts. Parent directories are created as needed.
pub fn generate(path: &Path, spec: &ErasSpec) -> Result<ErasSummary, DbError> {
    spec.validate()?;
    let started = Instant::now();
    let tmp = temp_path(path)?;
    if let Some(dir) = tmp.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_error("create the directory", dir))?;
    }
    remove_if_present(&tmp)?;
    let result = write_file(&tmp, spec).and_then(|counts| {
        fs::rename(&tmp, path).map_err(io_error("move the new database to", path))?;
        sync_dir(path);
        Ok(counts)
    });
    if result.is_err() {
        // Best effort: the error being returned matters more.
        let _ = fs::remove_file(&tmp);
    }
    let w = result?;
    let summary = ErasSummary {
        customers: u64::from(spec.customers),
        properties: w.properties.unsigned_abs(),
        units: w.units.unsigned_abs(),
        devices: w.devices.unsigned_abs(),
        readings: w.readings.unsigned_abs(),
        generated: true,
        elapsed: started.elapsed(),
    };
    tracing::info!(path = %path.display(), %summary, "generated the Eras database");
    Ok(summary)
}

/// Returns the counts of the Eras database at `path`, generating it first
/// if the file is missing or is not a complete Eras database (a SQLite
/// database with tables of its own is never overwritten:
/// [`DbError::NotEras`]).
pub fn ensure(path: &Path, spec: &ErasSpec) -> Result<ErasSummary, DbError> {
    let started = Instant::now();
    match inspect(path)? {
        State::Eras(counts) => Ok(ErasSummary {
            generated: false,
            elapsed: started.elapsed(),
            ..counts
        }),
        State::Missing => generate(path, spec),
        State::Unusable(reason) => {
            tracing::warn!(path = %path.display(), reason, "regenerating the Eras database");
            generate(path, spec)
        }
    }
}

/// What [`inspect`] found at a path.
enum State {
    Missing,
    Unusable(String),
    Eras(ErasSummary),
}

fn inspect(path: &Path) -> Result<State, DbError> {
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::Missing),
        Err(e) => return Err(io_error("inspect", path)(e)),
        Ok(m) if !m.is_file() => {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
            return Err(io_error("use", path)(e));
        }
        Ok(m) if m.len() == 0 => return Ok(State::Unusable("the file is empty".into())),
        Ok(_) => {}
    }
    let read_err = |source| DbError::Read {
        path: path.to_path_buf(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|source| DbError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let tables = match table_columns(&conn) {
        Ok(tables) => tables,
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            return Ok(State::Unusable("not a SQLite database".into()));
        }
        Err(e) => return Err(read_err(e)),
    };
    let complete = schema::COLUMNS.iter().all(|(name, columns)| {
        tables.iter().any(|(t, cols)| {
            t == name && cols.iter().map(String::as_str).eq(columns.iter().copied())
        })
    });
    if complete {
        let counts = conn
            .query_row(
                "SELECT (SELECT count(*) FROM Kunden), (SELECT count(*) FROM Objekte), \
                 (SELECT count(*) FROM Nutzeinheiten), (SELECT count(*) FROM Geraete), \
                 (SELECT count(*) FROM Ablesungen)",
                [],
                |r| {
                    let count = |i| r.get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0));
                    Ok(ErasSummary {
                        customers: count(0)?,
                        properties: count(1)?,
                        units: count(2)?,
                        devices: count(3)?,
                        readings: count(4)?,
                        generated: false,
                        elapsed: Duration::ZERO,
                    })
                },
            )
            .map_err(read_err)?;
        return Ok(State::Eras(counts));
    }
    if let Some((foreign, _)) = tables.iter().find(|(t, _)| !TABLES.contains(&t.as_str())) {
        return Err(DbError::NotEras {
            path: path.to_path_buf(),
            table: foreign.clone(),
        });
    }
    Ok(State::Unusable(
        "the Eras tables are missing or incomplete".into(),
    ))
}

/// Every user table with its column names.
fn table_columns(conn: &Connection) -> rusqlite::Result<Vec<(String, Vec<String>)>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut info = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    names
        .into_iter()
        .map(|name| {
            let columns = info
                .query_map([&name], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok((name, columns))
        })
        .collect()
}

/// Writes a complete database into `tmp` and flushes it to disk.
fn write_file(tmp: &Path, spec: &ErasSpec) -> Result<buildings::Written, DbError> {
    let write_err = |source| DbError::Write {
        path: tmp.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(tmp).map_err(write_err)?;
    // A crash leaves only the temporary file behind, so the fast settings
    // risk nothing; durability comes from the sync below.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON;",
    )
    .map_err(write_err)?;
    let tx = conn.transaction().map_err(write_err)?;
    tx.execute_batch(schema::DDL).map_err(write_err)?;
    let mut rng = random::Rand::new(spec.seed);
    let customers = customers::write(&tx, &mut rng, spec.customers).map_err(write_err)?;
    let plans = customers::plan(&mut rng, &customers, spec.properties, spec.units);
    let years = ReadingYears {
        first: i64::from(spec.first_reading_year),
        last: i64::from(spec.last_reading_year),
    };
    let written = buildings::write(&tx, &mut rng, &customers, &plans, years).map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = DELETE; PRAGMA user_version = {}; ANALYZE;",
        schema::SCHEMA_VERSION
    ))
    .map_err(write_err)?;
    conn.close().map_err(|(_, e)| write_err(e))?;
    fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_error("flush", tmp))?;
    Ok(written)
}

/// A fresh temporary name next to `path` (same directory, so the final
/// rename is atomic).
fn temp_path(path: &Path) -> Result<PathBuf, DbError> {
    let Some(name) = path.file_name() else {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name");
        return Err(io_error("generate a database at", path)(e));
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Ok(path.with_file_name(format!(
        ".{}.{}-{nanos}.tmp",
        name.to_string_lossy(),
        std::process::id()
    )))
}

fn remove_if_present(path: &Path) -> Result<(), DbError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Makes the rename durable: on Unix a directory entry is synced
/// separately.
#[cfg(unix)]
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync directory");
    }
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) {}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DbError + use<> {
    let path = path.to_path_buf();
    move |source| DbError::Io {
        action,
        path,
        source,
    }
}
