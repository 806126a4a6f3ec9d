//! The engine's [`Store`] trait on PostgreSQL: each write a job for the
//! writer task, each read on a pooled connection.

use std::collections::BTreeMap;
use std::sync::Arc;

use weft_engine::store::{
    AttemptOutcome, ClaimedDelivery, FireClaim, ScheduleFire, StoredDelivery, StoredSchedule,
    Webhook, WebhookEvent,
};
use weft_engine::store::{
    ForkStart, FrameCommit, GraphVersion, HostBeat, Lease, MoneyHeld, MoneyHold, MoneySettle,
    MoneySettled, NodePause, Page, PluginBlob, PruneReport, QueuedRun, ResolveInterrupt, RunEnd,
    RunStart, SeriesPoint, SeriesQuery, StoreResult, StoredFrame, StoredGraphVersion,
    StoredInstance, StoredInterrupt, StoredMessage, StoredRun, StoredThread, ThreadFilter,
    UnfinishedRun, UsageHistory,
};
use weft_engine::{MoneyBudget, Store, StoreError};
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::memory::MemoryWrite;

use super::writer::{Done, Write};
use super::{
    LATENCY_SAMPLES, PostgresStore, cluster, interrupts, kv, leases, reads, schedules, usage,
    webhooks,
};

impl PostgresStore {
    async fn unit(&self, write: Write) -> StoreResult<()> {
        self.write(write).await.map(drop)
    }
}

