//! Instances kept between ticks, for nodes that opt in.
//!
//! By default every tick runs in a fresh instance. A node whose graph sets
//! `instance: reuse` gets a [`ReuseScope`]; after a tick of that node
//! returns cleanly, its instance (with its store, linear memory and guest
//! globals) goes to the runtime's idle list instead of being dropped, and
//! the node's next tick *in the same project* takes it back: no
//! instantiation, no teardown. What may survive is the guest's own state:
//! a cache, a parsed configuration, an interpreter already started.
//!
//! What never survives: the host side of the call. Every tick gets a new
//! call context, grants, services, journal, memory and `store` overlays,
//! log and event buffers, WASI clocks frozen at the tick's time and WASI
//! randomness seeded from the tick, and fresh fuel and deadline. Instances
//! are never shared across projects, across nodes, across graph versions
//! or across plugin versions, and an instance whose tick trapped, ran out
//! of fuel or time, or hit its memory cap is dropped, not kept.
//!
//! Replay always uses a fresh instance, so a node whose output depends on
//! state kept from an earlier tick shows up in `weft replay` as a
//! divergence at the frame where it does.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use wasmtime::Store;

use crate::bindings::Instance;
use crate::cache::ContentHash;
use crate::sandbox::HostState;

/// One node's claim on kept instances: made when a graph that sets
/// `instance: reuse` on the node is loaded, and dropped with it, which
/// drops the node's idle instances.
#[derive(Debug)]
pub struct ReuseScope {
    id: u64,
    /// The idle list this scope's instances went to (set on first use).
    idle: OnceLock<Weak<IdleInstances>>,
}

impl ReuseScope {
    /// A new scope, distinct from every other in the process.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            idle: OnceLock::new(),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn bind(&self, idle: &Arc<IdleInstances>) {
        let _ = self.idle.set(Arc::downgrade(idle));
    }
}

impl Default for ReuseScope {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ReuseScope {
    fn drop(&mut self) {
        if let Some(idle) = self.idle.get().and_then(Weak::upgrade) {
            idle.forget(self.id);
        }
    }
}

/// An instance between two ticks.
pub(crate) struct Idle {
    pub scope: u64,
    pub project: String,
    pub plugin: ContentHash,
    pub store: Store<HostState>,
    pub instance: Instance,
    /// The pool slot it holds.
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The runtime's idle instances, most recently used last. Bounded: when
/// full, the oldest is dropped to make room.
pub(crate) struct IdleInstances {
    list: Mutex<VecDeque<Idle>>,
    max: usize,
    reused: AtomicU64,
}

impl IdleInstances {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            list: Mutex::new(VecDeque::new()),
            max,
            reused: AtomicU64::new(0),
        }
    }

    /// The most recently used idle instance of `scope` in `project` for
    /// `plugin`, if any.
    pub(crate) fn take(&self, scope: u64, project: &str, plugin: ContentHash) -> Option<Idle> {
        let mut list = self.lock();
        let at = list
            .iter()
            .rposition(|i| i.scope == scope && i.plugin == plugin && i.project == project)?;
        let idle = list.remove(at);
        drop(list);
        self.reused.fetch_add(1, Ordering::Relaxed);
        idle
    }

    /// Keeps `idle` for a later tick; drops the oldest if the list is full.
    pub(crate) fn put(&self, idle: Idle) {
        if self.max == 0 {
            return;
        }
        let evicted = {
            let mut list = self.lock();
            let evicted = if list.len() >= self.max {
                list.pop_front()
            } else {
                None
            };
            list.push_back(idle);
            evicted
        };
        // Dropped outside the lock: teardown returns the pool slot.
        drop(evicted);
    }

    /// Drops the oldest idle instance, freeing its pool slot. False if
    /// there was none.
    pub(crate) fn evict_oldest(&self) -> bool {
        let oldest = self.lock().pop_front();
        oldest.is_some()
    }

    /// Drops every idle instance of `scope`.
    pub(crate) fn forget(&self, scope: u64) {
        let gone: VecDeque<Idle> = {
            let mut list = self.lock();
            let (gone, kept): (VecDeque<Idle>, VecDeque<Idle>) = std::mem::take(&mut *list)
                .into_iter()
                .partition(|i| i.scope == scope);
            *list = kept;
            gone
        };
        drop(gone);
    }

    /// Instances idle now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Ticks that ran in a kept instance, since the runtime started.
    pub(crate) fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        // A panic while holding the lock leaves a consistent list.
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }
}
