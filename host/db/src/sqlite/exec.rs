//! The three `db` operations on one defended connection. They block, and
//! run on the blocking pool.

use rusqlite::types::{ToSqlOutput, ValueRef};
use weft_runtime::capabilities::db::check_read_only;
use weft_runtime::{CapabilityError, Column, Rows, Value};

use super::guard::{Guarded, TimeLimit};

/// Names of user tables and views, sorted (`LIKE` needs the escape: `_`
/// alone matches any character).
const LIST_TABLES: &str = "SELECT name FROM sqlite_schema \
     WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
     ORDER BY name";

/// The stored spelling of a table or view name (names are
/// case-insensitive in SQLite).
const FIND_TABLE: &str = "SELECT name FROM sqlite_schema \
     WHERE type IN ('table', 'view') AND name = ?1 COLLATE NOCASE \
     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";

/// Columns of a table; the name is bound, never spliced into the SQL.
const TABLE_INFO: &str =
    "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid";

/// Runs one read-only statement, returning at most `max_rows` rows.
pub(crate) fn query(
    g: &Guarded,
    time: TimeLimit,
    sql: &str,
    params: &[Value],
    max_rows: usize,
) -> Result<Rows, CapabilityError> {
    check_read_only(sql)?;
    query_unchecked(g, time, sql, params, max_rows)
}

/// [`query`] without the textual pre-check, so tests can show the SQLite
/// layers hold on their own.
pub(crate) fn query_unchecked(
    g: &Guarded,
    time: TimeLimit,
    sql: &str,
    params: &[Value],
    max_rows: usize,
) -> Result<Rows, CapabilityError> {
    g.run(time, |conn| {
        // `prepare` fails with `MultipleStatement` when anything but
        // whitespace and comments follows the first statement; the
        // authorizer runs while preparing.
        let mut stmt = conn.prepare(sql)?;
        if !stmt.readonly() {
            return Err(CapabilityError::InvalidInput(
                "the statement is not read-only: the database is read-only".into(),
            )
            .into());
        }
        let expected = stmt.parameter_count();
        if expected != params.len() {
            return Err(CapabilityError::InvalidInput(format!(
                "the query has {expected} parameter(s) but {} value(s) were given",
                params.len()
            ))
            .into());
        }
        for (i, value) in params.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, to_sql(value))?;
        }
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let width = columns.len();
        let mut rows = Vec::new();
        let mut truncated = false;
        let mut cursor = stmt.raw_query();
        while let Some(row) = cursor.next()? {
            if rows.len() == max_rows {
                truncated = true;
                break;
            }
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(from_sql(row.get_ref(i)?));
            }
            rows.push(values);
        }
        Ok(Rows {
            columns,
            rows,
            truncated,
        })
    })
}

/// Names of the user tables and views, sorted.
pub(crate) fn list_tables(g: &Guarded, time: TimeLimit) -> Result<Vec<String>, CapabilityError> {
    g.run(time, |conn| {
        let mut stmt = conn.prepare(LIST_TABLES)?;
        let names = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    })
}

/// Columns of `table` (a table or view, matched case-insensitively).
pub(crate) fn describe(
    g: &Guarded,
    time: TimeLimit,
    table: &str,
) -> Result<Vec<Column>, CapabilityError> {
    g.run(time, |conn| {
        let mut find = conn.prepare(FIND_TABLE)?;
        let mut found = find.query([table])?;
        let Some(row) = found.next()? else {
            return Err(CapabilityError::InvalidInput(format!("no table named `{table}`")).into());
        };
        let name: String = row.get(0)?;

        let mut info = conn.prepare(TABLE_INFO)?;
        let raw = info
            .query_map([&name], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)? != 0,
                    row.get::<_, i64>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let key_columns = raw.iter().filter(|c| c.3 > 0).count();
        Ok(raw
            .into_iter()
            .map(|(name, data_type, not_null, pk)| {
                // A lone INTEGER PRIMARY KEY is the rowid and never NULL,
                // although SQLite does not report it as NOT NULL.
                let rowid = pk > 0 && key_columns == 1 && data_type.eq_ignore_ascii_case("INTEGER");
                Column {
                    name,
                    data_type,
                    nullable: !not_null && !rowid,
                    primary_key: pk > 0,
                }
            })
            .collect())
    })
}

fn to_sql(value: &Value) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match value {
        Value::Null => ValueRef::Null,
        Value::Integer(i) => ValueRef::Integer(*i),
        Value::Real(r) => ValueRef::Real(*r),
        Value::Text(s) => ValueRef::Text(s.as_bytes()),
        Value::Blob(b) => ValueRef::Blob(b),
    })
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        // SQLite does not enforce UTF-8; a node gets the text with
        // replacement characters rather than an error.
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
