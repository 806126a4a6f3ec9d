//! Committed frames read back, with their invocations and journals (for
//! traces, replay and fork).

use rusqlite::{Connection, params};
use weft_engine::StoreError;
use weft_engine::store::{InvocationRecord, RecordedOutput, StoreResult, StoredFrame};
use weft_engine::trace::FrameRecord;
use weft_runtime::Capability;
use weft_runtime::capabilities::JournalEntry;

use super::connection::error;
use crate::codec::{int, parse};

/// `frames f` joined with each frame's invocations `i`: the `inv_count`
/// rows from `inv_first` on, which the frame's commit wrote together.
macro_rules! frame_invocations {
    () => {
        "frames f CROSS JOIN invocations i ON i.pos >= f.inv_first AND i.pos < f.inv_first + f.inv_count"
    };
}
pub(super) use frame_invocations;

pub(super) fn frames(
    c: &Connection,
    thread: &str,
    from: u64,
    to: u64,
) -> StoreResult<Vec<StoredFrame>> {
    let mut s = c
        .prepare_cached(
            "SELECT seq, run, frame, graph_version, wall_time_ms, inv_first, inv_count FROM frames
             WHERE thread = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
        )
        .map_err(error)?;
    let rows: Vec<(i64, String, u32, String, i64, i64, i64)> = s
        .query_map(params![thread, int(from), int(to)], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .and_then(Iterator::collect)
        .map_err(error)?;
    let mut invocations = c
        .prepare_cached(
            "SELECT idx, record, inbox, output FROM invocations WHERE pos >= ?1 AND pos < ?1 + ?2 ORDER BY pos",
        )
        .map_err(error)?;
    let mut journal = c
        .prepare_cached(
            "SELECT entry, capability, op, request, response FROM journal
             WHERE thread = ?1 AND seq = ?2 AND idx = ?3 ORDER BY entry",
        )
        .map_err(error)?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, run, frame, graph_version, wall, first, count) in rows {
        let raw: Vec<(i64, String, String, String)> = invocations
            .query_map(params![first, count], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(Iterator::collect)
            .map_err(error)?;
        let mut list = Vec::with_capacity(raw.len());
        for (idx, record, inbox, output) in raw {
            let mut record: FrameRecord = parse(&record, "frame record")?;
            let entries: Vec<(u32, String, String, String, String)> = journal
                .query_map(params![thread, seq, idx], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .and_then(Iterator::collect)
                .map_err(error)?;
            record.journal = entries
                .into_iter()
                .map(|(entry, cap, op, request, response)| {
                    Ok(JournalEntry {
                        seq: entry,
                        capability: cap.parse::<Capability>().map_err(StoreError::Backend)?,
                        op,
                        request: parse(&request, "journal request")?,
                        response: parse(&response, "journal response")?,
                    })
                })
                .collect::<StoreResult<_>>()?;
            list.push(InvocationRecord {
                record,
                inbox: parse(&inbox, "inbox")?,
                output: parse::<RecordedOutput>(&output, "output")?,
            });
        }
        out.push(StoredFrame {
            run,
            frame,
            seq: seq as u64,
            wall_time_ms: wall as u64,
            graph_version,
            invocations: list,
        });
    }
    Ok(out)
}
