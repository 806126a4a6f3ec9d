//! Host capabilities: one module per WIT interface, each with its own state
//! and its own `add_to_linker`.
//!
//! Every capability call goes through [`Shared::admit`], which checks the
//! node's grants (an ungranted call returns `denied` and is audited) and
//! journals the request and response, so a frame can later be replayed from
//! the journal without the LLM or the database.

pub mod db;
pub mod hud;
pub mod llm;
pub mod log;
pub mod memory;
pub mod store;
pub mod tools;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::types::{CallContext, Capability, CapabilityError, Grants};

/// A boxed, sendable future, as returned by the capability backend traits
/// (which must be object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The backends an invocation's capabilities talk to.
#[derive(Clone)]
pub struct Services {
    /// Chat completion.
    pub llm: Arc<dyn llm::LlmBackend>,
    /// Read-only database.
    pub db: Arc<dyn db::Database>,
    /// Committed memory state (reads only: writes are returned in the
    /// invocation and committed with the frame).
    pub memory: Arc<dyn memory::MemoryStore>,
    /// Committed key/value state of the projects (`store`; reads only:
    /// writes are returned in the invocation and committed with the frame).
    pub kv: Arc<dyn store::KvStore>,
    /// The MCP servers of the `tools` capability.
    pub tools: Arc<dyn tools::ToolBox>,
    /// Live listener for progress and events (they are also returned in the
    /// invocation).
    pub events: Arc<dyn hud::EventSink>,
}

impl Services {
    /// Services that answer nothing: every LLM call and database query is
    /// `unavailable`, memory is empty and events go nowhere. Useful for
    /// `describe` and for nodes that need no capabilities.
    pub fn unavailable() -> Self {
        Self {
            llm: Arc::new(llm::Unavailable),
            db: Arc::new(db::InMemoryDb::default()),
            memory: Arc::new(memory::MemoryMap::default()),
            kv: Arc::new(store::KvMap::default()),
            tools: Arc::new(tools::NoTools),
            events: Arc::new(hud::NullSink),
        }
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

/// One host-capability call, as journaled for replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position within the invocation, from 0.
    pub seq: u32,
    /// The capability called.
    pub capability: Capability,
    /// The function, e.g. `complete`, `query`, `get`.
    pub op: String,
    /// The request's arguments.
    pub request: serde_json::Value,
    /// What the host answered (including errors).
    pub response: serde_json::Value,
}

/// State every capability of one invocation shares: who is calling, what it
/// may call, the journal, and what the invocation may spend on host calls.
#[derive(Debug)]
pub(crate) struct Shared {
    pub call: CallContext,
    pub grants: Grants,
    pub journal: Vec<JournalEntry>,
    /// Each capability called without a grant, once.
    pub denied: Vec<Capability>,
    /// Calls of capabilities without a grant (each journaled; only the
    /// first per capability is logged).
    pub denied_calls: u64,
    /// Host calls so far, refused ones included.
    pub calls: u64,
    /// Bytes of JSON in the journal.
    pub journal_bytes: usize,
    /// The most host calls and journal bytes of the invocation.
    pub max_calls: u32,
    pub max_journal: usize,
}

/// The journal entry of a call whose entry would pass the journal limit:
/// its request is dropped, its answer is this error.
const OVER_JOURNAL_ENTRY_BYTES: usize = 160;

impl Shared {
    /// A fresh invocation's shared state.
    pub fn new(call: CallContext, grants: Grants, limits: &crate::config::Limits) -> Self {
        Self {
            call,
            grants,
            journal: Vec::new(),
            denied: Vec::new(),
            denied_calls: 0,
            calls: 0,
            journal_bytes: 0,
            max_calls: limits.max_host_calls,
            max_journal: limits.max_journal,
        }
    }

    /// Counts a host call against the invocation's limit and checks the
    /// grant for `cap`. A call beyond the limit fails with
    /// `limit-exceeded` (not journaled, not logged); an ungranted call is
    /// journaled and fails with `denied` (the first per capability is
    /// logged; the rest are counted and summed up when the invocation ends).
    pub fn admit(&mut self, cap: Capability, op: &str) -> Result<(), CapabilityError> {
        self.calls = self.calls.saturating_add(1);
        if self.calls > u64::from(self.max_calls) {
            return Err(CapabilityError::LimitExceeded(format!(
                "at most {} host calls per invocation",
                self.max_calls
            )));
        }
        if self.grants.allows(cap) {
            return Ok(());
        }
        self.denied_calls += 1;
        if !self.denied.contains(&cap) {
            self.denied.push(cap);
            tracing::warn!(
                thread = %self.call.thread,
                node = %self.call.node,
                capability = %cap,
                op,
                "denied: capability not granted to node (further denied calls of this invocation are counted, not logged)"
            );
        }
        let err = CapabilityError::Denied(cap);
        let _ = self.record(cap, op, serde_json::Value::Null, Err::<(), _>(err.clone()));
        Err(err)
    }

    /// Appends a call and its outcome to the journal and returns the
    /// outcome, or `limit-exceeded` when the entry does not fit the
    /// journal's limit (then a short entry records that error instead: a
    /// replay sees the same answer).
    pub fn record<T: Serialize>(
        &mut self,
        cap: Capability,
        op: &str,
        request: serde_json::Value,
        response: Result<T, CapabilityError>,
    ) -> Result<T, CapabilityError> {
        let answer = match &response {
            Ok(v) => serde_json::json!({ "ok": v }),
            Err(e) => serde_json::json!({ "err": e }),
        };
        let size = json_len(&request) + json_len(&answer) + op.len() + 32;
        if self.journal_bytes.saturating_add(size) > self.max_journal {
            let err = CapabilityError::LimitExceeded(format!(
                "the invocation's journal is full ({} bytes): a {cap} call's answer of {size} bytes does not fit",
                self.max_journal
            ));
            self.journal_bytes += OVER_JOURNAL_ENTRY_BYTES;
            self.journal.push(JournalEntry {
                seq: self.journal.len() as u32,
                capability: cap,
                op: op.to_owned(),
                request: serde_json::Value::Null,
                response: serde_json::json!({ "err": err }),
            });
            return Err(err);
        }
        self.journal_bytes += size;
        self.journal.push(JournalEntry {
            seq: self.journal.len() as u32,
            capability: cap,
            op: op.to_owned(),
            request,
            response: answer,
        });
        response
    }

    /// Logs one line summing up what the invocation was refused beyond
    /// what was logged (denied calls after the first per capability, calls
    /// past the host-call limit).
    pub fn summarise(&self) {
        let logged = self.denied.len() as u64;
        let over = self.calls.saturating_sub(u64::from(self.max_calls));
        if self.denied_calls > logged || over > 0 {
            tracing::warn!(
                thread = %self.call.thread,
                run = %self.call.run,
                frame = self.call.frame,
                node = %self.call.node,
                denied_calls = self.denied_calls,
                calls_over_limit = over,
                max_host_calls = self.max_calls,
                "refused host calls of one invocation (summary)"
            );
        }
    }
}

/// The length of `v` as JSON.
fn json_len(v: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

/// What a capability's host functions see: its own state plus the shared
/// invocation state.
pub(crate) struct CapView<'a, S> {
    pub state: &'a mut S,
    pub shared: &'a mut Shared,
}
