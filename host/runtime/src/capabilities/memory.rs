//! The `memory` capability: durable key/value state scoped to the thread or
//! to the node within the thread.
//!
//! Reads go to the committed state ([`MemoryStore`]); writes are buffered
//! in the invocation (reads see them at once) and returned as
//! [`MemoryWrite`]s, which the engine commits when the frame ends.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use serde_json::json;
use wasmtime::component::{HasData, Linker};

use super::{BoxFuture, CapView};
use crate::sandbox::HostState;
use crate::types::{CallContext, Capability, CapabilityError, Scope};

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most keys one invocation may set or delete.
pub const MAX_WRITES: usize = 1024;

/// Committed memory state, read by invocations.
pub trait MemoryStore: Send + Sync {
    /// The value of `key` in `scope` for the thread (and node) of `ctx`.
    fn get<'a>(
        &'a self,
        ctx: &'a CallContext,
        scope: Scope,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, CapabilityError>>;
}

/// A buffered write, applied when the frame commits; `value: None` deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryWrite {
    /// Thread the key belongs to.
    pub thread: String,
    /// The node, for node-scoped keys; `None` for thread-scoped ones.
    pub node: Option<String>,
    /// The key.
    pub key: String,
    /// The new value, or `None` to delete.
    pub value: Option<String>,
}

/// An in-process memory store: what tests, the demo and single-process
/// hosts without durability use.
#[derive(Debug, Default)]
pub struct MemoryMap {
    entries: RwLock<HashMap<String, HashMap<EntryKey, String>>>,
}

/// (node for node-scoped keys, key), within a thread.
type EntryKey = (Option<String>, String);

impl MemoryMap {
    /// Applies committed writes.
    pub fn apply(&self, writes: &[MemoryWrite]) {
        let mut map = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for w in writes {
            let k = (w.node.clone(), w.key.clone());
            match &w.value {
                Some(v) => {
                    map.entry(w.thread.clone())
                        .or_default()
                        .insert(k, v.clone());
                }
                None => {
                    if let Some(thread) = map.get_mut(&w.thread) {
                        thread.remove(&k);
                        if thread.is_empty() {
                            map.remove(&w.thread);
                        }
                    }
                }
            }
        }
    }

