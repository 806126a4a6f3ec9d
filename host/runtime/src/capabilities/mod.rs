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
/// may call, and the journal.
#[derive(Debug)]
pub(crate) struct Shared {
    pub call: CallContext,
    pub grants: Grants,
    pub journal: Vec<JournalEntry>,
    pub denied: Vec<Capability>,
}

impl Shared {
    /// Checks the grant for `cap`; an ungranted call is audited and journaled.
    pub fn admit(&mut self, cap: Capability, op: &str) -> Result<(), CapabilityError> {
        if self.grants.allows(cap) {
            return Ok(());
        }
        tracing::warn!(
            thread = %self.call.thread,
            node = %self.call.node,
            capability = %cap,
            op,
            "denied: capability not granted to node"
        );
        self.denied.push(cap);
        let err = CapabilityError::Denied(cap);
        self.record(cap, op, serde_json::Value::Null, &Err::<(), _>(err.clone()));
        Err(err)
    }

    /// Appends a call and its outcome to the journal.
    pub fn record<T: Serialize>(
        &mut self,
        cap: Capability,
        op: &str,
        request: serde_json::Value,
        response: &Result<T, CapabilityError>,
    ) {
        let response = match response {
            Ok(v) => serde_json::json!({ "ok": v }),
            Err(e) => serde_json::json!({ "err": e }),
        };
        self.journal.push(JournalEntry {
            seq: self.journal.len() as u32,
            capability: cap,
            op: op.to_owned(),
            request,
            response,
        });
    }
}

/// What a capability's host functions see: its own state plus the shared
/// invocation state.
pub(crate) struct CapView<'a, S> {
    pub state: &'a mut S,
    pub shared: &'a mut Shared,
}
