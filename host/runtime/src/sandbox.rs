//! The sandbox of one invocation: its store, its host state and its limits.
//!
//! Every limit is applied here, when the store is made: CPU fuel, the
//! wall-clock deadline (checked on each epoch tick, which also makes a busy
//! guest yield to the executor), the memory cap (a resource limiter) and the
//! stdio cap. WASI is given no preopened directories, no network, no
//! environment and no arguments; its clocks and randomness are derived from
//! the invocation so that a frame can be replayed exactly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use crate::capabilities::db::DbState;
use crate::capabilities::hud::HudState;
use crate::capabilities::llm::LlmState;
use crate::capabilities::log::LogState;
use crate::capabilities::memory::MemoryState;
use crate::capabilities::store::KvState;
use crate::capabilities::tools::{ToolGrants, ToolsState};
use crate::capabilities::{Services, Shared};
use crate::config::Limits;
use crate::types::{CallContext, Grants};

/// Most rows a `db.query` returns to a plugin.
pub const DEFAULT_MAX_ROWS: usize = 1000;

/// The data of one invocation's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub shared: Shared,
    pub llm: LlmState,
    pub db: DbState,
    pub memory: MemoryState,
    pub kv: KvState,
    pub tools: ToolsState,
    pub hud: HudState,
    pub log: LogState,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    /// Where this tick's output starts in the pipes (a kept instance's
    /// pipes hold its earlier ticks' output before it).
    pub stdout_from: usize,
    pub stderr_from: usize,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps the sum of an instance's linear memories and remembers whether the
/// cap was hit, so a failed allocation is reported as a memory limit rather
/// than as the trap the guest turns it into.
pub(crate) struct MemoryLimiter {
    max: usize,
    pub used: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        if self.used.saturating_add(grow) > self.max {
            self.hit = true;
            return Ok(false);
        }
        self.used += grow;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// The marker error an epoch callback raises when the deadline has passed.
#[derive(Debug)]
pub(crate) struct DeadlineHit;

impl std::fmt::Display for DeadlineHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wall-clock deadline exceeded")
    }
}

impl std::error::Error for DeadlineHit {}

/// A wall clock frozen at the invocation's start: time enters the plugin
/// only through the host, so replays see the same time.
struct FrozenWallClock(Duration);

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

/// A monotonic clock that does not move within an invocation.
struct FrozenMonotonicClock;

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Everything needed to make one invocation's store.
pub(crate) struct StoreSpec<'a> {
    pub call: CallContext,
    pub grants: Grants,
    /// The MCP tools granted to the node.
    pub tools: &'a ToolGrants,
    pub services: &'a Services,
    pub limits: Limits,
    /// The model the node's `llm` calls use.
    pub model: Option<&'a str>,
    /// Wall-clock time the plugin sees, since the Unix epoch.
    pub wall_time: Duration,
}

/// Makes the store of one invocation with every limit applied.
pub(crate) fn new_store(engine: &Engine, spec: StoreSpec<'_>) -> Store<HostState> {
    let limits = spec.limits;
    let stdout = MemoryOutputPipe::new(limits.max_stdio);
    let stderr = MemoryOutputPipe::new(limits.max_stdio);
    let state = host_state(spec, stdout, stderr);
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    arm(&mut store, &limits);
    store
}

/// Readies a kept instance's store for its next tick: everything of the
/// call is new (context, grants, services, overlays, buffers, WASI clocks
/// and randomness, fuel, deadline); the guest's resources, the memory it
/// has grown and its stdio pipes (read from where the last tick left off)
/// are kept.
pub(crate) fn reset_store(store: &mut Store<HostState>, spec: StoreSpec<'_>) {
    let limits = spec.limits;
    let old = store.data_mut();
    let mut state = host_state(spec, old.stdout.clone(), old.stderr.clone());
    state.table = std::mem::take(&mut old.table);
    state.limiter.used = old.limiter.used;
    // Where the last tick's output ended (set when it was kept).
    state.stdout_from = old.stdout_from;
    state.stderr_from = old.stderr_from;
    *old = state;
    arm(store, &limits);
}

/// Lets go of the last call's host side while a kept instance is idle:
/// its services (a run's memory view, its model handle, its event sink)
/// are swapped for `parked`, empty stand-ins, and its buffered
/// writes and events are dropped. The next call's [`reset_store`] sets
/// everything anew.
pub(crate) fn park(store: &mut Store<HostState>, parked: &Services) {
    let state = store.data_mut();
    state.llm.backend = Arc::clone(&parked.llm);
    state.llm.sink = Arc::clone(&parked.events);
    state.db.backend = Arc::clone(&parked.db);
    state.memory.store = Arc::clone(&parked.memory);
    state.memory.overlay = Default::default();
    state.kv.store = Arc::clone(&parked.kv);
    state.kv.overlay = Default::default();
    state.kv.added = Default::default();
    state.tools.backend = Arc::clone(&parked.tools);
    state.hud.sink = Arc::clone(&parked.events);
    state.hud.events = Vec::new();
    state.log = LogState::default();
    state.shared.journal = Vec::new();
}

/// The host side of one call.
fn host_state(
    spec: StoreSpec<'_>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
) -> HostState {
    let limits = spec.limits;
    let seed = invocation_seed(&spec.call);
    let wasi = WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .wall_clock(FrozenWallClock(spec.wall_time))
        .monotonic_clock(FrozenMonotonicClock)
        .secure_random(StdRng::from_seed(seed))
        .insecure_random(StdRng::from_seed(seed))
        .insecure_random_seed(u128::from_le_bytes(
            seed[..16].try_into().unwrap_or_default(),
        ))
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        .build();
    let services = spec.services;
    HostState {
        wasi,
        table: ResourceTable::new(),
        limiter: MemoryLimiter {
            max: limits.max_memory,
            used: 0,
            hit: false,
        },
        shared: Shared::new(spec.call, spec.grants, &limits),
        llm: LlmState {
            backend: Arc::clone(&services.llm),
            model: spec.model.map(str::to_owned),
            sink: Arc::clone(&services.events),
        },
        db: DbState {
            backend: Arc::clone(&services.db),
            max_rows: DEFAULT_MAX_ROWS,
            max_bytes: limits.max_output,
        },
        memory: MemoryState {
            store: Arc::clone(&services.memory),
            overlay: Default::default(),
            bytes: 0,
            max_bytes: limits.max_output,
        },
        kv: KvState {
            store: Arc::clone(&services.kv),
            overlay: Default::default(),
            added: Default::default(),
            count: None,
            bytes: 0,
            max_bytes: limits.max_output,
        },
        tools: ToolsState {
            backend: Arc::clone(&services.tools),
            grants: spec.tools.clone(),
        },
        hud: HudState {
            sink: Arc::clone(&services.events),
            events: Vec::new(),
        },
        log: LogState::default(),
        stdout,
        stderr,
        stdout_from: 0,
        stderr_from: 0,
    }
}

/// Fuel and the deadline of one tick.
fn arm(store: &mut Store<HostState>, limits: &Limits) {
    // Fuel metering is on engine-wide; "off" means an effectively endless tank.
    let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
    let deadline = Instant::now() + limits.deadline;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(DeadlineHit))
        } else {
            // Yield so that a busy guest never holds an executor thread for
            // longer than one epoch tick.
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

/// A seed for the plugin's randomness, derived from where it runs so that a
/// replay of the frame draws the same numbers.
fn invocation_seed(call: &CallContext) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [
        call.thread.as_bytes(),
        call.run.as_bytes(),
        call.node.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(call.frame.to_le_bytes());
    h.finalize().into()
}