    /// Drops a thread's keys from memory (an idle thread of a durable
    /// host: the store keeps them and they are loaded again with it).
    pub fn forget_thread(&self, thread: &str) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(thread);
    }

    /// Threads with keys in memory.
    pub fn threads(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

impl MemoryStore for MemoryMap {
    fn get<'a>(
        &'a self,
        ctx: &'a CallContext,
        scope: Scope,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, CapabilityError>> {
        let node = (scope == Scope::Node).then(|| ctx.node.clone());
        let map = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let value = map
            .get(&ctx.thread)
            .and_then(|t| t.get(&(node, key.to_owned())))
            .cloned();
        Box::pin(async move { Ok(value) })
    }
}

/// Per-invocation state of the `memory` capability.
pub(crate) struct MemoryState {
    pub store: std::sync::Arc<dyn MemoryStore>,
    /// Writes of this invocation, latest per key; `None` is a delete.
    pub overlay: BTreeMap<(Scope, String), Option<String>>,
    /// Bytes of the overlay's keys and values: counted against the
    /// node's output limit, with its output.
    pub bytes: usize,
    /// The node's output limit.
    pub max_bytes: usize,
}

impl MemoryState {
    /// Buffers a write (`None`: a delete) within the invocation's limits:
    /// at most [`MAX_WRITES`] keys, and keys and values together within
    /// the node's output limit.
    fn write(
        &mut self,
        scope: Scope,
        key: String,
        value: Option<String>,
    ) -> Result<(), CapabilityError> {
        let size = |k: &str, v: &Option<String>| k.len() + v.as_ref().map_or(0, String::len);
        let k = (scope, key);
        let old = self.overlay.get(&k).map(|v| size(&k.1, v));
        if old.is_none() && self.overlay.len() >= MAX_WRITES {
            return Err(CapabilityError::LimitExceeded(format!(
                "at most {MAX_WRITES} memory keys written per invocation"
            )));
        }
        let bytes = self.bytes - old.unwrap_or(0) + size(&k.1, &value);
        if bytes > self.max_bytes {
            return Err(CapabilityError::LimitExceeded(format!(
                "memory writes of {bytes} bytes in one invocation, over the node's output limit of {} bytes",
                self.max_bytes
            )));
        }
        self.bytes = bytes;
        self.overlay.insert(k, value);
        Ok(())
    }

    /// The buffered writes, in key order.
    pub fn writes(&self, call: &CallContext) -> Vec<MemoryWrite> {
        self.overlay
            .iter()
            .map(|((scope, key), value)| MemoryWrite {
                thread: call.thread.clone(),
                node: (*scope == Scope::Node).then(|| call.node.clone()),
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    }
}

fn check_key(key: &str) -> Result<(), CapabilityError> {
    if key.is_empty() {
        return Err(CapabilityError::InvalidInput(
            "memory keys must not be empty".into(),
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(CapabilityError::InvalidInput(format!(
            "memory key is {} bytes, over the limit of {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

struct HasMemory;
impl HasData for HasMemory {
    type Data<'a> = CapView<'a, MemoryState>;
}

/// Adds the `memory` interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use crate::bindings::{v0_1, v0_2, v0_3, v0_4};
    v0_4::weft::node::memory::add_to_linker::<HostState, HasMemory>(linker, |s| CapView {
        state: &mut s.memory,
        shared: &mut s.shared,
    })?;
    v0_3::weft::node::memory::add_to_linker::<HostState, HasMemory>(linker, |s| CapView {
        state: &mut s.memory,
        shared: &mut s.shared,
    })?;
    v0_2::weft::node::memory::add_to_linker::<HostState, HasMemory>(linker, |s| CapView {
        state: &mut s.memory,
        shared: &mut s.shared,
    })?;
    v0_1::weft::node::memory::add_to_linker::<HostState, HasMemory>(linker, |s| CapView {
        state: &mut s.memory,
        shared: &mut s.shared,
    })
}

/// The `memory` host functions, for each contract version's bindings.
macro_rules! host {
    ($wit:path, $err:path) => {
        const _: () = {
            use $err as WitError;
            use $wit as wit;

            impl wit::Host for CapView<'_, MemoryState> {
                #[tracing::instrument(name = "weft.memory.get", skip_all)]
                async fn get(
                    &mut self,
                    scope: wit::Scope,
                    key: String,
                ) -> Result<Option<String>, WitError> {
                    self.shared.admit(Capability::Memory, "get")?;
                    let scope = Scope::from(scope);
                    let result = match check_key(&key) {
                        Err(e) => Err(e),
                        Ok(()) => match self.state.overlay.get(&(scope, key.clone())) {
                            Some(v) => Ok(v.clone()),
                            None => self.state.store.get(&self.shared.call, scope, &key).await,
                        },
                    };
                    self.shared
                        .record(
                            Capability::Memory,
                            "get",
                            json!({ "scope": scope, "key": key }),
                            result,
                        )
                        .map_err(Into::into)
                }

                #[tracing::instrument(name = "weft.memory.set", skip_all)]
                async fn set(
                    &mut self,
                    scope: wit::Scope,
                    key: String,
                    value: String,
                ) -> Result<(), WitError> {
                    self.shared.admit(Capability::Memory, "set")?;
                    let scope = Scope::from(scope);
                    let result = check_key(&key).and_then(|()| {
                        if value.len() > MAX_VALUE_BYTES {
                            return Err(CapabilityError::LimitExceeded(format!(
                                "memory value is {} bytes, over the limit of {MAX_VALUE_BYTES}",
                                value.len()
                            )));
                        }
                        Ok(())
                    });
                    let req = json!({ "scope": scope, "key": key, "bytes": value.len() });
                    let result = result.and_then(|()| self.state.write(scope, key, Some(value)));
                    self.shared
                        .record(Capability::Memory, "set", req, result)
                        .map_err(Into::into)
                }

                #[tracing::instrument(name = "weft.memory.delete", skip_all)]
                async fn delete(&mut self, scope: wit::Scope, key: String) -> Result<(), WitError> {
                    self.shared.admit(Capability::Memory, "delete")?;
                    let scope = Scope::from(scope);
                    let result = check_key(&key);
                    let req = json!({ "scope": scope, "key": key });
                    let result = result.and_then(|()| self.state.write(scope, key, None));
                    self.shared
                        .record(Capability::Memory, "delete", req, result)
                        .map_err(Into::into)
                }
            }
        };
    };
}
host!(
    crate::bindings::v0_4::weft::node::memory,
    crate::bindings::v0_4::wit::Error
);
host!(
    crate::bindings::v0_3::weft::node::memory,
    crate::bindings::v0_3::wit::Error
);
host!(
    crate::bindings::v0_2::weft::node::memory,
    crate::bindings::v0_2::wit::Error
);
host!(
    crate::bindings::v0_1::weft::node::memory,
    crate::bindings::v0_1::wit::Error
);
