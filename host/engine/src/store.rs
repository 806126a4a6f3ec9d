//! Durability: the [`Store`] trait the engine commits to, and the records
//! it commits.
//!
//! The engine never speaks SQL: it hands the store whole units of work —
//! the start of a run (its inbound message), one frame (records, journal,
//! messages delivered and sent, memory writes, usage, run state), the end
//! of a run — and each unit commits completely or not at all. `weft-store`
//! implements the trait on SQLite; another backend (PostgreSQL, say) would
//! implement the same trait. Every method is async so that no backend
//! blocks the executor.
//!
//! Frames are numbered twice: `frame` counts within a run (what traces
//! show), `seq` counts across the thread's runs (what `weft replay
//! --frame` and fork points name).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::memory::MemoryWrite;

use crate::metering::MoneyBudget;

mod cluster;
mod error;
mod history;
mod interrupts;
mod kv;
mod records;
mod runs;
mod schedules;
mod usage;
mod versions;
mod webhooks;
pub use cluster::{HostBeat, MoneyHeld, MoneyHold, MoneySettle, MoneySettled};
pub use error::{StoreError, StoreResult};
pub(crate) use history::key_changes;
pub use history::{ParsedVersion, VersionChanges};
pub use interrupts::{InterruptStatus, ResolveInterrupt, StoredInterrupt};
pub(crate) use kv::StoreKv;
pub use records::{InvocationRecord, RecordedOutput, SentMessage};
pub use runs::{ForkStart, FrameCommit, Lease, QueuedRun, RunEnd, RunStart, UnfinishedRun};
pub use schedules::{CatchUp, FireClaim, ScheduleFire, ScheduleSpec, StoredSchedule};
pub use usage::{InvocationTotals, SeriesKey, SeriesPoint, SeriesQuery, UsageHistory};
pub use versions::{GraphVersion, PluginBlob, PluginPin, StoredGraphVersion};
pub use webhooks::{
    AttemptOutcome, ClaimedDelivery, DeliveryAttempt, DeliveryStatus, StoredDelivery,
    WEBHOOK_EVENTS, Webhook, WebhookEvent, delivery_id,
};

/// What the store knows about a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredThread {
    /// Thread id.
    pub id: String,
    /// Its project.
    pub project: String,
    /// The graph version of its latest run.
    pub graph_version: String,
    /// The status of its latest run (`running`, `completed`, …).
    pub status: String,
    /// Runs started so far.
    pub runs: u64,
    /// Frames committed so far, over all runs (the next frame's `seq`).
    pub frames: u64,
    /// Its token limit, when an operator set or raised it.
    pub budget_limit: Option<u64>,
    /// The thread and frame it was forked from.
    pub forked_from: Option<(String, u64)>,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
    /// Last change, Unix milliseconds.
    pub updated_ms: u64,
}

/// Which threads to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadFilter {
    /// Only this project's.
    pub project: Option<String>,
    /// Only threads with this status (`running`, `completed`, …).
    pub status: Option<String>,
    /// Only threads in which this node was invoked.
    pub node: Option<String>,
    /// Only threads changed at or after this time (Unix milliseconds).
    pub since_ms: Option<u64>,
    /// Only threads changed before this time (Unix milliseconds).
    pub until_ms: Option<u64>,
}

/// One page of a list, with the total the filter matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of the page.
    pub items: Vec<T>,
    /// How many items match in all.
    pub total: u64,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRun {
    /// Run id.
    pub id: String,
    /// Thread id.
    pub thread: String,
    /// The graph version it is pinned to.
    pub graph_version: String,
    /// Its status (`running` or final).
    pub status: String,
    /// Frames committed.
    pub frames: u32,
    /// The reply given so far.
    pub reply: Option<String>,
    /// Start, Unix milliseconds.
    pub started_ms: u64,
    /// End, Unix milliseconds.
    pub ended_ms: Option<u64>,
}

/// An agent instance as stored (see [`crate::instances`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredInstance {
    /// Id.
    pub id: String,
    /// Project.
    pub project: String,
    /// Name for people.
    pub name: String,
    /// The plugin it runs (`describe` name).
    pub plugin: String,
    /// Its thread.
    pub thread: String,
    /// `idle`, `working`, `waiting`, `paused` or `terminated`.
    pub status: String,
    /// Tasks finished.
    pub tasks_completed: u64,
    /// Its config (a JSON object, as text).
    pub config: String,
    /// Creation, Unix ms.
    pub created_ms: u64,
    /// Last change, Unix ms.
    pub updated_ms: u64,
    /// Termination, Unix ms.
    pub terminated_ms: Option<u64>,
    /// The served graph its node came from (empty: spawned before
    /// instances came from graphs).
    #[serde(default)]
    pub graph: String,
    /// Its node's definition, taken from that graph when it was spawned
    /// (plugin, grants, model, limits, config): a YAML flow mapping.
    #[serde(default)]
    pub definition: String,
}

