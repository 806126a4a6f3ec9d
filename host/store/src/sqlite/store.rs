//! The engine's [`Store`] trait on SQLite: each write a job for the writer
//! thread, each read on a pooled read-only connection.

use std::collections::BTreeMap;
use std::sync::Arc;

use weft_engine::store::{
    AttemptOutcome, ClaimedDelivery, FireClaim, ScheduleFire, StoredDelivery, StoredSchedule,
    Webhook, WebhookEvent,
};
use weft_engine::store::{
    ForkStart, FrameCommit, GraphVersion, NodePause, Page, PluginBlob, PruneReport, QueuedRun,
    ResolveInterrupt, RunEnd, RunStart, SeriesPoint, SeriesQuery, StoreResult, StoredFrame,
    StoredGraphVersion, StoredInstance, StoredInterrupt, StoredMessage, StoredRun, StoredThread,
    ThreadFilter, UnfinishedRun, UsageHistory,
};
use weft_engine::{MoneyBudget, Store};
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::memory::MemoryWrite;

use super::{
    LATENCY_SAMPLES, SqliteStore, commit, frames, graphs, interrupts, kv, memory, messages,
    operator, prune, runs, schedules, threads, usage, webhooks,
};

impl Store for SqliteStore {
    fn put_graph(&self, version: GraphVersion) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| graphs::put_graph(c, &version)))
    }

    fn graph(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<GraphVersion>>> {
        let id = id.to_owned();
        Box::pin(self.read(move |c| graphs::graph(c, &id)))
    }

    fn graph_versions(
        &self,
        name: &str,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredGraphVersion>>> {
        let name = name.to_owned();
        Box::pin(self.read(move |c| graphs::graph_versions(c, &name, limit, offset)))
    }

    fn graph_version(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<StoredGraphVersion>>> {
        let id = id.to_owned();
        Box::pin(self.read(move |c| graphs::graph_version(c, &id)))
    }

    fn graph_version_before(
        &self,
        id: &str,
    ) -> BoxFuture<'_, StoreResult<Option<StoredGraphVersion>>> {
        let id = id.to_owned();
        Box::pin(self.read(move |c| graphs::graph_version_before(c, &id)))
    }

    fn has_plugin(&self, hash: &str) -> BoxFuture<'_, StoreResult<bool>> {
        let hash = hash.to_owned();
        Box::pin(self.read(move |c| graphs::has_plugin(c, &hash)))
    }

    fn put_plugin(&self, plugin: PluginBlob) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| graphs::put_plugin(c, &plugin)))
    }

    fn plugin(&self, hash: &str) -> BoxFuture<'_, StoreResult<Option<PluginBlob>>> {
        let hash = hash.to_owned();
        Box::pin(self.read(move |c| graphs::plugin(c, &hash)))
    }

    fn thread(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<StoredThread>>> {
        let id = id.to_owned();
        Box::pin(self.read(move |c| threads::thread(c, &id)))
    }

    fn threads(
        &self,
        filter: ThreadFilter,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredThread>>> {
        Box::pin(self.read(move |c| threads::threads(c, &filter, limit, offset)))
    }

    fn runs(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<StoredRun>>> {
        let thread = thread.to_owned();
        Box::pin(self.read(move |c| runs::runs(c, &thread)))
    }

    fn memory(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<MemoryWrite>>> {
        let thread = thread.to_owned();
        Box::pin(self.read(move |c| memory::memory(c, &thread)))
    }

    fn kv_get(
        &self,
        project: &str,
        namespace: &str,
        key: &str,
    ) -> BoxFuture<'_, StoreResult<Option<String>>> {
        let (p, n, k) = (project.to_owned(), namespace.to_owned(), key.to_owned());
        Box::pin(self.read(move |c| kv::get(c, &p, &n, &k)))
    }

    fn kv_list(
        &self,
        project: &str,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        let (p, n, x) = (project.to_owned(), namespace.to_owned(), prefix.to_owned());
        let after = after.map(str::to_owned);
        Box::pin(self.read(move |c| kv::list(c, &p, &n, &x, after.as_deref(), limit)))
    }

    fn kv_count(&self, project: &str) -> BoxFuture<'_, StoreResult<u64>> {
        let project = project.to_owned();
        Box::pin(self.read(move |c| kv::count(c, &project)))
    }

    fn set_thread_budget(&self, thread: &str, limit: u64) -> BoxFuture<'_, StoreResult<()>> {
        let thread = thread.to_owned();
        Box::pin(self.write(move |c, _| threads::set_thread_budget(c, &thread, limit)))
    }

    fn project_budgets(&self) -> BoxFuture<'_, StoreResult<BTreeMap<String, Option<MoneyBudget>>>> {
        Box::pin(self.read(operator::project_budgets))
    }

    fn set_project_budget(
        &self,
        project: &str,
        budget: Option<MoneyBudget>,
    ) -> BoxFuture<'_, StoreResult<()>> {
        let project = project.to_owned();
        Box::pin(self.write(move |c, _| operator::set_project_budget(c, &project, budget)))
    }

    fn instances(&self) -> BoxFuture<'_, StoreResult<Vec<StoredInstance>>> {
        Box::pin(self.read(operator::instances))
    }

    fn put_instance(&self, instance: StoredInstance) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| operator::put_instance(c, &instance)))
    }

    fn paused_nodes(&self) -> BoxFuture<'_, StoreResult<Vec<NodePause>>> {
        Box::pin(self.read(operator::paused_nodes))
    }

    fn set_node_paused(&self, pause: &NodePause, paused: bool) -> BoxFuture<'_, StoreResult<()>> {
        let pause = pause.clone();
        Box::pin(self.write(move |c, _| operator::set_node_paused(c, &pause, paused)))
    }

    fn begin_run(&self, start: RunStart) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| runs::begin_run(c, &start, None)))
    }

    fn commit_frame(&self, frame: Arc<FrameCommit>) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            // Encoded here, on the run's task: the writer thread only writes.
            let encoded = frame
                .invocations
                .iter()
                .map(crate::codec::encode_invocation)
                .collect::<StoreResult<Vec<_>>>();
            let result = match encoded {
                Ok(encoded) => {
                    self.write(move |c, faults| commit::commit_frame(c, &frame, &encoded, faults))
                        .await
                }
                Err(e) => Err(e),
            };
            let mut samples = self
                .frame_commits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if samples.len() < LATENCY_SAMPLES {
                samples.push(started.elapsed());
            }
            result
        })
    }

    fn end_run(&self, end: RunEnd) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| runs::end_run(c, &end)))
    }

    fn fork(&self, fork: ForkStart) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| runs::fork(c, &fork)))
    }

    fn queue_run(&self, start: RunStart) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| runs::queue_run(c, &start)))
    }

    fn start_queued(&self, thread: &str, run: &str, at_ms: u64) -> BoxFuture<'_, StoreResult<()>> {
        let (thread, run) = (thread.to_owned(), run.to_owned());
        Box::pin(self.write(move |c, _| runs::start_queued(c, &thread, &run, at_ms)))
    }

    fn queued_runs(&self) -> BoxFuture<'_, StoreResult<Vec<QueuedRun>>> {
        Box::pin(self.read(runs::queued_runs))
    }

    fn unfinished_runs(&self) -> BoxFuture<'_, StoreResult<Vec<UnfinishedRun>>> {
        Box::pin(self.read(runs::unfinished_runs))
    }

    fn resolve_interrupt(
        &self,
        resolve: ResolveInterrupt,
    ) -> BoxFuture<'_, StoreResult<Option<UnfinishedRun>>> {
        Box::pin(self.write(move |c, _| interrupts::resolve(c, &resolve)))
    }

    fn interrupts(&self, run: &str) -> BoxFuture<'_, StoreResult<Vec<StoredInterrupt>>> {
        let run = run.to_owned();
        Box::pin(self.read(move |c| interrupts::of_run(c, &run)))
    }

    fn due_interrupts(&self, now_ms: u64) -> BoxFuture<'_, StoreResult<Vec<StoredInterrupt>>> {
        Box::pin(self.read(move |c| interrupts::due(c, now_ms)))
    }

    fn interrupted_runs(&self) -> BoxFuture<'_, StoreResult<Vec<StoredRun>>> {
        Box::pin(self.read(interrupts::interrupted_runs))
    }

    fn put_schedule(&self, schedule: StoredSchedule) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| schedules::put(c, &schedule)))
    }

    fn schedules(
        &self,
        project: Option<String>,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredSchedule>>> {
        Box::pin(self.read(move |c| schedules::list(c, project.as_deref())))
    }

    fn set_schedule(
        &self,
        id: &str,
        paused: bool,
        next_ms: Option<u64>,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        let id = id.to_owned();
        Box::pin(self.write(move |c, _| schedules::set(c, &id, paused, next_ms)))
    }

    fn delete_schedule(&self, id: &str) -> BoxFuture<'_, StoreResult<bool>> {
        let id = id.to_owned();
        Box::pin(self.write(move |c, _| schedules::delete(c, &id)))
    }

    fn due_schedules(&self, now_ms: u64) -> BoxFuture<'_, StoreResult<Vec<StoredSchedule>>> {
        Box::pin(self.read(move |c| schedules::due(c, now_ms)))
    }

    fn claim_fire(&self, claim: FireClaim) -> BoxFuture<'_, StoreResult<bool>> {
        Box::pin(self.write(move |c, _| schedules::claim(c, &claim)))
    }

    fn fire_started(&self, fire: ScheduleFire) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| schedules::started(c, &fire)))
    }

    fn unstarted_fires(&self, before_ms: u64) -> BoxFuture<'_, StoreResult<Vec<ScheduleFire>>> {
        Box::pin(self.read(move |c| schedules::unstarted(c, before_ms)))
    }

    fn schedule_fires(
        &self,
        schedule: &str,
        limit: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<ScheduleFire>>> {
        let schedule = schedule.to_owned();
        Box::pin(self.read(move |c| schedules::of_schedule(c, &schedule, limit)))
    }

    fn put_webhook(&self, hook: Webhook) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| webhooks::put(c, &hook)))
    }

    fn webhooks(&self, project: Option<String>) -> BoxFuture<'_, StoreResult<Vec<Webhook>>> {
        Box::pin(self.read(move |c| webhooks::list(c, project.as_deref())))
    }

    fn delete_webhook(&self, id: &str) -> BoxFuture<'_, StoreResult<bool>> {
        let id = id.to_owned();
        Box::pin(self.write(move |c, _| webhooks::delete(c, &id)))
    }

    fn enqueue_webhook_event(&self, event: WebhookEvent) -> BoxFuture<'_, StoreResult<u64>> {
        Box::pin(self.write(move |c, _| webhooks::enqueue(c, &event)))
    }

    fn claim_deliveries(
        &self,
        now_ms: u64,
        lease_ms: u64,
        limit: u32,
    ) -> BoxFuture<'_, StoreResult<Vec<ClaimedDelivery>>> {
        Box::pin(self.write(move |c, _| webhooks::claim(c, now_ms, lease_ms, limit)))
    }

    fn record_attempt(&self, outcome: AttemptOutcome) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| webhooks::record(c, &outcome)))
    }

    fn deliveries(
        &self,
        webhook: &str,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredDelivery>>> {
        let webhook = webhook.to_owned();
        Box::pin(self.read(move |c| webhooks::deliveries(c, &webhook, limit, offset)))
    }

    fn frames(
        &self,
        thread: &str,
        from: u64,
        to: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredFrame>>> {
        let thread = thread.to_owned();
        Box::pin(self.read(move |c| frames::frames(c, &thread, from, to)))
    }

    fn node_messages(
        &self,
        node: Option<String>,
        project: Option<String>,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredMessage>>> {
        Box::pin(self.read(move |c| messages::node_messages(c, node, project, limit, offset)))
    }

    fn messages(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<StoredMessage>>> {
        let thread = thread.to_owned();
        Box::pin(self.read(move |c| messages::messages(c, &thread)))
    }

    fn usage(&self) -> BoxFuture<'_, StoreResult<UsageHistory>> {
        Box::pin(self.read(usage::usage))
    }

    fn usage_series(&self, query: SeriesQuery) -> BoxFuture<'_, StoreResult<Vec<SeriesPoint>>> {
        Box::pin(self.read(move |c| usage::usage_series(c, &query)))
    }

    fn reset_usage(&self, at_ms: u64) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write(move |c, _| usage::reset_usage(c, at_ms)))
    }

    fn thread_usage(
        &self,
        thread: &str,
        since_ms: u64,
    ) -> BoxFuture<'_, StoreResult<(u64, weft_engine::UsageTotals)>> {
        let thread = thread.to_owned();
        Box::pin(self.read(move |c| usage::thread_usage(c, &thread, since_ms)))
    }

    fn prune(&self, before_ms: u64) -> BoxFuture<'_, StoreResult<PruneReport>> {
        Box::pin(self.write(move |c, _| prune::prune(c, before_ms)))
    }
}