impl Store for PostgresStore {
    fn put_graph(&self, version: GraphVersion) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::PutGraph(version)))
    }

    fn graph(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<GraphVersion>>> {
        let id = id.to_owned();
        Box::pin(async move { reads::graph(&*self.client().await?, &id).await })
    }

    fn graph_versions(
        &self,
        name: &str,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredGraphVersion>>> {
        let name = name.to_owned();
        Box::pin(async move {
            reads::graph_versions(&*self.client().await?, &name, limit, offset).await
        })
    }

    fn graph_version(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<StoredGraphVersion>>> {
        let id = id.to_owned();
        Box::pin(async move { reads::graph_version(&*self.client().await?, &id).await })
    }

    fn graph_version_before(
        &self,
        id: &str,
    ) -> BoxFuture<'_, StoreResult<Option<StoredGraphVersion>>> {
        let id = id.to_owned();
        Box::pin(async move { reads::graph_version_before(&*self.client().await?, &id).await })
    }

    fn has_plugin(&self, hash: &str) -> BoxFuture<'_, StoreResult<bool>> {
        let hash = hash.to_owned();
        Box::pin(async move { reads::has_plugin(&*self.client().await?, &hash).await })
    }

    fn put_plugin(&self, plugin: PluginBlob) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::PutPlugin(plugin)))
    }

    fn plugin(&self, hash: &str) -> BoxFuture<'_, StoreResult<Option<PluginBlob>>> {
        let hash = hash.to_owned();
        Box::pin(async move { reads::plugin(&*self.client().await?, &hash).await })
    }

    fn thread(&self, id: &str) -> BoxFuture<'_, StoreResult<Option<StoredThread>>> {
        let id = id.to_owned();
        Box::pin(async move { reads::thread(&*self.client().await?, &id).await })
    }

    fn threads(
        &self,
        filter: ThreadFilter,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredThread>>> {
        Box::pin(
            async move { reads::threads(&*self.client().await?, &filter, limit, offset).await },
        )
    }

    fn runs(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<StoredRun>>> {
        let thread = thread.to_owned();
        Box::pin(async move { reads::runs(&*self.client().await?, &thread).await })
    }

    fn memory(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<MemoryWrite>>> {
        let thread = thread.to_owned();
        Box::pin(async move { reads::memory(&*self.client().await?, &thread).await })
    }

    fn kv_get(
        &self,
        project: &str,
        namespace: &str,
        key: &str,
    ) -> BoxFuture<'_, StoreResult<Option<String>>> {
        let (p, n, k) = (project.to_owned(), namespace.to_owned(), key.to_owned());
        Box::pin(async move { kv::get(&*self.client().await?, &p, &n, &k).await })
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
        Box::pin(async move {
            kv::list(&*self.client().await?, &p, &n, &x, after.as_deref(), limit).await
        })
    }

    fn kv_count(&self, project: &str) -> BoxFuture<'_, StoreResult<u64>> {
        let project = project.to_owned();
        Box::pin(async move { kv::count(&*self.client().await?, &project).await })
    }

    fn set_thread_budget(&self, thread: &str, limit: u64) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::SetThreadBudget(thread.to_owned(), limit)))
    }

    fn project_budgets(&self) -> BoxFuture<'_, StoreResult<BTreeMap<String, Option<MoneyBudget>>>> {
        Box::pin(async move { reads::project_budgets(&*self.client().await?).await })
    }

    fn set_project_budget(
        &self,
        project: &str,
        budget: Option<MoneyBudget>,
    ) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::SetProjectBudget(project.to_owned(), budget)))
    }

    fn instances(&self) -> BoxFuture<'_, StoreResult<Vec<StoredInstance>>> {
        Box::pin(async move { reads::instances(&*self.client().await?).await })
    }

    fn put_instance(&self, instance: StoredInstance) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::PutInstance(instance)))
    }

    fn paused_nodes(&self) -> BoxFuture<'_, StoreResult<Vec<NodePause>>> {
        Box::pin(async move { reads::paused_nodes(&*self.client().await?).await })
    }

    fn set_node_paused(&self, pause: &NodePause, paused: bool) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::SetNodePaused(pause.clone(), paused)))
    }

    fn begin_run(&self, start: RunStart) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::BeginRun(start)))
    }

    fn commit_frame(&self, frame: Arc<FrameCommit>) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let result = self.unit(Write::CommitFrame(frame)).await;
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
        Box::pin(self.unit(Write::EndRun(end)))
    }

    fn fork(&self, fork: ForkStart) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::Fork(fork)))
    }

    fn queue_run(&self, start: RunStart) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::QueueRun(start)))
    }

    fn start_queued(&self, thread: &str, run: &str, at_ms: u64) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::StartQueued {
            thread: thread.to_owned(),
            run: run.to_owned(),
            at_ms,
        }))
    }

    fn next_queued(&self, thread: &str) -> BoxFuture<'_, StoreResult<Option<QueuedRun>>> {
        let thread = thread.to_owned();
        Box::pin(async move { reads::next_queued(&*self.client().await?, &thread).await })
    }

    fn queued_runs(&self) -> BoxFuture<'_, StoreResult<Vec<QueuedRun>>> {
        Box::pin(async move { reads::queued_runs(&*self.client().await?).await })
    }

    fn unfinished_runs(&self) -> BoxFuture<'_, StoreResult<Vec<UnfinishedRun>>> {
        Box::pin(async move { reads::unfinished_runs(&*self.client().await?).await })
    }

    fn resolve_interrupt(
        &self,
        resolve: ResolveInterrupt,
    ) -> BoxFuture<'_, StoreResult<Option<UnfinishedRun>>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            interrupts::resolve(&mut client, &resolve).await
        })
    }

    fn interrupts(&self, run: &str) -> BoxFuture<'_, StoreResult<Vec<StoredInterrupt>>> {
        let run = run.to_owned();
        Box::pin(async move { interrupts::of_run(&*self.client().await?, &run).await })
    }

    fn due_interrupts(&self, now_ms: u64) -> BoxFuture<'_, StoreResult<Vec<StoredInterrupt>>> {
        Box::pin(async move { interrupts::due(&*self.client().await?, now_ms).await })
    }

    fn interrupted_runs(&self) -> BoxFuture<'_, StoreResult<Vec<StoredRun>>> {
        Box::pin(async move { interrupts::interrupted_runs(&*self.client().await?).await })
    }

    fn put_schedule(&self, schedule: StoredSchedule) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move { schedules::put(&*self.client().await?, &schedule).await })
    }

    fn schedules(
        &self,
        project: Option<String>,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredSchedule>>> {
        Box::pin(async move { schedules::list(&*self.client().await?, project.as_deref()).await })
    }

    fn set_schedule(
        &self,
        id: &str,
        paused: bool,
        next_ms: Option<u64>,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        let id = id.to_owned();
        Box::pin(async move { schedules::set(&*self.client().await?, &id, paused, next_ms).await })
    }

    fn delete_schedule(&self, id: &str) -> BoxFuture<'_, StoreResult<bool>> {
        let id = id.to_owned();
        Box::pin(async move {
            let mut client = self.client().await?;
            schedules::delete(&mut client, &id).await
        })
    }

    fn due_schedules(&self, now_ms: u64) -> BoxFuture<'_, StoreResult<Vec<StoredSchedule>>> {
        Box::pin(async move { schedules::due(&*self.client().await?, now_ms).await })
    }

    fn claim_fire(&self, claim: FireClaim) -> BoxFuture<'_, StoreResult<bool>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            schedules::claim(&mut client, &claim).await
        })
    }

    fn fire_started(&self, fire: ScheduleFire) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move { schedules::started(&*self.client().await?, &fire).await })
    }

    fn unstarted_fires(&self, before_ms: u64) -> BoxFuture<'_, StoreResult<Vec<ScheduleFire>>> {
        Box::pin(async move { schedules::unstarted(&*self.client().await?, before_ms).await })
    }

    fn schedule_fires(
        &self,
        schedule: &str,
        limit: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<ScheduleFire>>> {
        let schedule = schedule.to_owned();
        Box::pin(
            async move { schedules::of_schedule(&*self.client().await?, &schedule, limit).await },
        )
    }

    fn put_webhook(&self, hook: Webhook) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move { webhooks::put(&*self.client().await?, &hook).await })
    }

    fn webhooks(&self, project: Option<String>) -> BoxFuture<'_, StoreResult<Vec<Webhook>>> {
        Box::pin(async move { webhooks::list(&*self.client().await?, project.as_deref()).await })
    }

    fn delete_webhook(&self, id: &str) -> BoxFuture<'_, StoreResult<bool>> {
        let id = id.to_owned();
        Box::pin(async move {
            let mut client = self.client().await?;
            webhooks::delete(&mut client, &id).await
        })
    }

    fn enqueue_webhook_event(&self, event: WebhookEvent) -> BoxFuture<'_, StoreResult<u64>> {
        Box::pin(async move { webhooks::enqueue(&*self.client().await?, &event).await })
    }

    fn claim_deliveries(
        &self,
        now_ms: u64,
        lease_ms: u64,
        limit: u32,
    ) -> BoxFuture<'_, StoreResult<Vec<ClaimedDelivery>>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            webhooks::claim(&mut client, now_ms, lease_ms, limit).await
        })
    }

    fn record_attempt(&self, outcome: AttemptOutcome) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            webhooks::record(&mut client, &outcome).await
        })
    }

    fn deliveries(
        &self,
        webhook: &str,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredDelivery>>> {
        let webhook = webhook.to_owned();
        Box::pin(async move {
            webhooks::deliveries(&*self.client().await?, &webhook, limit, offset).await
        })
    }

    fn frames(
        &self,
        thread: &str,
        from: u64,
        to: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredFrame>>> {
        let thread = thread.to_owned();
        Box::pin(async move { reads::frames(&*self.client().await?, &thread, from, to).await })
    }

    fn node_messages(
        &self,
        node: Option<String>,
        project: Option<String>,
        limit: u64,
        offset: u64,
    ) -> BoxFuture<'_, StoreResult<Page<StoredMessage>>> {
        Box::pin(async move {
            reads::node_messages(&*self.client().await?, node, project, limit, offset).await
        })
    }

    fn messages(&self, thread: &str) -> BoxFuture<'_, StoreResult<Vec<StoredMessage>>> {
        let thread = thread.to_owned();
        Box::pin(async move { reads::messages(&*self.client().await?, &thread).await })
    }

    fn usage(&self) -> BoxFuture<'_, StoreResult<UsageHistory>> {
        Box::pin(async move { usage::usage(&*self.client().await?).await })
    }

    fn usage_series(&self, query: SeriesQuery) -> BoxFuture<'_, StoreResult<Vec<SeriesPoint>>> {
        Box::pin(async move { usage::usage_series(&*self.client().await?, &query).await })
    }

    fn reset_usage(&self, at_ms: u64) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.unit(Write::ResetUsage(at_ms)))
    }

    fn thread_usage(
        &self,
        thread: &str,
        since_ms: u64,
    ) -> BoxFuture<'_, StoreResult<(u64, weft_engine::UsageTotals)>> {
        let thread = thread.to_owned();
        Box::pin(
            async move { usage::thread_usage(&*self.client().await?, &thread, since_ms).await },
        )
    }

    fn prune(&self, before_ms: u64) -> BoxFuture<'_, StoreResult<PruneReport>> {
        Box::pin(async move {
            match self.write(Write::Prune(before_ms)).await? {
                Done::Pruned(report) => Ok(report),
                other => Err(StoreError::Backend(format!(
                    "the store's writer answered a prune with {other:?}"
                ))),
            }
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn claim_run(&self, run: &str, host: &str, ttl_ms: u64) -> BoxFuture<'_, StoreResult<Lease>> {
        let write = Write::ClaimRun {
            run: run.to_owned(),
            host: host.to_owned(),
            ttl_ms,
        };
        Box::pin(async move {
            match self.write(write).await? {
                Done::Lease(lease) => Ok(lease),
                other => Err(StoreError::Backend(format!(
                    "the store's writer answered a claim with {other:?}"
                ))),
            }
        })
    }

    fn claim_expired(
        &self,
        host: &str,
        ttl_ms: u64,
        limit: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<(Lease, UnfinishedRun)>>> {
        let host = host.to_owned();
        Box::pin(async move {
            let mut client = self.client().await?;
            leases::claim_expired(&mut client, &host, ttl_ms, limit).await
        })
    }

    fn renew_lease(&self, lease: &Lease, ttl_ms: u64) -> BoxFuture<'_, StoreResult<Lease>> {
        let lease = lease.clone();
        Box::pin(async move { leases::renew(&*self.client().await?, &lease, ttl_ms).await })
    }

    fn release_lease(&self, lease: &Lease) -> BoxFuture<'_, StoreResult<()>> {
        let lease = lease.clone();
        Box::pin(async move {
            self.write(Write::ReleaseLease(lease)).await?;
            Ok(())
        })
    }

    fn heartbeat(&self, beat: &HostBeat, live_after_ms: u64) -> BoxFuture<'_, StoreResult<()>> {
        let beat = beat.clone();
        Box::pin(
            async move { cluster::heartbeat(&*self.client().await?, &beat, live_after_ms).await },
        )
    }

    fn put_setting(&self, key: &str, value: &str) -> BoxFuture<'_, StoreResult<()>> {
        let (key, value) = (key.to_owned(), value.to_owned());
        Box::pin(async move { cluster::put_setting(&*self.client().await?, &key, &value).await })
    }

    fn settings(&self, prefix: &str) -> BoxFuture<'_, StoreResult<Vec<(String, String)>>> {
        let prefix = prefix.to_owned();
        Box::pin(async move { cluster::settings(&*self.client().await?, &prefix).await })
    }

    fn hosts(&self, seen_after_ms: u64) -> BoxFuture<'_, StoreResult<Vec<HostBeat>>> {
        Box::pin(async move { cluster::hosts(&*self.client().await?, seen_after_ms).await })
    }

    fn hold_money(&self, hold: &MoneyHold) -> BoxFuture<'_, StoreResult<MoneyHeld>> {
        let hold = hold.clone();
        Box::pin(async move { cluster::hold_money(&mut *self.client().await?, &hold).await })
    }

    fn settle_money(&self, settle: &MoneySettle) -> BoxFuture<'_, StoreResult<MoneySettled>> {
        let settle = settle.clone();
        Box::pin(async move { cluster::settle_money(&mut *self.client().await?, &settle).await })
    }
}
