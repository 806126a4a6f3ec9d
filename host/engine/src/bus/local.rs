//! The bus of one host: events numbered and kept in this process, changes
//! and wake-ups on in-process channels.
//!
//! Events go to one [`Ring`] for the whole host (what keys without a
//! project scope stream) and to one ring per project (what that project's
//! keys stream), each with its own sequence numbers, its own history and
//! its own broadcast channel: one project's traffic never pushes another's
//! events out of its history or makes its clients fall behind, and neither
//! ids nor `missed` counts tell a project anything of the others. Host
//! events (graph changes, plugin swaps) go to every ring.
//!
//! Sequence numbers start above the boot's epoch (its start in Unix
//! milliseconds × [`SEQ_PER_MS`]), so an id of an earlier boot is told
//! apart from one of this boot, and a client resuming with it is told
//! (`reset`) rather than left waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use tokio::sync::broadcast;

use super::{Broadcast, Change, Delivery, Scope, Subscription, SystemBus, WakeUps};
use crate::events::Event;

/// Sequence numbers per millisecond between two boots: a later boot starts
/// above every number an earlier one handed out unless that one streamed
/// more than a million events a second on average; numbers stay below
/// 2^53 (exact in JavaScript) until the year 2255.
pub const SEQ_PER_MS: u64 = 1000;

/// One numbered stream of events with its recent history.
struct Ring {
    epoch: u64,
    capacity: usize,
    state: Mutex<RingState>,
    live: broadcast::Sender<Arc<Event>>,
}

struct RingState {
    recent: VecDeque<Arc<Event>>,
    last: u64,
}

impl Ring {
    fn new(epoch: u64, capacity: usize, client_buffer: usize) -> Self {
        Self {
            epoch,
            capacity: capacity.max(1),
            state: Mutex::new(RingState {
                recent: VecDeque::with_capacity(capacity.min(1024)),
                last: epoch,
            }),
            live: broadcast::Sender::new(client_buffer.max(1)),
        }
    }

    /// Keeps a copy of `event` numbered in this ring and sends it to the
    /// ring's clients (in number order: sent under the lock).
    fn push(&self, event: &Event) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.last += 1;
        let numbered = Arc::new(Event {
            seq: state.last,
            ..event.clone()
        });
        if state.recent.len() == self.capacity {
            state.recent.pop_front();
        }
        state.recent.push_back(Arc::clone(&numbered));
        let _ = self.live.send(numbered);
    }

    /// Where a client that has seen up to `last` starts: `None` from now;
    /// `0` from the start of this boot; an id of this ring after it; any
    /// other id (an earlier boot's, another ring's, one beyond the last
    /// event) gets a reset, then everything kept. Subscribes to the live
    /// events under the lock, so that nothing falls between.
    fn resume(&self, last: Option<u64>) -> Subscription {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let live = self.live.subscribe();
        let (after, reset) = match last {
            None => (state.last, None),
            Some(0) => (self.epoch, None),
            Some(id) if (self.epoch..=state.last).contains(&id) => (id, None),
            Some(id) => (self.epoch, Some(id)),
        };
        let missed = if last.is_none() {
            0
        } else {
            state
                .recent
                .front()
                .map_or(0, |first| first.seq.saturating_sub(after + 1))
        };
        let backlog: Vec<Delivery> = state
            .recent
            .iter()
            .filter(|e| e.seq > after)
            .map(|e| Delivery::Event(Arc::clone(e)))
            .collect();
        drop(state);
        let live = stream::unfold(live, |mut live| async move {
            let item = match live.recv().await {
                Ok(e) => Delivery::Event(e),
                Err(broadcast::error::RecvError::Lagged(n)) => Delivery::Missed(n),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((item, live))
        });
        Subscription {
            reset,
            missed,
            after,
            items: stream::iter(backlog).chain(live).boxed(),
        }
    }
}

/// The bus of a single host (see the module docs).
pub struct LocalBus {
    epoch: u64,
    capacity: usize,
    client_buffer: usize,
    host: Arc<Ring>,
    projects: Mutex<HashMap<String, Arc<Ring>>>,
    changes: broadcast::Sender<Broadcast>,
    wakes: broadcast::Sender<String>,
}

impl std::fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBus")
            .field("epoch", &self.epoch)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The host id of a [`LocalBus`] (the only host there is).
const LOCAL_HOST: &str = "local";

