//! A run's life outside its frames, in the writer's transaction: its
//! start (and a fork's), its end, and the message and memory rows they
//! and frames write.

use tokio_postgres::Transaction;
use weft_engine::StoreError;
use weft_engine::store::{ForkStart, RunEnd, RunStart};
use weft_runtime::Message;
use weft_runtime::capabilities::memory::MemoryWrite;

use super::error::{Fail, PgResult};
use crate::codec::int;

/// Creates the thread if new (else points it at the run), the run, and
/// its inbound messages. `fork` names the thread and frame a new thread
/// was forked from.
pub(super) async fn begin_run(
    c: &Transaction<'_>,
    start: &RunStart,
    fork: Option<(&str, u64)>,
) -> PgResult<()> {
    let now = int(start.at_ms);
    let (parent, at) = fork.unzip();
    let frames = int(at.map_or(0, |a| a + 1));
    let updated = c.execute(
        "INSERT INTO threads (id, project, graph_version, status, runs, frames, forked_from, forked_at, created_ms, updated_ms, budget_limit)
         VALUES ($1, $2, $3, 'running', 1, $4, $5, $6, $7, $7, $8)
         ON CONFLICT (id) DO UPDATE SET graph_version = excluded.graph_version,
             status = 'running', runs = threads.runs + 1, updated_ms = excluded.updated_ms,
             budget_limit = coalesce(excluded.budget_limit, threads.budget_limit)
         WHERE threads.status != 'interrupted'",
        &[
            &start.thread,
            &start.project,
            &start.graph_version,
            &frames,
            &parent,
            &at.map(int),
            &now,
            &start.budget_limit.map(int),
        ],
    )
    .await?;
    if updated == 0 {
        return Err(StoreError::Conflict(format!(
            "thread `{}` has a run waiting for an answer to its interrupt: answer it, or kill the run, first",
            start.thread
        ))
        .into());
    }
    insert_run(c, start, "running").await
}

/// The run, with `status`, and its inbound messages.
async fn insert_run(c: &Transaction<'_>, start: &RunStart, status: &str) -> PgResult<()> {
    c.execute(
        "INSERT INTO runs (id, thread, graph_version, status, frames, started_ms)
         VALUES ($1, $2, $3, $4, 0, $5)",
        &[
            &start.run,
            &start.thread,
            &start.graph_version,
            &status,
            &int(start.at_ms),
        ],
    )
    .await
    .map_err(|e| match Fail::from(e) {
        Fail::Store(StoreError::Conflict(_)) => Fail::Store(StoreError::Conflict(format!(
            "run `{}` exists already",
            start.run
        ))),
        other => other,
    })?;
    for (to, m) in &start.inbound {
        insert_message(c, &start.thread, &start.run, to, m, None, None).await?;
    }
    Ok(())
}

pub(super) async fn fork(c: &Transaction<'_>, f: &ForkStart) -> PgResult<()> {
    let s = &f.start;
    begin_run(c, s, Some((&f.from_thread, f.from_seq))).await?;
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
    write_memory(c, &f.memory).await
}

pub(super) async fn end_run(c: &Transaction<'_>, e: &RunEnd) -> PgResult<()> {
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
    write_memory(c, &e.restore).await
}

pub(super) async fn queue_run(c: &Transaction<'_>, start: &RunStart) -> PgResult<()> {
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
    insert_run(c, start, "queued").await
}

pub(super) async fn start_queued(
    c: &Transaction<'_>,
    thread: &str,
    run: &str,
    at_ms: u64,
) -> PgResult<()> {
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
    c.execute(
        "UPDATE threads SET status = 'running', updated_ms = $2,
             graph_version = (SELECT graph_version FROM runs WHERE id = $3)
         WHERE id = $1",
        &[&thread, &int(at_ms), &run],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_message(
    c: &Transaction<'_>,
    thread: &str,
    run: &str,
    to: &str,
    m: &Message,
    sent: Option<u64>,
    delivered: Option<u64>,
) -> PgResult<()> {
    c.execute(
        "INSERT INTO messages (id, thread, run, to_node, from_node, kind, body, sent_seq, delivered_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &m.id,
            &thread,
            &run,
            &to,
            &m.from,
            &m.kind,
            &m.body,
            &sent.map(int),
            &delivered.map(int),
        ],
    )
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

pub(super) async fn write_memory(c: &Transaction<'_>, writes: &[MemoryWrite]) -> PgResult<()> {
    for w in writes {
        let node = w.node.as_deref().unwrap_or("");
        match &w.value {
            Some(v) => {
                c.execute(
                    "INSERT INTO memory (thread, node, key, value) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (thread, node, key) DO UPDATE SET value = excluded.value",
                    &[&w.thread, &node, &w.key, v],
                )
                .await?
            }
            None => {
                c.execute(
                    "DELETE FROM memory WHERE thread = $1 AND node = $2 AND key = $3",
                    &[&w.thread, &node, &w.key],
                )
                .await?
            }
        };
    }
    Ok(())
}
