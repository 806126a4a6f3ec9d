//! Schedules: runs started by the clock (a cron expression in a time
//! zone, or one moment), listed, paused, resumed and removed, each with
//! its latest fires. See [`weft_engine::schedules`] for how a tick fires
//! exactly once.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use weft_engine::schedules::{cron, next_tick, time_zone};
use weft_engine::store::{CatchUp, ScheduleFire, ScheduleSpec, StoredSchedule};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::ids::ThreadId;
use crate::routes::access::{listed_project, may_use, project_for, random_hex, store};

/// Schedules one project may have.
const MAX_PER_PROJECT: usize = 100;

/// Fires shown with a schedule.
const RECENT_FIRES: u64 = 20;

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/schedules", get(list).post(create))
        .route("/api/v1/schedules/{id}", get(detail).delete(delete))
        .route("/api/v1/schedules/{id}/pause", post(pause))
        .route("/api/v1/schedules/{id}/resume", post(resume))
}

/// A new schedule: exactly one of `cron` and `at`, and exactly one of
/// `message` and `body`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScheduleRequest {
    /// A cron expression: 5 fields (minute hour day-of-month month
    /// day-of-week), or 6 with seconds first; read in `timezone`.
    pub cron: Option<String>,
    /// One moment, RFC 3339 (`2026-12-24T18:00:00+01:00`); in the future.
    pub at: Option<String>,
    /// The IANA time zone of `cron` (default `UTC`).
    pub timezone: Option<String>,
    /// Chat text for the receiving node (body `{"text": …}`).
    pub message: Option<String>,
    /// A JSON body instead of `message`.
    #[schema(value_type = Object)]
    pub body: Option<Value>,
    /// The receiving node (the graph's entry when absent).
    pub to: Option<String>,
    /// Message kind (default `user`).
    pub kind: Option<String>,
    /// The thread every fire continues (a new thread per fire when
    /// absent); what a fire does while its run is in flight is
    /// `multitask`.
    pub thread: Option<String>,
    /// For a schedule with a `thread`: a fire while the thread's run is in
    /// flight is refused and recorded as `thread_busy` (`reject`, the
    /// default), queued (`enqueue`), or takes over (`interrupt`,
    /// `rollback`; see double-texting).
    pub multitask: Option<crate::routes::messages::MultitaskPolicy>,
    /// A served graph to run (the active graph at each fire when absent).
    pub graph: Option<String>,
    /// Its project (a key limited to a project: its own; default
    /// `default`).
    pub project: Option<String>,
    /// Ticks missed while no host ran: `skip` (default), `latest` (one
    /// fire for all of them) or `all` (each fires).
    #[schema(value_type = Option<String>)]
    pub catch_up: Option<CatchUp>,
}

/// A fire: one tick and the run it started.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FireView {
    /// The tick, Unix ms.
    pub tick_ms: u64,
    /// When it was fired, Unix ms.
    pub fired_ms: u64,
    /// The thread of its run.
    pub thread_id: Option<String>,
    /// Its run.
    pub run_id: Option<String>,
    /// Why no run started (`thread_busy: …`, a graph gone …).
    pub error: Option<String>,
}

impl From<ScheduleFire> for FireView {
    fn from(f: ScheduleFire) -> Self {
        Self {
            tick_ms: f.tick_ms,
            fired_ms: f.fired_ms,
            thread_id: f.thread,
            run_id: f.run,
            error: f.error,
        }
    }
}

/// A schedule.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    /// Id.
    pub id: String,
    /// Project.
    pub project: String,
    /// Cron expression.
    pub cron: Option<String>,
    /// The one moment, Unix ms.
    pub at_ms: Option<u64>,
    /// Time zone.
    pub timezone: String,
    /// Graph (the active one when absent).
    pub graph: Option<String>,
    /// Thread (a new one per fire when absent).
    pub thread: Option<String>,
    /// Receiving node.
    pub to: Option<String>,
    /// Message kind.
    pub kind: String,
    /// Message body (JSON text).
    pub body: String,
    /// `skip`, `latest` or `all`.
    pub catch_up: String,
    /// What a fire does while the thread's run is in flight.
    pub multitask: String,
    /// The next tick, Unix ms (none: it will not fire again).
    pub next_ms: Option<u64>,
    /// Paused.
    pub paused: bool,
    /// Creation, Unix ms.
    pub created_ms: u64,
    /// Ticks fired.
    pub fires: u64,
    /// The latest fires, newest first (detail only).
    pub recent: Vec<FireView>,
}

