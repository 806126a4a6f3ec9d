//! The `store` capability (contract 0.3.0): key/value state shared by every
//! thread of a project, in namespaces, with listing by prefix.
//!
//! Reads go to the committed state ([`KvStore`]), scoped to the calling
//! thread's project; writes are buffered in the invocation (reads and
//! listings see them at once) and returned as [`KvWrite`]s, which the
//! engine commits with the frame. Every call is journaled, and so is the
//! project's key count a `set` of a new key is checked against (ops
//! `exists` and `count`) and the committed keys a `list` merged with the
//! invocation's writes (op `keys`), so a replay answers exactly as the
//! recorded run was answered.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use serde_json::json;
use wasmtime::component::{HasData, Linker};

use super::{BoxFuture, CapView};
use crate::sandbox::HostState;
use crate::types::{CallContext, Capability, CapabilityError};

/// Longest namespace, in bytes.
pub const MAX_NAMESPACE_BYTES: usize = 64;
/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most keys one invocation may set or delete.
pub const MAX_WRITES: usize = 256;
/// Most keys a project may hold.
pub const MAX_KEYS: u64 = 10_000;
/// Most keys one `list` returns.
pub const MAX_LIST: u32 = 1000;

/// The committed key/value state of every project, read by invocations.
pub trait KvStore: Send + Sync {
    /// The value of `key` in `namespace` of `project`.
    fn get<'a>(
        &'a self,
        project: &'a str,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, CapabilityError>>;

    /// The keys of `namespace` of `project` starting with `prefix`, in
    /// byte order, after `after`, at most `limit`.
    fn list<'a>(
        &'a self,
        project: &'a str,
        namespace: &'a str,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<String>, CapabilityError>>;

    /// Whether `key` is set in `namespace` of `project`.
    fn exists<'a>(
        &'a self,
        project: &'a str,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, CapabilityError>> {
        Box::pin(async move { Ok(self.get(project, namespace, key).await?.is_some()) })
    }

    /// How many keys `project` holds.
    fn count<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<u64, CapabilityError>>;
}

/// A buffered write, applied when the frame commits; `value: None` deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvWrite {
    /// The project the key belongs to.
    pub project: String,
    /// The namespace.
    pub namespace: String,
    /// The key.
    pub key: String,
    /// The new value, or `None` to delete.
    pub value: Option<String>,
}

/// One project's keys: (namespace, key) → value, in order.
type ProjectKeys = BTreeMap<(String, String), String>;

/// An in-process key/value state: what hosts without a store use.
#[derive(Debug, Default)]
pub struct KvMap {
    /// project → its keys.
    entries: RwLock<HashMap<String, ProjectKeys>>,
}

