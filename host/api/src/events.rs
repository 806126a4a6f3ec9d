//! The recent events and their fan-out to streaming clients (SSE and the
//! WebSockets, see `routes::events` and `routes::sockets`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;
use weft_engine::Event;

/// Recent events, and the fan-out to streaming clients.
pub(crate) struct EventLog {
    recent: Mutex<VecDeque<Arc<Event>>>,
    capacity: usize,
    live: broadcast::Sender<Arc<Event>>,
}

impl EventLog {
    /// Keeps `capacity` recent events; each streaming client may fall
    /// `client_buffer` events behind before it is told what it missed.
    pub fn new(capacity: usize, client_buffer: usize) -> Self {
        Self {
            recent: Mutex::new(VecDeque::with_capacity(capacity.min(65_536))),
            capacity: capacity.max(1),
            live: broadcast::Sender::new(client_buffer.max(1)),
        }
    }

    /// Keeps `event` and sends it to every streaming client.
    pub fn record(&self, event: Arc<Event>) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent.len() == self.capacity {
                recent.pop_front();
            }
            recent.push_back(Arc::clone(&event));
        }
        let _ = self.live.send(event);
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.live.subscribe()
    }

    /// Events after `seq`, and how many before them are no longer kept.
    pub fn since(&self, seq: u64) -> (Vec<Arc<Event>>, u64) {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let missed = recent
            .front()
            .map_or(0, |first| first.seq.saturating_sub(seq + 1));
        let events = recent.iter().filter(|e| e.seq > seq).cloned().collect();
        (events, missed)
    }
}
