//! Following a run the endpoint started, from the engine's events: the
//! text its nodes stream, a budget that stops it, and how it ended.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::StatusCode;
use tokio::sync::broadcast;
use weft_engine::{EngineError, Event, EventBody, FrameTrace, RunHandle, RunStatus};

use super::error::OpenAiError;
use crate::Api;

/// What the client is told about the run besides its answer.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    /// The thread (the conversation).
    pub thread: String,
    /// The run.
    pub run: String,
    /// The graph that runs it (OpenAI's `model` of the answer).
    pub graph: String,
    /// The graph's version id (`system_fingerprint`).
    pub version: String,
    /// When the request came, Unix seconds.
    pub created: u64,
}

/// The next thing a run did.
#[derive(Debug)]
pub(crate) enum Step {
    /// A node streamed a piece of text.
    Delta(String),
    /// The run is over: its trace, or why the client gets no answer.
    Ended(Result<FrameTrace, OpenAiError>),
}

type Finish = Pin<Box<dyn Future<Output = Result<FrameTrace, EngineError>> + Send>>;

/// One run, followed until it ends. Dropping it leaves the run going (as
/// an inject does): a client that goes away does not stop the graph.
pub(crate) struct Watch {
    api: Arc<Api>,
    /// What the client is told about the run.
    pub info: RunInfo,
    events: broadcast::Receiver<Arc<Event>>,
    events_closed: bool,
    finish: Finish,
    /// Why a budget stopped the run, once one did.
    budget: Option<String>,
}

impl Watch {
    /// Follows `handle`'s run; `events` must have been subscribed before
    /// the run started, so that none of its text is missed.
    pub fn new(
        api: Arc<Api>,
        info: RunInfo,
        events: broadcast::Receiver<Arc<Event>>,
        handle: RunHandle,
    ) -> Self {
        Self {
            api,
            info,
            events,
            events_closed: false,
            finish: Box::pin(handle.finish()),
            budget: None,
        }
    }

    /// The run's next streamed text, or its end. A run that a budget
    /// stops (it would wait for an operator's raise) is killed, so that
    /// the thread is free again, and ends as `insufficient_quota`.
    pub async fn next(&mut self) -> Step {
        loop {
            tokio::select! {
                // The run's events are read before its end, so that every
                // piece of text it streamed comes before the end.
                biased;
                event = self.events.recv(), if !self.events_closed => match event {
                    Ok(e) if e.run == self.info.run => {
                        if let Some(delta) = self.observe(&e) {
                            return Step::Delta(delta);
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(run = %self.info.run, missed = n, "a chat completion fell behind the engine's events");
                    }
                    Err(broadcast::error::RecvError::Closed) => self.events_closed = true,
                },
                trace = &mut self.finish => return Step::Ended(self.ended(trace)),
            }
        }
    }

    /// Acts on one of the run's events; the text, for a streamed piece.
    fn observe(&mut self, event: &Event) -> Option<String> {
        match &event.body {
            EventBody::Streaming { delta } => return Some(delta.clone()),
            EventBody::BudgetExhausted(detail) => {
                self.budget = detail
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned);
            }
            EventBody::Status {
                status: RunStatus::BudgetExhausted,
            } => {
                self.budget
                    .get_or_insert_with(|| "a budget of the thread or its project is spent".into());
                // Without this the run would wait, holding the thread,
                // for a raise that no one asked for.
                if let Err(e) = self.api.engine.kill(&self.info.thread) {
                    tracing::warn!(run = %self.info.run, error = %e, "could not stop a run its budget stopped");
                }
            }
            _ => {}
        }
        None
    }

    fn ended(&mut self, trace: Result<FrameTrace, EngineError>) -> Result<FrameTrace, OpenAiError> {
        let trace = trace?;
        outcome(trace, self.budget.take())
    }
}

