//! Open event streams and sockets per key, capped. The events themselves
//! come from the bus (`weft_engine::bus`): kept in this process on one
//! host, on NATS JetStream when several hosts form one system.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::ApiError;

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
    use super::*;

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
