//! Double-texting's types: the policy for a message to a busy thread
//! ([`Multitask`]), why a run in flight is asked to stop ([`Stop`]), and a
//! run queued behind it ([`Queued`], [`NextRun`]). The queue itself lives
//! in each thread's entry ([`crate::threads`]); the policy is carried out
//! in `run::queue`.

use std::sync::Arc;

use tokio::sync::watch;
use weft_runtime::Message;

use crate::loaded::LoadedGraph;
use crate::trace::RunStatus;

/// What a message for a busy thread does (double-texting): the thread's
/// run in flight and the new message's run never run at once.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Multitask {
    /// Refused with `thread_busy`.
    #[default]
    Reject,
    /// Runs after the run in flight (and any queued before it).
    Enqueue,
    /// Stops the run in flight at its next frame boundary (it ends
    /// `preempted`, its effects kept) and runs next.
    Interrupt,
    /// Like `interrupt`, and the stopped run's effects are taken out of the
    /// thread: its memory writes are undone and its messages leave the
    /// thread's history (it ends `rolled_back`; its frames stay for audit
    /// and replay). Needs a store.
    Rollback,
}

impl Multitask {
    /// Every policy, as written in requests and the config.
    pub const ALL: [Self; 4] = [Self::Reject, Self::Enqueue, Self::Interrupt, Self::Rollback];

    /// The policy as written in requests and the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::Enqueue => "enqueue",
            Self::Interrupt => "interrupt",
            Self::Rollback => "rollback",
        }
    }

    /// What the policy asks of the run in flight.
    pub(crate) fn stop(self) -> Stop {
        match self {
            Self::Reject | Self::Enqueue => Stop::No,
            Self::Interrupt => Stop::Preempt,
            Self::Rollback => Stop::Rollback,
        }
    }
}

impl std::fmt::Display for Multitask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Multitask {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a policy: use reject, enqueue, interrupt or rollback")
            })
    }
}

/// Why a run in flight is asked to stop at its next frame boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Stop {
    /// It is not.
    #[default]
    No,
    /// An operator killed it.
    Kill,
    /// A newer message on its thread takes over (`interrupt`).
    Preempt,
    /// A newer message takes over and the run's effects are undone
    /// (`rollback`).
    Rollback,
}

impl Stop {
    /// Whether the run is to stop.
    pub fn is_set(self) -> bool {
        self != Self::No
    }

    /// Asks the run behind `kill` to stop for this reason, unless a stop
    /// was asked for already (the first reason stands).
    pub fn ask(self, kill: &watch::Sender<Stop>) {
        kill.send_if_modified(|stop| {
            let first = !stop.is_set();
            if first {
                *stop = self;
            }
            first
        });
    }

    /// The status the run ends with.
    pub fn status(self) -> Option<RunStatus> {
        match self {
            Self::No => None,
            Self::Kill => Some(RunStatus::Killed),
            Self::Preempt => Some(RunStatus::Preempted),
            Self::Rollback => Some(RunStatus::RolledBack),
        }
    }
}

/// A run accepted for a busy thread, waiting for the thread: its message
/// was checked against `graph` (the version it runs on) and, with a store,
/// committed with the run as `queued`.
pub(crate) struct Queued {
    /// Run id.
    pub run: String,
    /// The graph version it runs on.
    pub graph: Arc<LoadedGraph>,
    /// The receiving node's position in `graph`.
    pub to: usize,
    /// The inbound message.
    pub first: Message,
}

/// What [`Threads::queue`] did with a run.
pub(crate) enum QueueOutcome {
    /// It waits behind `active`, at `position` (0: next).
    Behind {
        /// The run in flight.
        active: String,
        /// Its place in the queue.
        position: usize,
    },
    /// The thread was free: the run holds it now and starts at once.
    Claimed(Box<NextRun>),
}

/// A queued run that now holds its thread, to be started.
pub(crate) struct NextRun {
    /// The run.
    pub queued: Queued,
    /// Resolves when the run is stopped.
    pub kill: watch::Receiver<Stop>,
    /// The thread's next frame `seq`.
    pub seq: u64,
}
