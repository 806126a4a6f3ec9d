//! The facade's interrupts: answering them, listing them, and the
//! background task that times them out.

use std::sync::Arc;

use super::Engine;
use crate::error::EngineError;
use crate::run::{self, Answer, Answered};
use crate::store::StoredInterrupt;

impl Engine {
    /// Answers (or rejects) interrupt `interrupt` of `thread`'s run `run`,
    /// its oldest pending one when `None`. An answer must satisfy the
    /// interrupt's answer schema ([`EngineError::InvalidAnswer`], and
    /// nothing changes); a run that waits on no such question is
    /// [`EngineError::NotInterrupted`]. When it was the run's last pending
    /// interrupt, the run goes on (the returned handle), and the node that
    /// asked gets a `resume` notice in its next frame.
    pub async fn answer_interrupt(
        &self,
        thread: &str,
        run: &str,
        interrupt: Option<&str>,
        answer: Answer,
    ) -> Result<Answered, EngineError> {
        if matches!(answer, Answer::TimedOut) {
            return Err(EngineError::InvalidAnswer {
                interrupt: interrupt.unwrap_or_default().to_owned(),
                message: "only the engine times an interrupt out".into(),
            });
        }
        if self.ctx.control.is_stopping() {
            return Err(EngineError::ShuttingDown);
        }
        run::interrupt::answer(&self.ctx, (thread, run), interrupt, answer).await
    }

    /// The interrupts `thread`'s run `run` raised, oldest first (pending
    /// and ended).
    pub async fn interrupts(
        &self,
        thread: &str,
        run: &str,
    ) -> Result<Vec<StoredInterrupt>, EngineError> {
        run::interrupt::list(&self.ctx, thread, run).await
    }

    /// Times out the interrupts whose deadline passed; returns how many.
    /// The engine does this every [`interrupt_tick`]; tests with a manual
    /// clock call it after moving the clock.
    ///
    /// [`interrupt_tick`]: crate::EngineConfig::interrupt_tick
    pub async fn time_out_interrupts(&self) -> Result<usize, EngineError> {
        run::interrupt::time_out_due(&self.ctx).await
    }
}

/// Times out due interrupts every `every`, until the engine is dropped
/// (only inside a Tokio runtime; an engine built outside one does it when
/// asked).
pub(super) fn spawn_deadlines(engine: &Arc<Engine>, every: std::time::Duration) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let engine = Arc::downgrade(engine);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(engine) = engine.upgrade() else {
                return;
            };
            if engine.ctx.control.is_stopping() {
                return;
            }
            if let Err(error) = engine.time_out_interrupts().await {
                tracing::warn!(%error, "looking for interrupts to time out failed");
            }
        }
    });
}
