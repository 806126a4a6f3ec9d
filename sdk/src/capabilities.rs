//! Idiomatic handles to the host capabilities, returned by [`Ctx`](crate::Ctx).
//!
//! Each handle is a copyable borrow of the host: `ctx.llm().complete(..)`.
//! Calls return the contract's [`Error`]; helpers that also (de)serialize
//! JSON return [`NodeError`] so one `?` covers both failures.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::host::Host;
use crate::{
    Column, Completion, CompletionRequest, Error, EventKind, Level, NodeError, Rows, Scope, Tool,
    ToolResult, Value,
};

/// `Debug` for the handles: they hold only a borrow of the host.
macro_rules! debug_handle {
    ($($name:ident),*) => {$(
        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    )*};
}

debug_handle!(Llm, Db, Memory, Store, Tools, Hud, Log);

/// Chat completion through the host's LLM providers (capability `llm`).
#[derive(Clone, Copy)]
pub struct Llm<'h> {
    host: &'h dyn Host,
}

impl<'h> Llm<'h> {
    pub(crate) fn new(host: &'h dyn Host) -> Self {
        Self { host }
    }

    /// Ask the node's configured model for a completion. Metered and checked
    /// against the thread's budget by the host.
    pub fn complete(&self, request: CompletionRequest) -> Result<Completion, Error> {
        self.host.llm_complete(&request)
    }

    /// Complete and parse the answer as `T`. Give the request a schema with
    /// [`CompletionRequest::json_schema`] so the host constrains decoding.
    ///
    /// A host error is [`NodeError::Capability`]; an answer that does not
    /// parse as `T` is [`NodeError::Failed`].
    pub fn complete_json<T: DeserializeOwned>(
        &self,
        request: CompletionRequest,
    ) -> Result<T, NodeError> {
        self.complete(request)?.json()
    }
}

/// Read-only access to the graph's database (capability `db`).
#[derive(Clone, Copy)]
pub struct Db<'h> {
    host: &'h dyn Host,
}

impl<'h> Db<'h> {
    pub(crate) fn new(host: &'h dyn Host) -> Self {
        Self { host }
    }

    /// The names of the tables the node may query.
    pub fn tables(&self) -> Result<Vec<String>, Error> {
        self.host.db_list_tables()
    }

    /// The columns of `table`; [`Error::InvalidInput`] if it does not exist.
    pub fn describe(&self, table: &str) -> Result<Vec<Column>, Error> {
        self.host.db_describe(table)
    }

    /// Run one read-only statement with positional (`?`) parameters.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, Error> {
        self.host.db_query(sql, params)
    }
}

/// Durable key/value state kept by the host (capability `memory`).
///
/// Instances are fresh on every tick, so this is where a node keeps state.
/// Writes are visible to later reads in the same tick and commit with the frame.
#[derive(Clone, Copy)]
pub struct Memory<'h> {
    host: &'h dyn Host,
}

impl<'h> Memory<'h> {
    pub(crate) fn new(host: &'h dyn Host) -> Self {
        Self { host }
    }

    /// Read a value; `None` when the key is not set.
    pub fn get(&self, scope: Scope, key: &str) -> Result<Option<String>, Error> {
        self.host.memory_get(scope, key)
    }

    /// Write a value.
    pub fn set(&self, scope: Scope, key: &str, value: &str) -> Result<(), Error> {
        self.host.memory_set(scope, key, value)
    }

    /// Remove a key; removing a missing key is not an error.
    pub fn delete(&self, scope: Scope, key: &str) -> Result<(), Error> {
        self.host.memory_delete(scope, key)
    }

    /// Read a JSON value and parse it as `T`; `None` when the key is not set.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        scope: Scope,
        key: &str,
    ) -> Result<Option<T>, NodeError> {
        match self.get(scope, key)? {
            Some(text) => Ok(Some(serde_json::from_str(&text)?)),
            None => Ok(None),
        }
    }

    /// Serialize `value` to JSON and write it.
    pub fn set_json(
        &self,
        scope: Scope,
        key: &str,
        value: &impl Serialize,
    ) -> Result<(), NodeError> {
        let text = serde_json::to_string(value)?;
        Ok(self.set(scope, key, &text)?)
    }
}

/// Key/value state shared by every thread of the project (capability
/// `store`, contract 0.3.0): keys in namespaces, listing by prefix.
///
/// Reads see what other threads committed and this tick's own writes;
/// writes commit with the frame (the last frame to commit a key wins).
/// Limits: namespaces of 1 to 64 bytes, keys of 1 to 256 bytes (no control
/// characters), values of at most 64 KiB, 256 keys written per tick, 10 000
/// keys per project, 1000 keys per listing.
#[derive(Clone, Copy)]
pub struct Store<'h> {
    host: &'h dyn Host,
}

