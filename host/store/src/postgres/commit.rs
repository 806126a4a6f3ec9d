//! A frame's commit: the frame, its invocations and journals, the
//! messages delivered and sent, memory, usage, and the run's state, all
//! in the writer's transaction (with the faults of [`crate::FramePart`]
//! injected between the parts in tests).

use tokio_postgres::Transaction;
use weft_engine::StoreError;
use weft_engine::store::FrameCommit;
use weft_engine::trace::FrameRecord;

use super::error::{Fail, PgResult};
use super::runs::{insert_message, write_memory};
use crate::codec::{int, json, now_ms};
use crate::faults::{Faults, FramePart};

pub(super) async fn commit_frame(
    c: &Transaction<'_>,
    f: &FrameCommit,
    faults: &Faults,
) -> PgResult<()> {
    // The run must be running and expecting exactly this frame; the row
    // stays locked until the commit, so two writers cannot both pass.
    let expected = c
        .query_opt(
            "SELECT status, frames FROM runs WHERE id = $1 FOR UPDATE",
            &[&f.run],
        )
        .await?;
    let Some(row) = expected else {
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
    // Fencing: the frame's lease must still be the run's current one (a
    // claim locks the run's row too, so it cannot slip in between).
    if let Some(token) = f.fence {
        let current: Option<(String, i64)> = c
            .query_opt("SELECT host, token FROM leases WHERE run = $1", &[&f.run])
            .await?
            .map(|r| (r.get(0), r.get(1)));
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
    let faults = faults.arm();
    let seq = int(f.seq);
    let now = now_ms();
    c.execute(
        "INSERT INTO frames (thread, seq, run, frame, graph_version, wall_time_ms, committed_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &f.thread,
            &seq,
            &f.run,
            &i64::from(f.frame),
            &f.graph_version,
            &int(f.wall_time_ms),
            &now,
        ],
    )
    .await
    .map_err(|e| match Fail::from(e) {
        Fail::Store(StoreError::Conflict(_)) => Fail::Store(StoreError::Conflict(format!(
            "thread `{}` has a frame {} already",
            f.thread, f.seq
        ))),
        other => other,
    })?;
    faults.check(FramePart::Frame)?;

    for (idx, inv) in f.invocations.iter().enumerate() {
        let r = &inv.record;
        let metering = f.metering.iter().find(|m| m.node == r.node);
        let record = json(&FrameRecord {
            journal: Vec::new(),
            ..r.clone()
        })?;
        let (inbox, output) = (json(&inv.inbox)?, json(&inv.output)?);
        let idx = idx as i64;
        c.execute(
            "INSERT INTO invocations (thread, seq, idx, node, project, plugin_hash, fuel, duration_us, outcome, at_ms, record, inbox, output)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &f.thread,
                &seq,
                &idx,
                &r.node,
                &metering.map_or("", |m| m.project.as_str()),
                &r.plugin_hash,
                &int(r.fuel_used),
                &int(r.duration_us),
                &r.error.as_ref().map_or("ok", |e| e.code.as_str()),
                &metering.map_or(now, |m| int(m.at_ms)),
                &record,
                &inbox,
                &output,
            ],
        )
        .await?;
        for e in &r.journal {
            c.execute(
                "INSERT INTO journal (thread, seq, idx, entry, capability, op, request, response)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &f.thread,
                    &seq,
                    &idx,
                    &i64::from(e.seq),
                    &e.capability.to_string(),
                    &e.op,
                    &e.request.to_string(),
                    &e.response.to_string(),
                ],
            )
            .await?;
        }
    }
    faults.check(FramePart::Invocations)?;

    for (to, m) in &f.delivered {
        let n = c
            .execute(
                "UPDATE messages SET delivered_seq = $1
                 WHERE id = $2 AND run = $3 AND delivered_seq IS NULL",
                &[&seq, &m.id, &f.run],
            )
            .await?;
        if n == 0 {
            let exists = c
                .query_opt("SELECT 1 FROM messages WHERE id = $1", &[&m.id])
                .await?
                .is_some();
            if m.from == weft_engine::SYSTEM_SENDER && !exists {
                // An engine notice (budget warning) made for this frame.
                insert_message(c, &f.thread, &f.run, to, m, Some(f.seq), Some(f.seq)).await?;
            } else {
                return Err(StoreError::Conflict(format!(
                    "message `{}` is not pending for run `{}`: it was delivered before or never stored",
                    m.id, f.run
                ))
                .into());
            }
        }
    }
    for (to, m) in &f.sent {
        insert_message(c, &f.thread, &f.run, to, m, Some(f.seq), None).await?;
    }
    super::interrupts::insert(c, f).await?;
    faults.check(FramePart::Messages)?;

    write_memory(c, &f.memory).await?;
    super::kv::write_kv(c, &f.kv, f.wall_time_ms).await?;
    faults.check(FramePart::Memory)?;

    for u in &f.usage {
        c.execute(
            "INSERT INTO usage_events (project, thread, run, frame, node, model, provider, prompt_tokens,
                 completion_tokens, estimated, latency_ms, cost, outcome, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                &u.project,
                &u.thread,
                &u.run,
                &i64::from(u.frame),
                &u.node,
                &u.model,
                &u.provider,
                &int(u.prompt_tokens),
                &int(u.completion_tokens),
                &u.estimated,
                &int(u.latency_ms),
                &u.cost,
                &u.outcome,
                &int(u.at_ms),
            ],
        )
        .await?;
    }
    faults.check(FramePart::Usage)?;

    let status = f.status.as_str();
    let ended = f.status.is_final().then_some(now);
    c.execute(
        "UPDATE runs SET frames = $2, status = $3, reply = $4, ended_ms = $5, graph_version = $6 WHERE id = $1",
        &[
            &f.run,
            &(i64::from(f.frame) + 1),
            &status,
            &f.reply,
            &ended,
            &f.graph_version,
        ],
    )
    .await?;
    c.execute(
        "UPDATE threads SET frames = $2, status = $3, updated_ms = $4 WHERE id = $1",
        &[&f.thread, &(seq + 1), &status, &int(f.wall_time_ms)],
    )
    .await?;
    faults.check(FramePart::Run)?;
    Ok(())
}
