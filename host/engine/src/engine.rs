//! The [`Engine`]: threads, runs, pause and kill.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use weft_runtime::capabilities::db::Database;
use weft_runtime::capabilities::llm::LlmBackend;
use weft_runtime::capabilities::memory::MemoryMap;
use weft_runtime::{Message, Plugin, Runtime, Services};

use crate::budget::{
    BudgetConfig, BudgetStatus, Budgets, DEFAULT_PROJECT, Metered, MoneyBudget, ProjectBudgetStatus,
};
use crate::clock::{Clock, SystemClock};
use crate::events::{Bus, Event, EventBody};
use crate::loaded::LoadedGraph;
use crate::plugins::PluginSet;
use crate::run::{self, RunState};
use crate::store::{NodePause, RunEnd, RunStart, Store, StoreError};
use crate::trace::{FrameTrace, RunStatus};
use crate::usage::{Ledger, MemoryLedger, PriceTable, UsageEvent};

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
    /// How often a frame's commit is tried before its run stops with
    /// status `store_failed` (the frame stays uncommitted, and the run
    /// resumes from its last committed frame at the next start).
    pub commit_attempts: u32,
    /// The wait before the first retry of a failed commit; doubled for
    /// each further retry, up to five seconds.
    pub commit_backoff: Duration,
    /// Prune finished threads in the background (with a store).
    pub retention: Option<Retention>,
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
            commit_attempts: 8,
            commit_backoff: Duration::from_millis(100),
            retention: None,
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
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").finish_non_exhaustive()
    }
}

/// Why the engine refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No thread with this id.
    #[error("no thread `{0}`")]
    UnknownThread(String),
    /// A run is already in flight on the thread.
    #[error("thread `{thread}` is busy with run `{run}`")]
    ThreadBusy {
        /// The thread.
        thread: String,
        /// The run in flight.
        run: String,
    },
    /// The message names a node the thread's graph does not have.
    #[error("the graph `{graph}` has no node `{node}`")]
    UnknownNode {
        /// The graph.
        graph: String,
        /// The node asked for.
        node: String,
    },
    /// The message body does not fit the receiving node's input schema.
    #[error("invalid payload for node `{node}`: {message}")]
    InvalidPayload {
        /// The receiving node.
        node: String,
        /// The validation message.
        message: String,
    },
    /// No run with this id is in flight.
    #[error("no run `{0}` is in flight")]
    UnknownRun(String),
    /// A budget change with an invalid amount.
    #[error("invalid budget: {0}")]
    InvalidBudget(String),
    /// The store refused or failed (see [`StoreError`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A graph version could not be rebuilt (resume, replay, fork).
    #[error("graph version `{version}`: {message}")]
    GraphVersion {
        /// The version id.
        version: String,
        /// What is missing or wrong.
        message: String,
    },
    /// The engine is shutting down and takes no new runs.
    #[error("the host is shutting down and takes no new runs")]
    ShuttingDown,
    /// A plugin version was refused: it does not fit a graph that runs it
    /// (the message says which, and why).
    #[error("{0}")]
    PluginRejected(String),
    /// The run's task died (a bug in the engine, never a plugin's fault).
    #[error("run `{run}` failed inside the engine: {message}")]
    Internal {
        /// The run.
        run: String,
        /// What happened.
        message: String,
    },
}

impl EngineError {
    /// A stable code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownThread(_) => "unknown_thread",
            Self::ThreadBusy { .. } => "thread_busy",
            Self::UnknownNode { .. } => "unknown_node",
            Self::InvalidPayload { .. } => "invalid_payload",
            Self::UnknownRun(_) => "unknown_run",
            Self::InvalidBudget(_) => "invalid_budget",
            Self::Store(e) => e.code(),
            Self::GraphVersion { .. } => "graph_version",
            Self::ShuttingDown => "shutting_down",
            Self::PluginRejected(_) => "plugin_rejected",
            Self::Internal { .. } => "internal",
        }
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

/// A thread's state in the engine.
struct ThreadEntry {
    graph: Arc<LoadedGraph>,
    active: Option<(String, watch::Sender<bool>)>,
    runs: u64,
    /// Frames committed over all runs: the next frame's `seq`.
    frames: u64,
    /// Whether its durable state (runs, frames, memory, budget) has been
    /// read from the store (always true without one).
    hydrated: bool,
}

