//! Model call 2, **sql**, and running the statement: on a query error the
//! planned tables are described afresh and the statement is asked for again
//! with the error in the prompt.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use weft_protocol::Job;
use weft_sdk::{ChatMessage, CompletionRequest, Ctx, Error, Rows, Value};

use crate::catalog::{self, TableColumns};
use crate::config::Config;
use crate::failure::Failure;
use crate::plan::{DOMAIN, Plan};

/// The system prompt of the sql call. Its first words are stable, so
/// scripted models in engine tests can match on them.
pub const SQL_SYSTEM: &str = "You write one read-only SQLite SELECT statement for a job. \
Use only the tables and columns listed, exactly as spelled. Write ? for every value taken \
from the job and put the values, in order, into params. Use COUNT or SUM when the job asks \
for a number, and LIMIT 50 when it asks for a list. Answer with a JSON object only.";

/// One statement and a few parameters.
const MAX_TOKENS: u32 = 300;

/// The statement the model wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// The SQL text.
    pub sql: String,
    /// Its positional parameters.
    pub params: Vec<Value>,
}

/// A statement that failed, shown to the model on the next try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// What the model wrote (the SQL, or the unusable answer).
    pub sql: String,
    /// Why it failed.
    pub error: String,
}

/// The rows a job's statement returned.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The statement that worked.
    pub statement: Statement,
    /// What it returned.
    pub rows: Rows,
    /// How many retries it took (0: the first statement worked).
    pub retries: u32,
}

/// The JSON Schema of the sql answer.
pub fn schema() -> Json {
    json!({
        "type": "object",
        "properties": {
            "sql": {"type": "string", "minLength": 1},
            "params": {
                "type": "array",
                "items": {"type": ["string", "number", "boolean", "null"]}
            }
        },
        "required": ["sql", "params"],
        "additionalProperties": false
    })
}

/// The schema-constrained sql request: the job, the plan, the planned
/// tables' columns and, on a retry, the failed statement and its error.
pub fn request(
    job: &Job,
    plan: &Plan,
    columns: &[TableColumns],
    failed: Option<&Attempt>,
) -> CompletionRequest {
    let mut prompt = format!("{DOMAIN}\n\nTables and their columns:\n");
    for (table, columns) in columns {
        let list: Vec<String> = columns
            .iter()
            .map(|c| {
                let key = if c.primary_key { " primary key" } else { "" };
                format!("{} {}{key}", c.name, c.data_type)
            })
            .collect();
        let _ = writeln!(prompt, "- {table}({})", list.join(", "));
    }
    let _ = write!(prompt, "\nJob: {}\nApproach: {}", job.job, plan.approach);
    if let Some(failed) = failed {
        let _ = write!(
            prompt,
            "\n\nThe previous statement failed:\n{}\nError: {}\nWrite a corrected statement \
             that uses only the columns listed above.",
            failed.sql, failed.error
        );
    }
    CompletionRequest::new([ChatMessage::system(SQL_SYSTEM), ChatMessage::user(prompt)])
        .max_tokens(MAX_TOKENS)
        .json_schema(&schema())
}

/// The sql answer as the model writes it.
#[derive(Deserialize)]
struct Answer {
    sql: String,
    #[serde(default)]
    params: Vec<Json>,
}

/// Parse the model's answer into a statement, or say why it is unusable.
pub fn parse(text: &str) -> Result<Statement, String> {
    let answer: Answer = serde_json::from_str(text)
        .map_err(|error| format!("the answer is not {{sql, params}} JSON: {error}"))?;
    if answer.sql.trim().is_empty() {
        return Err("the answer has an empty sql".to_owned());
    }
    let params = answer
        .params
        .iter()
        .map(param)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Statement {
        sql: answer.sql,
        params,
    })
}

/// A JSON scalar as a SQL value (booleans as 0/1, as SQLite stores them).
fn param(value: &Json) -> Result<Value, String> {
    Ok(match value {
        Json::Null => Value::Null,
        Json::Bool(flag) => Value::Integer(i64::from(*flag)),
        Json::Number(number) => match (number.as_i64(), number.as_f64()) {
            (Some(integer), _) => Value::Integer(integer),
            (None, Some(real)) => Value::Real(real),
            (None, None) => return Err(format!("param {number} is not a usable number")),
        },
        Json::String(text) => Value::Text(text.clone()),
        Json::Array(_) | Json::Object(_) => {
            return Err(format!("params must be scalars, not {value}"));
        }
    })
}

/// Whether rewriting the statement can fix a query error: SQL errors and
/// limits can, a denied, unavailable or out-of-budget database cannot.
fn retryable(error: &Error) -> bool {
    matches!(
        error,
        Error::InvalidInput(_) | Error::Failed(_) | Error::LimitExceeded(_)
    )
}

/// Ask for a statement and run it, retrying up to `config.max_retries`
/// times. Before each retry after a query error the planned tables are
/// described afresh (updating `columns` and the cache), in case the cached
/// columns were wrong; an unusable answer is retried without describing.
pub(crate) fn run(
    ctx: &Ctx<'_>,
    config: &Config,
    job: &Job,
    plan: &Plan,
    columns: &mut Vec<TableColumns>,
) -> Result<Found, Failure> {
    let mut failed: Option<Attempt> = None;
    for retries in 0..=config.max_retries {
        let completion = ctx
            .llm()
            .complete(request(job, plan, columns, failed.as_ref()))
            .map_err(|error| Failure::Llm { call: "sql", error })?;
        let statement = match parse(&completion.text) {
            Ok(statement) => statement,
            Err(error) => {
                ctx.log().warn(format!("unusable sql answer: {error}"));
                let sql = completion.text.chars().take(200).collect();
                failed = Some(Attempt { sql, error });
                continue;
            }
        };
        let params: Vec<Json> = statement.params.iter().map(Value::to_json).collect();
        crate::announce(
            ctx,
            "Querying the database…",
            "query_db",
            json!({"sql": statement.sql, "params": params}),
        );
        match ctx.db().query(&statement.sql, &statement.params) {
            Ok(rows) => {
                return Ok(Found {
                    statement,
                    rows,
                    retries,
                });
            }
            Err(error) if retryable(&error) => {
                ctx.log()
                    .warn(format!("query failed ({error}): {}", statement.sql));
                failed = Some(Attempt {
                    sql: statement.sql,
                    error: error.to_string(),
                });
                if retries < config.max_retries {
                    *columns = catalog::columns(ctx, &plan.tables, true)?;
                }
            }
            Err(error) => {
                return Err(Failure::Db {
                    tool: "query_db",
                    error,
                });
            }
        }
    }
    let last = failed.unwrap_or_else(|| Attempt {
        sql: String::new(),
        error: "no statement was tried".to_owned(),
    });
    Err(Failure::RetriesExhausted {
        tries: config.max_retries.saturating_add(1),
        sql: Some(last.sql).filter(|sql| !sql.is_empty()),
        error: last.error,
    })
}
