//! [`Failover`]: several backends in priority order, the next one asked
//! only when the previous one is unavailable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::llm::{Deltas, LlmBackend, LlmCall};
use weft_runtime::{CapabilityError, Completion, CompletionRequest};

/// Backends tried in order until one answers.
///
/// Only [`CapabilityError::Unavailable`] moves on to the next backend: an
/// invalid request, a spent budget or a denial would fail the same way
/// everywhere. A backend that already streamed deltas is not replaced
/// either, since the listener would see two answers spliced together.
pub struct Failover {
    backends: Vec<Arc<dyn LlmBackend>>,
}

impl std::fmt::Debug for Failover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failover")
            .field("backends", &self.backends.len())
            .finish()
    }
}

impl Failover {
    /// Backends in priority order (the first is asked first).
    pub fn new(backends: Vec<Arc<dyn LlmBackend>>) -> Self {
        Self { backends }
    }

    /// The backends, in priority order.
    pub fn backends(&self) -> &[Arc<dyn LlmBackend>] {
        &self.backends
    }
}

/// Passes deltas on and remembers whether any arrived.
struct Watched<'a> {
    inner: &'a dyn Deltas,
    emitted: AtomicBool,
}

impl Deltas for Watched<'_> {
    fn delta(&self, text: &str) {
        self.emitted.store(true, Ordering::Relaxed);
        self.inner.delta(text);
    }
}

impl LlmBackend for Failover {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async move {
            let count = self.backends.len();
            let mut last = None;
            for (index, backend) in self.backends.iter().enumerate() {
                let watched = Watched {
                    inner: call.deltas,
                    emitted: AtomicBool::new(false),
                };
                let attempt = LlmCall {
                    deltas: &watched,
                    ..call
                };
                match backend.complete(attempt, request.clone()).await {
                    Ok(done) => return Ok(done),
                    Err(CapabilityError::Unavailable(message))
                        if !watched.emitted.load(Ordering::Relaxed) =>
                    {
                        tracing::warn!(
                            backend = index,
                            error = %message,
                            "LLM backend unavailable; trying the next one"
                        );
                        last = Some(message);
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(CapabilityError::Unavailable(match last {
                Some(message) => {
                    format!("every LLM backend failed ({count} tried); the last said: {message}")
                }
                None => "no LLM backend is configured".to_owned(),
            }))
        })
    }
}
