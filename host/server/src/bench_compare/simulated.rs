//! The simulated model of the benchmark: it answers every call after a
//! fixed delay, on a timer as precise as the OS sleeps, and measures what
//! each call really waited.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::{CapabilityError, Completion, CompletionRequest};

/// Wakes waiters at their deadlines, to within the OS's sleep precision
/// (tens of µs), from a thread of its own. tokio's timer rounds every sleep
/// up to its next whole millisecond, so a 1 ms sleep takes about 2 ms;
/// asyncio's takes about 1.1 ms. With this timer both systems' simulated
/// model calls take about as long, and runs/s compares the systems, not
/// their timers.
struct PreciseTimer {
    requests: std::sync::mpsc::Sender<(Instant, tokio::sync::oneshot::Sender<()>)>,
}

impl PreciseTimer {
    fn start() -> Result<Self> {
        let (requests, incoming) =
            std::sync::mpsc::channel::<(Instant, tokio::sync::oneshot::Sender<()>)>();
        std::thread::Builder::new()
            .name("bench-timer".into())
            .spawn(move || {
                use std::cmp::Reverse;
                use std::sync::mpsc::RecvTimeoutError;
                let mut due: std::collections::BinaryHeap<Reverse<(Instant, u64)>> =
                    std::collections::BinaryHeap::new();
                let mut next_id = 0u64;
                let mut waiters: HashMap<u64, tokio::sync::oneshot::Sender<()>> = HashMap::new();
                loop {
                    let now = Instant::now();
                    while let Some(Reverse((at, id))) = due.peek().copied() {
                        if at > now {
                            break;
                        }
                        due.pop();
                        if let Some(waiter) = waiters.remove(&id) {
                            // A dropped receiver no longer waits.
                            let _ = waiter.send(());
                        }
                    }
                    let next = match due.peek() {
                        Some(Reverse((at, _))) => {
                            incoming.recv_timeout(at.saturating_duration_since(now))
                        }
                        None => incoming.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match next {
                        Ok((at, waiter)) => {
                            due.push(Reverse((at, next_id)));
                            waiters.insert(next_id, waiter);
                            next_id += 1;
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .context("starting the benchmark's timer thread")?;
        Ok(Self { requests })
    }

    async fn sleep(&self, delay: Duration) {
        let (wake, woken) = tokio::sync::oneshot::channel();
        if self.requests.send((Instant::now() + delay, wake)).is_ok() {
            let _ = woken.await;
        }
    }
}

/// A model that answers `ok` after a fixed delay (an async sleep, as a
/// remote provider's latency is) and counts the calls it is inside. It
/// keeps how long each answered call really waited, by thread and node, so
/// that a run's model time is what its calls took, not the nominal delay;
/// `bench/`'s LangGraph side measures its sleeps the same way. A call that
/// is still waiting (the `waiting_threads` row) keeps nothing, so it adds
/// nothing to the memory measured.
pub(super) struct SimulatedLlm {
    delay: Duration,
    timer: PreciseTimer,
    in_flight: AtomicUsize,
    /// Per thread: each answered call's node and wait.
    waits: Mutex<HashMap<String, Vec<(String, Duration)>>>,
}

impl SimulatedLlm {
    /// A model that answers after `delay`, with its timer thread started.
    pub(super) fn new(delay: Duration) -> Result<Self> {
        Ok(Self {
            delay,
            timer: PreciseTimer::start()?,
            in_flight: AtomicUsize::new(0),
            waits: Mutex::default(),
        })
    }

    /// The calls waiting for their answer now.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The model time on the critical path of the run that just ended on
    /// `thread`, forgetting its waits.
    pub(super) fn critical_wait(&self, thread: &str, steps: &[&[&str]]) -> Duration {
        let waits = {
            let mut all = self.waits.lock().unwrap_or_else(|e| e.into_inner());
            all.remove(thread).unwrap_or_default()
        };
        steps
            .iter()
            .map(|step| {
                waits
                    .iter()
                    .filter(|(node, _)| step.contains(&node.as_str()))
                    .map(|&(_, wait)| wait)
                    .max()
                    .unwrap_or_default()
            })
            .sum()
    }
}

impl LlmBackend for SimulatedLlm {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        _request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async move {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let started = Instant::now();
            if !self.delay.is_zero() {
                self.timer.sleep(self.delay).await;
            }
            let waited = started.elapsed();
            self.waits
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(call.ctx.thread.clone())
                .or_default()
                .push((call.ctx.node.clone(), waited));
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(Completion {
                text: "ok".to_owned(),
                prompt_tokens: 1,
                completion_tokens: 1,
                model: call.model.unwrap_or("simulated").to_owned(),
                provider: "simulated".to_owned(),
                usage_estimated: false,
            })
        })
    }
}
