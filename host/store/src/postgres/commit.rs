//! A frame's commit: the frame, its invocations and journals, the
//! messages delivered and sent, memory, usage, and the run's state, all
//! in the writer's transaction and sent in one pipeline (with the faults
//! of [`crate::FramePart`] injected in tests).

use tokio_postgres::Transaction;
use weft_engine::StoreError;
use weft_engine::store::FrameCommit;

use super::error::PgResult;
use super::pipeline::{Part, Pipeline, Statements, params};
use super::runs::{insert_message, push_memory, push_message};
use crate::codec::{encode_invocation, int, now_ms};
use crate::faults::{Armed, FramePart};

/// The run's state and its lease (if any), the run's row locked.
const RUN_FOR_UPDATE: &str = "SELECT r.status, r.frames, l.host, l.token
     FROM runs r LEFT JOIN leases l ON l.run = r.id
     WHERE r.id = $1 FOR UPDATE OF r";
const INSERT_FRAME: &str =
    "INSERT INTO frames (thread, seq, run, frame, graph_version, wall_time_ms, committed_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
const INSERT_INVOCATION: &str = "INSERT INTO invocations (thread, seq, idx, node, project, plugin_hash, fuel, duration_us, outcome, at_ms, record, inbox, output)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
const INSERT_JOURNAL: &str =
    "INSERT INTO journal (thread, seq, idx, entry, capability, op, request, response)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const DELIVER: &str = "UPDATE messages SET delivered_seq = $1
     WHERE id = $2 AND run = $3 AND delivered_seq IS NULL";
const INSERT_USAGE: &str =
    "INSERT INTO usage_events (project, thread, run, frame, node, model, provider, prompt_tokens,
         completion_tokens, estimated, latency_ms, cost, outcome, at_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
const UPDATE_RUN: &str = "UPDATE runs SET frames = $2, status = $3, reply = $4, ended_ms = $5, graph_version = $6 WHERE id = $1";
const UPDATE_THREAD: &str =
    "UPDATE threads SET frames = $2, status = $3, updated_ms = $4 WHERE id = $1";

/// What to check in a frame's answers (see [`plan_frame`]).
pub(super) struct FrameChecks {
    /// Per delivered message, its update's index.
    delivered: Vec<usize>,
}

/// The run's row, locked: it stays locked until the commit, so two
/// writers cannot both pass the check.
const RUN: usize = 0;

/// A frame's statements: the checks of the run's state and lease first,
/// then every write, to be sent together (one round trip). The writes
/// count only when the checks pass; else the job's savepoint (or the
/// batch's transaction) is rolled back.
pub(super) fn plan_frame(f: &FrameCommit) -> PgResult<(Pipeline, FrameChecks)> {
    let seq = int(f.seq);
    let now = now_ms();
    let mut p = Pipeline::default();
    // The run must be running and expecting exactly this frame.
    // Fencing: the frame's lease must still be the run's current one (a
    // claim locks the run's row too, so it cannot slip in between).
    p.query(RUN_FOR_UPDATE, params![f.run.clone()]);
    p.push_unique(
        INSERT_FRAME,
        params![
            f.thread.clone(),
            seq,
            f.run.clone(),
            i64::from(f.frame),
            f.graph_version.clone(),
            int(f.wall_time_ms),
            now,
        ],
        format!("thread `{}` has a frame {} already", f.thread, f.seq),
    );
    for (idx, inv) in f.invocations.iter().enumerate() {
        let r = &inv.record;
        let metering = f.metering.iter().find(|m| m.node == r.node);
        let encoded = encode_invocation(inv)?;
        let idx = idx as i64;
        p.push(
            INSERT_INVOCATION,
            params![
                f.thread.clone(),
                seq,
                idx,
                r.node.clone(),
                metering.map_or(String::new(), |m| m.project.clone()),
                r.plugin_hash.clone(),
                int(r.fuel_used),
                int(r.duration_us),
                r.error.as_ref().map_or("ok".to_owned(), |e| e.code.clone()),
                metering.map_or(now, |m| int(m.at_ms)),
                encoded.record,
                encoded.inbox,
                encoded.output,
            ],
        );
        for e in &r.journal {
            p.push(
                INSERT_JOURNAL,
                params![
                    f.thread.clone(),
                    seq,
                    idx,
                    i64::from(e.seq),
                    e.capability.to_string(),
                    e.op.clone(),
                    e.request.to_string(),
                    e.response.to_string(),
                ],
            );
        }
    }
    let delivered: Vec<usize> = f
        .delivered
        .iter()
        .map(|(_, m)| p.push(DELIVER, params![seq, m.id.clone(), f.run.clone()]))
        .collect();
    for (to, m) in &f.sent {
        push_message(&mut p, &f.thread, &f.run, to, m, Some(f.seq), None);
    }
    super::interrupts::push(&mut p, f)?;
    push_memory(&mut p, &f.memory);
    super::kv::push(&mut p, &f.kv, f.wall_time_ms);
    for u in &f.usage {
        p.push(
            INSERT_USAGE,
            params![
                u.project.clone(),
                u.thread.clone(),
                u.run.clone(),
                i64::from(u.frame),
                u.node.clone(),
                u.model.clone(),
                u.provider.clone(),
                int(u.prompt_tokens),
                int(u.completion_tokens),
                u.estimated,
                int(u.latency_ms),
                u.cost,
                u.outcome.clone(),
                int(u.at_ms),
            ],
        );
    }
    let status = f.status.as_str();
    let ended = f.status.is_final().then_some(now);
    p.push(
        UPDATE_RUN,
        params![
            f.run.clone(),
            i64::from(f.frame) + 1,
            status.to_owned(),
            f.reply.clone(),
            ended,
            f.graph_version.clone(),
        ],
    );
    p.push(
        UPDATE_THREAD,
        params![
            f.thread.clone(),
            seq + 1,
            status.to_owned(),
            int(f.wall_time_ms)
        ],
    );

    Ok((p, FrameChecks { delivered }))
}

