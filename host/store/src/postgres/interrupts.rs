//! Interrupts on PostgreSQL: inserted with the frame that raised them (in
//! the writer's transaction), ended by an answer on a pooled connection
//! (the interrupt's row locked, so that of two hosts answering at once
//! exactly one counts), listed per run, and found when due.

use tokio_postgres::{Client, Row, Transaction};
use weft_engine::StoreError;
use weft_engine::store::{
    FrameCommit, InterruptStatus, ResolveInterrupt, StoreResult, StoredInterrupt, StoredRun,
    UnfinishedRun,
};

use super::error::{PgResult, ReadResult};
use super::pipeline::{Pipeline, params};
use super::reads;
use super::runs::insert_message;
use crate::codec::{int, json, parse, unsigned as u};

const COLUMNS: &str = "id, thread, run, node, frame, question, answer_schema, created_ms, deadline_ms, status, answer, resolved_ms";

/// Adds the interrupts a frame raised, as pending, to `p`.
pub(super) fn push(p: &mut Pipeline, f: &FrameCommit) -> PgResult<()> {
    for i in &f.interrupts {
        p.push(
            "INSERT INTO interrupts (id, thread, run, node, frame, question, answer_schema, created_ms, deadline_ms, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')",
            params![
                i.id.clone(),
                i.thread.clone(),
                i.run.clone(),
                i.node.clone(),
                i64::from(i.frame),
                i.question.clone(),
                json(&i.answer_schema)?,
                int(i.created_ms),
                i.deadline_ms.map(int),
            ],
        );
    }
    Ok(())
}

fn decode(r: &Row) -> StoreResult<StoredInterrupt> {
    let id: String = r.get(0);
    let status: String = r.get(9);
    let status = InterruptStatus::parse(&status).ok_or_else(|| {
        StoreError::Backend(format!("interrupt `{id}` has an unknown status `{status}`"))
    })?;
    let schema: String = r.get(6);
    let answer: Option<String> = r.get(10);
    Ok(StoredInterrupt {
        thread: r.get(1),
        run: r.get(2),
        node: r.get(3),
        frame: u32::try_from(r.get::<_, i64>(4)).unwrap_or(u32::MAX),
        question: r.get(5),
        answer_schema: parse(&schema, "an interrupt's answer schema")?,
        created_ms: u(r.get(7)),
        deadline_ms: r.get::<_, Option<i64>>(8).map(u),
        status,
        answer: answer
            .map(|a| parse(&a, "an interrupt's answer"))
            .transpose()?,
        resolved_ms: r.get::<_, Option<i64>>(11).map(u),
        id,
    })
}

/// A run's interrupts, oldest first.
pub(super) async fn of_run(c: &Client, run: &str) -> StoreResult<Vec<StoredInterrupt>> {
    let rows = c
        .query(
            &format!("SELECT {COLUMNS} FROM interrupts WHERE run = $1 ORDER BY frame, id"),
            &[&run],
        )
        .await
        .read()?;
    rows.iter().map(decode).collect()
}

/// Pending interrupts due at `now_ms`, earliest first.
pub(super) async fn due(c: &Client, now_ms: u64) -> StoreResult<Vec<StoredInterrupt>> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM interrupts WHERE status = 'pending' AND deadline_ms <= $1
                 ORDER BY deadline_ms, id LIMIT 100"
            ),
            &[&int(now_ms)],
        )
        .await
        .read()?;
    rows.iter().map(decode).collect()
}

/// Runs waiting on interrupts, oldest first.
pub(super) async fn interrupted_runs(c: &Client) -> StoreResult<Vec<StoredRun>> {
    let rows = c
        .query(
            "SELECT id, thread, graph_version, status, frames, reply, started_ms, ended_ms
             FROM runs WHERE status = 'interrupted' ORDER BY started_ms, pos",
            &[],
        )
        .await
        .read()?;
    Ok(rows
        .iter()
        .map(|r| StoredRun {
            id: r.get(0),
            thread: r.get(1),
            graph_version: r.get(2),
            status: r.get(3),
            frames: u32::try_from(r.get::<_, i64>(4)).unwrap_or(u32::MAX),
            reply: r.get(5),
            started_ms: u(r.get(6)),
            ended_ms: r.get::<_, Option<i64>>(7).map(u),
        })
        .collect())
}

/// Ends a pending interrupt; see `Store::resolve_interrupt`.
pub(super) async fn resolve(
    c: &mut Client,
    r: &ResolveInterrupt,
) -> StoreResult<Option<UnfinishedRun>> {
    let tx = c.transaction().await.read()?;
    // The run's row first, then the interrupt's: every answer to the run
    // takes the locks in this order.
    let row = tx
        .query_opt(
            "SELECT r.status, i.status, i.node FROM runs r JOIN interrupts i ON i.run = r.id
             WHERE r.id = $1 AND i.id = $2
             FOR UPDATE OF r, i",
            &[&r.run, &r.interrupt],
        )
        .await
        .read()?;
    let Some(row) = row else {
        return Err(StoreError::Conflict(format!(
            "run `{}` has no interrupt `{}`",
            r.run, r.interrupt
        )));
    };
    let (run_status, status, node): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    if status != "pending" || run_status != "interrupted" {
        return Err(StoreError::Conflict(format!(
            "interrupt `{}` is {status} and its run {run_status}",
            r.interrupt
        )));
    }
    let answer = r.answer.as_ref().map(json).transpose()?;
    tx.execute(
        "UPDATE interrupts SET status = $2, answer = $3, resolved_ms = $4 WHERE id = $1",
        &[&r.interrupt, &r.status.as_str(), &answer, &int(r.at_ms)],
    )
    .await
    .read()?;
    insert_message(&tx, &r.thread, &r.run, &node, &r.notice, None, None)
        .await
        .map_err(super::error::Fail::into_store)?;
    let waiting: i64 = tx
        .query_one(
            "SELECT count(*) FROM interrupts WHERE run = $1 AND status = 'pending'",
            &[&r.run],
        )
        .await
        .read()?
        .get(0);
    if waiting == 0 {
        tx.execute(
            "UPDATE runs SET status = 'running' WHERE id = $1",
            &[&r.run],
        )
        .await
        .read()?;
        tx.execute(
            "UPDATE threads SET status = 'running', updated_ms = $2 WHERE id = $1",
            &[&r.thread, &int(r.at_ms)],
        )
        .await
        .read()?;
    }
    tx.commit().await.read()?;
    if waiting > 0 {
        return Ok(None);
    }
    Ok(reads::unfinished(c, Some(&r.run)).await?.into_iter().next())
}

/// Cancels a killed run's pending interrupts.
pub(super) async fn cancel(c: &Transaction<'_>, run: &str, at_ms: u64) -> PgResult<()> {
    c.execute(
        "UPDATE interrupts SET status = 'cancelled', resolved_ms = $2 WHERE run = $1 AND status = 'pending'",
        &[&run, &int(at_ms)],
    )
    .await?;
    Ok(())
}