/// A committed frame, as replay and fork read it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFrame {
    /// Run id.
    pub run: String,
    /// Frame within the run.
    pub frame: u32,
    /// Frame within the thread.
    pub seq: u64,
    /// The wall time the plugins saw.
    pub wall_time_ms: u64,
    /// The graph version of the run.
    pub graph_version: String,
    /// Its invocations, in graph order.
    pub invocations: Vec<InvocationRecord>,
}

/// A stored message and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    /// Message id.
    pub id: String,
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// Receiver.
    pub to: String,
    /// Sender.
    pub from: String,
    /// Kind.
    pub kind: String,
    /// Body.
    pub body: String,
    /// The thread frame it was sent in (`None`: it came from outside).
    pub sent_seq: Option<u64>,
    /// The thread frame it was delivered in (`None`: still pending).
    pub delivered_seq: Option<u64>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// Threads removed.
    pub threads: u64,
    /// Runs removed.
    pub runs: u64,
    /// Frames removed.
    pub frames: u64,
    /// Messages removed.
    pub messages: u64,
    /// Journal entries removed.
    pub journal: u64,
    /// Memory entries removed.
    pub memory: u64,
}

/// A node an operator paused: in one project's threads, or (with no
/// project) in every thread.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodePause {
    /// The project whose threads the pause holds; `None` for every project.
    pub project: Option<String>,
    /// The node's name.
    pub node: String,
}

impl NodePause {
    /// A pause of `node` in `project`, or everywhere.
    pub fn new(project: Option<&str>, node: &str) -> Self {
        Self {
            project: project.map(str::to_owned),
            node: node.to_owned(),
        }
    }

    /// Whether this pause holds `node` in a thread of `project`.
    pub fn holds(&self, project: &str, node: &str) -> bool {
        self.node == node && self.project.as_deref().is_none_or(|p| p == project)
    }
}

impl std::fmt::Display for NodePause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.project {
            Some(p) => write!(f, "{p}/{}", self.node),
            None => write!(f, "*/{}", self.node),
        }
    }
}

