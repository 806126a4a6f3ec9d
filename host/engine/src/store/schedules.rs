//! Schedules as the store keeps them: what to send, when, and every tick
//! fired.
//!
//! A tick fires exactly once however many hosts share the store: firing
//! claims it with a compare-and-set on the schedule's next tick and a row
//! of its own (`schedule_fires`, keyed by schedule and tick) in one
//! transaction. The run it starts is recorded on that row; a tick claimed
//! by a host that died before its run started is started by the next
//! scheduler that looks (see [`Store::unstarted_fires`](super::Store::unstarted_fires)).

use serde::{Deserialize, Serialize};

/// What happens to ticks missed while no host ran (downtime, a pause).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Missed ticks are skipped: the next fire is the next tick to come.
    #[default]
    Skip,
    /// One fire for all the missed ticks (the latest), then on schedule.
    Latest,
    /// Every missed tick fires (at most 100), oldest first.
    All,
}

impl CatchUp {
    /// The policy as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Latest => "latest",
            Self::All => "all",
        }
    }
}

/// What a schedule sends, where, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// A cron expression (5 fields, or 6 with seconds first), in
    /// `timezone`; or …
    pub cron: Option<String>,
    /// … one moment, Unix ms.
    pub at_ms: Option<u64>,
    /// The IANA time zone the cron expression is read in (`UTC` by
    /// default).
    pub timezone: String,
    /// The served graph to run (the active one at each fire when absent).
    pub graph: Option<String>,
    /// The thread each fire continues (a new thread per fire when
    /// absent).
    pub thread: Option<String>,
    /// The receiving node (the graph's entry when absent).
    pub to: Option<String>,
    /// The message kind.
    pub kind: String,
    /// The message body (JSON text).
    pub body: String,
    /// Missed ticks.
    pub catch_up: CatchUp,
    /// What a fire does while the thread's run is in flight (a schedule
    /// with a `thread`): refused (`reject`, recorded as `thread_busy`),
    /// queued, or taking over.
    #[serde(default)]
    pub multitask: crate::threads::Multitask,
}

/// A schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSchedule {
    /// Id (`sch_…`).
    pub id: String,
    /// The project its runs belong to.
    pub project: String,
    /// What, where, when.
    pub spec: ScheduleSpec,
    /// The next tick, Unix ms; none when it will not fire again (an `at`
    /// that fired).
    pub next_ms: Option<u64>,
    /// Paused: its ticks pass without firing.
    pub paused: bool,
    /// Creation, Unix ms.
    pub created_ms: u64,
    /// Ticks fired so far.
    pub fires: u64,
}

/// A tick fired (or being fired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleFire {
    /// The schedule.
    pub schedule: String,
    /// The tick, Unix ms.
    pub tick_ms: u64,
    /// When it was claimed, Unix ms.
    pub fired_ms: u64,
    /// The thread its run went to, once started.
    pub thread: Option<String>,
    /// Its run, once started.
    pub run: Option<String>,
    /// Why no run started (the thread was busy, the graph is gone …).
    pub error: Option<String>,
}

/// Claims a tick of a schedule: the schedule's next tick moves from
/// `expected_ms` to `next_ms` and the fire is recorded, in one
/// transaction; nothing changes (and the claim is lost) when another host
/// claimed it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireClaim {
    /// The schedule.
    pub schedule: String,
    /// The schedule's next tick as read: the claim wins only if it still
    /// is.
    pub expected_ms: u64,
    /// The tick fired (the latest missed one, with catch-up `latest`).
    pub tick_ms: u64,
    /// Its next tick after this one (none: it is done).
    pub next_ms: Option<u64>,
    /// Whether this tick fires (false: skipped by the catch-up policy,
    /// only the next tick moves).
    pub fire: bool,
    /// Now, Unix ms.
    pub at_ms: u64,
}
