//! The writer task: every write is a job; the task takes every job that
//! is waiting, runs each in its own savepoint inside one transaction and
//! commits once, so that many frames share one round of WAL flushing and a
//! job that fails rolls back alone.
//!
//! When the connection is lost (PostgreSQL restarting, a network cut) the
//! task reconnects and runs the whole batch again, for as long as
//! [`Options::retry_for`](super::Options::retry_for) allows. Each batch
//! records its number in `writer_batches` inside its transaction, so that
//! after a connection lost during `COMMIT` the task learns whether the
//! batch committed and never applies it twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Transaction};
use weft_engine::MoneyBudget;
use weft_engine::StoreError;
use weft_engine::store::{
    ForkStart, FrameCommit, GraphVersion, Lease, NodePause, PluginBlob, PruneReport, RunEnd,
    RunStart, StoreResult, StoredInstance,
};

use super::error::{Fail, PgResult};
use super::pipeline::{Pipeline, Statements};
use super::{commit, connect, leases, operator, prune, runs};
use crate::codec::now_ms;
use crate::faults::{Armed, Faults};

/// A unit of work for the writer.
#[derive(Debug, Clone)]
pub(super) enum Write {
    PutGraph(GraphVersion),
    PutPlugin(PluginBlob),
    SetThreadBudget(String, u64),
    SetProjectBudget(String, Option<MoneyBudget>),
    PutInstance(StoredInstance),
    SetNodePaused(NodePause, bool),
    BeginRun(RunStart),
    CommitFrame(Arc<FrameCommit>),
    EndRun(RunEnd),
    Fork(ForkStart),
    QueueRun(RunStart),
    StartQueued {
        thread: String,
        run: String,
        at_ms: u64,
    },
    ResetUsage(u64),
    Prune(u64),
    ClaimRun {
        run: String,
        host: String,
        ttl_ms: u64,
    },
    ReleaseLease(Lease),
}

/// What a write returns.
#[derive(Debug, Clone)]
pub(super) enum Done {
    Unit,
    Pruned(PruneReport),
    Lease(Lease),
}

/// A job with the channel its result goes back on.
pub(super) struct Job {
    pub(super) write: Write,
    pub(super) reply: oneshot::Sender<StoreResult<Done>>,
}

/// What the writer task needs.
pub(super) struct Writer {
    pub(super) config: tokio_postgres::Config,
    pub(super) store: String,
    pub(super) id: String,
    pub(super) max_batch: usize,
    pub(super) retry_for: Duration,
    pub(super) faults: Arc<Faults>,
}

impl Writer {
    /// Runs until every sender is dropped and the queue is drained.
    pub(super) async fn run(self, mut client: Option<Client>, mut rx: mpsc::Receiver<Job>) {
        let mut batch_no: i64 = 0;
        // Prepared on `client`; started afresh with each new connection.
        let mut statements = Statements::default();
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch_no += 1;
            // The fault injected into each frame (tests), chosen once
            // however often the batch is tried.
            let faults: Vec<Armed> = batch
                .iter()
                .map(|job| match job.write {
                    Write::CommitFrame(_) => self.faults.arm(),
                    _ => Armed::none(),
                })
                .collect();
            let results = self
                .commit_with_retries(&mut client, &mut statements, &batch, &faults, batch_no)
                .await;
            match results {
                Ok(results) => {
                    for (job, result) in batch.into_iter().zip(results) {
                        let _ = job.reply.send(result);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, jobs = batch.len(), "store commit failed");
                    for job in batch {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                }
            }
        }
        tracing::debug!("store writer stopped");
    }