/// The ledger the metered LLM writes to: the in-memory books, plus the
/// events of each run's current frame kept for the frame's commit.
struct StagedLedger {
    books: Arc<MemoryLedger>,
    staged: Option<Mutex<HashMap<String, Vec<UsageEvent>>>>,
}

impl Ledger for StagedLedger {
    fn record(&self, event: UsageEvent) {
        if let Some(staged) = &self.staged {
            lock(staged)
                .entry(event.run.clone())
                .or_default()
                .push(event.clone());
        }
        self.books.record(event);
    }
    fn record_invocation(&self, event: crate::usage::InvocationEvent) {
        self.books.record_invocation(event);
    }
    fn totals(&self) -> crate::usage::UsageTotals {
        self.books.totals()
    }
    fn breakdown(&self) -> crate::usage::UsageBreakdown {
        self.books.breakdown()
    }
    fn project_cost(&self, project: &str, from_ms: u64, to_ms: u64) -> f64 {
        self.books.project_cost(project, from_ms, to_ms)
    }
}

/// The frame engine. Create one per process (it is cheap to share in an
/// `Arc`); it runs any number of threads and runs at once.
pub struct Engine {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) plugins: Arc<PluginSet>,
    pub(crate) services: Services,
    pub(crate) memory: Arc<MemoryMap>,
    pub(crate) bus: Bus,
    pub(crate) paused: watch::Sender<BTreeSet<NodePause>>,
    /// Every plugin version swapped in while serving, in order; runs look
    /// at the entries after the last one they saw before each frame.
    pub(crate) swaps: Mutex<Vec<Plugin>>,
    /// The number of entries in `swaps`.
    pub(crate) swap_count: watch::Sender<usize>,
    /// Swaps are applied one at a time.
    pub(crate) swap_lock: tokio::sync::Mutex<()>,
    /// The metered `llm` service, replaced whole by a settings reload.
    llm: Arc<LlmSlot>,
    pub(crate) budgets: Arc<Budgets>,
    pub(crate) ledger: Arc<MemoryLedger>,
    staged: Arc<StagedLedger>,
    pub(crate) store: Option<Arc<dyn Store>>,
    /// Graph versions this process has stored or rebuilt, by id.
    versions: Mutex<HashMap<String, Arc<LoadedGraph>>>,
    threads: Mutex<HashMap<String, ThreadEntry>>,
    pub(crate) instances: crate::instances::Instances,
    /// Operators' changes waiting to be written, in order.
    persist: Mutex<Option<tokio::sync::mpsc::UnboundedSender<(String, PersistJob)>>>,
    /// Set by [`shutdown`](Engine::shutdown): runs stop at their next frame
    /// boundary and no new run starts.
    pub(crate) stopping: watch::Sender<bool>,
    /// Runs whose task is alive.
    running: watch::Sender<usize>,
    traces: Mutex<VecDeque<Arc<FrameTrace>>>,
    pub(crate) config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
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

/// Frees a thread when its run's task ends, however it ends.
struct Release<'a> {
    engine: &'a Engine,
    thread: &'a str,
    run: &'a str,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.engine.release(self.thread, self.run);
        self.engine
            .running
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A write of an operator's change, given the store.
type PersistJob = Box<
    dyn for<'a> FnOnce(
            &'a dyn Store,
        ) -> weft_runtime::capabilities::BoxFuture<'a, Result<(), StoreError>>
        + Send,
>;

/// A claim on a thread's `active` slot while a run is being set up: the
/// slot is freed if setting up fails.
struct Claim<'a> {
    engine: &'a Engine,
    thread: &'a str,
    run: String,
}

impl Claim<'_> {
    /// The run started: the slot now belongs to its task.
    fn keep(mut self) {
        self.thread = "";
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.thread.is_empty() {
            self.engine.release(self.thread, &self.run);
        }
    }
}

