//! The tape replay plays a journal from: each capability call takes the
//! next recorded call of the same kind and gets its recorded answer.

use std::sync::Mutex;

use serde_json::{Value, json};
use weft_runtime::capabilities::db::Database;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::capabilities::memory::MemoryStore;
use weft_runtime::capabilities::store::KvStore;
use weft_runtime::capabilities::tools::{ToolBox, ToolInfo, ToolResult};
use weft_runtime::capabilities::{BoxFuture, JournalEntry};
use weft_runtime::{
    CallContext, Capability, CapabilityError, Completion, CompletionRequest, Scope,
};

/// A journal played back: each capability call takes the next recorded
/// call of the same kind (memory reads: of the same key) and gets its
/// recorded answer, if the request is the same.
pub(super) struct Tape {
    entries: Mutex<Vec<(JournalEntry, bool)>>,
}

impl Tape {
    pub(super) fn new(journal: &[JournalEntry]) -> Self {
        let entries = journal
            .iter()
            // Denied calls never reach a backend: the replay denies them again.
            .filter(|e| e.response["err"]["code"] != "denied")
            .map(|e| (e.clone(), false))
            .collect();
        Self {
            entries: Mutex::new(entries),
        }
    }

    /// Takes the next unused entry of `capability`/`op` whose request
    /// `matches`, and answers with its recorded response if its request is
    /// `request`.
    fn answer<T: serde::de::DeserializeOwned>(
        &self,
        capability: Capability,
        op: &str,
        request: &Value,
        matches: impl Fn(&Value) -> bool,
    ) -> Result<T, CapabilityError> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((entry, used)) = entries.iter_mut().find(|(e, used)| {
            !used && e.capability == capability && e.op == op && matches(&e.request)
        }) else {
            return Err(CapabilityError::Unavailable(format!(
                "replay: no recorded `{capability} {op}` call is left for this request"
            )));
        };
        *used = true;
        if &entry.request != request {
            return Err(CapabilityError::Unavailable(format!(
                "replay: this `{capability} {op}` request differs from the recorded one"
            )));
        }
        let response = &entry.response;
        if let Some(ok) = response.get("ok") {
            serde_json::from_value(ok.clone()).map_err(|e| {
                CapabilityError::Unavailable(format!(
                    "replay: the recorded answer is unreadable: {e}"
                ))
            })
        } else {
            Err(
                serde_json::from_value(response["err"].clone()).unwrap_or_else(|e| {
                    CapabilityError::Unavailable(format!(
                        "replay: the recorded error is unreadable: {e}"
                    ))
                }),
            )
        }
    }
}

impl LlmBackend for Tape {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        let req = json!({ "model": call.model, "request": request });
        let result = self.answer(Capability::Llm, "complete", &req, |_| true);
        Box::pin(async move { result })
    }
}

impl Database for Tape {
    fn list_tables<'a>(
        &'a self,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<String>, CapabilityError>> {
        let result = self.answer(Capability::Db, "list-tables", &Value::Null, |_| true);
        Box::pin(async move { result })
    }

    fn describe<'a>(
        &'a self,
        _ctx: &'a CallContext,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Vec<weft_runtime::Column>, CapabilityError>> {
        let req = json!({ "table": table });
        let result = self.answer(Capability::Db, "describe", &req, |_| true);
        Box::pin(async move { result })
    }

    fn query<'a>(
        &'a self,
        _ctx: &'a CallContext,
        sql: &'a str,
        params: &'a [weft_runtime::Value],
        _max_rows: usize,
    ) -> BoxFuture<'a, Result<weft_runtime::Rows, CapabilityError>> {
        let req = json!({ "sql": sql, "params": params });
        let result = self.answer(Capability::Db, "query", &req, |_| true);
        Box::pin(async move { result })
    }
}

impl MemoryStore for Tape {
    fn get<'a>(
        &'a self,
        _ctx: &'a CallContext,
        scope: Scope,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, CapabilityError>> {
        let req = json!({ "scope": scope, "key": key });
        let result = self.answer(Capability::Memory, "get", &req, |r| r == &req);
        Box::pin(async move { result })
    }
}

/// `store` reads as the recorded run was answered: values (`get`), whether
/// a key existed and the project's key count when a new key was set
/// (`exists`, `count`), and the committed keys a listing merged (`keys`).
impl KvStore for Tape {
    fn get<'a>(
        &'a self,
        _project: &'a str,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, CapabilityError>> {
        let req = json!({ "namespace": namespace, "key": key });
        let result = self.answer(Capability::Store, "get", &req, |r| r == &req);
        Box::pin(async move { result })
    }

    fn exists<'a>(
        &'a self,
        _project: &'a str,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, CapabilityError>> {
        let req = json!({ "namespace": namespace, "key": key });
        let result = self.answer(Capability::Store, "exists", &req, |r| r == &req);
        Box::pin(async move { result })
    }

    fn list<'a>(
        &'a self,
        _project: &'a str,
        namespace: &'a str,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<String>, CapabilityError>> {
        let req =
            json!({ "namespace": namespace, "prefix": prefix, "after": after, "limit": limit });
        let result = self.answer(Capability::Store, "keys", &req, |r| r == &req);
        Box::pin(async move { result })
    }

    fn count<'a>(&'a self, _project: &'a str) -> BoxFuture<'a, Result<u64, CapabilityError>> {
        let result = self.answer(Capability::Store, "count", &json!({}), |_| true);
        Box::pin(async move { result })
    }
}

impl ToolBox for Tape {
    fn list<'a>(
        &'a self,
        _ctx: &'a CallContext,
        server: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ToolInfo>, CapabilityError>> {
        let req = json!({ "server": server });
        let result = self.answer(Capability::Tools, "server_tools", &req, |r| r == &req);
        Box::pin(async move { result })
    }

    fn call<'a>(
        &'a self,
        _ctx: &'a CallContext,
        server: &'a str,
        tool: &'a str,
        arguments: serde_json::Map<String, Value>,
    ) -> BoxFuture<'a, Result<ToolResult, CapabilityError>> {
        let req = json!({ "server": server, "name": tool, "arguments": arguments });
        let result = self.answer(Capability::Tools, "call", &req, |r| r == &req);
        Box::pin(async move { result })
    }
}
