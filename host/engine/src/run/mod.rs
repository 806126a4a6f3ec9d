//! Runs: one inbound message processed frame by frame until nothing is
//! pending, the frame limit, a kill or a shutdown.
//!
//! A frame invokes every node that has messages (and every `every_tick`
//! node) once, concurrently, each in a fresh instance. Their outputs are
//! buffered and applied together when all have finished, in graph order, so
//! the result of a frame never depends on which node finished first:
//! messages are routed and queued for the next frame, memory writes are
//! committed, and a [`FrameRecord`](crate::FrameRecord) is written per
//! invocation. A frame is committed to the store before anything of it is
//! visible (events, ledger, memory).
//!
//! - `start`: claiming a thread, loading its durable state, committing the
//!   inbound message, spawning the run's task;
//! - `exec`: the loop, cut into its steps (boundary checks, invoke, apply,
//!   commit, publish, budget wait);
//! - `plan`, `apply`: frame planning, applying and routing, as plain
//!   functions;
//! - `commit`: the frame commit with its retries.
//!
//! Nothing here reaches back into the engine: a run touches exactly the
//! parts in its [`RunContext`].

mod apply;
mod commit;
mod exec;
pub(crate) mod interrupt;
mod lease;
mod plan;
mod queue;
mod start;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weft_runtime::capabilities::db::Database;
use weft_runtime::capabilities::hud::EventSink;
use weft_runtime::capabilities::memory::MemoryMap;
use weft_runtime::capabilities::store::{KvMap, KvStore};
use weft_runtime::{Message, Runtime};

pub use interrupt::{Answer, Answered};
pub(crate) use lease::millis as lease_millis;
pub use queue::Sent;
pub(crate) use queue::{requeue, send};
pub(crate) use start::{adopt, resume, spawn, start};

use crate::config::{Backends, EngineConfig};
use crate::control::Control;
use crate::durable::Versions;
use crate::error::EngineError;
use crate::events::{Bus, EventBody};
use crate::metering::{Budgets, LlmSlot, MemoryLedger, Metered};
use crate::plugins::PluginSet;
use crate::store::Store;
use crate::threads::{NextRun, Threads};
use crate::trace::FrameTrace;

/// What a run may touch: the parts of the engine its loop reads and
/// writes, shared by every run.
pub(crate) struct RunContext {
    /// Invokes the plugins.
    pub runtime: Arc<Runtime>,
    /// The `db` capability's backend.
    pub db: Arc<dyn Database>,
    /// The `tools` capability's MCP servers.
    pub tools: Arc<dyn weft_runtime::capabilities::tools::ToolBox>,
    /// The `llm` capability's metered backend.
    pub llm: Arc<LlmSlot>,
    /// Committed memory (thread and node scopes).
    pub memory: Arc<MemoryMap>,
    /// The projects' `store` state as invocations read it: the store's, or
    /// `kv_local` without a store.
    pub kv: Arc<dyn KvStore>,
    /// The projects' `store` state kept in this process (no store).
    pub kv_local: Option<Arc<KvMap>>,
    /// Events.
    pub bus: Bus,
    /// The bus as the `hud` capability's live listener.
    pub events: Arc<dyn EventSink>,
    /// Token and money budgets.
    pub budgets: Arc<Budgets>,
    /// Usage books.
    pub ledger: Arc<MemoryLedger>,
    /// Where frames are committed, if anywhere.
    pub store: Option<Arc<dyn Store>>,
    /// Graph versions kept in the store.
    pub versions: Arc<Versions>,
    /// Threads and their runs in flight.
    pub threads: Threads,
    /// Pauses, shutdown, swaps.
    pub control: Control,
    /// Finished runs' traces.
    pub history: History,
    /// Commit retries and budget waits.
    pub settings: RunSettings,
    /// This host's id in leases, and their settings.
    pub leasing: (String, crate::config::LeaseConfig),
    /// This host's lease figures.
    pub lease_stats: Arc<lease::LeaseStats>,
    /// The bus to the other hosts, once the server attached it: runs this
    /// host gives up unfinished are announced there.
    pub system: std::sync::OnceLock<Arc<dyn crate::bus::SystemBus>>,
    /// Told when the bus is attached.
    pub attached: Arc<tokio::sync::Notify>,
    /// Runs waiting on interrupts here.
    pub parked: interrupt::Parked,
}

