//! The [`Engine`]: a facade over the engine's parts. Each part owns its
//! state and lives in its own module; this file only wires them together
//! and is the one place with `impl Engine`.
//!
//! - threads ([`crate::threads`]): thread entries, claims, ids;
//! - control ([`crate::control`]): pauses, shutdown, runs alive, swaps;
//! - metering ([`crate::metering`]): budgets, the ledger, the metered `llm`;
//! - runs ([`crate::run`]): starting runs and the frame loop, over a
//!   `RunContext` holding exactly the parts a run touches;
//! - durable ([`crate::durable`]): graph versions, resume, fork, prune,
//!   replay, the writer of operators' changes.
//!
//! Agent instances ([`crate::agents`]) and the graph catalog
//! ([`crate::catalog`]) are clients of this facade.

use std::sync::Arc;

use tokio::sync::broadcast;
use weft_runtime::capabilities::memory::MemoryMap;
use weft_runtime::{Plugin, Runtime};

use crate::config::{Backends, EngineConfig};
use crate::control::{self, PluginSwap};
use crate::durable::{self, ReplayOptions, ReplayReport, Writer};
use crate::error::EngineError;
use crate::events::{Event, EventBody};
use crate::loaded::LoadedGraph;
use crate::metering::DEFAULT_PROJECT;
use crate::plugins::PluginSet;
use crate::run::{self, Inbound, RunContext, RunHandle, RunState, Sent};
use crate::store::{NodePause, Page, PruneReport, Store, StoredThread, ThreadFilter};
use crate::threads::{Multitask, Stop};
use crate::trace::{FrameTrace, RunStatus};

mod budgets;
mod hosts;
mod interrupts;
mod takeover;
use takeover::{TAKEOVER_BATCH, spawn_takeover};

/// The frame engine. Create one per process (it is cheap to share in an
/// `Arc`); it runs any number of threads and runs at once.
pub struct Engine {
    /// The parts runs touch.
    ctx: Arc<RunContext>,
    /// The plugins graphs can use.
    plugins: Arc<PluginSet>,
    /// Operators' changes, written to the store in order.
    writer: Writer,
    config: EngineConfig,
    /// When this host started, and where it serves its API.
    host: hosts::HostInfo,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
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
        let shared = store.shared();
        let engine = Self::build(runtime, plugins, backends, config, Some(Arc::clone(&store)));
        engine.writer.start(store);
        engine.ctx.control.restore_pauses(paused);
        engine.ctx.ledger.restore(history);
        for (project, budget) in budgets {
            engine
                .ctx
                .budgets
                .set_project_budget(&project, budget)
                .map_err(budgets::budget_error)?;
        }
        if let Some(retention) = engine.config.retention {
            durable::spawn_retention(&engine.ctx.versions, &engine.ctx.budgets, retention);
        }
        if let Some(every) = engine.config.leases.takeover_every
            && shared
        {
            spawn_takeover(&engine, every);
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
        let ctx = RunContext::new(runtime, &plugins, backends, &config, store);
        let every = config.interrupt_tick;
        let engine = Arc::new(Self {
            ctx: Arc::new(ctx),
            plugins,
            writer: Writer::default(),
            host: hosts::HostInfo::new(config.clock.now_ms()),
            config,
        });
        interrupts::spawn_deadlines(&engine, every);
        engine
    }

    /// Threads whose state this process holds in memory (a durable engine
    /// keeps at most 1,024
    /// idle ones, plus those with a run in flight).
    pub fn threads_in_memory(&self) -> usize {
        self.ctx.threads.len()
    }

