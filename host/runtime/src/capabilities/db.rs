//! The `db` capability: read-only access to the graph's database.

use std::collections::BTreeMap;

use serde_json::json;
use wasmtime::component::{HasData, Linker};

use super::{BoxFuture, CapView};
use crate::sandbox::HostState;
use crate::types::{CallContext, Capability, CapabilityError, Column, Rows, Value};

/// A read-only database a node can inspect and query.
pub trait Database: Send + Sync {
    /// Names of the tables the node may query.
    fn list_tables<'a>(
        &'a self,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<String>, CapabilityError>>;
    /// Columns of `table`.
    fn describe<'a>(
        &'a self,
        ctx: &'a CallContext,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Column>, CapabilityError>>;
    /// Runs one read-only statement, returning at most `max_rows` rows
    /// (with `truncated` set when more were available).
    fn query<'a>(
        &'a self,
        ctx: &'a CallContext,
        sql: &'a str,
        params: &'a [Value],
        max_rows: usize,
    ) -> BoxFuture<'a, Result<Rows, CapabilityError>>;
}

/// An in-memory table set, a test double for the real database backends:
/// `describe` and `list-tables` come from the tables; `query` understands
/// `SELECT * FROM <table>` and otherwise answers from results registered
/// for an exact SQL text.
#[derive(Debug, Default)]
pub struct InMemoryDb {
    tables: BTreeMap<String, (Vec<Column>, Vec<Vec<Value>>)>,
    canned: BTreeMap<String, Rows>,
}

impl InMemoryDb {
    /// Adds a table with its columns and rows.
    pub fn with_table(mut self, name: &str, columns: Vec<Column>, rows: Vec<Vec<Value>>) -> Self {
        self.tables.insert(name.to_owned(), (columns, rows));
        self
    }

    /// Registers the result of one exact SQL text.
    pub fn with_result(mut self, sql: &str, rows: Rows) -> Self {
        self.canned.insert(sql.trim().to_owned(), rows);
        self
    }
}

impl Database for InMemoryDb {
    fn list_tables<'a>(
        &'a self,
        _: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<String>, CapabilityError>> {
        Box::pin(async { Ok(self.tables.keys().cloned().collect()) })
    }

    fn describe<'a>(
        &'a self,
        _: &'a CallContext,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Column>, CapabilityError>> {
        Box::pin(async move {
            self.tables
                .get(table)
                .map(|(cols, _)| cols.clone())
                .ok_or_else(|| CapabilityError::InvalidInput(format!("no table named `{table}`")))
        })
    }

    fn query<'a>(
        &'a self,
        _: &'a CallContext,
        sql: &'a str,
        _params: &'a [Value],
        max_rows: usize,
    ) -> BoxFuture<'a, Result<Rows, CapabilityError>> {
        Box::pin(async move {
            let sql = sql.trim().trim_end_matches(';').trim();
            let mut rows = if let Some(rows) = self.canned.get(sql) {
                rows.clone()
            } else {
                let words: Vec<&str> = sql.split_whitespace().collect();
                match words.as_slice() {
                    [s, "*", f, table]
                        if s.eq_ignore_ascii_case("select") && f.eq_ignore_ascii_case("from") =>
                    {
                        let (cols, data) = self.tables.get(*table).ok_or_else(|| {
                            CapabilityError::InvalidInput(format!("no table named `{table}`"))
                        })?;
                        Rows {
                            columns: cols.iter().map(|c| c.name.clone()).collect(),
                            rows: data.clone(),
                            truncated: false,
                        }
                    }
                    _ => {
                        return Err(CapabilityError::InvalidInput(format!(
                            "the in-memory database cannot run `{sql}`"
                        )));
                    }
                }
            };
            if rows.rows.len() > max_rows {
                rows.rows.truncate(max_rows);
                rows.truncated = true;
            }
            Ok(rows)
        })
    }
}

/// Rejects anything but a single read-only statement, before it reaches a
/// backend (which must enforce read-only access itself as well: this is a
/// first, cheap filter with a clear message, not the security boundary).
///
/// String literals, quoted identifiers and comments are skipped, so
/// `WHERE name = 'a;b'` or a leading `-- comment` are fine; what remains must
/// be one statement starting with `SELECT`, `WITH`, `VALUES` or `EXPLAIN`
/// (after any opening parentheses).
pub fn check_read_only(sql: &str) -> Result<(), CapabilityError> {
    let code = strip_literals_and_comments(sql);
    let body = code.trim().trim_end_matches(';');
    if body.contains(';') {
        return Err(CapabilityError::InvalidInput(
            "only one statement per query".into(),
        ));
    }
    let first = body
        .trim_start_matches(|c: char| c == '(' || c.is_whitespace())
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match first.as_str() {
        "select" | "with" | "values" | "explain" => Ok(()),
        "" => Err(CapabilityError::InvalidInput("empty query".into())),
        other => Err(CapabilityError::InvalidInput(format!(
            "`{other}` statements are not allowed: the database is read-only"
        ))),
    }
}

/// `sql` with every string literal, quoted identifier and comment replaced
/// by a space (an unterminated one runs to the end).
fn strip_literals_and_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                while let Some(d) = chars.next() {
                    if d == close {
                        // A doubled quote is an escaped quote, not the end.
                        if close != ']' && chars.peek() == Some(&close) {
                            chars.next();
                            continue;
                        }
                        break;
                    }
                }
                out.push(' ');
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                out.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Per-invocation state of the `db` capability.
pub(crate) struct DbState {
    pub backend: std::sync::Arc<dyn Database>,
    pub max_rows: usize,
    /// The most bytes one result may hold: the node's output limit.
    pub max_bytes: usize,
}