impl<'h> Store<'h> {
    pub(crate) fn new(host: &'h dyn Host) -> Self {
        Self { host }
    }

    /// Read a value; `None` when the key is not set.
    pub fn get(&self, namespace: &str, key: &str) -> Result<Option<String>, Error> {
        self.host.store_get(namespace, key)
    }

    /// Write a value.
    pub fn set(&self, namespace: &str, key: &str, value: &str) -> Result<(), Error> {
        self.host.store_set(namespace, key, value)
    }

    /// Remove a key; removing a missing key is not an error.
    pub fn delete(&self, namespace: &str, key: &str) -> Result<(), Error> {
        self.host.store_delete(namespace, key)
    }

    /// The keys of `namespace` starting with `prefix` (`""`: all), in byte
    /// order, after `after` (to page on), at most `limit` (1 to 1000).
    pub fn list(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        self.host.store_list(namespace, prefix, after, limit)
    }

    /// Read a JSON value and parse it as `T`; `None` when the key is not set.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<T>, NodeError> {
        match self.get(namespace, key)? {
            Some(text) => Ok(Some(serde_json::from_str(&text)?)),
            None => Ok(None),
        }
    }

    /// Serialize `value` to JSON and write it.
    pub fn set_json(
        &self,
        namespace: &str,
        key: &str,
        value: &impl Serialize,
    ) -> Result<(), NodeError> {
        let text = serde_json::to_string(value)?;
        Ok(self.set(namespace, key, &text)?)
    }
}

/// Progress text and typed events for traces and the UI (capability `hud`).
#[derive(Clone, Copy)]
pub struct Hud<'h> {
    host: &'h dyn Host,
}

impl<'h> Hud<'h> {
    pub(crate) fn new(host: &'h dyn Host) -> Self {
        Self { host }
    }

    /// Show progress text to the user while the node works.
    pub fn progress(&self, text: &str) -> Result<(), Error> {
        self.host.hud_progress(text)
    }

    /// Emit a typed event with `data` serialized to JSON.
    pub fn emit(&self, kind: EventKind, data: &impl Serialize) -> Result<(), NodeError> {
        let data = serde_json::to_string(data)?;
        Ok(self.host.hud_emit(kind, &data)?)
    }
}

/// Diagnostic logging into the host's structured log (capability `log`).
///
/// The per-level helpers drop errors on purpose: a log line is never worth
/// failing a tick over, and a denied call is audited by the host anyway.
/// Use [`Log::write`] to see the result.
#[derive(Clone, Copy)]
pub struct Log<'h> {
    host: &'h dyn Host,
}

impl<'h> Log<'h> {
    pub(crate) fn new(host: &'h dyn Host) -> Self {
        Self { host }
    }

    /// Write one line at `level`, returning the host's answer.
    pub fn write(&self, level: Level, message: &str) -> Result<(), Error> {
        self.host.log(level, message)
    }

    /// Log at [`Level::Trace`].
    pub fn trace(&self, message: impl AsRef<str>) {
        let _ = self.write(Level::Trace, message.as_ref());
    }

    /// Log at [`Level::Debug`].
    pub fn debug(&self, message: impl AsRef<str>) {
        let _ = self.write(Level::Debug, message.as_ref());
    }

    /// Log at [`Level::Info`].
    pub fn info(&self, message: impl AsRef<str>) {
        let _ = self.write(Level::Info, message.as_ref());
    }

    /// Log at [`Level::Warn`].
    pub fn warn(&self, message: impl AsRef<str>) {
        let _ = self.write(Level::Warn, message.as_ref());
    }

    /// Log at [`Level::Error`].
    pub fn error(&self, message: impl AsRef<str>) {
        let _ = self.write(Level::Error, message.as_ref());
    }
}

/// Tools of the operator's MCP servers (capability `tools`, contract
/// 0.4.0): the graph grants a node specific tools of specific servers, and
/// the node sees and calls only those. Every call is journaled (a replay
/// answers it without the server) and time-limited by the host.
#[derive(Clone, Copy)]
pub struct Tools<'h> {
    host: &'h dyn Host,
}

impl<'h> Tools<'h> {
    pub(crate) fn new(host: &'h dyn Host) -> Self {
        Self { host }
    }

    /// The tools granted to this node, by server then name.
    pub fn list(&self) -> Result<Vec<Tool>, Error> {
        self.host.tools_list()
    }

    /// Calls tool `name` of `server` with `arguments` (a JSON object).
    /// `denied` when the graph does not grant the tool; a tool that
    /// reports an error answers `Ok` with `is_error` set.
    pub fn call(
        &self,
        server: &str,
        name: &str,
        arguments: &serde_json::Value,
    ) -> Result<ToolResult, Error> {
        let text = if arguments.is_null() {
            "{}".to_owned()
        } else {
            arguments.to_string()
        };
        self.host.tools_call(server, name, &text)
    }
}