/// A fresh thread id, unique across restarts and hosts: `thread-` and 16
/// random hex digits.
pub(crate) fn new_thread_id() -> String {
    // 64 random bits from the OS; should the OS have none, a per-process
    // random SipHash key over the time still differs between calls.
    let bits = getrandom::u64().unwrap_or_else(|_| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    });
    format!("thread-{bits:016x}")
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Engine {
    /// An engine running plugins on `runtime`, with `plugins` available to
    /// graphs and `backends` behind the capabilities.
    pub fn new(
        runtime: Arc<Runtime>,
        plugins: Arc<PluginSet>,
        backends: Backends,
        config: EngineConfig,
    ) -> Arc<Self> {
        Self::build(runtime, plugins, backends, config, None)
    }

    /// An engine that commits every run and frame to `store`: the usage
    /// ledger and the operators' project budgets are restored from it, and
    /// the retention job starts if configured. Call
    /// [`resume_runs`](Self::resume_runs) next to continue the runs a previous
    /// process left unfinished.
    pub async fn open(
        runtime: Arc<Runtime>,
        plugins: Arc<PluginSet>,
        backends: Backends,
        config: EngineConfig,
        store: Arc<dyn Store>,
    ) -> Result<Arc<Self>, EngineError> {
        let history = store.usage().await?;
        let budgets = store.project_budgets().await?;
        let paused = store.paused_nodes().await?;
        let engine = Self::build(runtime, plugins, backends, config, Some(Arc::clone(&store)));
        engine.start_persisting(store);
        engine.paused.send_modify(|p| p.extend(paused));
        engine.restore_instances().await?;
        engine.ledger.restore(history);
        for (project, budget) in budgets {
            engine
                .budgets
                .set_project_budget(&project, budget)
                .map_err(|e| EngineError::InvalidBudget(e.to_string()))?;
        }
        if let Some(retention) = engine.config.retention {
            crate::durable::spawn_retention(&engine, retention);
        }
        Ok(engine)
    }

    fn build(
        runtime: Arc<Runtime>,
        plugins: Arc<PluginSet>,
        backends: Backends,
        config: EngineConfig,
        store: Option<Arc<dyn Store>>,
    ) -> Arc<Self> {
        let memory = Arc::new(MemoryMap::default());
        let bus = Bus::new(config.event_capacity);
        let ledger = Arc::new(MemoryLedger::default());
        let staged = Arc::new(StagedLedger {
            books: ledger.clone(),
            staged: store.is_some().then(Mutex::default),
        });
        let budgets = Arc::new(
            Budgets::new(config.budget.clone())
                .with_clock(Arc::clone(&config.clock))
                .with_ledger(ledger.clone()),
        );
        let metered = Metered {
            inner: backends.llm,
            budgets: budgets.clone(),
            ledger: staged.clone(),
            prices: config.prices.clone(),
            bus: bus.clone(),
        };
        let llm = Arc::new(LlmSlot {
            current: std::sync::RwLock::new(Arc::new(metered)),
        });
        let services = Services {
            llm: llm.clone(),
            db: backends.db,
            memory: memory.clone(),
            events: Arc::new(bus.clone()),
        };
        Arc::new(Self {
            runtime,
            plugins,
            services,
            memory,
            bus,
            paused: watch::Sender::new(BTreeSet::new()),
            swaps: Mutex::new(Vec::new()),
            swap_count: watch::Sender::new(0),
            swap_lock: tokio::sync::Mutex::new(()),
            llm,
            budgets,
            ledger,
            staged,
            store,
            versions: Mutex::default(),
            threads: Mutex::default(),
            instances: crate::instances::Instances::default(),
            persist: Mutex::default(),
            stopping: watch::Sender::new(false),
            running: watch::Sender::new(0),
            traces: Mutex::default(),
            config,
        })
    }

    /// The runtime plugins run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The plugins graphs can use.
    pub fn plugins(&self) -> &Arc<PluginSet> {
        &self.plugins
    }

    /// Loads a graph file against this engine's plugins.
    pub async fn load_graph(
        &self,
        path: &std::path::Path,
    ) -> Result<Arc<LoadedGraph>, crate::LoadError> {
        LoadedGraph::load_file(path, &self.plugins, &self.runtime)
            .await
            .map(Arc::new)
    }

    /// Publishes a host event (a graph change, say) to every subscriber.
    pub fn publish_host(&self, body: EventBody) {
        self.bus.publish_host(body);
    }

    /// Subscribes to every event of every thread from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.bus.subscribe()
    }

    /// The committed memory (thread and node scopes).
    pub fn memory(&self) -> &Arc<MemoryMap> {
        &self.memory
    }

    /// Creates a thread pinned to `graph` in the [`DEFAULT_PROJECT`] (or
    /// returns the existing thread with this id); see
    /// [`open_thread_in`](Self::open_thread_in).
    pub fn open_thread(&self, id: Option<&str>, graph: &Arc<LoadedGraph>) -> String {
        self.open_thread_in(DEFAULT_PROJECT, id, graph)
    }

    /// Creates a thread on `graph` in `project`, whose money budget its
    /// `llm` calls spend, or returns the existing thread with this id (which
    /// keeps its project, history and memory, and runs `graph` from its
    /// next run on: an edited or switched graph).
    pub fn open_thread_in(
        &self,
        project: &str,
        id: Option<&str>,
        graph: &Arc<LoadedGraph>,
    ) -> String {
        let mut threads = lock(&self.threads);
        let (id, known) = match id {
            Some(id) => (id.to_owned(), true),
            // A new thread never joins an existing one, however unlikely a
            // repeated id is.
            None => loop {
                let id = new_thread_id();
                if !threads.contains_key(&id) {
                    break (id, false);
                }
            },
        };
        let entry = threads.entry(id.clone()).or_insert_with(|| {
            self.budgets.assign_project(&id, project);
            ThreadEntry {
                graph: Arc::clone(graph),
                active: None,
                runs: 0,
                frames: 0,
                // A caller-chosen id may name a thread the store knows.
                hydrated: !known || self.store.is_none(),
            }
        });
        // The thread's next run uses `graph` (an edited or switched graph);
        // a run in flight keeps the version it started with.
        entry.graph = Arc::clone(graph);
        id
    }

    /// Makes `thread`'s next run use `graph` (a switched or edited graph);
    /// a run in flight keeps its version. False for an unknown thread.
    pub fn set_thread_graph(&self, thread: &str, graph: &Arc<LoadedGraph>) -> bool {
        match lock(&self.threads).get_mut(thread) {
            Some(entry) => {
                entry.graph = Arc::clone(graph);
                true
            }
            None => false,
        }
    }

    /// The project a thread belongs to.
    pub fn thread_project(&self, thread: &str) -> Option<String> {
        lock(&self.threads)
            .contains_key(thread)
            .then(|| self.budgets.project_of(thread))
    }

    /// The graph a thread is pinned to.
    pub fn thread_graph(&self, thread: &str) -> Option<Arc<LoadedGraph>> {
        lock(&self.threads)
            .get(thread)
            .map(|t| Arc::clone(&t.graph))
    }

    /// The run in flight on a thread, if any.
    pub fn active_run(&self, thread: &str) -> Option<String> {
        lock(&self.threads)
            .get(thread)
            .and_then(|t| t.active.as_ref().map(|(r, _)| r.clone()))
    }

    /// Starts a run on `thread` with one inbound message. The message is
    /// checked (node, payload) before anything starts; with a store, the
    /// thread's durable state is loaded (once) and the message is committed
    /// before this returns, so an accepted message is never lost. The run
    /// then proceeds in the background, frame by frame.
    pub async fn start_run(
        self: &Arc<Self>,
        thread: &str,
        inbound: Inbound,
    ) -> Result<RunHandle, EngineError> {
        if *self.stopping.borrow() {
            return Err(EngineError::ShuttingDown);
        }
        let (graph, to, kill_rx, hydrated) = {
            let mut threads = lock(&self.threads);
            let entry = threads
                .get_mut(thread)
                .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?;
            if let Some((run, _)) = &entry.active {
                return Err(EngineError::ThreadBusy {
                    thread: thread.to_owned(),
                    run: run.clone(),
                });
            }
            let graph = Arc::clone(&entry.graph);
            let to_name = inbound
                .to
                .clone()
                .unwrap_or_else(|| graph.graph().entry().name.clone());
            let to = graph
                .position(&to_name)
                .ok_or_else(|| EngineError::UnknownNode {
                    graph: graph.graph().name().to_owned(),
                    node: to_name.clone(),
                })?;
            graph.check_payload(to, &inbound.body).map_err(|message| {
                EngineError::InvalidPayload {
                    node: to_name,
                    message,
                }
            })?;
            let (kill_tx, kill_rx) = watch::channel(false);
            // Claimed under a placeholder id until the run's id is known.
            entry.active = Some((String::new(), kill_tx));
            (graph, to, kill_rx, entry.hydrated)
        };
        let mut claim = Claim {
            engine: self,
            thread,
            run: String::new(),
        };
        if !hydrated {
            self.hydrate(thread).await?;
        }
        let (run, seq) = {
            let mut threads = lock(&self.threads);
            let entry = threads
                .get_mut(thread)
                .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?;
            entry.runs += 1;
            let run = format!("{thread}.run-{}", entry.runs);
            if let Some((id, _)) = &mut entry.active {
                id.clone_from(&run);
            }
            (run, entry.frames)
        };
        claim.run.clone_from(&run);
        let first = Message {
            id: format!("{run}/in"),
            from: "user".into(),
            kind: inbound.kind,
            body: inbound.body,
        };
        if let Some(store) = &self.store {
            self.store_version(&graph).await?;
            store
                .begin_run(RunStart {
                    thread: thread.to_owned(),
                    project: self.budgets.project_of(thread),
                    run: run.clone(),
                    graph_version: graph.version_id().to_owned(),
                    inbound: vec![(graph.graph().nodes()[to].name.clone(), first.clone())],
                    budget_limit: self.budgets.explicit_limit(thread),
                    at_ms: self.budgets.now_ms(),
                })
                .await?;
        }
        claim.keep();
        let mut pending = vec![Vec::new(); graph.graph().nodes().len()];
        pending[to].push(first);
        let state = RunState {
            pending,
            frame: 0,
            seq,
            reply: None,
        };
        Ok(self.spawn_run(thread, &run, graph, kill_rx, state))
    }

    /// Runs `state` on `graph` in the background; the thread's `active`
    /// slot must already name `run`.
    pub(crate) fn spawn_run(
        self: &Arc<Self>,
        thread: &str,
        run: &str,
        graph: Arc<LoadedGraph>,
        kill_rx: watch::Receiver<bool>,
        state: RunState,
    ) -> RunHandle {
        self.bus.publish(
            thread,
            run,
            None,
            None,
            EventBody::RunStarted {
                graph: graph.graph().name().to_owned(),
            },
        );
        let engine = Arc::clone(self);
        let thread_id = thread.to_owned();
        let run_id = run.to_owned();
        self.running.send_modify(|n| *n += 1);
        let task = tokio::spawn(async move {
            // Frees the thread even if the run's task panics or is dropped.
            let _release = Release {
                engine: &engine,
                thread: &thread_id,
                run: &run_id,
            };
            let trace = run::execute(&engine, &graph, &thread_id, &run_id, kill_rx, state).await;
            engine.finished(&thread_id, &run_id, &trace);
            trace
        });
        RunHandle {
            thread: thread.to_owned(),
            run: run.to_owned(),
            task,
        }
    }

    /// Keeps `graph`'s version (and its plugins' bytes) in the store, once
    /// per process.
    pub(crate) async fn store_version(&self, graph: &Arc<LoadedGraph>) -> Result<(), EngineError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        if lock(&self.versions).contains_key(graph.version_id()) {
            return Ok(());
        }
        crate::durable::put_version(store.as_ref(), graph).await?;
        self.remember_version(graph);
        Ok(())
    }

    /// A graph version known to this process (stored or rebuilt).
    pub(crate) fn known_version(&self, id: &str) -> Option<Arc<LoadedGraph>> {
        lock(&self.versions).get(id).cloned()
    }

    /// Remembers a graph version stored or rebuilt from the store.
    pub(crate) fn remember_version(&self, graph: &Arc<LoadedGraph>) {
        lock(&self.versions).insert(graph.version_id().to_owned(), Arc::clone(graph));
    }

    /// Takes the `llm` usage events of `run` recorded since the last call.
    pub(crate) fn take_staged_usage(&self, run: &str) -> Vec<UsageEvent> {
        self.staged
            .staged
            .as_ref()
            .and_then(|s| lock(s).remove(run))
            .unwrap_or_default()
    }

    /// Registers a thread read from the store (resume and fork), claimed
    /// for `run` when one is given, and loads its memory and budget.
    pub(crate) async fn adopt_thread(
        &self,
        thread: &crate::store::StoredThread,
        graph: &Arc<LoadedGraph>,
        run: Option<&str>,
    ) -> Result<watch::Receiver<bool>, EngineError> {
        let (kill_tx, kill_rx) = watch::channel(false);
        {
            let mut threads = lock(&self.threads);
            if let Some(entry) = threads.get(&thread.id)
                && let Some((active, _)) = &entry.active
            {
                return Err(EngineError::ThreadBusy {
                    thread: thread.id.clone(),
                    run: active.clone(),
                });
            }
            threads.insert(
                thread.id.clone(),
                ThreadEntry {
                    graph: Arc::clone(graph),
                    active: run.map(|r| (r.to_owned(), kill_tx)),
                    runs: thread.runs,
                    frames: thread.frames,
                    hydrated: false,
                },
            );
        }
        self.hydrate(&thread.id).await?;
        Ok(kill_rx)
    }

    /// Loads a thread's durable state: run and frame counters, project,
    /// memory and token budget.
    async fn hydrate(&self, thread: &str) -> Result<(), EngineError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let stored = store.thread(thread).await?;
        if let Some(stored) = &stored {
            let memory = store.memory(thread).await?;
            self.memory.apply(&memory);
            self.budgets.restore_project(thread, &stored.project);
            self.budgets.restore_thread(
                thread,
                stored.budget_limit,
                self.ledger.thread_tokens(thread),
            );
        }
        if let Some(entry) = lock(&self.threads).get_mut(thread) {
            if let Some(stored) = &stored {
                entry.runs = stored.runs;
                entry.frames = stored.frames;
            }
            entry.hydrated = true;
        }
        Ok(())
    }

    /// Notes that a thread has committed frames up to `next_seq`.
    pub(crate) fn note_frames(&self, thread: &str, next_seq: u64) {
        if let Some(entry) = lock(&self.threads).get_mut(thread) {
            entry.frames = entry.frames.max(next_seq);
        }
    }

    /// Marks `thread` free if `run` is still its active run.
    fn release(&self, thread: &str, run: &str) {
        if let Some(entry) = lock(&self.threads).get_mut(thread)
            && entry.active.as_ref().is_some_and(|(r, _)| r == run)
        {
            entry.active = None;
        }
    }

    /// Bookkeeping when a run ends: the thread is free again, the trace is
    /// kept and published.
    fn finished(&self, thread: &str, run: &str, trace: &FrameTrace) {
        self.release(thread, run);
        {
            let mut traces = lock(&self.traces);
            traces.push_back(Arc::new(trace.clone()));
            while traces.len() > self.config.trace_history {
                traces.pop_front();
            }
        }
        if self.bus.has_subscribers() {
            let event = EventBody::FrameTrace(Box::new(trace.clone()));
            self.bus.publish(thread, run, None, None, event);
        }
    }

    /// Commits the end of a run that did not end with a frame (logged, not
    /// retried: a run whose end is lost is resumed and ends again).
    pub(crate) async fn commit_end(&self, thread: &str, run: &str, status: RunStatus) {
        let Some(store) = &self.store else {
            return;
        };
        let end = RunEnd {
            thread: thread.to_owned(),
            run: run.to_owned(),
            status,
            at_ms: self.budgets.now_ms(),
        };
        if let Err(e) = store.end_run(end).await {
            tracing::error!(thread, run, error = %e, "the end of the run was not committed");
        }
    }

    /// Stops taking runs: [`start_run`](Self::start_run) refuses with
    /// [`EngineError::ShuttingDown`], and every run in flight stops at its
    /// next frame boundary with status `interrupted` (the frame running now
    /// finishes and is committed; with a store, the run resumes from there
    /// at the next start). Then waits until no run is left.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        let mut running = self.running.subscribe();
        let _ = running.wait_for(|n| *n == 0).await;
    }

    /// Starts a [`shutdown`](Self::shutdown) without waiting for it.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether a shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Runs in flight.
    pub fn runs_in_flight(&self) -> usize {
        *self.running.borrow()
    }

    /// The store, if the engine has one.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.as_ref()
    }

    /// Kills the run in flight on `thread`: it stops at the next frame
    /// boundary (the frame running now finishes and is recorded).
    pub fn kill(&self, thread: &str) -> Result<String, EngineError> {
        let threads = lock(&self.threads);
        let entry = threads
            .get(thread)
            .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?;
        let (run, kill) = entry
            .active
            .as_ref()
            .ok_or_else(|| EngineError::UnknownRun(format!("(none on thread `{thread}`)")))?;
        kill.send_replace(true);
        Ok(run.clone())
    }

    /// Pauses node `node` in the threads of `project` (every thread with
    /// `None`): it receives no ticks and its messages wait until
    /// [`resume`](Self::resume). With a store, the node stays paused across
    /// restarts. Returns false if it was paused so already.
    pub fn pause(&self, project: Option<&str>, node: &str) -> bool {
        let pause = NodePause::new(project, node);
        let changed = self.paused.send_if_modified(|p| p.insert(pause.clone()));
        if changed {
            self.persist(|store, pause| store.set_node_paused(pause, true), pause);
        }
        changed
    }

    /// Lifts a [`pause`](Self::pause) made for the same scope; waiting
    /// runs deliver the node's messages in their next frame. Returns false
    /// if there was no such pause (a pause for every project is lifted only
    /// with `None`).
    pub fn resume(&self, project: Option<&str>, node: &str) -> bool {
        let pause = NodePause::new(project, node);
        let changed = self.paused.send_if_modified(|p| p.remove(&pause));
        if changed {
            self.persist(|store, pause| store.set_node_paused(pause, false), pause);
        }
        changed
    }

    /// The pause that holds `node` for threads of `project`: the one for
    /// every project first, else the project's own. With `project` `None`,
    /// only a pause for every project counts.
    pub fn pause_of(&self, project: Option<&str>, node: &str) -> Option<NodePause> {
        let paused = self.paused.borrow();
        let everywhere = NodePause::new(None, node);
        if paused.contains(&everywhere) {
            return Some(everywhere);
        }
        let own = NodePause::new(Some(project?), node);
        paused.contains(&own).then_some(own)
    }

    /// Every pause in force.
    pub fn pauses(&self) -> Vec<NodePause> {
        self.paused.borrow().iter().cloned().collect()
    }

    /// The token budget of a thread (once it has made a call or been raised).
    pub fn budget(&self, thread: &str) -> Option<BudgetStatus> {
        self.budgets.status(thread)
    }

    /// Every thread's token budget known to this process, with the thread's
    /// project.
    pub fn budgets(&self) -> Vec<(String, String, BudgetStatus)> {
        self.budgets
            .all_statuses()
            .into_iter()
            .map(|(thread, status)| {
                let project = self.budgets.project_of(&thread);
                (thread, project, status)
            })
            .collect()
    }

    /// Adds `tokens` to a thread's budget; a run waiting with status
    /// `budget_exhausted` goes on, retrying the refused node.
    pub fn raise_budget(&self, thread: &str, tokens: u64) -> BudgetStatus {
        let status = self.budgets.raise(thread, tokens);
        self.persist(
            move |store, thread: &String| store.set_thread_budget(thread, status.limit),
            thread.to_owned(),
        );
        status
    }

    /// Sets a thread's token limit (see [`Budgets::set_limit`]).
    pub fn set_budget(&self, thread: &str, limit: u64) -> BudgetStatus {
        let status = self.budgets.set_limit(thread, limit);
        self.persist(
            move |store, thread: &String| store.set_thread_budget(thread, limit),
            thread.to_owned(),
        );
        status
    }

    /// Applies reloaded settings without a restart: a new LLM backend
    /// (providers and model routes), prices, and configured budgets (see
    /// [`Budgets::set_config`]). `llm` calls in flight finish on the backend
    /// they started with; the next call uses the new one.
    pub fn reload_settings(
        &self,
        llm: Option<Arc<dyn LlmBackend>>,
        prices: Option<PriceTable>,
        budget: Option<crate::budget::BudgetConfig>,
    ) {
        if llm.is_some() || prices.is_some() {
            let old = self.llm.get();
            let new = Metered {
                inner: llm.unwrap_or_else(|| Arc::clone(&old.inner)),
                budgets: Arc::clone(&old.budgets),
                ledger: Arc::clone(&old.ledger),
                prices: prices.unwrap_or_else(|| old.prices.clone()),
                bus: old.bus.clone(),
            };
            *self
                .llm
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(new);
        }
        if let Some(budget) = budget {
            self.budgets.set_config(budget);
        }
    }

    /// Writes an operator's decision (budget, pause) to the store in the
    /// background (a thread without a stored run yet gets its token limit
    /// with its first run).
    fn persist<K: std::fmt::Display + Send + Sync + 'static>(
        &self,
        write: impl for<'a> FnOnce(
            &'a dyn Store,
            &'a K,
        )
            -> weft_runtime::capabilities::BoxFuture<'a, Result<(), StoreError>>
        + Send
        + 'static,
        key: K,
    ) {
        let queue = lock(&self.persist);
        let Some(queue) = queue.as_ref() else {
            return;
        };
        let label = key.to_string();
        let job: PersistJob =
            Box::new(move |store| Box::pin(async move { write(store, &key).await }));
        if let Err(unsent) = queue.send((label, job)) {
            let key = unsent.0.0;
            tracing::error!(key, "operator change not stored: the writer has stopped");
        }
    }

    /// Starts the task that writes operators' changes to the store, one at
    /// a time in the order they were made (a pause then a resume must not
    /// land the other way round).
    fn start_persisting(&self, store: Arc<dyn Store>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, PersistJob)>();
        *lock(&self.persist) = Some(tx);
        // Weak: an idle writer must not keep the store (and its lock) open
        // after the engine is gone.
        let store = Arc::downgrade(&store);
        tokio::spawn(async move {
            while let Some((key, write)) = rx.recv().await {
                let Some(store) = store.upgrade() else {
                    tracing::error!(key, "operator change not stored: the store is closed");
                    continue;
                };
                match write(store.as_ref()).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(error) => tracing::error!(key, %error, "operator change not stored"),
                }
            }
        });
    }

    /// A project's money budget: limit, spend in the current window,
    /// reservations, window bounds.
    pub fn project_budget(&self, project: &str) -> ProjectBudgetStatus {
        self.budgets.project_status(project)
    }

    /// Sets a project's money budget (`None`: unlimited), replacing the
    /// configured one; runs of the project waiting with status
    /// `budget_exhausted` go on.
    pub fn set_project_budget(
        &self,
        project: &str,
        budget: Option<MoneyBudget>,
    ) -> Result<ProjectBudgetStatus, EngineError> {
        let status = self
            .budgets
            .set_project_budget(project, budget)
            .map_err(|e| EngineError::InvalidBudget(e.to_string()))?;
        self.persist(
            move |store, project: &String| store.set_project_budget(project, budget),
            project.to_owned(),
        );
        Ok(status)
    }

    /// Adds `amount` to a project's money limit; runs of the project
    /// waiting with status `budget_exhausted` go on, retrying the refused
    /// nodes.
    pub fn raise_project_budget(
        &self,
        project: &str,
        amount: f64,
    ) -> Result<ProjectBudgetStatus, EngineError> {
        let status = self
            .budgets
            .raise_project_budget(project, amount)
            .map_err(|e| EngineError::InvalidBudget(e.to_string()))?;
        if let Some(limit) = status.limit {
            let budget = MoneyBudget::new(limit, status.window)
                .map_err(|e| EngineError::InvalidBudget(e.to_string()))?;
            self.persist(
                move |store, project: &String| store.set_project_budget(project, Some(budget)),
                project.to_owned(),
            );
        }
        Ok(status)
    }

    /// Starts the budget windows that are due now (waiting runs of a
    /// project whose window rolled over go on). Runs waiting on a budget
    /// call it every [`EngineConfig::budget_tick`]; call it after moving a
    /// [`ManualClock`](crate::ManualClock).
    pub fn tick_budgets(&self) {
        self.budgets.tick();
    }

    /// Starts the reported usage totals over now (kept across restarts).
    /// Usage events stay: money budgets (spend per window) and token
    /// budgets are not affected. Returns the reset time.
    ///
    /// Totals start at the next millisecond: events are stamped in whole
    /// milliseconds, and one recorded in the reset's own millisecond may
    /// come from before it. Counting from the next one keeps the totals the
    /// same in this process and after a restart (which re-reads the events
    /// from the store by time).
    pub async fn reset_usage(&self) -> Result<u64, EngineError> {
        let now = self.budgets.now_ms() + 1;
        if let Some(store) = &self.store {
            store.reset_usage(now).await?;
        }
        self.ledger.reset(now);
        Ok(now)
    }

    /// Every metered `llm` call and node invocation, with aggregates.
    pub fn ledger(&self) -> &Arc<MemoryLedger> {
        &self.ledger
    }

    /// Usage totals (a convenience over [`ledger`](Self::ledger)).
    pub fn usage(&self) -> crate::usage::UsageTotals {
        self.ledger.totals()
    }

    /// The most recent finished runs' traces, oldest first.
    pub fn recent_traces(&self, last: usize) -> Vec<Arc<FrameTrace>> {
        let traces = lock(&self.traces);
        traces
            .iter()
            .skip(traces.len().saturating_sub(last))
            .cloned()
            .collect()
    }
}

/// The `llm` service: the metered backend in use now.
struct LlmSlot {
    current: std::sync::RwLock<Arc<Metered>>,
}

impl LlmSlot {
    fn get(&self) -> Arc<Metered> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl LlmBackend for LlmSlot {
    fn complete<'a>(
        &'a self,
        call: weft_runtime::capabilities::llm::LlmCall<'a>,
        request: weft_runtime::CompletionRequest,
    ) -> weft_runtime::capabilities::BoxFuture<
        'a,
        Result<weft_runtime::Completion, weft_runtime::CapabilityError>,
    > {
        let metered = self.get();
        Box::pin(async move { metered.complete(call, request).await })
    }
}