    /// Commits `batch`, reconnecting and retrying while the connection is
    /// lost; each job's result, or the error that failed the whole batch.
    async fn commit_with_retries(
        &self,
        client: &mut Option<Client>,
        statements: &mut Statements,
        batch: &[Job],
        faults: &[Armed],
        batch_no: i64,
    ) -> StoreResult<Vec<StoreResult<Done>>> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        // The jobs' results of an attempt whose COMMIT was sent.
        let mut sent: Option<Vec<StoreResult<Done>>> = None;
        loop {
            if client.as_ref().is_none_or(Client::is_closed) {
                let attempt = async {
                    let c = connect(&self.config, &self.store)
                        .await
                        .map_err(Fail::Store)?;
                    let done = committed(&c, &self.id, batch_no).await?;
                    PgResult::Ok((c, done))
                };
                match attempt.await {
                    Ok((c, done)) => {
                        *client = Some(c);
                        *statements = Statements::default();
                        if let Some(results) = sent.take().filter(|_| done) {
                            tracing::warn!(store = %self.store, "a commit interrupted by a lost connection had committed");
                            return Ok(results);
                        }
                    }
                    Err(e) => {
                        let last = e.into_store().to_string();
                        if started.elapsed() > self.retry_for {
                            return Err(self.gave_up(&last));
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
            let Some(c) = client.as_mut() else { continue };
            sent = None;
            match self
                .commit_batch(c, statements, batch, faults, batch_no, &mut sent)
                .await
            {
                Ok(results) => return Ok(results),
                Err(Fail::Store(e)) => return Err(e),
                Err(Fail::Lost(m)) => {
                    tracing::warn!(store = %self.store, error = %m, "store connection lost; retrying the commit");
                    *client = None;
                    if started.elapsed() > self.retry_for {
                        return Err(self.gave_up(&m));
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    fn gave_up(&self, last: &str) -> StoreError {
        StoreError::Backend(format!(
            "{}: cannot commit for {:?}, giving up: {last}",
            self.store, self.retry_for
        ))
    }

    /// One attempt: the whole batch in one pipeline if it can go that
    /// way, else every job in its savepoint; then the batch's mark and
    /// COMMIT. `sent` holds the results once COMMIT is sent.
    async fn commit_batch(
        &self,
        client: &mut Client,
        statements: &mut Statements,
        batch: &[Job],
        faults: &[Armed],
        batch_no: i64,
        sent: &mut Option<Vec<StoreResult<Done>>>,
    ) -> PgResult<Vec<StoreResult<Done>>> {
        if let Some(results) = self
            .commit_pipelined(client, statements, batch, faults, batch_no, sent)
            .await?
        {
            return Ok(results);
        }
        let mut tx = client.transaction().await?;
        let mut results = Vec::with_capacity(batch.len());
        for (job, fault) in batch.iter().zip(faults) {
            let sp = tx.savepoint("job").await?;
            match apply(&sp, statements, &job.write, fault).await {
                Ok(done) => {
                    sp.commit().await?;
                    results.push(Ok(done));
                }
                Err(Fail::Lost(m)) => return Err(Fail::Lost(m)),
                Err(Fail::Store(e)) => {
                    sp.rollback().await?;
                    results.push(Err(e));
                }
            }
        }
        self.finish(tx, batch_no, results, sent).await
    }

    /// The fast way: when every job is a frame or a run start, all their
    /// statements go in one pipeline, without savepoints, and are checked
    /// when the answers are in. `None` when a job cannot go this way or
    /// failed (a conflict, fencing, a message that was not pending, a
    /// fault): the transaction is rolled back and the batch goes job by
    /// job, where a job that fails fails alone.
    async fn commit_pipelined(
        &self,
        client: &mut Client,
        statements: &mut Statements,
        batch: &[Job],
        faults: &[Armed],
        batch_no: i64,
        sent: &mut Option<Vec<StoreResult<Done>>>,
    ) -> PgResult<Option<Vec<StoreResult<Done>>>> {
        enum Check<'a> {
            Frame(&'a FrameCommit, commit::FrameChecks),
            Begin(&'a RunStart),
            Claim(leases::Claim),
            Release,
        }
        if batch.len() < 2 || faults.iter().any(Armed::is_armed) {
            return Ok(None);
        }
        let mut all = Pipeline::default();
        let mut checks = Vec::with_capacity(batch.len());
        for job in batch {
            let (pipeline, check) = match &job.write {
                Write::CommitFrame(f) => match commit::plan_frame(f) {
                    Ok((pipeline, c)) => (pipeline, Check::Frame(f, c)),
                    Err(_) => return Ok(None),
                },
                Write::BeginRun(s) => (runs::plan_begin(s, None), Check::Begin(s)),
                Write::ClaimRun { run, host, ttl_ms } => {
                    let (pipeline, claim) = leases::plan_claim(run, host, *ttl_ms);
                    (pipeline, Check::Claim(claim))
                }
                Write::ReleaseLease(lease) => (leases::plan_release(lease), Check::Release),
                _ => return Ok(None),
            };
            let len = pipeline.len();
            checks.push((all.append(pipeline), len, check));
        }
        let tx = client.transaction().await?;
        let answers = all.run(&tx, statements).await?;
        let mut results = Vec::with_capacity(checks.len());
        for (base, len, check) in checks {
            let part = answers.part(base, len);
            let passed = match check {
                Check::Frame(f, c) => commit::check_frame(f, &c, part)
                    .map(|not_pending| not_pending.is_empty().then_some(Done::Unit)),
                Check::Begin(s) => runs::check_begin(s, part).map(|()| Some(Done::Unit)),
                Check::Claim(claim) => {
                    leases::check_claim(&claim, part).map(|l| Some(Done::Lease(l)))
                }
                Check::Release => part.first_failure().map(|()| Some(Done::Unit)),
            };
            match passed {
                Ok(Some(done)) => results.push(Ok(done)),
                Ok(None) | Err(Fail::Store(_)) => {
                    tx.rollback().await?;
                    return Ok(None);
                }
                Err(Fail::Lost(m)) => return Err(Fail::Lost(m)),
            }
        }
        self.finish(tx, batch_no, results, sent).await.map(Some)
    }

    /// Writes the batch's mark and commits.
    async fn finish(
        &self,
        tx: Transaction<'_>,
        batch_no: i64,
        results: Vec<StoreResult<Done>>,
        sent: &mut Option<Vec<StoreResult<Done>>>,
    ) -> PgResult<Vec<StoreResult<Done>>> {
        tx.execute(
            "INSERT INTO writer_batches (writer, batch, at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (writer) DO UPDATE SET batch = excluded.batch, at_ms = excluded.at_ms",
            &[&self.id, &batch_no, &now_ms()],
        )
        .await?;
        *sent = Some(results.clone());
        tx.commit().await?;
        Ok(results)
    }
}

/// Whether this writer's batch `batch_no` is the last it committed.
async fn committed(client: &Client, writer: &str, batch_no: i64) -> PgResult<bool> {
    let row = client
        .query_opt(
            "SELECT batch FROM writer_batches WHERE writer = $1",
            &[&writer],
        )
        .await?;
    Ok(row.is_some_and(|r| r.get::<_, i64>(0) == batch_no))
}

/// Runs one write in the batch's transaction.
async fn apply(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    write: &Write,
    fault: &Armed,
) -> PgResult<Done> {
    match write {
        Write::PutGraph(v) => operator::put_graph(tx, v).await?,
        Write::PutPlugin(p) => operator::put_plugin(tx, p).await?,
        Write::SetThreadBudget(t, limit) => operator::set_thread_budget(tx, t, *limit).await?,
        Write::SetProjectBudget(p, b) => operator::set_project_budget(tx, p, b.as_ref()).await?,
        Write::PutInstance(i) => operator::put_instance(tx, i).await?,
        Write::SetNodePaused(p, paused) => operator::set_node_paused(tx, p, *paused).await?,
        Write::BeginRun(s) => runs::begin_run(tx, statements, s, None).await?,
        Write::CommitFrame(f) => commit::commit_frame(tx, statements, f, fault).await?,
        Write::EndRun(e) => runs::end_run(tx, statements, e).await?,
        Write::Fork(f) => runs::fork(tx, statements, f).await?,
        Write::QueueRun(s) => runs::queue_run(tx, statements, s).await?,
        Write::StartQueued { thread, run, at_ms } => {
            runs::start_queued(tx, thread, run, *at_ms).await?;
        }
        Write::ResetUsage(at) => operator::reset_usage(tx, *at).await?,
        Write::Prune(before) => return Ok(Done::Pruned(prune::prune(tx, *before).await?)),
        Write::ClaimRun { run, host, ttl_ms } => {
            let (pipeline, claim) = leases::plan_claim(run, host, *ttl_ms);
            let answers = pipeline.run(tx, statements).await?;
            return Ok(Done::Lease(leases::check_claim(&claim, answers.all())?));
        }
        Write::ReleaseLease(lease) => {
            let answers = leases::plan_release(lease).run(tx, statements).await?;
            answers.all().first_failure()?;
        }
    }
    Ok(Done::Unit)
}
