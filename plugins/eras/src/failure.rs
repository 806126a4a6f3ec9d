//! Why a job could not be done; reported to the PA as `expert_failed`.

use std::fmt;

use weft_sdk::Error;

/// Why a job could not be done. The `Display` text is the `error` of the
/// `expert_failed` message, so it is written for the PA's reformulation
/// prompt: what failed, and the last thing the database said.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// A database call failed in a way retrying the statement cannot fix
    /// (denied, unavailable), or a catalog call (list-tables, describe) failed.
    Db {
        /// The tool: `list_tables`, `describe_table` or `query_db`.
        tool: &'static str,
        /// The host's error.
        error: Error,
    },
    /// A model call failed (denied, out of budget, unavailable …).
    Llm {
        /// The call: `plan` or `sql`.
        call: &'static str,
        /// The host's error.
        error: Error,
    },
    /// No table is available to plan with.
    NoTables,
    /// The plan answer was unusable; the text says why.
    Plan(String),
    /// Every statement failed; the last one and its error.
    RetriesExhausted {
        /// Statements tried (1 + retries).
        tries: u32,
        /// The last statement, if the model produced one.
        sql: Option<String>,
        /// Why it failed.
        error: String,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Db { tool, error } => write!(f, "database call {tool} failed: {error}"),
            Self::Llm { call, error } => write!(f, "the {call} model call failed: {error}"),
            Self::NoTables => f.write_str("the database has no tables this expert may use"),
            Self::Plan(why) => write!(f, "could not plan the lookup: {why}"),
            Self::RetriesExhausted { tries, sql, error } => {
                write!(f, "no working SQL after {tries} tries; last error: {error}")?;
                match sql {
                    Some(sql) => write!(f, " (SQL: {sql})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for Failure {}