/// The answer a finished run gives, or the error: `budget` is why a budget
/// stopped it, if one did (and the run was killed for it).
pub(crate) fn outcome(
    trace: FrameTrace,
    budget: Option<String>,
) -> Result<FrameTrace, OpenAiError> {
    let status = trace.status;
    match status {
        RunStatus::Completed | RunStatus::FrameLimit => Ok(trace),
        RunStatus::Killed => Err(match budget {
            Some(why) => OpenAiError::budget_spent(format!(
                "{why}; the run was stopped (an operator raises the budget: PUT /api/v1/usage/threads/{{id}}/budget or /api/v1/usage/projects/{{p}}/budget)"
            )),
            None => OpenAiError {
                retry: Some(false),
                ..OpenAiError::new(
                    StatusCode::CONFLICT,
                    "run_killed",
                    format!("run `{}` was killed before it answered", trace.run),
                )
            },
        }),
        RunStatus::Preempted | RunStatus::RolledBack => Err(OpenAiError {
            retry: Some(false),
            ..OpenAiError::new(
                StatusCode::CONFLICT,
                "run_preempted",
                format!(
                    "run `{}` was stopped ({}) by a newer message on thread `{}` before it answered",
                    trace.run,
                    status.as_str(),
                    trace.thread
                ),
            )
        }),
        RunStatus::Interrupted => Err(OpenAiError {
            retry: Some(false),
            ..OpenAiError::new(
                StatusCode::CONFLICT,
                "run_interrupted",
                format!(
                    "run `{}` of thread `{}` waits for a person to answer a node's question: answer it with POST /api/v1/threads/{}/runs/{}/resume",
                    trace.run, trace.thread, trace.thread, trace.run
                ),
            )
        }),
        RunStatus::Suspended => Err(OpenAiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            format!(
                "the host is stopping: run `{}` stopped after its last committed frame and goes on when the host starts again",
                trace.run
            ),
        )),
        RunStatus::StoreFailed => Err(OpenAiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_error",
            format!(
                "the store failed to commit a frame of run `{}`; it goes on from its last committed frame when the host starts again",
                trace.run
            ),
        )),
        RunStatus::Running | RunStatus::Waiting | RunStatus::BudgetExhausted => {
            Err(OpenAiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("run `{}` ended with status {}", trace.run, status.as_str()),
            ))
        }
    }
}

/// OpenAI's `finish_reason` for a run that answered: `stop`, or `length`
/// when the graph's frame limit cut it off.
pub(crate) fn finish_reason(trace: &FrameTrace) -> &'static str {
    match trace.status {
        RunStatus::FrameLimit => "length",
        _ => "stop",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(status: RunStatus) -> FrameTrace {
        FrameTrace {
            thread: "t".into(),
            run: "t.run-1".into(),
            graph: "assistant".into(),
            graph_hash: String::new(),
            status,
            frames: 3,
            reply: Some("Hello.".into()),
            records: Vec::new(),
            undelivered: Vec::new(),
            duration_us: 0,
        }
    }

    fn error(status: RunStatus, budget: Option<&str>) -> OpenAiError {
        outcome(trace(status), budget.map(str::to_owned)).expect_err("an error")
    }

    #[test]
    fn a_run_answers_when_it_completed_or_hit_its_frame_limit() {
        let done = outcome(trace(RunStatus::Completed), None).expect("an answer");
        assert_eq!(finish_reason(&done), "stop");
        let cut = outcome(trace(RunStatus::FrameLimit), None).expect("an answer");
        assert_eq!(finish_reason(&cut), "length");
    }

    #[test]
    fn every_other_end_is_an_openai_error() {
        let e = error(RunStatus::Killed, Some("thread budget: 10 of 10 tokens"));
        assert_eq!(
            (e.status.as_u16(), e.kind, e.code.as_str(), e.retry),
            (429, "insufficient_quota", "insufficient_quota", Some(false))
        );
        assert!(
            e.message.starts_with("thread budget: 10 of 10 tokens"),
            "{}",
            e.message
        );
        let e = error(RunStatus::Killed, None);
        assert_eq!((e.status.as_u16(), e.code.as_str()), (409, "run_killed"));
        let e = error(RunStatus::Suspended, None);
        assert_eq!(
            (e.status.as_u16(), e.kind, e.code.as_str()),
            (503, "server_error", "shutting_down")
        );
        let e = error(RunStatus::Interrupted, None);
        assert_eq!(
            (e.status.as_u16(), e.code.as_str()),
            (409, "run_interrupted")
        );
        let e = error(RunStatus::StoreFailed, None);
        assert_eq!((e.status.as_u16(), e.code.as_str()), (503, "store_error"));
        // A completed run answers even if a budget flagged it meanwhile (a
        // raise came before the kill took effect).
        assert!(outcome(trace(RunStatus::Completed), Some("spent".into())).is_ok());
    }
}
