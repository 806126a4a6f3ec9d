//! The recent events and their fan-out to streaming clients (SSE and the
//! WebSockets, see `routes::events`, `routes::sockets` and `routes::feed`).
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

use tokio::sync::broadcast;
use weft_engine::Event;

use crate::error::ApiError;

/// Sequence numbers per millisecond between two boots: a later boot starts
/// above every number an earlier one handed out unless that one streamed
/// more than a million events a second on average; numbers stay below
/// 2^53 (exact in JavaScript) until the year 2255.
pub(crate) const SEQ_PER_MS: u64 = 1000;

/// One numbered stream of events with its recent history.
pub(crate) struct Ring {
    epoch: u64,
    capacity: usize,
    state: Mutex<RingState>,
    live: broadcast::Sender<Arc<Event>>,
}

struct RingState {
    recent: VecDeque<Arc<Event>>,
    last: u64,
}

/// Where a client starts in a ring.
pub(crate) struct Resume {
    /// Kept events it has not seen.
    pub backlog: Vec<Arc<Event>>,
    /// Events of this boot it asked for that are no longer kept.
    pub missed: u64,
    /// The id it gave is not of this boot (or of this ring), or is beyond
    /// the last event: it is told so, then gets everything kept.
    pub reset: Option<u64>,
    /// The last id it has (events at or below it are not sent).
    pub after: u64,
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

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.live.subscribe()
    }

    /// Where a client that has seen up to `last` starts: `None` from now;
    /// `0` from the start of this boot; an id of this ring after it; any
    /// other id (an earlier boot's, another ring's, one beyond the last
    /// event) gets a reset, then everything kept.
    pub fn resume(&self, last: Option<u64>) -> Resume {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (after, reset) = match last {
            None => {
                return Resume {
                    backlog: Vec::new(),
                    missed: 0,
                    reset: None,
                    after: state.last,
                };
            }
            Some(0) => (self.epoch, None),
            Some(id) if (self.epoch..=state.last).contains(&id) => (id, None),
            Some(id) => (self.epoch, Some(id)),
        };
        let missed = state
            .recent
            .front()
            .map_or(0, |first| first.seq.saturating_sub(after + 1));
        let backlog = state
            .recent
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect();
        Resume {
            backlog,
            missed,
            reset,
            after,
        }
    }
}

/// The host's ring and one per project.
pub(crate) struct EventLog {
    epoch: u64,
    capacity: usize,
    client_buffer: usize,
    host: Arc<Ring>,
    projects: Mutex<HashMap<String, Arc<Ring>>>,
}

impl EventLog {
    /// Keeps `capacity` recent events per ring; each streaming client may
    /// fall `client_buffer` events behind before it is told what it missed.
    pub fn new(capacity: usize, client_buffer: usize) -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let epoch = ms.saturating_mul(SEQ_PER_MS);
        Self {
            epoch,
            capacity,
            client_buffer,
            host: Arc::new(Ring::new(epoch, capacity, client_buffer)),
            projects: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps `event` (of a thread of `project`, if it has one) in the
    /// host's ring and its project's; a host event (no thread) goes to
    /// every project's.
    pub fn record(&self, event: &Event, project: Option<&str>) {
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

    /// The whole host's events (keys without a project scope).
    pub fn host(&self) -> &Arc<Ring> {
        &self.host
    }

    /// One project's events.
    pub fn project(&self, name: &str) -> Arc<Ring> {
        let mut projects = self.projects.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            projects.entry(name.to_owned()).or_insert_with(|| {
                Arc::new(Ring::new(self.epoch, self.capacity, self.client_buffer))
            }),
        )
    }
}

/// Open event streams and sockets per key, capped.
pub(crate) struct StreamSlots {
    cap: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream; dropping it frees the slot.
pub(crate) struct StreamSlot {
    slots: Arc<StreamSlots>,
    key: String,
}

impl StreamSlots {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more stream of `key`, or 429 when it has `cap` open.
    pub fn take(self: &Arc<Self>, key: &str) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key.to_owned()).or_insert(0);
        if *n >= self.cap {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "this key has {} event streams and sockets open, the most it may (api.streams_per_key); close one first",
                    self.cap
                ),
            ));
        }
        *n += 1;
        Ok(StreamSlot {
            slots: Arc::clone(self),
            key: key.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use weft_engine::EventBody;

    use super::*;

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

    #[test]
    fn each_project_numbers_its_own_events_and_keeps_its_own_history() {
        let log = EventLog::new(2, 4);
        for _ in 0..10 {
            log.record(&event("b1"), Some("b"));
        }
        log.record(&event("a1"), Some("a"));
        let a = log.project("a").resume(Some(0));
        assert_eq!(a.backlog.len(), 1, "b's traffic pushed nothing of a out");
        assert_eq!((a.missed, a.backlog[0].seq), (0, log.epoch + 1));
        let host = log.host().resume(Some(0));
        assert_eq!(host.missed, 9);
        let stale = log.project("a").resume(Some(5));
        assert_eq!(stale.reset, Some(5), "an id of another boot");
        let ahead = log.project("a").resume(Some(log.epoch + 7));
        assert!(ahead.reset.is_some(), "an id beyond the last event");
    }

    #[test]
    fn a_key_has_at_most_cap_streams() {
        let slots = StreamSlots::new(2);
        let one = slots.take("k").unwrap();
        let _two = slots.take("k").unwrap();
        assert_eq!(slots.take("k").err().unwrap().code, "too_many_streams");
        assert!(slots.take("other").is_ok());
        drop(one);
        assert!(slots.take("k").is_ok());
    }
}
