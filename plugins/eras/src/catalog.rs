//! What the database holds: table names and columns, cached in thread
//! memory so a second job on the thread does not ask again.
//!
//! The cache is best-effort: a memory failure or a cached value that does
//! not parse is logged and treated as a miss.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use weft_sdk::{Column, Ctx, Scope};

use crate::config::Config;
use crate::failure::Failure;

/// Thread-memory key: the database's table names (JSON array of strings).
pub const TABLES_KEY: &str = "eras.tables";

/// Thread-memory key of the cached columns of `table` (JSON array of [`ColumnInfo`]).
pub fn schema_key(table: &str) -> String {
    format!("eras.schema.{table}")
}

/// One column of a table, as cached and shown to the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// The column's name.
    pub name: String,
    /// The declared SQL type.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether the column accepts `NULL`.
    pub nullable: bool,
    /// Whether the column is (part of) the primary key.
    pub primary_key: bool,
}

impl From<Column> for ColumnInfo {
    fn from(column: Column) -> Self {
        Self {
            name: column.name,
            data_type: column.data_type,
            nullable: column.nullable,
            primary_key: column.primary_key,
        }
    }
}

/// A planned table and its columns.
pub type TableColumns = (String, Vec<ColumnInfo>);

/// The tables the expert may use: the database's list (cached), narrowed to
/// the configured `tables` when set.
pub fn tables(ctx: &Ctx<'_>, config: &Config) -> Result<Vec<String>, Failure> {
    let cached: Option<Vec<String>> = load(ctx, TABLES_KEY).filter(|t: &Vec<_>| !t.is_empty());
    let all = match cached {
        Some(tables) => tables,
        None => {
            crate::announce(
                ctx,
                "Listing the database's tables…",
                "list_tables",
                json!({}),
            );
            let tables = ctx.db().tables().map_err(|error| Failure::Db {
                tool: "list_tables",
                error,
            })?;
            if !tables.is_empty() {
                store(ctx, TABLES_KEY, &tables);
            }
            tables
        }
    };
    let usable = match &config.tables {
        None => all,
        Some(allowed) => {
            let (usable, missing): (Vec<_>, Vec<_>) =
                allowed.iter().cloned().partition(|t| all.contains(t));
            if !missing.is_empty() {
                ctx.log().warn(format!(
                    "configured tables not in the database: {}",
                    missing.join(", ")
                ));
            }
            usable
        }
    };
    if usable.is_empty() {
        return Err(Failure::NoTables);
    }
    Ok(usable)
}

/// The columns of each of `tables`, in order: from the cache, unless
/// `fresh`, else described (and cached).
pub fn columns(
    ctx: &Ctx<'_>,
    tables: &[String],
    fresh: bool,
) -> Result<Vec<TableColumns>, Failure> {
    let mut out = Vec::with_capacity(tables.len());
    for table in tables {
        let key = schema_key(table);
        let cached = if fresh { None } else { load(ctx, &key) };
        let columns = match cached {
            Some(columns) => columns,
            None => {
                crate::announce(
                    ctx,
                    &format!("Reading the columns of {table}…"),
                    "describe_table",
                    json!({"table": table}),
                );
                let described = ctx.db().describe(table).map_err(|error| Failure::Db {
                    tool: "describe_table",
                    error,
                })?;
                let columns: Vec<ColumnInfo> = described.into_iter().map(Into::into).collect();
                store(ctx, &key, &columns);
                columns
            }
        };
        out.push((table.clone(), columns));
    }
    Ok(out)
}

/// Read and parse thread-memory `key`; `None` when missing, unreadable or
/// unparsable.
fn load<T: DeserializeOwned>(ctx: &Ctx<'_>, key: &str) -> Option<T> {
    match ctx.memory().get_json(Scope::Thread, key) {
        Ok(value) => value,
        Err(error) => {
            ctx.log().warn(format!("ignoring cached {key}: {error}"));
            None
        }
    }
}

/// Cache `value` under thread-memory `key`, logging a failure.
fn store(ctx: &Ctx<'_>, key: &str, value: &impl Serialize) {
    if let Err(error) = ctx.memory().set_json(Scope::Thread, key, value) {
        ctx.log().warn(format!("could not cache {key}: {error}"));
    }
}