/// The run loop's settings (from the engine's config).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunSettings {
    /// Commit attempts before a run stops with `store_failed`.
    pub commit_attempts: u32,
    /// The first retry's wait, doubled per retry up to five seconds.
    pub commit_backoff: Duration,
    /// How often a run waiting on a budget checks for a new window.
    pub budget_tick: Duration,
}

/// Where a run starts (or resumes): its pending messages per node, its next
/// frame, the thread's next frame `seq`, and the reply given so far.
pub(crate) struct RunState {
    /// The run's lease, when the store is shared and it was claimed
    /// already (taken over); a new run's is claimed as it starts.
    pub lease: Option<crate::store::Lease>,
    pub pending: Vec<Vec<Message>>,
    pub frame: u32,
    pub seq: u64,
    pub reply: Option<String>,
}

impl RunState {
    /// A new run's state: `first` pending for node `to` of `graph`, at the
    /// thread's next frame `seq`.
    fn first(graph: &crate::loaded::LoadedGraph, to: usize, first: Message, seq: u64) -> Self {
        let mut pending = vec![Vec::new(); graph.graph().nodes().len()];
        pending[to].push(first);
        Self {
            lease: None,
            pending,
            frame: 0,
            seq,
            reply: None,
        }
    }
}

/// A run in flight.
#[derive(Debug)]
pub struct RunHandle {
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    task: tokio::task::JoinHandle<FrameTrace>,
}

impl RunHandle {
    /// Waits for the run to end and returns its trace.
    pub async fn finish(self) -> Result<FrameTrace, EngineError> {
        self.task.await.map_err(|e| EngineError::Internal {
            run: self.run,
            message: e.to_string(),
        })
    }
}

/// A message entering a thread from outside the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The receiving node; the graph's entry node when `None`.
    pub to: Option<String>,
    /// Message kind (`user` for chat text).
    pub kind: String,
    /// JSON body, validated against the receiver's input schema.
    pub body: String,
}

impl Inbound {
    /// A chat message for the entry node: kind `user`, body `{"text": …}`.
    pub fn user_text(text: &str) -> Self {
        Self {
            to: None,
            kind: "user".into(),
            body: serde_json::json!({ "text": text }).to_string(),
        }
    }

    /// A message of `kind` for node `to`.
    pub fn to(node: &str, kind: &str, body: &serde_json::Value) -> Self {
        Self {
            to: Some(node.into()),
            kind: kind.into(),
            body: body.to_string(),
        }
    }
}

/// The most recent finished runs' traces.
pub(crate) struct History {
    traces: Mutex<VecDeque<Arc<FrameTrace>>>,
    keep: usize,
}

