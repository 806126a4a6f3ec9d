//! A frame's commit: the frame, its invocations and journals, the
//! messages delivered and sent, memory, usage, and the run's state, all
//! in the writer's transaction (with the faults of [`crate::FramePart`]
//! injected between the parts in tests).

use rusqlite::{Connection, OptionalExtension, params};
use weft_engine::StoreError;
use weft_engine::store::{FrameCommit, StoreResult};

use super::connection::error;
use super::memory::write_memory;
use super::messages::{insert_message, message_exists};
use super::usage::insert_usage;
use crate::codec::{EncodedInvocation, int, now_ms};
use crate::faults::{Faults, FramePart};

/// Commits `f`, whose invocations' JSON columns are `encoded` (one each,
/// in order, from [`crate::codec::encode_invocation`]).
pub(super) fn commit_frame(
    c: &Connection,
    f: &FrameCommit,
    encoded: &[EncodedInvocation],
    faults: &Faults,
) -> StoreResult<()> {
    if encoded.len() != f.invocations.len() {
        return Err(StoreError::Backend(format!(
            "{} invocations to commit, {} encoded",
            f.invocations.len(),
            encoded.len()
        )));
    }
    // The run must be running and expecting exactly this frame: its state
    // is updated only if it is (one statement instead of a read and a
    // write), and read only to say why not.
    let now = now_ms();
    let status = f.status.as_str();
    let ended = f.status.is_final().then_some(now);
    let updated = c
        .prepare_cached(
            "UPDATE runs SET frames = ?2, status = ?3, reply = ?4, ended_ms = ?5, graph_version = ?6
             WHERE id = ?1 AND status = 'running' AND frames = ?7",
        )
        .and_then(|mut s| {
            s.execute(params![
                f.run,
                f.frame + 1,
                status,
                f.reply,
                ended,
                f.graph_version,
                f.frame
            ])
        })
        .map_err(error)?;
    if updated == 0 {
        let found: Option<(String, i64)> = c
            .prepare_cached("SELECT status, frames FROM runs WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([&f.run], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(error)?;
        return Err(match found {
            None => StoreError::Conflict(format!("no run `{}`", f.run)),
            Some((status, next)) => StoreError::Conflict(format!(
                "run `{}` is {status} at frame {next}; frame {} cannot be committed",
                f.run, f.frame
            )),
        });
    }
    let faults = faults.arm();
    let seq = int(f.seq);
    // The frame's invocations go at the end of the table, one after the
    // other; the frame row says where.
    let first: i64 = c
        .prepare_cached("SELECT coalesce(max(pos), 0) + 1 FROM invocations")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(error)?;
    c.prepare_cached(
        "INSERT INTO frames (thread, seq, run, frame, graph_version, wall_time_ms, committed_ms, inv_first, inv_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            f.thread,
            seq,
            f.run,
            f.frame,
            f.graph_version,
            int(f.wall_time_ms),
            now,
            first,
            f.invocations.len() as i64
        ])
    })
    .map_err(|e| match error(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!(
            "thread `{}` has a frame {} already",
            f.thread, f.seq
        )),
        other => other,
    })?;
    faults.check(FramePart::Frame)?;

    for (idx, (inv, encoded)) in f.invocations.iter().zip(encoded).enumerate() {
        let r = &inv.record;
        let metering = f.metering.iter().find(|m| m.node == r.node);
        c.prepare_cached(
            "INSERT INTO invocations (pos, thread, seq, idx, node, project, plugin_hash, fuel, duration_us, outcome, at_ms, record, inbox, output)
             VALUES (?14, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .and_then(|mut s| {
            s.execute(params![
                f.thread,
                seq,
                idx as i64,
                r.node,
                metering.map_or("", |m| m.project.as_str()),
                r.plugin_hash,
                int(r.fuel_used),
                int(r.duration_us),
                r.error.as_ref().map_or("ok", |e| e.code.as_str()),
                metering.map_or(now, |m| int(m.at_ms)),
                encoded.record,
                encoded.inbox,
                encoded.output,
                first + idx as i64,
            ])
        })
        .map_err(error)?;
        let mut s = c
            .prepare_cached(
                "INSERT INTO journal (thread, seq, idx, entry, capability, op, request, response)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(error)?;
        for e in &r.journal {
            s.execute(params![
                f.thread,
                seq,
                idx as i64,
                e.seq,
                e.capability.to_string(),
                e.op,
                e.request.to_string(),
                e.response.to_string(),
            ])
            .map_err(error)?;
        }
    }
    faults.check(FramePart::Invocations)?;

    for (to, m) in &f.delivered {
        let n = c
            .prepare_cached(
                "UPDATE messages SET delivered_seq = ?1
                 WHERE id = ?2 AND run = ?3 AND delivered_seq IS NULL",
            )
            .and_then(|mut s| s.execute(params![seq, m.id, f.run]))
            .map_err(error)?;
        if n == 0 {
            if m.from == weft_engine::SYSTEM_SENDER && !message_exists(c, &m.id)? {
                // An engine notice (budget warning) made for this frame.
                insert_message(c, &f.thread, &f.run, to, m, Some(f.seq), Some(f.seq))?;
            } else {
                return Err(StoreError::Conflict(format!(
                    "message `{}` is not pending for run `{}`: it was delivered before or never stored",
                    m.id, f.run
                )));
            }
        }
    }
    for (to, m) in &f.sent {
        insert_message(c, &f.thread, &f.run, to, m, Some(f.seq), None)?;
    }
    super::interrupts::insert(c, f)?;
    faults.check(FramePart::Messages)?;

    write_memory(c, &f.memory)?;
    super::kv::write_kv(c, &f.kv, f.wall_time_ms)?;
    faults.check(FramePart::Memory)?;

    for u in &f.usage {
        insert_usage(c, u)?;
    }
    faults.check(FramePart::Usage)?;

    c.prepare_cached("UPDATE threads SET frames = ?2, status = ?3, updated_ms = ?4 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![f.thread, seq + 1, status, int(f.wall_time_ms)]))
        .map_err(error)?;
    faults.check(FramePart::Run)?;
    Ok(())
}
