//! Runtime configuration and per-invocation limits.

use std::path::PathBuf;
use std::time::Duration;

/// Limits applied to one invocation (`describe` or `tick`), all in one place
/// when its store is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU fuel (roughly, wasm instructions); `None` turns fuel metering off
    /// for this invocation (the deadline still applies).
    pub fuel: Option<u64>,
    /// Wall-clock deadline for the whole invocation, host calls included.
    pub deadline: Duration,
    /// Cap on the instance's linear memories, in bytes, summed.
    pub max_memory: usize,
    /// Cap on the tick output (message bodies plus reply), in bytes.
    pub max_output: usize,
    /// Cap on what the guest may print to stdout/stderr (kept for traps and logs).
    pub max_stdio: usize,
    /// Cap on host-capability calls per invocation (granted or not); the
    /// calls beyond it fail with `limit-exceeded` and are neither
    /// journaled nor logged.
    pub max_host_calls: u32,
    /// Cap on the invocation's journal (host calls with their answers,
    /// kept for replay), in bytes of JSON; a call whose entry does not fit
    /// fails with `limit-exceeded` (a short entry says so).
    pub max_journal: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: Some(1_000_000_000),
            deadline: Duration::from_secs(30),
            max_memory: 64 << 20,
            max_output: 1 << 20,
            max_stdio: 64 << 10,
            max_host_calls: 10_000,
            max_journal: 4 << 20,
        }
    }
}

/// Sizes of the pooling allocator: how many instances may be live at once
/// and how big each may be. Python and JavaScript components need more core
/// instances, memories and tables per component than Rust ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Component instances live at once: ticks running, and ticks waiting
    /// on a host call (a model answer) with their instance. A tick beyond
    /// this waits for a slot. Each slot reserves address space (about 8 GiB
    /// of it for its two linear memories, with their guard regions), not
    /// memory: a process has 128 TiB of it on x86-64 Linux, so all the
    /// runtimes of a process together fit about 10,000 slots. The default,
    /// 1,000, leaves room for several runtimes in one process (tests);
    /// `weft` runs one and sets 10,000 (`runtime.instances`).
    pub instances: u32,
    /// Core instances per component.
    pub core_instances_per_component: u32,
    /// Linear memories per component.
    pub memories_per_component: u32,
    /// Tables per component.
    pub tables_per_component: u32,
    /// Largest linear memory, in bytes (also bounds [`Limits::max_memory`]).
    pub max_memory_size: usize,
    /// Bytes of each pooled linear memory (and async stack) reset with
    /// `memset` and kept mapped when an instance is freed, instead of being
    /// returned to the kernel with `madvise`. With a fresh instance per
    /// invocation, `madvise` means a TLB shootdown on every core and page
    /// faults on the next use: the largest cost of an invocation (profiled
    /// with `weft bench frames`). Memory beyond this is still decommitted.
    pub keep_resident: usize,
    /// Freed slots are decommitted in batches of this many (one `madvise`
    /// sweep, one TLB flush per batch).
    pub decommit_batch_size: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            instances: 1000,
            core_instances_per_component: 32,
            memories_per_component: 4,
            tables_per_component: 8,
            max_memory_size: 256 << 20,
            keep_resident: 2 << 20,
            decommit_batch_size: 32,
        }
    }
}

/// How the runtime is set up; one per process.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for precompiled artifacts; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Default limits for invocations that do not name their own.
    pub limits: Limits,
    /// Pooling allocator sizes; `None` uses on-demand allocation.
    pub pool: Option<PoolConfig>,
    /// How often the epoch advances; deadlines are checked at this
    /// granularity and a running guest yields to the executor this often.
    pub epoch_tick: Duration,
    /// Most instances kept idle between ticks for nodes with
    /// `instance: reuse`, over all nodes and projects; the least recently
    /// used is dropped beyond it, and idle ones are dropped first when the
    /// pool has no free slot. 0 turns reuse off.
    pub max_idle_instances: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            limits: Limits::default(),
            pool: Some(PoolConfig::default()),
            epoch_tick: Duration::from_millis(10),
            max_idle_instances: 256,
        }
    }
}