/// Checks a frame's answers: the run's state and lease, then the writes.
/// The delivered messages (indexes into `f.delivered`) that were not
/// pending come back: each needs a closer look.
pub(super) fn check_frame(
    f: &FrameCommit,
    checks: &FrameChecks,
    answers: Part<'_>,
) -> PgResult<Vec<usize>> {
    let Some(row) = answers.rows(RUN)?.first() else {
        return Err(StoreError::Conflict(format!("no run `{}`", f.run)).into());
    };
    let (status, next): (String, i64) = (row.get(0), row.get(1));
    if status != "running" || next != i64::from(f.frame) {
        return Err(StoreError::Conflict(format!(
            "run `{}` is {status} at frame {next}; frame {} cannot be committed",
            f.run, f.frame
        ))
        .into());
    }
    if let Some(token) = f.fence {
        let current: Option<(String, i64)> = row.get::<_, Option<String>>(2).zip(row.get(3));
        if current.as_ref().map(|(_, t)| *t) != Some(int(token)) {
            return Err(StoreError::Fenced(format!(
                "run `{}`: frame {} was committed under lease token {token}, but {}",
                f.run,
                f.frame,
                current.map_or_else(
                    || "the run holds no lease".to_owned(),
                    |(host, t)| format!("host `{host}` holds it now with token {t}")
                )
            ))
            .into());
        }
    }
    answers.first_failure()?;
    Ok(checks
        .delivered
        .iter()
        .enumerate()
        .filter(|(_, at)| answers.count(**at) == 0)
        .map(|(i, _)| i)
        .collect())
}

/// Commits `f` in the job's savepoint, on its own: its pipeline, the
/// checks, a closer look at messages that were not pending, and the
/// fault armed for it (tests).
pub(super) async fn commit_frame(
    c: &Transaction<'_>,
    statements: &mut Statements,
    f: &FrameCommit,
    fault: &Armed,
) -> PgResult<()> {
    let (pipeline, checks) = plan_frame(f)?;
    let answers = pipeline.run(c, statements).await?;
    let not_pending = check_frame(f, &checks, answers.all())?;

    // A message not pending: an engine notice (budget warning) made for
    // this frame is stored now; anything else is a conflict.
    for i in not_pending {
        let (to, m) = &f.delivered[i];
        let exists = c
            .query_opt("SELECT 1 FROM messages WHERE id = $1", &[&m.id])
            .await?
            .is_some();
        if m.from == weft_engine::SYSTEM_SENDER && !exists {
            insert_message(c, &f.thread, &f.run, to, m, Some(f.seq), Some(f.seq)).await?;
        } else {
            return Err(StoreError::Conflict(format!(
                "message `{}` is not pending for run `{}`: it was delivered before or never stored",
                m.id, f.run
            ))
            .into());
        }
    }
    check_fault(fault)
}

/// Every part is written; a fault injected after any of them fails the
/// commit as a whole, as it would have between the parts.
pub(super) fn check_fault(fault: &Armed) -> PgResult<()> {
    for part in [
        FramePart::Frame,
        FramePart::Invocations,
        FramePart::Messages,
        FramePart::Memory,
        FramePart::Usage,
        FramePart::Run,
    ] {
        fault.check(part)?;
    }
    Ok(())
}
