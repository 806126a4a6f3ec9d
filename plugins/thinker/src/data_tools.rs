//! Data tool calls, run by the thinker through the `db` capability.
//!
//! A call is parsed into a [`DataCall`] first, so malformed arguments are
//! reported without touching the database; then [`DataCall::run`] turns the
//! capability's answer into the JSON result a [`weft_protocol::ToolOutput`]
//! carries.

use serde_json::{Map, Value as Json, json};
use weft_protocol::ToolCall;
use weft_sdk::{Db, Error, Value};

/// One data tool call with its arguments checked.
#[derive(Clone, Debug, PartialEq)]
pub enum DataCall {
    /// `list_tables {}`.
    ListTables,
    /// `describe_table {table}`.
    DescribeTable {
        /// The table to describe.
        table: String,
    },
    /// `query_db {sql, params?}`.
    Query {
        /// One read-only statement with `?` placeholders.
        sql: String,
        /// The placeholders' values.
        params: Vec<Value>,
    },
}

impl DataCall {
    /// Parse `call`; the error says which argument is missing or mistyped.
    pub fn parse(call: &ToolCall) -> Result<Self, String> {
        let args = call
            .args
            .as_object()
            .ok_or_else(|| format!("args must be an object, not {}", call.args))?;
        match call.tool.as_str() {
            "list_tables" => Ok(Self::ListTables),
            "describe_table" => Ok(Self::DescribeTable {
                table: text(args, "table")?,
            }),
            "query_db" => Ok(Self::Query {
                sql: text(args, "sql")?,
                params: params(args)?,
            }),
            other => Err(format!("{other:?} is not a data tool")),
        }
    }

    /// The progress text shown while the call runs.
    pub fn progress(&self) -> String {
        match self {
            Self::ListTables => "listing the tables…".to_owned(),
            Self::DescribeTable { table } => format!("reading the columns of {table}…"),
            Self::Query { .. } => "querying the database…".to_owned(),
        }
    }

    /// Run the call. A query keeps at most `max_rows` rows and reports
    /// `truncated` when the host or this cap dropped some.
    ///
    /// Results: `{tables: [..]}`, `{table, columns: [{name, type, nullable,
    /// primary_key}]}`, and `{columns: [..], rows: [[..]], truncated}`.
    pub fn run(&self, db: Db<'_>, max_rows: usize) -> Result<Json, Error> {
        match self {
            Self::ListTables => Ok(json!({ "tables": db.tables()? })),
            Self::DescribeTable { table } => {
                let columns: Vec<Json> = db
                    .describe(table)?
                    .into_iter()
                    .map(|column| {
                        json!({
                            "name": column.name,
                            "type": column.data_type,
                            "nullable": column.nullable,
                            "primary_key": column.primary_key
                        })
                    })
                    .collect();
                Ok(json!({ "table": table, "columns": columns }))
            }
            Self::Query { sql, params } => {
                let result = db.query(sql, params)?;
                let truncated = result.truncated || result.rows.len() > max_rows;
                let rows: Vec<Json> = result
                    .rows
                    .iter()
                    .take(max_rows)
                    .map(|row| Json::Array(row.iter().map(Value::to_json).collect()))
                    .collect();
                Ok(json!({ "columns": result.columns, "rows": rows, "truncated": truncated }))
            }
        }
    }
}

/// The non-empty string argument `key`.
fn text(args: &Map<String, Json>, key: &str) -> Result<String, String> {
    match args.get(key) {
        Some(Json::String(value)) if !value.trim().is_empty() => Ok(value.clone()),
        Some(Json::String(_)) => Err(format!("`{key}` is empty")),
        Some(other) => Err(format!("`{key}` must be a string, not {other}")),
        None => Err(format!("`{key}` is missing")),
    }
}

/// `params`: absent or null for none, else a list of JSON scalars.
fn params(args: &Map<String, Json>) -> Result<Vec<Value>, String> {
    match args.get("params") {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(at, item)| {
                scalar(item).ok_or_else(|| format!("params[{at}] must be a scalar, not {item}"))
            })
            .collect(),
        Some(other) => Err(format!("`params` must be a list, not {other}")),
    }
}

/// A JSON scalar as an SQL value: booleans become 0 and 1, integers that
/// fit `i64` integers, other numbers reals. Arrays and objects are `None`.
fn scalar(item: &Json) -> Option<Value> {
    match item {
        Json::Null => Some(Value::Null),
        Json::Bool(flag) => Some(Value::Integer(i64::from(*flag))),
        Json::Number(number) => Some(match number.as_i64() {
            Some(integer) => Value::Integer(integer),
            // Every JSON number is representable as an f64 (possibly rounded).
            None => Value::Real(number.as_f64().unwrap_or(f64::NAN)),
        }),
        Json::String(text) => Some(Value::Text(text.clone())),
        Json::Array(_) | Json::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(tool: &str, args: Json) -> ToolCall {
        ToolCall {
            tool: tool.into(),
            args,
        }
    }

    #[test]
    fn json_scalars_become_sql_values() {
        let parsed = DataCall::parse(&call(
            "query_db",
            json!({"sql": "SELECT ?", "params": [null, true, false, 42, -7, 2.5, 18446744073709551615u64, "x"]}),
        ))
        .unwrap();
        assert_eq!(
            parsed,
            DataCall::Query {
                sql: "SELECT ?".into(),
                params: vec![
                    Value::Null,
                    Value::Integer(1),
                    Value::Integer(0),
                    Value::Integer(42),
                    Value::Integer(-7),
                    Value::Real(2.5),
                    Value::Real(18446744073709551615.0),
                    Value::Text("x".into()),
                ],
            }
        );
        for no_params in [
            json!({"sql": "SELECT 1"}),
            json!({"sql": "SELECT 1", "params": null}),
        ] {
            assert_eq!(
                DataCall::parse(&call("query_db", no_params)),
                Ok(DataCall::Query {
                    sql: "SELECT 1".into(),
                    params: vec![]
                })
            );
        }
    }

    #[test]
    fn malformed_arguments_are_errors() {
        let cases = [
            (call("query_db", json!({})), "`sql` is missing"),
            (call("query_db", json!({"sql": " "})), "`sql` is empty"),
            (
                call("query_db", json!({"sql": "SELECT ?", "params": 3})),
                "`params` must be a list",
            ),
            (
                call("query_db", json!({"sql": "SELECT ?", "params": [1, [2]]})),
                "params[1] must be a scalar",
            ),
            (
                call("describe_table", json!({"table": 1})),
                "`table` must be a string",
            ),
            (call("list_tables", json!(null)), "args must be an object"),
            (call("set_state", json!({})), "is not a data tool"),
        ];
        for (call, expected) in cases {
            let error = DataCall::parse(&call).unwrap_err();
            assert!(error.contains(expected), "{call:?}: {error}");
        }
        assert_eq!(
            DataCall::parse(&call("list_tables", json!({"ignored": 1}))),
            Ok(DataCall::ListTables)
        );
    }
}
