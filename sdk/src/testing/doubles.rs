//! The test doubles behind [`TestHost`](super::TestHost): a scripted model
//! and an in-memory database.

use std::collections::{BTreeMap, VecDeque};

use crate::{Column, Completion, CompletionRequest, Error, Role, Rows, Value};

/// Answers a request from a test closure.
pub(super) type Responder = Box<dyn FnMut(&CompletionRequest) -> Result<String, Error>>;

/// Answers a query from a test closure.
pub(super) type QueryHandler = Box<dyn FnMut(&str, &[Value]) -> Result<Rows, Error>>;

/// The model every scripted completion claims to come from.
pub(super) const TEST_MODEL: &str = "weft-test-model";

/// A scripted model: queued answers first, then the responder, if any.
#[derive(Default)]
pub(super) struct ScriptedLlm {
    pub(super) queue: VecDeque<Result<String, Error>>,
    pub(super) responder: Option<Responder>,
    pub(super) requests: Vec<CompletionRequest>,
}

impl ScriptedLlm {
    /// Record `request` and answer it.
    ///
    /// # Panics
    ///
    /// When nothing is scripted: the node made a call the test did not
    /// expect, and an error the node might swallow would hide that.
    pub(super) fn complete(&mut self, request: &CompletionRequest) -> Result<Completion, Error> {
        self.requests.push(request.clone());
        if let Some(schema) = &request.json_schema
            && let Err(error) = serde_json::from_str::<serde_json::Value>(schema)
        {
            return Err(Error::InvalidInput(format!(
                "json-schema is not JSON: {error}"
            )));
        }
        let answer = match (self.queue.pop_front(), self.responder.as_mut()) {
            (Some(answer), _) => answer,
            (None, Some(responder)) => responder(request),
            (None, None) => panic!(
                "TestHost: LLM request #{} has no scripted answer (use .answer(..) or \
                 .answer_with(..)); last user turn: {:?}",
                self.requests.len(),
                last_user_turn(request),
            ),
        };
        let text = answer?;
        Ok(Completion {
            prompt_tokens: request
                .messages
                .iter()
                .map(|m| approx_tokens(&m.content))
                .sum(),
            completion_tokens: approx_tokens(&text),
            model: TEST_MODEL.to_owned(),
            text,
            provider: String::new(),
            usage_estimated: false,
        })
    }
}

fn last_user_turn(request: &CompletionRequest) -> Option<&str> {
    let mut users = request
        .messages
        .iter()
        .filter(|message| message.role == Role::User);
    users.next_back().map(|message| message.content.as_str())
}

/// A rough token count (four bytes a token), enough for metering assertions.
fn approx_tokens(text: &str) -> u32 {
    u32::try_from(text.len().div_ceil(4))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// One table of the in-memory database.
pub(super) struct Table {
    pub(super) columns: Vec<Column>,
    pub(super) rows: Vec<Vec<Value>>,
}

/// An in-memory database: tables for `list-tables`/`describe`, and queries
/// answered by the test's handler, else `SELECT * FROM <table>` only.
#[derive(Default)]
pub(super) struct FakeDb {
    pub(super) tables: BTreeMap<String, Table>,
    pub(super) handler: Option<QueryHandler>,
    pub(super) queries: Vec<(String, Vec<Value>)>,
}

impl FakeDb {
    pub(super) fn list_tables(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    pub(super) fn describe(&self, table: &str) -> Result<Vec<Column>, Error> {
        match self.tables.get(table) {
            Some(table) => Ok(table.columns.clone()),
            None => Err(Error::InvalidInput(format!("no such table: {table}"))),
        }
    }

    pub(super) fn query(&mut self, sql: &str, params: &[Value]) -> Result<Rows, Error> {
        self.queries.push((sql.to_owned(), params.to_vec()));
        if let Some(handler) = self.handler.as_mut() {
            return handler(sql, params);
        }
        let name = select_all_from(sql).ok_or_else(|| {
            Error::InvalidInput(format!(
                "TestHost answers only `SELECT * FROM <table>` without an on_query handler: {sql}"
            ))
        })?;
        let table = self
            .tables
            .get(name)
            .ok_or_else(|| Error::InvalidInput(format!("no such table: {name}")))?;
        let columns = table.columns.iter().map(|column| column.name.clone());
        Ok(Rows::new(columns, table.rows.iter().cloned()))
    }
}

/// The table name of `SELECT * FROM name` (any case, optional `;`).
fn select_all_from(sql: &str) -> Option<&str> {
    let sql = sql.trim().trim_end_matches(';');
    match sql.split_whitespace().collect::<Vec<_>>()[..] {
        [select, "*", from, table]
            if select.eq_ignore_ascii_case("select") && from.eq_ignore_ascii_case("from") =>
        {
            Some(table)
        }
        _ => None,
    }
}