    /// The runtime plugins run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.ctx.runtime
    }

    /// The plugins graphs can use.
    pub fn plugins(&self) -> &Arc<PluginSet> {
        &self.plugins
    }

    /// Now, in Unix milliseconds, from the engine's clock.
    pub fn now_ms(&self) -> u64 {
        self.ctx.budgets.now_ms()
    }

    /// Loads a graph file against this engine's plugins.
    pub async fn load_graph(
        &self,
        path: &std::path::Path,
    ) -> Result<Arc<LoadedGraph>, crate::LoadError> {
        LoadedGraph::load_file(path, &self.plugins, &self.ctx.runtime)
            .await
            .map(Arc::new)
    }

    /// Keeps `graph`'s version (its file and plugin hashes; the plugins'
    /// bytes are kept when a run starts on it) in the store, so that the
    /// graph's history lists it from the moment it is served. Idempotent;
    /// nothing without a store.
    pub async fn keep_graph_version(&self, graph: &LoadedGraph) -> Result<(), EngineError> {
        match self.store() {
            Some(store) => Ok(store.put_graph(graph.version()).await?),
            None => Ok(()),
        }
    }

    /// Publishes a host event (a graph change, say) to every subscriber.
    pub fn publish_host(&self, body: EventBody) {
        self.ctx.bus.publish_host(body);
    }

    /// Publishes an event on `thread` (and `run`, if any) from outside the
    /// graph: it reaches the streams that may see the thread's project.
    pub fn publish(&self, thread: &str, run: &str, body: EventBody) {
        self.ctx.bus.publish(thread, run, None, None, body);
    }

    /// Subscribes to every event of every thread from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.ctx.bus.subscribe()
    }

    /// The committed memory (thread and node scopes).
    pub fn memory(&self) -> &Arc<MemoryMap> {
        &self.ctx.memory
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
        let (id, created) = self.ctx.threads.open(id, graph, self.ctx.store.is_some());
        if created {
            self.ctx.budgets.assign_project(&id, project);
        }
        // Idle until a run starts: a thread opened and never run is
        // evicted like the others (with a store).
        self.ctx.went_idle(&id);
        id
    }

    /// Makes `thread`'s next run use `graph` (a switched or edited graph);
    /// a run in flight keeps its version. False for an unknown thread.
    pub fn set_thread_graph(&self, thread: &str, graph: &Arc<LoadedGraph>) -> bool {
        self.ctx.threads.set_graph(thread, graph)
    }

    /// The project a thread belongs to.
    pub fn thread_project(&self, thread: &str) -> Option<String> {
        self.ctx
            .threads
            .contains(thread)
            .then(|| self.ctx.budgets.project_of(thread))
    }

    /// The graph a thread is pinned to.
    pub fn thread_graph(&self, thread: &str) -> Option<Arc<LoadedGraph>> {
        self.ctx.threads.graph(thread)
    }

    /// The run in flight on a thread, if any.
    pub fn active_run(&self, thread: &str) -> Option<String> {
        self.ctx.threads.active_run(thread)
    }

    /// Starts a run on `thread` with one inbound message. The message is
    /// checked (node, payload) before anything starts; with a store, the
    /// thread's durable state is loaded (once) and the message is committed
    /// before this returns, so an accepted message is never lost. The run
    /// then proceeds in the background, frame by frame.
    pub async fn start_run(
        &self,
        thread: &str,
        inbound: Inbound,
    ) -> Result<RunHandle, EngineError> {
        run::start(&self.ctx, thread, inbound).await
    }

    /// Sends `inbound` to `thread`: a run starts at once when the thread is
    /// free; when a run is in flight, `policy` decides (double-texting):
    /// `reject` refuses with [`EngineError::ThreadBusy`], `enqueue` queues
    /// the run behind it, `interrupt` and `rollback` queue it first and
    /// stop the run in flight at its next frame boundary (`preempted`, or
    /// `rolled_back` with its memory writes undone and its messages out of
    /// the thread's history; `rollback` needs a store). A queued run is
    /// committed before this returns, and starts when the thread frees.
    pub async fn send(
        &self,
        thread: &str,
        inbound: Inbound,
        policy: Multitask,
    ) -> Result<Sent, EngineError> {
        run::send(&self.ctx, thread, inbound, policy).await
    }

    /// The runs queued on a thread, in the order they start.
    pub fn queued_runs(&self, thread: &str) -> Vec<String> {
        self.ctx.threads.queued(thread)
    }

    /// Stops taking runs: [`start_run`](Self::start_run) refuses with
    /// [`EngineError::ShuttingDown`], and every run in flight stops at its
    /// next frame boundary with status `suspended` (the frame running now
    /// finishes and is committed; with a store, the run resumes from there
    /// at the next start). Then waits until no run is left.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        self.ctx.control.all_stopped().await;
    }

    /// Starts a [`shutdown`](Self::shutdown) without waiting for it.
    pub fn begin_shutdown(&self) {
        self.ctx.control.stop();
    }

    /// Whether a shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.ctx.control.is_stopping()
    }

    /// Runs in flight.
    pub fn runs_in_flight(&self) -> usize {
        self.ctx.control.runs_in_flight()
    }

    /// The MCP tool calls this host made, per server, tool and outcome.
    pub fn tool_stats(&self) -> Vec<weft_runtime::capabilities::tools::ToolStat> {
        self.ctx.tools.stats()
    }

    /// The store, if the engine has one.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.ctx.store.as_ref()
    }

    /// Kills the run in flight on `thread`: it stops at the next frame
    /// boundary (the frame running now finishes and is recorded). A run
    /// waiting on an interrupt ends at once (its interrupts cancelled).
    pub fn kill(&self, thread: &str) -> Result<String, EngineError> {
        let run = self.ctx.threads.stop(thread, Stop::Kill)?;
        if self.ctx.parked.contains(&run) {
            let ctx = Arc::clone(&self.ctx);
            let (thread, killed) = (thread.to_owned(), run.clone());
            tokio::spawn(async move {
                run::interrupt::kill_parked(&ctx, &thread, &killed, RunStatus::Killed).await;
            });
        }
        Ok(run)
    }

    /// Pauses node `node` in the threads of `project` (every thread with
    /// `None`): it receives no ticks and its messages wait until
    /// [`resume`](Self::resume). With a store, the node stays paused across
    /// restarts. Returns false if it was paused so already.
    pub fn pause(&self, project: Option<&str>, node: &str) -> bool {
        let pause = NodePause::new(project, node);
        let changed = self.ctx.control.pause(pause.clone());
        if changed {
            self.writer
                .persist(|store, pause| store.set_node_paused(pause, true), pause);
        }
        changed
    }

    /// Lifts a [`pause`](Self::pause) made for the same scope; waiting
    /// runs deliver the node's messages in their next frame. Returns false
    /// if there was no such pause (a pause for every project is lifted only
    /// with `None`).
    pub fn resume(&self, project: Option<&str>, node: &str) -> bool {
        let pause = NodePause::new(project, node);
        let changed = self.ctx.control.resume(&pause);
        if changed {
            self.writer
                .persist(|store, pause| store.set_node_paused(pause, false), pause);
        }
        changed
    }

    /// [`pause`](Self::pause), answering only once the pause is stored
    /// (so a crash right after keeps it). A pause the store refuses is
    /// lifted again and the store's error returned.
    pub async fn pause_stored(
        &self,
        project: Option<&str>,
        node: &str,
    ) -> Result<bool, EngineError> {
        let pause = NodePause::new(project, node);
        if !self.ctx.control.pause(pause.clone()) {
            return Ok(false);
        }
        let stored = self
            .writer
            .persist_wait(
                |store, pause| store.set_node_paused(pause, true),
                pause.clone(),
            )
            .await;
        if let Err(e) = stored {
            self.ctx.control.resume(&pause);
            return Err(e.into());
        }
        Ok(true)
    }

    /// [`resume`](Self::resume), answering only once the lifted pause is
    /// stored. A resume the store refuses puts the pause back in force and
    /// returns the store's error.
    pub async fn resume_stored(
        &self,
        project: Option<&str>,
        node: &str,
    ) -> Result<bool, EngineError> {
        let pause = NodePause::new(project, node);
        if !self.ctx.control.resume(&pause) {
            return Ok(false);
        }
        let stored = self
            .writer
            .persist_wait(
                |store, pause| store.set_node_paused(pause, false),
                pause.clone(),
            )
            .await;
        if let Err(e) = stored {
            self.ctx.control.pause(pause);
            return Err(e.into());
        }
        Ok(true)
    }

    /// The pause that holds `node` for threads of `project`: the one for
    /// every project first, else the project's own. With `project` `None`,
    /// only a pause for every project counts.
    pub fn pause_of(&self, project: Option<&str>, node: &str) -> Option<NodePause> {
        self.ctx.control.pause_of(project, node)
    }

    /// Every pause in force.
    pub fn pauses(&self) -> Vec<NodePause> {
        self.ctx.control.pauses()
    }

    /// The pauses in force, changing as operators pause and resume nodes
    /// (the bus tells other hosts).
    pub fn watch_pauses(
        &self,
    ) -> tokio::sync::watch::Receiver<std::collections::BTreeSet<NodePause>> {
        self.ctx.control.watch_pauses()
    }

    /// The most recent finished runs' traces, oldest first.
    pub fn recent_traces(&self, last: usize) -> Vec<Arc<FrameTrace>> {
        self.ctx.history.recent(last)
    }
}

