//! The frame commit: one transaction per frame, retried with a growing
//! pause; a conflict or a kill ends the retries.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::RunContext;
use crate::events::EventBody;
use crate::store::{FrameCommit, RunEnd, Store, StoreError};
use crate::threads::Stop;
use crate::trace::{RunStatus, TraceError};

/// Commits a frame, retrying failures with a growing pause (a kill stops
/// the retries). Every failure is published as an error event.
pub(crate) async fn commit_frame(
    ctx: &RunContext,
    store: &dyn Store,
    commit: &Arc<FrameCommit>,
    kill: &mut watch::Receiver<Stop>,
) -> Result<(), StoreError> {
    let mut pause = ctx.settings.commit_backoff;
    let mut attempt = 1;
    loop {
        let error = match store.commit_frame(Arc::clone(commit)).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        ctx.bus.publish(
            &commit.thread,
            &commit.run,
            Some(commit.frame),
            None,
            EventBody::Error(TraceError {
                code: error.code().into(),
                message: format!(
                    "frame {} not committed (attempt {attempt} of {}): {error}",
                    commit.frame, ctx.settings.commit_attempts
                ),
            }),
        );
        // A conflict will not go away by trying again, nor will a lease
        // another host took over.
        if attempt >= ctx.settings.commit_attempts.max(1)
            || matches!(error, StoreError::Conflict(_) | StoreError::Fenced(_))
            || kill.borrow().is_set()
        {
            return Err(error);
        }
        tracing::warn!(thread = %commit.thread, run = %commit.run, frame = commit.frame, attempt, error = %error, "frame commit failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = kill.changed() => {}
        }
        pause = (pause * 2).min(Duration::from_secs(5));
        attempt += 1;
    }
}

/// Commits the end of a run that did not end with a frame (logged, not
/// retried: a run whose end is lost is resumed and ends again). A run
/// rolled back has its memory writes undone in the same transaction;
/// should working out what to undo fail, it ends `preempted` instead (its
/// effects kept), which is the status returned.
pub(crate) async fn commit_end(
    ctx: &RunContext,
    thread: &str,
    run: &str,
    status: RunStatus,
) -> RunStatus {
    let Some(store) = &ctx.store else {
        return status;
    };
    let (status, restore) = if status == RunStatus::RolledBack {
        match crate::durable::undo_writes(store.as_ref(), thread, run).await {
            Ok(writes) => (status, writes),
            Err(e) => {
                tracing::error!(thread, run, error = %e, "the run cannot be rolled back; it ends preempted with its effects kept");
                ctx.bus.publish(
                    thread,
                    run,
                    None,
                    None,
                    EventBody::Error(TraceError {
                        code: "rollback_failed".into(),
                        message: format!("the run's effects could not be undone ({e}); it ends preempted with its effects kept"),
                    }),
                );
                (RunStatus::Preempted, Vec::new())
            }
        }
    } else {
        (status, Vec::new())
    };
    let end = RunEnd {
        thread: thread.to_owned(),
        run: run.to_owned(),
        status,
        at_ms: ctx.budgets.now_ms(),
        restore: restore.clone(),
    };
    match store.end_run(end).await {
        Ok(()) => ctx.memory.apply(&restore),
        Err(e) => tracing::error!(thread, run, error = %e, "the end of the run was not committed"),
    }
    status
}
