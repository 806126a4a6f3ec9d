//! What the PA keeps between ticks, all best-effort: a memory failure or a
//! value that does not parse is logged and treated as missing, so the PA
//! still answers.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use weft_protocol::{Analysis, Job, LAST_ANALYSIS_KEY, MEMORIZER_STATE_KEY, MemorizerState};
use weft_sdk::{Ctx, Scope};

/// Node-memory key: the PA's recent routing decisions ([`Turn`]s, oldest first).
pub const HISTORY_KEY: &str = "history";

/// Node-memory key: the last job sent to an expert ([`PendingJob`]).
pub const PENDING_KEY: &str = "pending_job";

/// One routing decision, as remembered for later prompts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// The user's message, verbatim.
    pub request: String,
    /// The expert it went to, or [`crate::NONE`].
    pub route: String,
}

/// The last job sent to an expert, kept until it is replaced or given up on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingJob {
    /// The expert the job went to.
    pub expert: String,
    /// The topic of the user's message, for the `ui` message if the job fails.
    pub topic: String,
    /// The job as sent.
    pub job: Job,
}

/// What the memorizer knows about the thread, if anything.
pub fn memorizer_state(ctx: &Ctx<'_>) -> Option<MemorizerState> {
    load(ctx, Scope::Thread, MEMORIZER_STATE_KEY)
}

/// The topic of the latest user message, as `input` recorded it.
pub fn last_topic(ctx: &Ctx<'_>) -> Option<String> {
    load::<Analysis>(ctx, Scope::Thread, LAST_ANALYSIS_KEY).map(|analysis| analysis.topic)
}

/// The last `cap` routing decisions, oldest first.
pub fn history(ctx: &Ctx<'_>, cap: usize) -> Vec<Turn> {
    if cap == 0 {
        return Vec::new();
    }
    let mut turns: Vec<Turn> = load(ctx, Scope::Node, HISTORY_KEY).unwrap_or_default();
    keep_last(&mut turns, cap);
    turns
}

/// Append `turn` to `history` (as read by [`history`]) and store the last `cap`.
pub fn push_history(ctx: &Ctx<'_>, mut history: Vec<Turn>, turn: Turn, cap: usize) {
    if cap == 0 {
        return;
    }
    history.push(turn);
    keep_last(&mut history, cap);
    store(ctx, Scope::Node, HISTORY_KEY, &history);
}

/// The last job sent to an expert, if one is remembered.
pub fn pending(ctx: &Ctx<'_>) -> Option<PendingJob> {
    load(ctx, Scope::Node, PENDING_KEY)
}

/// Remember `pending` as the job in flight.
pub fn set_pending(ctx: &Ctx<'_>, pending: &PendingJob) {
    store(ctx, Scope::Node, PENDING_KEY, pending);
}

/// Forget the job in flight.
pub fn clear_pending(ctx: &Ctx<'_>) {
    if let Err(error) = ctx.memory().delete(Scope::Node, PENDING_KEY) {
        ctx.log()
            .warn(format!("could not forget the pending job: {error}"));
    }
}

fn keep_last<T>(items: &mut Vec<T>, cap: usize) {
    let excess = items.len().saturating_sub(cap);
    items.drain(..excess);
}

/// Read and parse `key`; `None` when missing, unreadable or unparsable.
fn load<T: DeserializeOwned>(ctx: &Ctx<'_>, scope: Scope, key: &str) -> Option<T> {
    match ctx.memory().get_json(scope, key) {
        Ok(value) => value,
        Err(error) => {
            ctx.log()
                .warn(format!("ignoring memory {scope:?}/{key}: {error}"));
            None
        }
    }
}

/// Serialize and write `value`, logging a failure.
fn store(ctx: &Ctx<'_>, scope: Scope, key: &str, value: &impl Serialize) {
    if let Err(error) = ctx.memory().set_json(scope, key, value) {
        ctx.log()
            .warn(format!("could not write memory {scope:?}/{key}: {error}"));
    }
}