/// The size of a result: its column names and values (text and blobs by
/// length, numbers as 8 bytes, plus 8 per value).
pub fn rows_bytes(rows: &Rows) -> usize {
    let values: usize = rows
        .rows
        .iter()
        .flatten()
        .map(|v| {
            8 + match v {
                Value::Null => 0,
                Value::Integer(_) | Value::Real(_) => 8,
                Value::Text(t) => t.len(),
                Value::Blob(b) => b.len(),
            }
        })
        .sum();
    values + rows.columns.iter().map(String::len).sum::<usize>()
}

/// Refuses a result bigger than `max_bytes` (the node's output limit).
fn check_bytes(rows: Rows, max_bytes: usize) -> Result<Rows, CapabilityError> {
    let size = rows_bytes(&rows);
    if size > max_bytes {
        return Err(CapabilityError::LimitExceeded(format!(
            "the query's result is {size} bytes ({} rows), over the limit of {max_bytes} bytes \
             (the node's output limit): select fewer columns or rows",
            rows.rows.len()
        )));
    }
    Ok(rows)
}

struct HasDb;
impl HasData for HasDb {
    type Data<'a> = CapView<'a, DbState>;
}

/// Adds the `db` interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use crate::bindings::{v0_1, v0_2, v0_3, v0_4};
    v0_4::weft::node::db::add_to_linker::<HostState, HasDb>(linker, |s| CapView {
        state: &mut s.db,
        shared: &mut s.shared,
    })?;
    v0_3::weft::node::db::add_to_linker::<HostState, HasDb>(linker, |s| CapView {
        state: &mut s.db,
        shared: &mut s.shared,
    })?;
    v0_2::weft::node::db::add_to_linker::<HostState, HasDb>(linker, |s| CapView {
        state: &mut s.db,
        shared: &mut s.shared,
    })?;
    v0_1::weft::node::db::add_to_linker::<HostState, HasDb>(linker, |s| CapView {
        state: &mut s.db,
        shared: &mut s.shared,
    })
}

/// The `db` host functions, for each contract version's bindings.
macro_rules! host {
    ($wit:path, $err:path) => {
        const _: () = {
            use $err as WitError;
            use $wit as wit;

            impl wit::Host for CapView<'_, DbState> {
                #[tracing::instrument(name = "weft.db.list_tables", skip_all)]
                async fn list_tables(&mut self) -> Result<Vec<String>, WitError> {
                    self.shared.admit(Capability::Db, "list-tables")?;
                    let result = self.state.backend.list_tables(&self.shared.call).await;
                    self.shared
                        .record(Capability::Db, "list-tables", json!(null), result)
                        .map_err(Into::into)
                }

                #[tracing::instrument(name = "weft.db.describe", skip_all)]
                async fn describe(&mut self, table: String) -> Result<Vec<wit::Column>, WitError> {
                    self.shared.admit(Capability::Db, "describe")?;
                    let result = self.state.backend.describe(&self.shared.call, &table).await;
                    let result = self.shared.record(
                        Capability::Db,
                        "describe",
                        json!({ "table": table }),
                        result,
                    );
                    Ok(result?.into_iter().map(Into::into).collect())
                }

                #[tracing::instrument(name = "weft.db.query", skip_all)]
                async fn query(
                    &mut self,
                    sql: String,
                    params: Vec<wit::Value>,
                ) -> Result<wit::Rows, WitError> {
                    self.shared.admit(Capability::Db, "query")?;
                    let params: Vec<Value> = params.into_iter().map(Into::into).collect();
                    let result = match check_read_only(&sql) {
                        Ok(()) => self
                            .state
                            .backend
                            .query(&self.shared.call, &sql, &params, self.state.max_rows)
                            .await
                            .and_then(|rows| check_bytes(rows, self.state.max_bytes)),
                        Err(e) => Err(e),
                    };
                    let result = self.shared.record(
                        Capability::Db,
                        "query",
                        json!({ "sql": sql, "params": params }),
                        result,
                    );
                    Ok(result?.into())
                }
            }
        };
    };
}
host!(
    crate::bindings::v0_4::weft::node::db,
    crate::bindings::v0_4::wit::Error
);
host!(
    crate::bindings::v0_3::weft::node::db,
    crate::bindings::v0_3::wit::Error
);
host!(
    crate::bindings::v0_2::weft::node::db,
    crate::bindings::v0_2::wit::Error
);
host!(
    crate::bindings::v0_1::weft::node::db,
    crate::bindings::v0_1::wit::Error
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_guard() {
        assert!(check_read_only("SELECT 1").is_ok());
        assert!(check_read_only("  with x as (select 1) select * from x;").is_ok());
        assert!(
            matches!(check_read_only("DELETE FROM t"), Err(CapabilityError::InvalidInput(m)) if m.contains("read-only"))
        );
        assert!(check_read_only("select 1; drop table t").is_err());
        assert!(check_read_only("").is_err());
        assert!(check_read_only("SELECT * FROM t WHERE name = 'a;b' AND x = 'it''s'").is_ok());
        assert!(check_read_only("-- count them\nSELECT count(*) FROM t").is_ok());
        assert!(check_read_only("/* c; */ (SELECT 1) UNION SELECT 2").is_ok());
        assert!(check_read_only("VALUES (1), (2)").is_ok());
        assert!(check_read_only("SELECT \"a;b\" FROM t").is_ok());
        assert!(check_read_only("SELECT 'x'; DELETE FROM t").is_err());
        assert!(check_read_only("/* SELECT */ DELETE FROM t").is_err());
        assert!(check_read_only("-- SELECT\nDROP TABLE t").is_err());
    }
}