impl LocalBus {
    /// Keeps `capacity` recent events per ring; each streaming client may
    /// fall `client_buffer` events behind before it is told what it missed.
    pub fn new(capacity: usize, client_buffer: usize) -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let epoch = ms.saturating_mul(SEQ_PER_MS);
        Self {
            epoch,
            capacity,
            client_buffer,
            host: Arc::new(Ring::new(epoch, capacity, client_buffer)),
            projects: Mutex::new(HashMap::new()),
            changes: broadcast::Sender::new(256),
            wakes: broadcast::Sender::new(1024),
        }
    }

    /// The first id of this boot, less one.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn project(&self, name: &str) -> Arc<Ring> {
        let mut projects = self.projects.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            projects.entry(name.to_owned()).or_insert_with(|| {
                Arc::new(Ring::new(self.epoch, self.capacity, self.client_buffer))
            }),
        )
    }
}

impl SystemBus for LocalBus {
    fn describe(&self) -> String {
        "local".to_owned()
    }

    fn host_id(&self) -> &str {
        LOCAL_HOST
    }

    /// Keeps `event` in the host's ring and its project's; a host event
    /// (no thread) goes to every project's.
    fn publish(&self, event: &Event, project: Option<&str>) {
        self.host.push(event);
        match project {
            Some(p) => self.project(p).push(event),
            None if event.thread.is_empty() => {
                let rings: Vec<Arc<Ring>> = self
                    .projects
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .cloned()
                    .collect();
                for ring in rings {
                    ring.push(event);
                }
            }
            None => {}
        }
    }

    fn subscribe(&self, scope: Scope, last: Option<u64>) -> BoxFuture<'_, Subscription> {
        let ring = match &scope {
            Scope::All => Arc::clone(&self.host),
            Scope::Project(p) => self.project(p),
        };
        Box::pin(async move { ring.resume(last) })
    }

    fn broadcast(&self, change: Change) {
        let _ = self.changes.send(Broadcast {
            origin: LOCAL_HOST.to_owned(),
            change,
        });
    }

    fn broadcasts(&self) -> broadcast::Receiver<Broadcast> {
        self.changes.subscribe()
    }

    fn work_arrived(&self, thread: &str) {
        let _ = self.wakes.send(thread.to_owned());
    }

    fn wake_ups(&self) -> WakeUps {
        WakeUps::new(self.wakes.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bus::Wake;
    use crate::events::EventBody;

    fn event(thread: &str) -> Event {
        Event {
            seq: 0,
            thread: thread.into(),
            run: String::new(),
            frame: None,
            node: None,
            body: EventBody::Progress { text: "p".into() },
        }
    }

    async fn events(sub: Subscription) -> Vec<Arc<Event>> {
        // The backlog is there at once; the live part never ends.
        sub.items
            .take_until(tokio::time::sleep(Duration::from_millis(200)))
            .filter_map(|d| async move {
                match d {
                    Delivery::Event(e) => Some(e),
                    Delivery::Missed(_) => None,
                }
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn each_project_numbers_its_own_events_and_keeps_its_own_history() {
        let bus = LocalBus::new(2, 4);
        for _ in 0..10 {
            bus.publish(&event("b1"), Some("b"));
        }
        bus.publish(&event("a1"), Some("a"));
        let a = bus.subscribe(Scope::Project("a".into()), Some(0)).await;
        assert_eq!(a.missed, 0, "b's traffic pushed nothing of a out");
        let a_events = events(a).await;
        assert_eq!(a_events.len(), 1);
        assert_eq!(a_events[0].seq, bus.epoch() + 1);
        let host = bus.subscribe(Scope::All, Some(0)).await;
        assert_eq!(host.missed, 9);
        let stale = bus.subscribe(Scope::Project("a".into()), Some(5)).await;
        assert_eq!(stale.reset, Some(5), "an id of another boot");
        let ahead = bus
            .subscribe(Scope::Project("a".into()), Some(bus.epoch() + 7))
            .await;
        assert!(ahead.reset.is_some(), "an id beyond the last event");
    }

    #[tokio::test]
    async fn wake_ups_and_broadcasts_reach_subscribers() {
        let bus = LocalBus::new(4, 4);
        let mut wakes = bus.wake_ups();
        let mut changes = bus.broadcasts();
        bus.work_arrived("t1");
        bus.broadcast(Change::ConfigReloaded);
        assert_eq!(
            wakes.next(Duration::from_secs(10)).await,
            Wake::Thread("t1".into())
        );
        assert_eq!(wakes.next(Duration::from_millis(10)).await, Wake::Timeout);
        let got = changes.recv().await.unwrap();
        assert_eq!(got.change, Change::ConfigReloaded);
        assert_eq!(got.origin, bus.host_id());
    }
}
