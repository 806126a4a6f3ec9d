//! The engine's settings and the backends behind its capabilities.

use std::sync::Arc;
use std::time::Duration;

use weft_runtime::capabilities::db::Database;
use weft_runtime::capabilities::llm::LlmBackend;
use weft_runtime::capabilities::tools::ToolBox;

use crate::clock::{Clock, SystemClock};
use crate::metering::{BudgetConfig, PriceTable};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Events kept for slow subscribers before they start losing the oldest.
    pub event_capacity: usize,
    /// Finished traces kept in memory for [`Engine::recent_traces`].
    pub trace_history: usize,
    /// Token and money budgets.
    pub budget: BudgetConfig,
    /// Prices for usage costs.
    pub prices: PriceTable,
    /// The time of day for budget windows and usage events.
    pub clock: Arc<dyn Clock>,
    /// How often a run waiting on an exhausted budget checks whether a new
    /// budget window has begun (raises wake it at once).
    pub budget_tick: Duration,
    /// How often the engine looks for interrupts whose
    /// `interrupt_timeout_ms` passed (they then end as `timed_out`).
    pub interrupt_tick: Duration,
    /// How often a frame's commit is tried before its run stops with
    /// status `store_failed` (the frame stays uncommitted, and the run
    /// resumes from its last committed frame at the next start).
    pub commit_attempts: u32,
    /// The wait before the first retry of a failed commit; doubled for
    /// each further retry, up to five seconds.
    pub commit_backoff: Duration,
    /// Prune finished threads in the background (with a store).
    pub retention: Option<Retention>,
    /// This host's id in the leases of a store shared by several hosts
    /// (default: `host-`, the process id and the start time).
    pub host_id: String,
    /// Leases on runs, when the store is shared (see
    /// [`Store::shared`](crate::Store::shared)).
    pub leases: LeaseConfig,
}

/// Leases on runs in a store shared by several hosts: a run executes on
/// the host holding its lease, which renews it while the run executes;
/// every frame commit carries the lease's fencing token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a lease lasts unless renewed: the runs of a host that
    /// stops (crash, pause, network cut) are taken over this long after
    /// its last renewal.
    pub ttl: Duration,
    /// How often the lease of an executing run is renewed (well under
    /// `ttl`).
    pub renew_every: Duration,
    /// How often the host looks for unfinished runs whose lease expired,
    /// to take them over (`None`: only when
    /// [`Engine::resume_runs`](crate::Engine::resume_runs) is called).
    pub takeover_every: Option<Duration>,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            takeover_every: None,
        }
    }
}

/// A host id unique enough for leases: the process id and the start time.
pub fn default_host_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("host-{}-{:x}", std::process::id(), nanos)
}

/// The background pruning of finished threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Threads whose runs all finished longer ago than this are removed
    /// (their usage totals are kept).
    pub max_age: Duration,
    /// How often the job runs.
    pub every: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            event_capacity: 4096,
            trace_history: 200,
            budget: BudgetConfig::default(),
            prices: PriceTable::default(),
            clock: Arc::new(SystemClock),
            budget_tick: Duration::from_secs(5),
            interrupt_tick: Duration::from_secs(1),
            commit_attempts: 8,
            commit_backoff: Duration::from_millis(100),
            retention: None,
            host_id: default_host_id(),
            leases: LeaseConfig::default(),
        }
    }
}

/// The backends behind the `llm` and `db` capabilities.
#[derive(Clone)]
pub struct Backends {
    /// Chat completion.
    pub llm: Arc<dyn LlmBackend>,
    /// The read-only database.
    pub db: Arc<dyn Database>,
    /// The MCP servers of the `tools` capability.
    pub tools: Arc<dyn ToolBox>,
}

impl Backends {
    /// A tool box without servers (every `tools` call is `unavailable`).
    pub fn no_tools() -> Arc<dyn ToolBox> {
        Arc::new(weft_runtime::capabilities::tools::NoTools)
    }
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").finish_non_exhaustive()
    }
}
