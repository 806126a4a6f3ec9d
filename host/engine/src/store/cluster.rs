//! What hosts sharing one store tell each other through it: who is alive
//! (heartbeats) and how much of a project's money budget the calls in
//! flight on every host hold (money holds), so that concurrent calls on
//! several hosts never overrun it.

use serde::{Deserialize, Serialize};

/// A host of a shared store, as its last heartbeat left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostBeat {
    /// The host's id (`--host-id`), the holder named in leases.
    pub id: String,
    /// Where it serves its API (`http://IP:PORT`), empty when it serves
    /// none (a benchmark, a one-shot command).
    pub address: String,
    /// The weft version it runs.
    pub version: String,
    /// When it started, Unix milliseconds.
    pub started_ms: u64,
    /// Its last heartbeat, Unix milliseconds.
    pub last_seen_ms: u64,
    /// Runs it holds a lease on now.
    pub runs_held: u64,
    /// Lease renewals it made since it started.
    pub lease_renewals: u64,
}

/// A hold on a project's money budget for one model call, asked of a
/// shared store before the call is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyHold {
    /// The call's id (unique per call, across hosts).
    pub id: String,
    /// The project whose budget pays.
    pub project: String,
    /// The start of the budget window the call falls in (Unix ms; 0 for a
    /// budget without a window).
    pub window_start: u64,
    /// The host making the call.
    pub host: String,
    /// The call's worst-case cost, in billionths of the currency.
    pub amount: u64,
    /// The budget's limit, in billionths.
    pub limit: u64,
    /// What the project spent in the window as far as this host knows
    /// (from the usage committed to the store): the window's starting
    /// spend if no host has opened it yet.
    pub seed: u64,
    /// Holds of hosts not seen since this time (Unix ms) no longer count:
    /// their calls died with them.
    pub live_after_ms: u64,
    /// Now, Unix ms.
    pub at_ms: u64,
}

/// The answer to a [`MoneyHold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneyHeld {
    /// The hold was granted: the call may be made.
    pub granted: bool,
    /// What the project spent in the window, every host's settled calls
    /// counted (billionths).
    pub spent: u64,
    /// What the calls in flight on live hosts hold, this one's included
    /// when granted (billionths).
    pub held: u64,
}

/// A call's hold replaced by what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct MoneySettle {
    /// The call's id, as held.
    pub id: String,
    /// The project, as held.
    pub project: String,
    /// The window, as held.
    pub window_start: u64,
    /// What the call cost (billionths).
    pub cost: u64,
    /// The budget's limit now (billionths), for the warning thresholds.
    pub limit: u64,
    /// The warning thresholds, in percent of the limit.
    pub thresholds: Vec<u8>,
}

/// The answer to a [`MoneySettle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneySettled {
    /// What the project spent in the window after this call, every host's
    /// calls counted (billionths).
    pub spent: u64,
    /// The thresholds this call crossed first in the window, on any host:
    /// each is reported by exactly one call.
    pub crossed: Vec<u8>,
}