impl History {
    /// A history keeping the last `keep` traces.
    pub fn new(keep: usize) -> Self {
        Self {
            traces: Mutex::default(),
            keep,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<FrameTrace>>> {
        self.traces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `trace`, dropping the oldest beyond the limit.
    fn push(&self, trace: Arc<FrameTrace>) {
        let mut traces = self.lock();
        traces.push_back(trace);
        while traces.len() > self.keep {
            traces.pop_front();
        }
    }

    /// The last `last` traces, oldest first.
    pub fn recent(&self, last: usize) -> Vec<Arc<FrameTrace>> {
        let traces = self.lock();
        traces
            .iter()
            .skip(traces.len().saturating_sub(last))
            .cloned()
            .collect()
    }
}

impl RunContext {
    /// Notes that `thread` went idle; with a store, drops the in-memory
    /// state of the idle threads beyond `IDLE_THREADS_KEPT`
    /// (entry, budgets, usage totals, memory): the store has it, and it is
    /// loaded again when the thread is next used. Without a store nothing
    /// is dropped (the thread lives only in memory).
    pub fn went_idle(&self, thread: &str) {
        if self.store.is_none() {
            return;
        }
        for evicted in self.threads.went_idle(thread) {
            self.budgets.forget_thread(&evicted);
            self.ledger.forget_thread(&evicted);
            self.memory.forget_thread(&evicted);
        }
    }

    /// Wires the parts: the metered `llm` over `backends.llm`, budgets on
    /// the config's clock seeded from the ledger, graph versions kept in
    /// `store`.
    pub fn new(
        runtime: Arc<Runtime>,
        plugins: &Arc<PluginSet>,
        backends: Backends,
        config: &EngineConfig,
        store: Option<Arc<dyn Store>>,
    ) -> Self {
        let bus = Bus::new(config.event_capacity);
        let ledger = Arc::new(MemoryLedger::default());
        let budgets = Arc::new(
            Budgets::new(config.budget.clone())
                .with_clock(Arc::clone(&config.clock))
                .with_ledger(ledger.clone()),
        );
        let llm = Arc::new(LlmSlot::new(Metered {
            inner: backends.llm,
            budgets: budgets.clone(),
            ledger: ledger.clone(),
            prices: config.prices.clone(),
            bus: bus.clone(),
            shared: store
                .as_ref()
                .filter(|s| s.shared())
                .map(|s| crate::metering::SharedMoney {
                    store: Arc::clone(s),
                    host: config.host_id.clone(),
                    live_ms: lease_millis(config.leases.ttl),
                }),
        }));
        let versions = Versions::new(store.clone(), Arc::clone(&runtime), Arc::clone(plugins));
        let kv_local = store.is_none().then(|| Arc::new(KvMap::default()));
        let kv: Arc<dyn KvStore> = match (&store, &kv_local) {
            (Some(store), _) => Arc::new(crate::store::StoreKv(Arc::clone(store))),
            (None, Some(local)) => local.clone(),
            (None, None) => Arc::new(KvMap::default()),
        };
        Self {
            runtime,
            db: backends.db,
            tools: backends.tools,
            llm,
            memory: Arc::new(MemoryMap::default()),
            kv,
            kv_local,
            events: Arc::new(bus.clone()),
            bus,
            budgets,
            ledger,
            store,
            versions: Arc::new(versions),
            threads: Threads::default(),
            control: Control::default(),
            history: History::new(config.trace_history),
            settings: RunSettings {
                commit_attempts: config.commit_attempts,
                commit_backoff: config.commit_backoff,
                budget_tick: config.budget_tick,
            },
            leasing: (config.host_id.clone(), config.leases),
            lease_stats: Arc::default(),
            system: std::sync::OnceLock::new(),
            attached: Arc::default(),
            parked: interrupt::Parked::default(),
        }
    }

    /// Bookkeeping when a run ends: the trace is kept and published, and
    /// the thread freed (or handed to its next queued run, returned for the
    /// caller to start).
    ///
    /// A run that stopped with `store_failed` keeps its thread: its
    /// accepted message (and whatever its last committed frame left
    /// pending) comes before any later message, so the thread takes no new
    /// run (`thread_busy`) until this one is resumed at the next start. A
    /// run waiting for a person's answer (`interrupted`) keeps it too.
    fn finished(&self, trace: &FrameTrace) -> Option<NextRun> {
        let next = if trace.status == crate::trace::RunStatus::Interrupted {
            None
        } else if trace.status == crate::trace::RunStatus::StoreFailed {
            tracing::error!(
                thread = %trace.thread,
                run = %trace.run,
                "run stopped with store_failed: the thread takes no new run until this one resumes at the next start"
            );
            None
        } else if self.control.is_stopping() {
            // The host is stopping: queued runs stay queued in the store and
            // start at the next start.
            self.threads.release(&trace.thread, &trace.run);
            None
        } else {
            self.threads.release_to_next(&trace.thread, &trace.run)
        };
        self.history.push(Arc::new(trace.clone()));
        if self.bus.has_subscribers() {
            let event = EventBody::FrameTrace(Box::new(trace.clone()));
            self.bus
                .publish(&trace.thread, &trace.run, None, None, event);
        }
        next
    }
}

/// After a run ended: its trace published, and its thread either handed
/// to the next queued run, which starts, or idle.
pub(crate) async fn ended(ctx: &Arc<RunContext>, trace: &FrameTrace) {
    let mut next = ctx.finished(trace);
    let held = matches!(
        trace.status,
        crate::trace::RunStatus::Interrupted | crate::trace::RunStatus::StoreFailed
    );
    while let Some(run) = next.take() {
        let id = run.queued.run.clone();
        match queue::start_next(ctx, &trace.thread, run).await {
            Ok(_) => return,
            Err(error) => {
                // It stays queued in the store and starts at the next start.
                tracing::error!(thread = %trace.thread, run = %id, %error, "a queued run cannot start");
                next = ctx.threads.release_to_next(&trace.thread, &id);
            }
        }
    }
    // On a shared store another host may have queued a message behind
    // this run.
    if !held && !ctx.control.is_stopping() && trace.status.is_final() {
        match queue::pick_up(ctx, &trace.thread).await {
            Ok(Some(_)) => return,
            Ok(None) => {}
            Err(error) => {
                tracing::error!(thread = %trace.thread, %error, "a run another host queued on this thread cannot start here; it waits in the store");
            }
        }
    }
    if !held {
        ctx.went_idle(&trace.thread);
    }
}