impl From<StoredSchedule> for ScheduleView {
    fn from(s: StoredSchedule) -> Self {
        Self {
            id: s.id,
            project: s.project,
            cron: s.spec.cron,
            at_ms: s.spec.at_ms,
            timezone: s.spec.timezone,
            graph: s.spec.graph,
            thread: s.spec.thread,
            to: s.spec.to,
            kind: s.spec.kind,
            body: s.spec.body,
            catch_up: s.spec.catch_up.as_str().to_owned(),
            multitask: s.spec.multitask.as_str().to_owned(),
            next_ms: s.next_ms,
            paused: s.paused,
            created_ms: s.created_ms,
            fires: s.fires,
            recent: Vec::new(),
        }
    }
}

/// Schedule list filter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScheduleQuery {
    /// Only this project's (a key limited to a project sees its own only).
    pub project: Option<String>,
}

async fn visible_schedule(api: &Api, who: &Principal, id: &str) -> ApiResult<StoredSchedule> {
    store(api)?
        .schedules(who.project().map(str::to_owned))
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no schedule `{id}`")))
}

/// Adds a schedule. 400 names the field at fault: a cron expression that
/// does not parse, an unknown time zone, a moment in the past, both or
/// neither of `cron` and `at` (or `message` and `body`), a graph not
/// served, a malformed thread id.
#[utoipa::path(post, path = "/api/v1/schedules", operation_id = "create_schedule", tag = "schedules", security(("key" = [])),
    request_body = ScheduleRequest,
    responses((status = 201, body = ScheduleView), (status = 400, body = crate::error::ErrorBody),
        (status = 409, description = "`schedule_limit`: the project has 100 schedules", body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn create(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Json(req): Json<ScheduleRequest>,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    who.require(Role::Operator)?;
    let project = project_for(&who, req.project)?;
    let timezone = req.timezone.unwrap_or_else(|| "UTC".into());
    time_zone(&timezone).map_err(|m| ApiError::field("timezone", m))?;
    let now = api.engine.now_ms();
    let at_ms = match (&req.cron, &req.at) {
        (Some(expr), None) => {
            cron(expr).map_err(|m| ApiError::field("cron", m))?;
            None
        }
        (None, Some(at)) => {
            let t = chrono::DateTime::parse_from_rfc3339(at).map_err(|e| {
                ApiError::field(
                    "at",
                    format!("`{at}` is not an RFC 3339 time (2026-12-24T18:00:00+01:00): {e}"),
                )
            })?;
            let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0);
            if ms <= now {
                return Err(ApiError::field("at", format!("`{at}` is in the past")));
            }
            Some(ms)
        }
        _ => {
            return Err(ApiError::field(
                "cron",
                "give exactly one of `cron` (repeating) and `at` (once)",
            ));
        }
    };
    let body = match (req.message, req.body) {
        (Some(text), None) if !text.trim().is_empty() => {
            serde_json::json!({ "text": text }).to_string()
        }
        (None, Some(body)) => body.to_string(),
        _ => {
            return Err(ApiError::field(
                "message",
                "give exactly one of `message` (chat text, not empty) and `body` (JSON)",
            ));
        }
    };
    let thread = match req.thread {
        Some(id) => {
            let id = ThreadId::parse(id).map_err(|e| ApiError::field("thread", e.to_string()))?;
            may_use(&api, &who, id.as_str()).await?;
            Some(id.as_str().to_owned())
        }
        None => None,
    };
    if let Some(name) = &req.graph
        && api.catalog.get(name).is_none()
    {
        return Err(ApiError::field(
            "graph",
            format!("no graph `{name}` is served"),
        ));
    }
    let spec = ScheduleSpec {
        cron: req.cron,
        at_ms,
        timezone,
        graph: req.graph,
        thread,
        to: req.to,
        kind: req.kind.unwrap_or_else(|| "user".into()),
        body,
        catch_up: req.catch_up.unwrap_or_default(),
        multitask: req.multitask.map(Into::into).unwrap_or_default(),
    };
    let next_ms = next_tick(&spec, now).map_err(|m| ApiError::field("cron", m))?;
    if next_ms.is_none() {
        return Err(ApiError::field(
            "cron",
            "the expression has no tick to come",
        ));
    }
    let store = store(&api)?;
    if store.schedules(Some(project.clone())).await?.len() >= MAX_PER_PROJECT {
        return Err(ApiError::conflict(
            "schedule_limit",
            format!("project `{project}` has {MAX_PER_PROJECT} schedules; delete one first"),
        ));
    }
    let schedule = StoredSchedule {
        id: format!("sch_{}", random_hex(8)?),
        project,
        spec,
        next_ms,
        paused: false,
        created_ms: now,
        fires: 0,
    };
    store.put_schedule(schedule.clone()).await?;
    tracing::info!(
        schedule = schedule.id,
        project = schedule.project,
        next_ms,
        "schedule added"
    );
    Ok((StatusCode::CREATED, Json(schedule.into())))
}

/// The schedules the key sees, oldest first.
#[utoipa::path(get, path = "/api/v1/schedules", operation_id = "list_schedules", tag = "schedules", security(("key" = [])),
    params(ScheduleQuery),
    responses((status = 200, body = Vec<ScheduleView>), (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ScheduleQuery>,
) -> ApiResult<Json<Vec<ScheduleView>>> {
    let Some(project) = listed_project(&who, q.project) else {
        return Ok(Json(Vec::new()));
    };
    let all = store(&api)?.schedules(project).await?;
    Ok(Json(all.into_iter().map(ScheduleView::from).collect()))
}

/// A schedule with its latest fires.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", operation_id = "schedule", tag = "schedules", security(("key" = [])),
    params(("id" = String, Path, description = "schedule id")),
    responses((status = 200, body = ScheduleView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    let s = visible_schedule(&api, &who, &id).await?;
    let fires = store(&api)?.schedule_fires(&id, RECENT_FIRES).await?;
    let mut view = ScheduleView::from(s);
    view.recent = fires.into_iter().map(FireView::from).collect();
    Ok(Json(view))
}

/// Pauses a schedule: its ticks pass without firing until it is resumed.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/pause", operation_id = "pause_schedule", tag = "schedules", security(("key" = [])),
    params(("id" = String, Path, description = "schedule id")),
    responses((status = 200, body = ScheduleView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn pause(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    let mut s = visible_schedule(&api, &who, &id).await?;
    store(&api)?.set_schedule(&id, true, s.next_ms).await?;
    s.paused = true;
    Ok(Json(s.into()))
}

/// Resumes a schedule from its next tick to come (the ticks of the pause
/// do not fire).
#[utoipa::path(post, path = "/api/v1/schedules/{id}/resume", operation_id = "resume_schedule", tag = "schedules", security(("key" = [])),
    params(("id" = String, Path, description = "schedule id")),
    responses((status = 200, body = ScheduleView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn resume(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    let mut s = visible_schedule(&api, &who, &id).await?;
    let next = next_tick(&s.spec, api.engine.now_ms())
        .map_err(|m| ApiError::conflict("schedule_invalid", m))?;
    store(&api)?.set_schedule(&id, false, next).await?;
    s.paused = false;
    s.next_ms = next;
    Ok(Json(s.into()))
}

/// Removes a schedule and its fires (runs it started stay).
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", operation_id = "delete_schedule", tag = "schedules", security(("key" = [])),
    params(("id" = String, Path, description = "schedule id")),
    responses((status = 204, description = "removed"), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn delete(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    visible_schedule(&api, &who, &id).await?;
    store(&api)?.delete_schedule(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
