//! The capability surface a node calls, as a trait.
//!
//! [`Ctx`](crate::Ctx) talks to a `&dyn Host`, never to the generated imports
//! directly. In a plugin that host is [`WasmHost`], which calls the component's
//! imports; in unit tests it is [`TestHost`](crate::testing::TestHost), which
//! answers from test doubles. Methods take `&self` so a node can hold several
//! capability handles (and borrow its context) at once.

use crate::bindings::weft::node::{db, hud, llm, log, memory, store, tools};
use crate::{
    Column, Completion, CompletionRequest, Error, EventKind, Level, Rows, Scope, Tool, ToolResult,
    Value,
};

/// Everything a node can ask of the host. Each method is one WIT import;
/// errors are the contract's [`Error`], never a trap.
pub trait Host {
    /// `llm.complete`: ask the node's configured model for a completion.
    fn llm_complete(&self, request: &CompletionRequest) -> Result<Completion, Error>;
    /// `db.list-tables`: the names of the tables the node may query.
    fn db_list_tables(&self) -> Result<Vec<String>, Error>;
    /// `db.describe`: the columns of one table; `invalid-input` if it does not exist.
    fn db_describe(&self, table: &str) -> Result<Vec<Column>, Error>;
    /// `db.query`: run one read-only statement with positional (`?`) parameters.
    fn db_query(&self, sql: &str, params: &[Value]) -> Result<Rows, Error>;
    /// `memory.get`: read a value; `None` when the key is not set.
    fn memory_get(&self, scope: Scope, key: &str) -> Result<Option<String>, Error>;
    /// `memory.set`: write a value, committed with the frame.
    fn memory_set(&self, scope: Scope, key: &str, value: &str) -> Result<(), Error>;
    /// `memory.delete`: remove a key; removing a missing key is not an error.
    fn memory_delete(&self, scope: Scope, key: &str) -> Result<(), Error>;
    /// `store.get`: read a value of the project's key/value state.
    fn store_get(&self, namespace: &str, key: &str) -> Result<Option<String>, Error>;
    /// `store.set`: write a value of the project's state, committed with the
    /// frame.
    fn store_set(&self, namespace: &str, key: &str, value: &str) -> Result<(), Error>;
    /// `store.delete`: remove a key of the project's state.
    fn store_delete(&self, namespace: &str, key: &str) -> Result<(), Error>;
    /// `store.list-keys`: keys of `namespace` starting with `prefix`, in order,
    /// after `after`, at most `limit`.
    fn store_list(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, Error>;
    /// `tools.list-tools`: the MCP tools the graph grants this node.
    fn tools_list(&self) -> Result<Vec<Tool>, Error>;
    /// `tools.call-tool`: call tool `name` of `server` with `arguments`
    /// (a JSON object as text).
    fn tools_call(&self, server: &str, name: &str, arguments: &str) -> Result<ToolResult, Error>;
    /// `hud.progress`: show progress text to the user.
    fn hud_progress(&self, text: &str) -> Result<(), Error>;
    /// `hud.emit`: emit a typed event whose `data` is a JSON document.
    fn hud_emit(&self, kind: EventKind, data: &str) -> Result<(), Error>;
    /// `log.write`: write one line to the host's structured log.
    fn log(&self, level: Level, message: &str) -> Result<(), Error>;
}

/// The real host: calls the component's imports.
///
/// Only meaningful inside a `wasm32` component; on other targets the crate
/// still compiles, but every call panics (wit-bindgen's native stubs).
#[derive(Clone, Copy, Debug, Default)]
pub struct WasmHost;

impl Host for WasmHost {
    fn llm_complete(&self, request: &CompletionRequest) -> Result<Completion, Error> {
        llm::complete(&request.into())
            .map(Into::into)
            .map_err(Into::into)
    }

    fn db_list_tables(&self) -> Result<Vec<String>, Error> {
        db::list_tables().map_err(Into::into)
    }

    fn db_describe(&self, table: &str) -> Result<Vec<Column>, Error> {
        let columns = db::describe(table).map_err(Error::from)?;
        Ok(columns.into_iter().map(Into::into).collect())
    }

    fn db_query(&self, sql: &str, params: &[Value]) -> Result<Rows, Error> {
        let params: Vec<db::Value> = params.iter().map(Into::into).collect();
        db::query(sql, &params).map(Into::into).map_err(Into::into)
    }

    fn memory_get(&self, scope: Scope, key: &str) -> Result<Option<String>, Error> {
        memory::get(scope.into(), key).map_err(Into::into)
    }

    fn memory_set(&self, scope: Scope, key: &str, value: &str) -> Result<(), Error> {
        memory::set(scope.into(), key, value).map_err(Into::into)
    }

    fn memory_delete(&self, scope: Scope, key: &str) -> Result<(), Error> {
        memory::delete(scope.into(), key).map_err(Into::into)
    }

    fn store_get(&self, namespace: &str, key: &str) -> Result<Option<String>, Error> {
        store::get(namespace, key).map_err(Into::into)
    }

    fn store_set(&self, namespace: &str, key: &str, value: &str) -> Result<(), Error> {
        store::set(namespace, key, value).map_err(Into::into)
    }

    fn store_delete(&self, namespace: &str, key: &str) -> Result<(), Error> {
        store::delete(namespace, key).map_err(Into::into)
    }

    fn store_list(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        store::list_keys(namespace, prefix, after, limit).map_err(Into::into)
    }

    fn tools_list(&self) -> Result<Vec<Tool>, Error> {
        let tools = tools::list_tools().map_err(Error::from)?;
        Ok(tools
            .into_iter()
            .map(|t| Tool {
                server: t.server,
                name: t.name,
                description: t.description,
                // The host sends the schema as JSON; keep it as text otherwise.
                input_schema: serde_json::from_str(&t.input_schema)
                    .unwrap_or(serde_json::Value::String(t.input_schema)),
            })
            .collect())
    }

    fn tools_call(&self, server: &str, name: &str, arguments: &str) -> Result<ToolResult, Error> {
        let r = tools::call_tool(server, name, arguments).map_err(Error::from)?;
        Ok(ToolResult {
            text: r.text,
            content: serde_json::from_str(&r.content)
                .unwrap_or(serde_json::Value::String(r.content)),
            is_error: r.is_error,
        })
    }

    fn hud_progress(&self, text: &str) -> Result<(), Error> {
        hud::progress(text).map_err(Into::into)
    }

    fn hud_emit(&self, kind: EventKind, data: &str) -> Result<(), Error> {
        hud::emit(kind.into(), data).map_err(Into::into)
    }

    fn log(&self, level: Level, message: &str) -> Result<(), Error> {
        log::write(level.into(), message).map_err(Into::into)
    }
}
