//! A run's life outside its frames, in the writer's transaction: its
//! start (and a fork's), its end, and the message and memory rows they
//! and frames write.

use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;
use weft_engine::StoreError;
use weft_engine::store::{ForkStart, RunEnd, RunStart};
use weft_runtime::Message;
use weft_runtime::capabilities::memory::MemoryWrite;

use super::error::{Fail, PgResult};
use super::pipeline::{Param, Part, Pipeline, Statements, params};
use crate::codec::int;

const UPSERT_THREAD: &str = "INSERT INTO threads (id, project, graph_version, status, runs, frames, forked_from, forked_at, created_ms, updated_ms, budget_limit)
     VALUES ($1, $2, $3, 'running', 1, $4, $5, $6, $7, $7, $8)
     ON CONFLICT (id) DO UPDATE SET graph_version = excluded.graph_version,
         status = 'running', runs = threads.runs + 1, updated_ms = excluded.updated_ms,
         budget_limit = coalesce(excluded.budget_limit, threads.budget_limit)
     WHERE threads.status NOT IN ('running', 'waiting', 'budget_exhausted', 'interrupted')";
/// Why a thread refused a run: its status and its run in flight, if any.
const THREAD_STATE: &str = "SELECT t.status, coalesce((SELECT r.id FROM runs r
         WHERE r.thread = t.id AND r.status IN ('running', 'waiting', 'budget_exhausted', 'interrupted')
         ORDER BY r.started_ms DESC LIMIT 1), '')
     FROM threads t WHERE t.id = $1";
const INSERT_RUN: &str = "INSERT INTO runs (id, thread, graph_version, status, frames, started_ms)
     VALUES ($1, $2, $3, $4, 0, $5)";
const INSERT_MESSAGE: &str = "INSERT INTO messages (id, thread, run, to_node, from_node, kind, body, sent_seq, delivered_seq)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const UPSERT_MEMORY: &str = "INSERT INTO memory (thread, node, key, value) VALUES ($1, $2, $3, $4)
     ON CONFLICT (thread, node, key) DO UPDATE SET value = excluded.value";
const DELETE_MEMORY: &str = "DELETE FROM memory WHERE thread = $1 AND node = $2 AND key = $3";

/// Creates the thread if new (else points it at the run), the run, and
/// its inbound messages, in one pipeline. `fork` names the thread and
/// frame a new thread was forked from.
pub(super) async fn begin_run(
    c: &Transaction<'_>,
    statements: &mut Statements,
    start: &RunStart,
    fork: Option<(&str, u64)>,
) -> PgResult<()> {
    let pipeline = plan_begin(start, fork);
    let answers = pipeline.run(c, statements).await?;
    check_begin(start, answers.all())
}

/// The thread's upsert comes first in a run start's pipeline, then what
/// the thread is doing (read after the upsert, which locks its row).
const THREAD: usize = 0;
const STATE: usize = 1;

/// A run start's statements (see [`begin_run`]).
pub(super) fn plan_begin(start: &RunStart, fork: Option<(&str, u64)>) -> Pipeline {
    let now = int(start.at_ms);
    let (parent, at) = fork.unzip();
    let frames = int(at.map_or(0, |a| a + 1));
    let mut p = Pipeline::default();
    p.push(
        UPSERT_THREAD,
        params![
            start.thread.clone(),
            start.project.clone(),
            start.graph_version.clone(),
            frames,
            parent.map(str::to_owned),
            at.map(int),
            now,
            start.budget_limit.map(int),
        ],
    );
    p.query(THREAD_STATE, params![start.thread.clone()]);
    push_run(&mut p, start, "running");
    p
}

/// Checks a run start's answers.
///
/// A thread with a run in flight (on another host: this host checks its
/// own first) refuses the start with [`StoreError::ThreadBusy`], whatever
/// else failed after (the run's id may be taken by then).
pub(super) fn check_begin(start: &RunStart, answers: Part<'_>) -> PgResult<()> {
    if answers.count(THREAD) == 0
        && let Ok(rows) = answers.rows(STATE)
        && let Some(row) = rows.first()
    {
        let (status, run): (String, String) = (row.get(0), row.get(1));
        if status == "interrupted" {
            return Err(StoreError::Conflict(format!(
                "thread `{}` has a run waiting for an answer to its interrupt: answer it, or kill the run, first",
                start.thread
            ))
            .into());
        }
        return Err(StoreError::ThreadBusy {
            thread: start.thread.clone(),
            run,
        }
        .into());
    }
    answers.first_failure()?;
    if answers.count(THREAD) == 0 {
        return Err(
            StoreError::Conflict(format!("thread `{}` refused the run", start.thread)).into(),
        );
    }
    Ok(())
}

/// The run, with `status`, and its inbound messages.
fn push_run(p: &mut Pipeline, start: &RunStart, status: &str) {
    p.push_unique(
        INSERT_RUN,
        params![
            start.run.clone(),
            start.thread.clone(),
            start.graph_version.clone(),
            status.to_owned(),
            int(start.at_ms),
        ],
        format!("run `{}` exists already", start.run),
    );
    for (to, m) in &start.inbound {
        push_message(p, &start.thread, &start.run, to, m, None, None);
    }
}

