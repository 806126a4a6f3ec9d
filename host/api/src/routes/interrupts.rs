//! Interrupts: the questions a run's nodes asked a person, and the answer
//! (or rejection) that lets the run go on.
//!
//! A node ends its tick with an interrupt; the run then waits with status
//! `interrupted`, holding its thread but no instance, until every question
//! it raised is answered, rejected or timed out. `POST …/resume` answers one
//! (the run's oldest pending one unless `interrupt` names another); the
//! value is checked against the question's answer schema first, and nothing
//! is delivered when it fails (422 `invalid_answer`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use weft_engine::{Answer, StoredInterrupt};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::routes::access::visible;

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route(
            "/api/v1/threads/{id}/runs/{run}/interrupts",
            get(interrupts),
        )
        .route("/api/v1/threads/{id}/runs/{run}/resume", post(resume))
}

/// A question a node asked a person.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InterruptView {
    /// `<run>/f<frame>/<node>`: the same on every replay.
    pub id: String,
    /// Thread.
    pub thread_id: String,
    /// Run.
    pub run_id: String,
    /// The node that asked.
    pub node: String,
    /// The frame of the run that asked (from 0).
    pub frame: u32,
    /// The question.
    pub question: String,
    /// The JSON Schema an answer must satisfy.
    #[schema(value_type = Object)]
    pub answer_schema: Value,
    /// `pending`, `answered`, `rejected`, `timed_out` or `cancelled` (its
    /// run was killed while it waited).
    pub status: String,
    /// The answer (`answered`) or the reason (`rejected`).
    #[schema(value_type = Object)]
    pub answer: Option<Value>,
    /// When it was asked, Unix ms.
    pub created_ms: u64,
    /// When it times out (the node's `interrupt_timeout_ms`), Unix ms;
    /// never when absent.
    pub deadline_ms: Option<u64>,
    /// When it stopped being pending, Unix ms.
    pub resolved_ms: Option<u64>,
}

impl From<StoredInterrupt> for InterruptView {
    fn from(i: StoredInterrupt) -> Self {
        Self {
            id: i.id,
            thread_id: i.thread,
            run_id: i.run,
            node: i.node,
            frame: i.frame,
            question: i.question,
            answer_schema: i.answer_schema,
            status: i.status.as_str().to_owned(),
            answer: i.answer,
            created_ms: i.created_ms,
            deadline_ms: i.deadline_ms,
            resolved_ms: i.resolved_ms,
        }
    }
}

/// An answer to an interrupt: exactly one of `value` and `reject`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// The interrupt answered; the run's oldest pending one when absent.
    pub interrupt: Option<String>,
    /// The answer (any JSON, `null` included), checked against the
    /// interrupt's answer schema.
    #[serde(default, deserialize_with = "crate::routes::access::present")]
    #[schema(value_type = Object)]
    pub value: Option<Value>,
    /// Declines the question instead, with a reason for the node (may be
    /// empty).
    pub reject: Option<String>,
}

/// What an answer did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resumed {
    /// The interrupt, as it ended.
    pub interrupt: InterruptView,
    /// Whether the run goes on now (false while others of its interrupts
    /// are still pending).
    pub resumed: bool,
}

/// The interrupts a run raised, oldest first (pending and ended).
#[utoipa::path(get, path = "/api/v1/threads/{id}/runs/{run}/interrupts", operation_id = "run_interrupts", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id"), ("run" = String, Path, description = "run id")),
    responses((status = 200, body = Vec<InterruptView>),
        (status = 404, description = "`not_found`: no such thread (or another project's); `unknown_run`: the thread has no such run", body = crate::error::ErrorBody),
        (status = 409, description = "`run_not_interrupted`: the run never asked a question", body = crate::error::ErrorBody)))]
pub(crate) async fn interrupts(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult<Json<Vec<InterruptView>>> {
    visible(&api, &who, &id).await?;
    let all = api.engine.interrupts(&id, &run).await?;
    Ok(Json(all.into_iter().map(InterruptView::from).collect()))
}

/// Answers (`value`) or declines (`reject`) a question the run is waiting
/// on. The value must satisfy the interrupt's answer schema (422
/// `invalid_answer`, nothing is delivered). The node that asked gets the
/// outcome in its next frame; the run goes on once none of its interrupts
/// is pending.
#[utoipa::path(post, path = "/api/v1/threads/{id}/runs/{run}/resume", operation_id = "resume_run", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id"), ("run" = String, Path, description = "run id")),
    request_body = ResumeRequest,
    responses((status = 202, body = Resumed),
        (status = 400, description = "neither or both of `value` and `reject`", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`, `unknown_run` or `unknown_interrupt`", body = crate::error::ErrorBody),
        (status = 409, description = "`run_not_interrupted`: the run waits on no such question (never asked, or already answered, rejected or timed out)", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_answer`: the value does not satisfy the answer schema", body = crate::error::ErrorBody),
        (status = 503, description = "`shutting_down`", body = crate::error::ErrorBody)))]
pub(crate) async fn resume(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path((id, run)): Path<(String, String)>,
    Json(req): Json<ResumeRequest>,
) -> ApiResult<(StatusCode, Json<Resumed>)> {
    who.require(Role::Operator)?;
    let answer = match (req.value, req.reject) {
        (Some(value), None) => Answer::Value(value),
        (None, Some(reason)) => Answer::Reject(reason),
        _ => {
            return Err(ApiError::field(
                "value",
                "give exactly one of `value` (an answer) and `reject` (a reason)",
            ));
        }
    };
    visible(&api, &who, &id).await?;
    let answered = api
        .engine
        .answer_interrupt(&id, &run, req.interrupt.as_deref(), answer)
        .await?;
    let resumed = answered.run.is_some();
    if resumed {
        api.metrics.run_started();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Resumed {
            interrupt: answered.interrupt.into(),
            resumed,
        }),
    ))
}
