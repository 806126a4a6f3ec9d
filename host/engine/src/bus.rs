//! The bus between the hosts of one system: the event stream clients
//! follow (SSE, the sockets), the broadcasts of what operators change
//! (catalog changes, node pauses, config reloads) and the wake-ups that
//! tell hosts work has arrived.
//!
//! [`SystemBus`] is what the API and the server use; [`LocalBus`] keeps
//! everything in this process (one host: the default), and the `weft-bus`
//! crate puts it on NATS JetStream so that several hosts form one system.

mod local;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::events::Event;
use crate::store::NodePause;

pub use local::{LocalBus, SEQ_PER_MS};

/// Which events a stream shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every event (keys without a project scope).
    All,
    /// One project's events and host events (graph changes, plugin swaps).
    Project(String),
}

impl Scope {
    /// Whether an event of a thread of `project` (none for host events)
    /// belongs in this scope.
    pub fn shows(&self, event: &Event, project: Option<&str>) -> bool {
        match self {
            Self::All => true,
            Self::Project(p) => {
                event.thread.is_empty() || project.is_some_and(|project| project == p)
            }
        }
    }
}

/// What a subscription yields.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// An event. Its `seq` is its id in the stream; `0` for an event the
    /// stream could not number (delivered by this host alone while the
    /// bus was unreachable: it cannot be resumed from).
    Event(Arc<Event>),
    /// The subscriber fell behind: this many events are lost to it.
    Missed(u64),
}

/// Where a subscriber starts, and what follows.
pub struct Subscription {
    /// The id it gave is unknown to the stream (of an earlier stream, or
    /// beyond the last event): everything kept follows.
    pub reset: Option<u64>,
    /// Events after its id that are no longer kept.
    pub missed: u64,
    /// The last id it has: events at or below it are not delivered.
    pub after: u64,
    /// The events, in stream order; ends when the bus goes away.
    pub items: BoxStream<'static, Delivery>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("reset", &self.reset)
            .field("missed", &self.missed)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

/// A change an operator made on one host, for every host to apply at its
/// next frame boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A plugin was uploaded or swapped; hosts load the named version.
    PluginSwapped {
        /// Plugin name.
        plugin: String,
        /// Content hash of its new version.
        to: String,
    },
    /// A graph was switched to, edited, added or removed.
    GraphChanged {
        /// Graph name.
        graph: String,
        /// Its version id now (empty when removed).
        version: String,
        /// `activated`, `edited`, `added` or `removed`.
        change: String,
    },
    /// A node was paused.
    Paused {
        /// The pause.
        pause: NodePause,
    },
    /// A node pause was lifted.
    Resumed {
        /// The pause lifted.
        pause: NodePause,
    },
    /// The config file was reloaded.
    ConfigReloaded,
    /// An operator set or raised a project's money budget (kept in the
    /// store): hosts read it from there.
    BudgetChanged {
        /// The project.
        project: String,
    },
    /// This host may have missed changes (it was away from the bus):
    /// catch up from the store. Only the host's own bus sends it.
    Resync,
}

/// A [`Change`] with the host it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    /// The id of the host that made the change (hosts skip their own).
    pub origin: String,
    /// What changed.
    pub change: Change,
}

/// What waiting for work gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// Work arrived for this thread.
    Thread(String),
    /// Wake-ups were lost (the waiter fell behind, or the bus was
    /// unreachable): look for work in the store.
    Lost,
    /// Nothing within the timeout: look for work in the store anyway.
    Timeout,
}

/// A host's view of the wake-ups: [`next`](Self::next) waits for one.
#[derive(Debug)]
pub struct WakeUps {
    rx: broadcast::Receiver<String>,
}

impl WakeUps {
    /// Wake-ups from `rx`.
    pub fn new(rx: broadcast::Receiver<String>) -> Self {
        Self { rx }
    }

    /// The next wake-up, or [`Wake::Timeout`] after `timeout` (so that a
    /// host polls the store when wake-ups are lost or the bus is down).
    pub async fn next(&mut self, timeout: Duration) -> Wake {
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Ok(Ok(thread)) => Wake::Thread(thread),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => Wake::Lost,
            // The bus went away: only the timeout is left.
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                tokio::time::sleep(timeout).await;
                Wake::Timeout
            }
            Err(_) => Wake::Timeout,
        }
    }
}

/// The bus between the hosts of one system. Publishing never blocks and
/// never fails: what cannot reach the other hosts is delivered on this
/// host alone (and the bus says so in its log).
pub trait SystemBus: Send + Sync + std::fmt::Debug + 'static {
    /// What it is, for logs and `/health` (`local`, `nats://…`).
    fn describe(&self) -> String;

    /// This host's id on the bus.
    fn host_id(&self) -> &str;

    /// Puts an event of this host (of a thread of `project`; none for a
    /// host event) on the stream.
    fn publish(&self, event: &Event, project: Option<&str>);

    /// A stream of the events in `scope`, after the event with id `last`
    /// (`None`: from now on; `0`: from the first kept).
    fn subscribe(&self, scope: Scope, last: Option<u64>) -> BoxFuture<'_, Subscription>;

    /// Sends a change to every host (this one included).
    fn broadcast(&self, change: Change);

    /// The changes broadcast from now on (from every host, this one
    /// included: skip those whose `origin` is [`host_id`](Self::host_id)).
    fn broadcasts(&self) -> broadcast::Receiver<Broadcast>;

    /// Tells every host that work arrived for `thread`.
    fn work_arrived(&self, thread: &str);

    /// The wake-ups from now on.
    fn wake_ups(&self) -> WakeUps;

    /// Waits (a moment at most) until what this host sent has left it: a
    /// stopping host's last wake-ups must reach the others.
    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
