//! Encoding shared by the backends: JSON columns, integers, the clock.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_engine::StoreError;
use weft_engine::store::{InvocationRecord, StoreResult};
use weft_engine::trace::FrameRecord;

/// A value as a JSON column.
pub(crate) fn json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("cannot encode: {e}")))
}

/// An invocation's JSON columns: its record (without the journal, which
/// has rows of its own), the messages it was given and what it produced.
pub(crate) struct EncodedInvocation {
    pub(crate) record: String,
    pub(crate) inbox: String,
    pub(crate) output: String,
}

/// Encodes an invocation's JSON columns. The SQLite store does this on the
/// committing run's task, so that its single writer thread only writes
/// (profiled at 100 runs in flight: encoding was a tenth of the writer's
/// time). A value that cannot be encoded fails the commit instead of being
/// stored empty.
pub(crate) fn encode_invocation(inv: &InvocationRecord) -> StoreResult<EncodedInvocation> {
    let r = &inv.record;
    // The record is copied only to leave a journal out (a copy of every
    // string in it was another tenth of the writer's time).
    let record = if r.journal.is_empty() {
        json(r)?
    } else {
        json(&FrameRecord {
            journal: Vec::new(),
            ..r.clone()
        })?
    };
    Ok(EncodedInvocation {
        record,
        inbox: json(&inv.inbox)?,
        output: json(&inv.output)?,
    })
}

/// A JSON column read back; `what` names it in the error.
pub(crate) fn parse<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("stored {what} is unreadable: {e}")))
}

/// The wall clock in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An unsigned count as a SQL integer, clamped.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A SQL integer read back as an unsigned count (a negative one, which
/// weft never writes, as 0).
pub(crate) fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