impl Engine {
    /// Continues every run the store holds as unfinished, from its last
    /// committed frame (the frame that was in flight runs again), on the
    /// graph and plugin versions it started with. Returns the resumed runs
    /// and, for each run that cannot resume, why (it stays unfinished in
    /// the store).
    ///
    /// On a store shared by several hosts, only the runs whose lease
    /// expired are resumed, each claimed first with a new lease (a
    /// takeover: their host died or was cut off); with
    /// [`LeaseConfig::takeover_every`](crate::LeaseConfig::takeover_every)
    /// the engine does this on its own at that interval.
    pub async fn resume_runs(
        &self,
    ) -> Result<(Vec<RunHandle>, Vec<(String, EngineError)>), EngineError> {
        let mut resumed = Vec::new();
        let mut failed = Vec::new();
        let shared = self.ctx.store.as_ref().is_some_and(|s| s.shared());
        let prepared = if shared {
            let (host, leases) = &self.ctx.leasing;
            durable::claimed(
                &self.ctx.versions,
                host,
                run::lease_millis(leases.ttl),
                TAKEOVER_BATCH,
            )
            .await?
        } else {
            durable::unfinished(&self.ctx.versions).await?
        };
        for prepared in prepared {
            let outcome = match prepared {
                Ok(r) => {
                    let run = r.run.clone();
                    run::resume(&self.ctx, r).await.map_err(|e| (run, e))
                }
                Err(failure) => Err(failure),
            };
            match outcome {
                Ok(handle) => resumed.push(handle),
                Err((run, error)) => {
                    tracing::error!(run, %error, "the run cannot resume");
                    failed.push((run, error));
                }
            }
        }
        if !resumed.is_empty() {
            tracing::info!(runs = resumed.len(), "resumed unfinished runs");
        }
        let held = run::interrupt::hold_interrupted(&self.ctx).await?;
        if held > 0 {
            tracing::info!(runs = held, "runs wait for answers to their interrupts");
        }
        let queued = run::requeue(&self.ctx).await?;
        if queued > 0 {
            tracing::info!(runs = queued, "queued runs wait for their threads again");
        }
        Ok((resumed, failed))
    }