/// Where the engine's state lives between restarts. See the module docs.
pub trait Store: Send + Sync + 'static {
    /// Keeps a graph version (idempotent).
    fn put_graph(&self, version: GraphVersion) -> BoxFuture<'_, StoreResult<()>>;
    /// A graph version by id.
    fn graph(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<GraphVersion>>>;
    /// The versions of the graph called `name`, newest first (by the time
    /// each was first kept, then by id).
    fn graph_versions(
        &self,
        name: &str,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredGraphVersion>>>;
    /// A graph version by id, with the time it was first kept.
    fn graph_version(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<StoredGraphVersion>>>;
    /// The version of the same graph kept just before version `id`
    /// (`None`: `id` is the first, or unknown).
    fn graph_version_before(
        &self,
        id: &str,
    ) -> BoxFuture<'_, StoreResult<Option<StoredGraphVersion>>>;
    /// Whether a plugin's bytes are kept.
    fn has_plugin(&self, hash: &str) -> BoxFuture<'_, StoreResult<bool>>;
    /// Keeps a plugin's bytes (idempotent).
    fn put_plugin(&self, plugin: PluginBlob) -> BoxFuture<'_, StoreResult<()>>;
    /// A plugin by content hash.
    fn plugin(&self, hash: &str) -> BoxFuture<'_, StoreResult<Option<PluginBlob>>>;

    /// A thread.
    fn thread(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<StoredThread>>>;
    /// Threads matching `filter`, most recently changed first.
    fn threads(
        &self,
        filter: ThreadFilter,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredThread>>>;
    /// A thread's runs, oldest first.
    fn runs(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<StoredRun>>>;
    /// A thread's committed memory.
    fn memory(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<MemoryWrite>>>;
    /// A value of a project's `store` state.
    fn kv_get(
        &self,
        project: &str,
        namespace: &str,
        key: &str,
    ) -> BoxFuture<'_, StoreResult<Option<String>>>;
    /// The keys of a project's namespace starting with `prefix`, in byte
    /// order, after `after`, at most `limit`.
    fn kv_list(
        &self,
        project: &str,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> BoxFuture<'_, StoreResult<Vec<String>>>;
    /// How many `store` keys a project holds.
    fn kv_count(&self, project: &str) -> BoxFuture<'_, StoreResult<u64>>;
    /// Sets a thread's token limit.
    fn set_thread_budget(&self, thread: &str, limit: u64) -> BoxFuture<'_, StoreResult<()>>;
    /// Project money budgets set by operators (`None`: unlimited).
    fn project_budgets(&self) -> BoxFuture<'_, StoreResult<BTreeMap<String, Option<MoneyBudget>>>>;
    /// Keeps a project's money budget as set by an operator.
    fn set_project_budget(
        &self,
        project: &str,
        budget: Option<MoneyBudget>,
    ) -> BoxFuture<'_, StoreResult<()>>;

    /// Every agent instance.
    fn instances(&self) -> BoxFuture<'_, StoreResult<Vec<StoredInstance>>>;
    /// Keeps an agent instance (created or changed).
    fn put_instance(&self, instance: StoredInstance) -> BoxFuture<'_, StoreResult<()>>;

    /// Nodes an operator paused, for one project or every project (they
    /// stay paused across restarts).
    fn paused_nodes(&self) -> BoxFuture<'_, StoreResult<Vec<NodePause>>>;
    /// Keeps whether a node is paused (for `pause.project`, or everywhere).
    fn set_node_paused(&self, pause: &NodePause, paused: bool) -> BoxFuture<'_, StoreResult<()>>;

    /// Commits the start of a run: thread (created or updated), run, and
    /// its inbound messages as pending.
    fn begin_run(&self, start: RunStart) -> BoxFuture<'_, StoreResult<()>>;
    /// Commits one frame, all or nothing. Fails with
    /// [`StoreError::Conflict`] when a message in an inbox was delivered
    /// before or is not pending for the run.
    fn commit_frame(&self, frame: std::sync::Arc<FrameCommit>) -> BoxFuture<'_, StoreResult<()>>;
    /// Commits the end of a run that did not end with a frame: a running
    /// run, or an interrupted one (killed while it waits: its pending
    /// interrupts are cancelled).
    fn end_run(&self, end: RunEnd) -> BoxFuture<'_, StoreResult<()>>;
    /// Commits a run accepted for a busy thread as `queued`, with its
    /// inbound messages: it counts among the thread's runs (its id is
    /// taken) but does not change the thread's status. The thread must
    /// exist (`NotFound`).
    fn queue_run(&self, start: RunStart) -> BoxFuture<'_, StoreResult<()>>;
    /// Starts a queued run: `running` from `at_ms`, and its thread too
    /// (`Conflict` when the run is not queued).
    fn start_queued(&self, thread: &str, run: &str, at_ms: u64) -> BoxFuture<'_, StoreResult<()>>;
    /// Every queued run with its inbound message, in the order they were
    /// accepted.
    fn queued_runs(&self) -> BoxFuture<'_, StoreResult<Vec<QueuedRun>>>;
    /// On a store shared by several hosts: the oldest run queued on
    /// `thread` if the thread has no run in flight (a message another host
    /// queued behind a run that has ended since). One host's store answers
    /// `None`: its queues are kept in its memory.
    fn next_queued(&self, thread: &str) -> BoxFuture<'_, StoreResult<Option<QueuedRun>>> {
        let _ = thread;
        Box::pin(async { Ok(None) })
    }
    /// Commits a fork.
    fn fork(&self, fork: ForkStart) -> BoxFuture<'_, StoreResult<()>>;

    /// Runs that have not finished (status `running`), oldest first.
    fn unfinished_runs(&self) -> BoxFuture<'_, StoreResult<Vec<UnfinishedRun>>>;
    /// Ends a pending interrupt (see [`ResolveInterrupt`]): the interrupt
    /// must be pending and its run `interrupted`, else
    /// [`StoreError::Conflict`]. Returns the run, ready to continue, when
    /// no interrupt of it is pending any more (its status is `running`
    /// again), `None` while others still wait.
    fn resolve_interrupt(
        &self,
        resolve: ResolveInterrupt,
    ) -> BoxFuture<'_, StoreResult<Option<UnfinishedRun>>>;
    /// A run's interrupts, oldest first.
    fn interrupts(&self, run: &str) -> BoxFuture<'_, StoreResult<Vec<StoredInterrupt>>>;
    /// Pending interrupts whose deadline is at or before `now_ms` (at most
    /// 100, earliest first).
    fn due_interrupts(&self, now_ms: u64) -> BoxFuture<'_, StoreResult<Vec<StoredInterrupt>>>;
    /// Runs waiting on interrupts (status `interrupted`), oldest first.
    fn interrupted_runs(&self) -> BoxFuture<'_, StoreResult<Vec<StoredRun>>>;
    /// Adds a webhook.
    fn put_webhook(&self, hook: Webhook) -> BoxFuture<'_, StoreResult<()>>;
    /// The webhooks of `project` (every project's when `None`), oldest
    /// first.
    fn webhooks(&self, project: Option<String>) -> BoxFuture<'_, StoreResult<Vec<Webhook>>>;
    /// Removes a webhook and its deliveries; false when there was none.
    fn delete_webhook(&self, id: &str) -> BoxFuture<'_, StoreResult<bool>>;
    /// Writes a delivery of `event` for each webhook of its project that
    /// subscribes to it, once per webhook and event key; returns how many
    /// were new.
    fn enqueue_webhook_event(&self, event: WebhookEvent) -> BoxFuture<'_, StoreResult<u64>>;
    /// Claims up to `limit` pending deliveries due at `now_ms` for
    /// `lease_ms` (another claim skips them until then), oldest first.
    fn claim_deliveries(
        &self,
        now_ms: u64,
        lease_ms: u64,
        limit: u32,
    ) -> BoxFuture<'_, StoreResult<Vec<ClaimedDelivery>>>;
    /// Records an attempt and what follows it.
    fn record_attempt(&self, outcome: AttemptOutcome) -> BoxFuture<'_, StoreResult<()>>;
    /// A webhook's deliveries, newest first, with their attempts.
    fn deliveries(
        &self,
        webhook: &str,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredDelivery>>>;
    /// Adds a schedule.
    fn put_schedule(&self, schedule: StoredSchedule) -> BoxFuture<'_, StoreResult<()>>;
    /// The schedules of `project` (every project's when `None`), oldest
    /// first.
    fn schedules(&self, project: Option<String>)
    -> BoxFuture<'_, StoreResult<Vec<StoredSchedule>>>;
    /// Pauses or resumes a schedule, with its next tick; false when there
    /// is none.
    fn set_schedule(
        &self,
        id: &str,
        paused: bool,
        next_ms: Option<u64>,
    ) -> BoxFuture<'_, StoreResult<bool>>;
    /// Removes a schedule and its fires; false when there was none.
    fn delete_schedule(&self, id: &str) -> BoxFuture<'_, StoreResult<bool>>;
    /// Schedules not paused whose next tick is at or before `now_ms` (at
    /// most 100, earliest first).
    fn due_schedules(&self, now_ms: u64) -> BoxFuture<'_, StoreResult<Vec<StoredSchedule>>>;
    /// Claims a tick (see [`FireClaim`]); false when another claim won.
    fn claim_fire(&self, claim: FireClaim) -> BoxFuture<'_, StoreResult<bool>>;
    /// Records what a claimed fire started (its thread and run) or why it
    /// started nothing.
    fn fire_started(&self, fire: ScheduleFire) -> BoxFuture<'_, StoreResult<()>>;
    /// Fires claimed before `before_ms` that neither started a run nor
    /// failed (their host died in between), oldest first.
    fn unstarted_fires(&self, before_ms: u64) -> BoxFuture<'_, StoreResult<Vec<ScheduleFire>>>;
    /// A schedule's latest `limit` fires, newest first.
    fn schedule_fires(
        &self,
        schedule: &str,
        limit: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<ScheduleFire>>>;
    /// A thread's committed frames with `seq` in `from..to`, in order.
    fn frames(
        &self,
        thread: &str,
        from: u64,
        to: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredFrame>>>;
    /// Messages sent to or by `node` (all when `None`), in `project` (all
    /// when `None`), newest first.
    fn node_messages(
        &self,
        node: Option<String>,
        project: Option<String>,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredMessage>>>;
    /// A thread's messages in the order they were stored.
    fn messages(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<StoredMessage>>>;
    /// The usage history for the ledger.
    fn usage(&self) -> BoxFuture<'_, StoreResult<UsageHistory>>;
    /// `llm` usage per time bucket and key, oldest bucket first (every
    /// kept event, whatever the last usage reset).
    fn usage_series(&self, query: SeriesQuery) -> BoxFuture<'_, StoreResult<Vec<SeriesPoint>>>;
    /// Starts the reported usage totals over at `at_ms` (events are kept).
    fn reset_usage(&self, at_ms: u64) -> BoxFuture<'_, StoreResult<()>>;
    /// One thread's usage: the tokens its `llm` calls used over all time
    /// (for its token budget) and its totals since `since_ms` (calls and
    /// invocations), summed by the store.
    fn thread_usage(
        &self,
        thread: &str,
        since_ms: u64,
    ) -> BoxFuture<'_, StoreResult<(u64, crate::metering::UsageTotals)>>;
    /// Removes threads whose runs all finished before `before_ms` (frames,
    /// journal, messages, memory, runs), keeping their usage: `llm` calls
    /// stay, invocation metering is folded into per-node totals.
    fn prune(&self, before_ms: u64) -> BoxFuture<'_, StoreResult<PruneReport>>;

    /// Whether several hosts may share this store (then runs are held
    /// under leases). A store for one host keeps the defaults below: every
    /// lease is [`Lease::sole`] and nothing is ever taken over.
    fn shared(&self) -> bool {
        false
    }
    /// Claims `run` (just begun by `host`) for `ttl_ms`, with a new
    /// fencing token. Fails with [`StoreError::Fenced`] if another host
    /// holds an unexpired lease on it.
    fn claim_run(&self, run: &str, host: &str, ttl_ms: u64) -> BoxFuture<'_, StoreResult<Lease>> {
        let _ = ttl_ms;
        let lease = Lease::sole(run, host);
        Box::pin(async move { Ok(lease) })
    }
    /// Claims for `host` up to `limit` unfinished runs whose lease has
    /// expired (or that never had one and started more than `ttl_ms` ago),
    /// each with a new fencing token, oldest first; a run is claimed by
    /// one host only, however many ask at once.
    fn claim_expired(
        &self,
        host: &str,
        ttl_ms: u64,
        limit: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<(Lease, UnfinishedRun)>>> {
        let _ = (host, ttl_ms, limit);
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Extends a lease by `ttl_ms` from now. Fails with
    /// [`StoreError::Fenced`] when it is no longer the run's current one.
    fn renew_lease(&self, lease: &Lease, ttl_ms: u64) -> BoxFuture<'_, StoreResult<Lease>> {
        let _ = ttl_ms;
        let lease = lease.clone();
        Box::pin(async move { Ok(lease) })
    }
    /// Gives a lease up (its run ended or stopped on this host); a lease
    /// taken over since is left alone.
    fn release_lease(&self, lease: &Lease) -> BoxFuture<'_, StoreResult<()>> {
        let _ = lease;
        Box::pin(async { Ok(()) })
    }
    /// Records `beat` as the host's latest heartbeat, and forgets the
    /// money holds of hosts not seen since `live_after_ms` (a shared
    /// store; one host's store keeps nothing).
    fn heartbeat(&self, beat: &HostBeat, live_after_ms: u64) -> BoxFuture<'_, StoreResult<()>> {
        let _ = (beat, live_after_ms);
        Box::pin(async { Ok(()) })
    }
    /// Keeps `value` under `key` in a shared store's settings: what a
    /// host that missed a change on the bus catches up on (the active
    /// graph, each plugin's current version). One host's store keeps
    /// nothing.
    fn put_setting(&self, key: &str, value: &str) -> BoxFuture<'_, StoreResult<()>> {
        let _ = (key, value);
        Box::pin(async { Ok(()) })
    }
    /// The settings whose key starts with `prefix`, by key.
    fn settings(&self, prefix: &str) -> BoxFuture<'_, StoreResult<Vec<(String, String)>>> {
        let _ = prefix;
        Box::pin(async { Ok(Vec::new()) })
    }
    /// The hosts seen since `seen_after_ms` (Unix ms), by id.
    fn hosts(&self, seen_after_ms: u64) -> BoxFuture<'_, StoreResult<Vec<HostBeat>>> {
        let _ = seen_after_ms;
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Holds `hold.amount` of a project's money budget for one call, if
    /// the window's spend and every live host's holds leave room for it,
    /// atomically across the hosts of a shared store. One host's store
    /// grants every hold: its budgets are enforced in the host's memory.
    fn hold_money(&self, hold: &MoneyHold) -> BoxFuture<'_, StoreResult<MoneyHeld>> {
        let held = MoneyHeld {
            granted: true,
            spent: hold.seed,
            held: hold.amount,
        };
        Box::pin(async move { Ok(held) })
    }
    /// Replaces a call's hold with its cost and reports the warning
    /// thresholds it crossed first in the window, across hosts.
    fn settle_money(&self, settle: &MoneySettle) -> BoxFuture<'_, StoreResult<MoneySettled>> {
        let _ = settle;
        Box::pin(async {
            Err(StoreError::Backend(
                "this store is not shared: money holds are kept in memory".into(),
            ))
        })
    }
}