pub(super) async fn fork(
    c: &Transaction<'_>,
    statements: &mut Statements,
    f: &ForkStart,
) -> PgResult<()> {
    let s = &f.start;
    begin_run(c, statements, s, Some((&f.from_thread, f.from_seq))).await?;
    if !f.has_run {
        c.execute(
            "UPDATE runs SET status = 'completed', ended_ms = started_ms WHERE id = $1",
            &[&s.run],
        )
        .await?;
        c.execute(
            "UPDATE threads SET status = 'completed' WHERE id = $1",
            &[&s.thread],
        )
        .await?;
    }
    write_memory(c, statements, &f.memory).await
}

pub(super) async fn end_run(
    c: &Transaction<'_>,
    statements: &mut Statements,
    e: &RunEnd,
) -> PgResult<()> {
    let status = e.status.as_str();
    let n = c
        .execute(
            "UPDATE runs SET status = $2, ended_ms = $3
             WHERE id = $1 AND status IN ('running', 'interrupted')",
            &[&e.run, &status, &int(e.at_ms)],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("run `{}` is not running", e.run)).into());
    }
    super::interrupts::cancel(c, &e.run, e.at_ms).await?;
    c.execute(
        "UPDATE threads SET status = $2, updated_ms = $3 WHERE id = $1",
        &[&e.thread, &status, &int(e.at_ms)],
    )
    .await?;
    write_memory(c, statements, &e.restore).await
}

pub(super) async fn queue_run(
    c: &Transaction<'_>,
    statements: &mut Statements,
    start: &RunStart,
) -> PgResult<()> {
    let now = int(start.at_ms);
    let counted = c
        .execute(
            "UPDATE threads SET runs = runs + 1, updated_ms = $2 WHERE id = $1",
            &[&start.thread, &now],
        )
        .await?;
    if counted == 0 {
        return Err(StoreError::NotFound(format!(
            "no thread `{}` to queue a run on",
            start.thread
        ))
        .into());
    }
    let mut p = Pipeline::default();
    push_run(&mut p, start, "queued");
    p.run(c, statements).await?.all().first_failure()
}

pub(super) async fn start_queued(
    c: &Transaction<'_>,
    thread: &str,
    run: &str,
    at_ms: u64,
) -> PgResult<()> {
    // The thread's row first: locked, and only if no run is in flight on
    // it (another host may have started one, or this queued run).
    let n = c
        .execute(
            "UPDATE threads SET status = 'running', updated_ms = $2,
                 graph_version = (SELECT graph_version FROM runs WHERE id = $3)
             WHERE id = $1
               AND status NOT IN ('running', 'waiting', 'budget_exhausted', 'interrupted')",
            &[&thread, &int(at_ms), &run],
        )
        .await?;
    if n == 0 {
        let busy = c
            .query_opt(THREAD_STATE, &[&thread])
            .await?
            .map(|r| r.get::<_, String>(1))
            .unwrap_or_default();
        return Err(StoreError::ThreadBusy {
            thread: thread.to_owned(),
            run: busy,
        }
        .into());
    }
    let n = c
        .execute(
            "UPDATE runs SET status = 'running', started_ms = $3
             WHERE id = $1 AND thread = $2 AND status = 'queued'",
            &[&run, &thread, &int(at_ms)],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("run `{run}` is not queued")).into());
    }
    Ok(())
}

/// Adds the message `m` to `to` to `p`.
pub(super) fn push_message(
    p: &mut Pipeline,
    thread: &str,
    run: &str,
    to: &str,
    m: &Message,
    sent: Option<u64>,
    delivered: Option<u64>,
) {
    p.push_unique(
        INSERT_MESSAGE,
        message_params(thread, run, to, m, sent, delivered),
        format!("message `{}` is stored already", m.id),
    );
}

fn message_params(
    thread: &str,
    run: &str,
    to: &str,
    m: &Message,
    sent: Option<u64>,
    delivered: Option<u64>,
) -> Vec<Param> {
    params![
        m.id.clone(),
        thread.to_owned(),
        run.to_owned(),
        to.to_owned(),
        m.from.clone(),
        m.kind.clone(),
        m.body.clone(),
        sent.map(int),
        delivered.map(int),
    ]
}

/// Stores the message `m` to `to` now (outside a pipeline).
pub(super) async fn insert_message(
    c: &Transaction<'_>,
    thread: &str,
    run: &str,
    to: &str,
    m: &Message,
    sent: Option<u64>,
    delivered: Option<u64>,
) -> PgResult<()> {
    let params = message_params(thread, run, to, m, sent, delivered);
    let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
    c.execute(INSERT_MESSAGE, &params)
        .await
        .map_err(|e| match Fail::from(e) {
            Fail::Store(StoreError::Conflict(_)) => Fail::Store(StoreError::Conflict(format!(
                "message `{}` is stored already",
                m.id
            ))),
            other => other,
        })?;
    Ok(())
}

/// Adds memory writes (`value: None` deletes) to `p`, in order.
pub(super) fn push_memory(p: &mut Pipeline, writes: &[MemoryWrite]) {
    for w in writes {
        let node = w.node.clone().unwrap_or_default();
        match &w.value {
            Some(v) => p.push(
                UPSERT_MEMORY,
                params![w.thread.clone(), node, w.key.clone(), v.clone()],
            ),
            None => p.push(
                DELETE_MEMORY,
                params![w.thread.clone(), node, w.key.clone()],
            ),
        };
    }
}

/// Applies memory writes now, in one pipeline.
pub(super) async fn write_memory(
    c: &Transaction<'_>,
    statements: &mut Statements,
    writes: &[MemoryWrite],
) -> PgResult<()> {
    let mut p = Pipeline::default();
    push_memory(&mut p, writes);
    p.run(c, statements).await?.all().first_failure()
}
