//! Taking over the runs of hosts that died or were cut off, on a shared
//! store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bus::{Wake, WakeUps};

use super::Engine;

/// The most runs one takeover claims (the rest wait for the next round).
pub(super) const TAKEOVER_BATCH: u64 = 256;

/// On a shared store, every `every` until the engine is dropped: records
/// this host's heartbeat, and takes over the runs whose lease expired (the
/// runs of hosts that died or were cut off).
pub(super) fn spawn_takeover(engine: &Arc<Engine>, every: std::time::Duration) {
    let attached = Arc::clone(&engine.ctx.attached);
    let engine = Arc::downgrade(engine);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut wake_ups: Option<WakeUps> = None;
        let mut beaten: Option<Instant> = None;
        loop {
            // With a bus, a host that gives a run up unfinished wakes the
            // others at once; they still look every `every` in case a
            // wake-up was lost (or the host died without a word).
            match wake_ups.as_mut() {
                Some(w) => match w.next(every).await {
                    Wake::Thread(thread) => {
                        tracing::info!(%thread, "work arrived from another host: looking for runs to take over");
                        // Wake-ups that came meanwhile are served by the same look.
                        while let Wake::Thread(_) = w.next(Duration::ZERO).await {}
                    }
                    Wake::Lost | Wake::Timeout => {}
                },
                None => {
                    tokio::select! {
                        _ = tick.tick() => {}
                        // The bus came: wait on its wake-ups from now on.
                        () = attached.notified() => {}
                    }
                }
            }
            let Some(engine) = engine.upgrade() else {
                return;
            };
            if engine.is_stopping() {
                // It gives its runs up; it takes none over.
                return;
            }
            if wake_ups.is_none()
                && let Some(bus) = engine.ctx.system.get()
            {
                wake_ups = Some(bus.wake_ups());
            }
            if beaten.is_none_or(|at| at.elapsed() >= every) {
                engine.beat().await;
                beaten = Some(Instant::now());
            }
            match engine.resume_runs().await {
                Ok((taken, failed)) => {
                    if !taken.is_empty() || !failed.is_empty() {
                        tracing::info!(
                            taken = taken.len(),
                            failed = failed.len(),
                            "took over runs whose lease expired"
                        );
                    }
                }
                Err(error) => tracing::warn!(%error, "looking for runs to take over failed"),
            }
        }
    });
}