impl KvMap {
    /// Applies committed writes.
    pub fn apply(&self, writes: &[KvWrite]) {
        let mut map = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for w in writes {
            let k = (w.namespace.clone(), w.key.clone());
            match &w.value {
                Some(v) => {
                    map.entry(w.project.clone())
                        .or_default()
                        .insert(k, v.clone());
                }
                None => {
                    if let Some(project) = map.get_mut(&w.project) {
                        project.remove(&k);
                    }
                }
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, ProjectKeys>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl KvStore for KvMap {
    fn get<'a>(
        &'a self,
        project: &'a str,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, CapabilityError>> {
        let value = self
            .read()
            .get(project)
            .and_then(|p| p.get(&(namespace.to_owned(), key.to_owned())))
            .cloned();
        Box::pin(async move { Ok(value) })
    }

    fn list<'a>(
        &'a self,
        project: &'a str,
        namespace: &'a str,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<String>, CapabilityError>> {
        let keys = self.read().get(project).map_or_else(Vec::new, |p| {
            p.range((namespace.to_owned(), prefix.to_owned())..)
                .map(|(k, _)| k)
                .take_while(|(ns, k)| *ns == namespace && k.starts_with(prefix))
                .filter(|(_, k)| after.is_none_or(|a| k.as_str() > a))
                .take(limit as usize)
                .map(|(_, k)| k.clone())
                .collect()
        });
        Box::pin(async move { Ok(keys) })
    }

    fn count<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<u64, CapabilityError>> {
        let n = self.read().get(project).map_or(0, |p| p.len() as u64);
        Box::pin(async move { Ok(n) })
    }
}

/// Per-invocation state of the `store` capability.
pub(crate) struct KvState {
    pub store: std::sync::Arc<dyn KvStore>,
    /// Writes of this invocation, latest per (namespace, key); `None` is a
    /// delete.
    pub overlay: BTreeMap<(String, String), Option<String>>,
    /// New keys this invocation set (not committed before it): counted
    /// against the project's most keys.
    pub added: BTreeSet<(String, String)>,
    /// The project's key count, read (and journaled) at the first new key.
    pub count: Option<u64>,
    /// Bytes of the overlay's keys and values: counted against the node's
    /// output limit, with its output.
    pub bytes: usize,
    /// The node's output limit.
    pub max_bytes: usize,
}

impl KvState {
    /// Buffers a write within the invocation's limits.
    fn write(
        &mut self,
        namespace: String,
        key: String,
        value: Option<String>,
    ) -> Result<(), CapabilityError> {
        let size = |(n, k): &(String, String), v: &Option<String>| {
            n.len() + k.len() + v.as_ref().map_or(0, String::len)
        };
        let k = (namespace, key);
        let old = self.overlay.get(&k).map(|v| size(&k, v));
        if old.is_none() && self.overlay.len() >= MAX_WRITES {
            return Err(CapabilityError::LimitExceeded(format!(
                "at most {MAX_WRITES} store keys written per invocation"
            )));
        }
        let bytes = self.bytes - old.unwrap_or(0) + size(&k, &value);
        if bytes > self.max_bytes {
            return Err(CapabilityError::LimitExceeded(format!(
                "store writes of {bytes} bytes in one invocation, over the node's output limit of {} bytes",
                self.max_bytes
            )));
        }
        self.bytes = bytes;
        if value.is_none() {
            self.added.remove(&k);
        }
        self.overlay.insert(k, value);
        Ok(())
    }

    /// The buffered writes, in key order.
    pub fn writes(&self, call: &CallContext) -> Vec<KvWrite> {
        self.overlay
            .iter()
            .map(|((namespace, key), value)| KvWrite {
                project: call.project.clone(),
                namespace: namespace.clone(),
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    }
}

/// A namespace or key: 1 to `max` bytes, no control characters.
fn check(what: &str, text: &str, max: usize) -> Result<(), CapabilityError> {
    if text.is_empty() || text.len() > max || text.chars().any(char::is_control) {
        return Err(CapabilityError::InvalidInput(format!(
            "a store {what} has 1 to {max} bytes and no control characters (got {} bytes)",
            text.len()
        )));
    }
    Ok(())
}

fn check_name(namespace: &str, key: &str) -> Result<(), CapabilityError> {
    check("namespace", namespace, MAX_NAMESPACE_BYTES)?;
    check("key", key, MAX_KEY_BYTES)
}

struct HasKv;
impl HasData for HasKv {
    type Data<'a> = CapView<'a, KvState>;
}

/// Adds the `store` interface to `linker` (contract 0.3.0 and later).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use crate::bindings::{v0_3, v0_4};
    v0_4::weft::node::store::add_to_linker::<HostState, HasKv>(linker, |s| CapView {
        state: &mut s.kv,
        shared: &mut s.shared,
    })?;
    v0_3::weft::node::store::add_to_linker::<HostState, HasKv>(linker, |s| CapView {
        state: &mut s.kv,
        shared: &mut s.shared,
    })
}

/// The `store` host functions, for each contract version's bindings that
/// have them.
macro_rules! host {
    ($wit:path, $err:path) => {
        const _: () = {
            use $err as WitError;
            use $wit as wit;

            impl wit::Host for CapView<'_, KvState> {
                #[tracing::instrument(name = "weft.store.get", skip_all)]
                async fn get(&mut self, namespace: String, key: String) -> Result<Option<String>, WitError> {
                    self.shared.admit(Capability::Store, "get")?;
                    let result = match check_name(&namespace, &key) {
                        Err(e) => Err(e),
                        Ok(()) => match self.state.overlay.get(&(namespace.clone(), key.clone())) {
                            Some(v) => Ok(v.clone()),
                            None => {
                                let project = self.shared.call.project.clone();
                                self.state.store.get(&project, &namespace, &key).await
                            }
                        },
                    };
                    self.shared
                        .record(
                            Capability::Store,
                            "get",
                            json!({ "namespace": namespace, "key": key }),
                            result,
                        )
                        .map_err(Into::into)
                }

                #[tracing::instrument(name = "weft.store.set", skip_all)]
                async fn set(&mut self, namespace: String, key: String, value: String) -> Result<(), WitError> {
                    self.shared.admit(Capability::Store, "set")?;
                    let req = json!({ "namespace": namespace, "key": key, "bytes": value.len() });
                    let mut result = check_name(&namespace, &key).and_then(|()| {
                        if value.len() > MAX_VALUE_BYTES {
                            return Err(CapabilityError::LimitExceeded(format!(
                                "a store value is at most {MAX_VALUE_BYTES} bytes (got {})",
                                value.len()
                            )));
                        }
                        Ok(())
                    });
                    if result.is_ok() {
                        result = self.count_new(&namespace, &key).await;
                    }
                    let result = result.and_then(|()| self.state.write(namespace, key, Some(value)));
                    self.shared
                        .record(Capability::Store, "set", req, result)
                        .map_err(Into::into)
                }

                #[tracing::instrument(name = "weft.store.delete", skip_all)]
                async fn delete(&mut self, namespace: String, key: String) -> Result<(), WitError> {
                    self.shared.admit(Capability::Store, "delete")?;
                    let req = json!({ "namespace": namespace, "key": key });
                    let result = check_name(&namespace, &key)
                        .and_then(|()| self.state.write(namespace, key, None));
                    self.shared
                        .record(Capability::Store, "delete", req, result)
                        .map_err(Into::into)
                }

                #[tracing::instrument(name = "weft.store.list", skip_all)]
                async fn list_keys(
                    &mut self,
                    namespace: String,
                    prefix: String,
                    after: Option<String>,
                    limit: u32,
                ) -> Result<Vec<String>, WitError> {
                    self.shared.admit(Capability::Store, "list")?;
                    let req = json!({ "namespace": namespace, "prefix": prefix, "after": after, "limit": limit });
                    let result = self.merged_keys(&namespace, &prefix, after.as_deref(), limit).await;
                    self.shared
                        .record(Capability::Store, "list", req, result)
                        .map_err(Into::into)
                }
            }
        };
    };
}
host!(
    crate::bindings::v0_4::weft::node::store,
    crate::bindings::v0_4::wit::Error
);
host!(
    crate::bindings::v0_3::weft::node::store,
    crate::bindings::v0_3::wit::Error
);

impl CapView<'_, KvState> {
    /// Checks, for a `set` of a key that is new to the project, that the
    /// project holds fewer than [`MAX_KEYS`] keys with this invocation's
    /// new ones. The count read is journaled (op `count`) for replay.
    async fn count_new(&mut self, namespace: &str, key: &str) -> Result<(), CapabilityError> {
        let k = (namespace.to_owned(), key.to_owned());
        if self.state.added.contains(&k) || matches!(self.state.overlay.get(&k), Some(Some(_))) {
            return Ok(());
        }
        let project = self.shared.call.project.clone();
        let exists = self.state.store.exists(&project, namespace, key).await;
        let exists = self.shared.record(
            Capability::Store,
            "exists",
            json!({ "namespace": namespace, "key": key }),
            exists,
        )?;
        if exists {
            return Ok(());
        }
        let count = match self.state.count {
            Some(n) => n,
            None => {
                let count = self.state.store.count(&project).await;
                let n = self
                    .shared
                    .record(Capability::Store, "count", json!({}), count)?;
                self.state.count = Some(n);
                n
            }
        };
        let added = self.state.added.len() as u64;
        if count.saturating_add(added) >= MAX_KEYS {
            return Err(CapabilityError::LimitExceeded(format!(
                "project `{project}` holds {} store keys, the most it may (delete some first)",
                count + added
            )));
        }
        self.state.added.insert(k);
        Ok(())
    }

    /// The committed keys with this invocation's writes laid over them.
    async fn merged_keys(
        &mut self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, CapabilityError> {
        check("namespace", namespace, MAX_NAMESPACE_BYTES)?;
        if prefix.len() > MAX_KEY_BYTES {
            return Err(CapabilityError::InvalidInput(format!(
                "a store prefix has at most {MAX_KEY_BYTES} bytes"
            )));
        }
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(CapabilityError::InvalidInput(format!(
                "`limit` is 1 to {MAX_LIST} (got {limit})"
            )));
        }
        // Keys this invocation deleted may hide committed ones: ask for as
        // many more as it wrote.
        let more = u32::try_from(self.state.overlay.len()).unwrap_or(u32::MAX);
        let asked = limit.saturating_add(more);
        let project = self.shared.call.project.clone();
        let committed = self
            .state
            .store
            .list(&project, namespace, prefix, after, asked)
            .await;
        // What the committed state answered, journaled apart from the
        // merged answer (op `keys`): a replay merges the same two.
        let committed = self.shared.record(
            Capability::Store,
            "keys",
            json!({ "namespace": namespace, "prefix": prefix, "after": after, "limit": asked }),
            committed,
        )?;
        // When the committed keys were cut off, keys past the last one may
        // exist: this invocation's keys past it wait for the next page.
        let bound = (committed.len() as u64 >= u64::from(asked))
            .then(|| committed.last().cloned())
            .flatten();
        let mut keys: BTreeSet<String> = committed.into_iter().collect();
        for ((ns, k), v) in &self.state.overlay {
            if ns != namespace
                || !k.starts_with(prefix)
                || after.is_some_and(|a| k.as_str() <= a)
                || bound.as_ref().is_some_and(|b| k > b)
            {
                continue;
            }
            if v.is_some() {
                keys.insert(k.clone());
            } else {
                keys.remove(k);
            }
        }
        Ok(keys.into_iter().take(limit as usize).collect())
    }
}
