//! The value index: the distinct values of the entity tables' text
//! columns (cities, surnames, device types …), so the words of a question
//! can become filters (`customers in Köln` → `Ort = 'Köln'`).
//!
//! It is built once per thread and schema, with one bounded statement per
//! few columns, and cached in thread memory under [`VALUES_KEY`]. The
//! bounds come from `config.values` ([`ValueIndex`]): a column with more
//! distinct values than `max_per_column` is not indexed (serial numbers,
//! e-mail addresses), nor are values longer than `max_chars`, values of
//! fewer than `min_chars` characters, or numbers shorter than four digits
//! (house numbers would shadow everything). The columns named by
//! `entities.<Table>.date` and `latest_by` are matched as periods instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::json;
use weft_sdk::{Ctx, Scope, Value};

use super::text;
use crate::catalog::TableColumns;
use crate::config::{Entity, ValueIndex};
use crate::failure::Failure;

/// Thread-memory key of the cached index (JSON array of [`IndexedValue`]).
pub const VALUES_KEY: &str = "eras.values";

/// The host's row limit per statement; one statement reads several
/// columns as long as their bounds stay within it.
const ROWS_PER_STATEMENT: usize = 1000;

/// One distinct value of one text column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedValue {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// The value as stored.
    pub value: String,
}

/// A value found in a question: the value and its `(table, column)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The value as stored.
    pub value: String,
    /// Where it is stored.
    pub place: (String, String),
}

/// Whether a declared SQL type holds text.
fn is_text(data_type: &str) -> bool {
    let t = data_type.to_uppercase();
    t.is_empty() || t.contains("CHAR") || t.contains("TEXT") || t.contains("CLOB")
}

/// The `(table, column)`s indexed: text columns that are not keys or the
/// entity's date columns.
pub fn indexed_columns(
    entities: &BTreeMap<String, Entity>,
    schema: &[TableColumns],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (table, columns) in schema {
        let entity = entities.get(table);
        let dates: Vec<&String> = entity
            .map(|e| e.date.iter().chain(&e.latest_by).collect())
            .unwrap_or_default();
        for column in columns {
            if column.primary_key || !is_text(&column.data_type) || dates.contains(&&column.name) {
                continue;
            }
            out.push((table.clone(), column.name.clone()));
        }
    }
    out
}

/// Whether `value` is worth indexing under `bounds`.
fn indexable(value: &str, bounds: &ValueIndex) -> bool {
    let chars = value.chars().count();
    if chars < bounds.min_chars || chars > bounds.max_chars {
        return false;
    }
    let words = text::words(value);
    match words.as_slice() {
        [] => false,
        [only] if only.bytes().all(|b| b.is_ascii_digit() || b == b'.') => only.len() >= 4,
        _ => true,
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The index for `columns`: from the cache, else read from the database
/// (and cached). A statement that fails is a [`Failure::Db`].
pub fn load(
    ctx: &Ctx<'_>,
    columns: &[(String, String)],
    bounds: &ValueIndex,
) -> Result<Vec<IndexedValue>, Failure> {
    if bounds.max_per_column == 0 || columns.is_empty() {
        return Ok(Vec::new());
    }
    let key = format!("{VALUES_KEY}.{}", fingerprint(columns, bounds));
    match ctx
        .memory()
        .get_json::<Vec<IndexedValue>>(Scope::Thread, &key)
    {
        Ok(Some(cached)) => return Ok(cached),
        Ok(None) => {}
        Err(error) => ctx.log().warn(format!("ignoring cached {key}: {error}")),
    }
    let per_statement = (ROWS_PER_STATEMENT / (bounds.max_per_column + 1)).max(1);
    let mut index = Vec::new();
    for chunk in columns.chunks(per_statement) {
        let mut sql = String::new();
        for (table, column) in chunk {
            if !sql.is_empty() {
                sql.push_str(" UNION ALL ");
            }
            let _ = write!(
                sql,
                "SELECT {} AS t, {} AS c, v FROM (SELECT DISTINCT {col} AS v FROM {tab} \
                 WHERE {col} IS NOT NULL LIMIT {})",
                quote_text(table),
                quote_text(column),
                bounds.max_per_column + 1,
                col = quote_ident(column),
                tab = quote_ident(table),
            );
        }
        crate::announce(
            ctx,
            "Indexing the database's values…",
            "query_db",
            json!({"sql": sql, "params": []}),
        );
        let rows = ctx.db().query(&sql, &[]).map_err(|error| Failure::Db {
            tool: "query_db",
            error,
        })?;
        let mut per_column: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for row in rows.rows {
            if let [Value::Text(t), Value::Text(c), Value::Text(v)] = row.as_slice() {
                per_column
                    .entry((t.clone(), c.clone()))
                    .or_default()
                    .push(v.clone());
            }
        }
        for ((table, column), values) in per_column {
            if values.len() > bounds.max_per_column {
                continue;
            }
            index.extend(
                values
                    .into_iter()
                    .filter(|v| indexable(v, bounds))
                    .map(|value| IndexedValue {
                        table: table.clone(),
                        column: column.clone(),
                        value,
                    }),
            );
            if index.len() >= bounds.max_total {
                index.truncate(bounds.max_total);
                ctx.log().warn(format!(
                    "the value index stopped at max_total ({}) values",
                    bounds.max_total
                ));
                break;
            }
        }
    }
    if let Err(error) = ctx.memory().set_json(Scope::Thread, &key, &index) {
        ctx.log().warn(format!("could not cache {key}: {error}"));
    }
    Ok(index)
}

/// A short stable fingerprint of what was indexed, so a changed schema or
/// config is indexed afresh.
fn fingerprint(columns: &[(String, String)], bounds: &ValueIndex) -> String {
    // FNV-1a over the column list and bounds.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let text = format!("{columns:?}{bounds:?}");
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The values of `index` in `words` (normalised), on words not `used`:
/// `(start, length, value)`, longer values first, so `Frankfurt am Main`
/// wins over a value `Main`. A capitalised value does not match words
/// marked in `lowercase` (see [`text::lowercase_in_capitalised`]).
pub fn matches(
    words: &[String],
    used: &[bool],
    lowercase: &[bool],
    index: &[IndexedValue],
) -> Vec<(usize, usize, Found)> {
    let mut candidates: Vec<(Vec<String>, &IndexedValue)> = index
        .iter()
        .map(|v| (text::words(&v.value), v))
        .filter(|(w, _)| !w.is_empty())
        .collect();
    candidates.sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
    let mut taken = used.to_vec();
    let mut out: Vec<(usize, usize, Found)> = Vec::new();
    for (value_words, value) in candidates {
        for at in text::find_all(words, &value_words) {
            let span = at..at + value_words.len();
            let capitalised = value.value.starts_with(char::is_uppercase);
            if capitalised
                && lowercase
                    .get(span.clone())
                    .is_some_and(|l| l.iter().any(|l| *l))
            {
                continue;
            }
            let same_span = out
                .iter()
                .any(|(a, l, _)| *a == at && *l == value_words.len());
            if !same_span && taken[span.clone()].iter().any(|t| *t) {
                continue;
            }
            for t in &mut taken[span] {
                *t = true;
            }
            out.push((
                at,
                value_words.len(),
                Found {
                    value: value.value.clone(),
                    place: (value.table.clone(), value.column.clone()),
                },
            ));
        }
    }
    out
}