    /// Forks `thread` after its frame `after` (counted over the thread's
    /// runs, from 0): a new thread in the same project with the memory the
    /// thread had after that frame, and, if the frame's run still had
    /// messages pending then, a run that continues with them on the same
    /// graph version. Returns the new thread's id and that run.
    pub async fn fork(
        &self,
        thread: &str,
        after: u64,
    ) -> Result<(String, Option<RunHandle>), EngineError> {
        let forked = durable::fork(&self.ctx.versions, thread, after, self.now_ms()).await?;
        let id = forked.thread.id.clone();
        let run_id = forked.run.as_ref().map(|(run, _, _)| run.as_str());
        let kill = run::adopt(&self.ctx, &forked.thread, &forked.graph, run_id).await?;
        let Some((run, pending, seq)) = forked.run else {
            return Ok((id, None));
        };
        let state = RunState {
            lease: None,
            pending,
            frame: 0,
            seq,
            reply: None,
        };
        let handle = run::spawn(&self.ctx, &id, &run, forked.graph, kill, state);
        Ok((id, Some(handle)))
    }

    /// Removes the threads whose runs all finished more than `max_age` ago
    /// (frames, journal, messages, memory), keeping usage totals.
    pub async fn prune(&self, max_age: std::time::Duration) -> Result<PruneReport, EngineError> {
        durable::prune(&self.ctx.versions, self.now_ms(), max_age).await
    }

    /// The threads the store holds that match `filter`, most recently
    /// changed first.
    pub async fn stored_threads(
        &self,
        filter: ThreadFilter,
        limit: u64,
        offset: u64,
    ) -> Result<Page<StoredThread>, EngineError> {
        Ok(self
            .ctx
            .versions
            .store()?
            .threads(filter, limit, offset)
            .await?)
    }

    /// Replays a thread's committed frames (all, or one) and reports every
    /// invocation whose outputs differ from the record.
    pub async fn replay(
        &self,
        thread: &str,
        options: ReplayOptions,
    ) -> Result<ReplayReport, EngineError> {
        durable::replay(&self.ctx.versions, thread, options).await
    }

    /// Makes `plugin` (loaded from `bytes`) the version of its name that
    /// nodes run. It is first checked against each of `graphs` that runs
    /// the plugin (its input schema, its capabilities against the node's
    /// grants, the graph's validation); a refusal changes nothing. Then its
    /// bytes go to the store (so any frame it runs can be replayed), it
    /// replaces the old version for new runs, and every run in flight
    /// switches at its next frame boundary: the frame running now finishes
    /// on the old version. Swaps are applied one at a time.
    pub async fn swap_plugin(
        &self,
        plugin: Plugin,
        bytes: Vec<u8>,
        graphs: &[Arc<LoadedGraph>],
    ) -> Result<PluginSwap, EngineError> {
        let ctx = &self.ctx;
        control::swap_plugin(
            &ctx.control,
            (&self.plugins, &ctx.versions, &ctx.bus),
            plugin,
            bytes,
            graphs,
        )
        .await
    }
}
