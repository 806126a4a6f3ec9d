//! Threads: list (filtered by status and node), detail, runs, committed
//! frames, the latest run's result, kill, fork and replay; and the traces
//! of the most recent runs.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use weft_engine::store::{StoredRun, StoredThread, ThreadFilter};
use weft_engine::{EngineError, ReplayOptions, ReplayPlugins, ReplayReport, RunStatus};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::access::{store, visible};
use crate::routes::paging::{Page, Paging};

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/threads", get(threads))
        .route("/api/v1/threads/{id}", get(thread))
        .route("/api/v1/threads/{id}/runs", get(thread_runs))
        .route("/api/v1/threads/{id}/frames", get(thread_frames))
        .route("/api/v1/threads/{id}/result", get(result))
        .route("/api/v1/threads/{id}/kill", post(kill))
        .route("/api/v1/threads/{id}/fork", post(fork))
        .route("/api/v1/threads/{id}/replay", post(replay))
        .route("/api/v1/frames", get(frames))
}

/// A thread.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadView {
    /// Id.
    pub id: String,
    /// Project.
    pub project: String,
    /// `running`, or the last run's final status.
    pub status: String,
    /// Graph version of its latest run.
    pub graph_version: String,
    /// Runs so far.
    pub runs: u64,
    /// Frames so far.
    pub frames: u64,
    /// Token limit set by an operator.
    pub budget_limit: Option<u64>,
    /// Forked from this thread …
    pub forked_from: Option<String>,
    /// … after this frame.
    pub forked_after: Option<u64>,
    /// Creation, Unix ms.
    pub created_ms: u64,
    /// Last change, Unix ms.
    pub updated_ms: u64,
    /// The run in flight, if any.
    pub active_run: Option<String>,
}

impl ThreadView {
    fn new(t: StoredThread, active_run: Option<String>) -> Self {
        let (forked_from, forked_after) = t.forked_from.unzip();
        Self {
            id: t.id,
            project: t.project,
            status: t.status,
            graph_version: t.graph_version,
            runs: t.runs,
            frames: t.frames,
            budget_limit: t.budget_limit,
            forked_from,
            forked_after,
            created_ms: t.created_ms,
            updated_ms: t.updated_ms,
            active_run,
        }
    }
}

/// Thread list filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ThreadQuery {
    /// Only threads with this status: running, completed, killed, preempted, rolled_back, frame_limit, store_failed, interrupted (waiting for a person's answer), suspended, budget_exhausted, waiting.
    pub status: Option<String>,
    /// Only threads in which this node ran.
    pub node: Option<String>,
    /// Only threads of this project (a key limited to a project sees its
    /// own only; naming another gives an empty page).
    pub project: Option<String>,
    /// Only threads changed at or after this time (Unix milliseconds).
    pub since_ms: Option<u64>,
    /// Only threads changed before this time (Unix milliseconds; at or
    /// before `sinceMs`: nothing matches).
    pub until_ms: Option<u64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

/// Every run status, in the order a refusal lists them.
pub(crate) const RUN_STATUSES: [RunStatus; 11] = [
    RunStatus::Running,
    RunStatus::Completed,
    RunStatus::Killed,
    RunStatus::Preempted,
    RunStatus::RolledBack,
    RunStatus::FrameLimit,
    RunStatus::StoreFailed,
    RunStatus::Interrupted,
    RunStatus::Suspended,
    RunStatus::BudgetExhausted,
    RunStatus::Waiting,
];

/// A run status as a client names it (400 otherwise).
fn run_status(name: &str) -> ApiResult<RunStatus> {
    RUN_STATUSES
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| {
            let all: Vec<&str> = RUN_STATUSES.iter().map(|s| s.as_str()).collect();
            ApiError::field(
                "status",
                format!("unknown status `{name}`; one of {}", all.join(", ")),
            )
        })
}

/// A run.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// Id.
    pub id: String,
    /// Status.
    pub status: String,
    /// Frames committed.
    pub frames: u32,
    /// Reply.
    pub reply: Option<String>,
    /// Graph version.
    pub graph_version: String,
    /// Start, Unix ms.
    pub started_ms: u64,
    /// End, Unix ms.
    pub ended_ms: Option<u64>,
}

impl From<StoredRun> for RunView {
    fn from(r: StoredRun) -> Self {
        Self {
            id: r.id,
            status: r.status,
            frames: r.frames,
            reply: r.reply,
            graph_version: r.graph_version,
            started_ms: r.started_ms,
            ended_ms: r.ended_ms,
        }
    }
}

/// Where a thread's latest run stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultView {
    /// Thread.
    pub thread_id: String,
    /// Whether a run is in flight (a new message would get 409 with
    /// `multitask: reject`).
    pub busy: bool,
    /// The run in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_run_id: Option<String>,
    /// Runs queued behind it, in the order they start.
    pub queued: Vec<String>,
    /// The run asked for, or the latest run that is not queued.
    pub run: Option<RunView>,
}

/// Which run a result is for.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultQuery {
    /// This run of the thread (404 `unknown_run` if it has none such);
    /// the latest run that is not queued when absent.
    pub run: Option<String>,
}

/// What a kill stopped.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Killed {
    /// The run told to stop (it stops at its next frame boundary).
    pub run_id: String,
}

/// Where to fork.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// The frame to fork after (counted over the thread's runs, from 0).
    pub after: u64,
}

/// A fork.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Forked {
    /// The new thread.
    pub thread_id: String,
    /// The run continuing what was pending, if anything was.
    pub run_id: Option<String>,
}

/// Recent traces.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FramesQuery {
    /// How many recent runs' traces, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub last: Option<usize>,
}

/// Threads, most recently changed first.
#[utoipa::path(get, path = "/api/v1/threads", tag = "threads", security(("key" = [])),
    params(ThreadQuery),
    responses((status = 200, body = Page<ThreadView>), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn threads(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ThreadQuery>,
) -> ApiResult<Json<Page<ThreadView>>> {
    let (limit, offset) = Paging::check(q.limit, q.offset)?;
    let status = q.status.as_deref().map(run_status).transpose()?;
    store(&api)?;
    // An empty range (untilMs at or before sinceMs) matches nothing.
    Paging::check_times(q.since_ms, q.until_ms)?;
    // Another project's threads are not there for this key.
    let Some(project) = crate::routes::access::listed_project(&who, q.project) else {
        return Ok(Json(Page {
            items: Vec::new(),
            total: 0,
            limit,
            offset,
        }));
    };
    let filter = ThreadFilter {
        project,
        status: status.map(|s| s.as_str().to_owned()),
        node: q.node,
        since_ms: q.since_ms,
        until_ms: q.until_ms,
    };
    let page = api.engine.stored_threads(filter, limit, offset).await?;
    Ok(Json(Page {
        items: page
            .items
            .into_iter()
            .map(|t| {
                let active = api.engine.active_run(&t.id);
                ThreadView::new(t, active)
            })
            .collect(),
        total: page.total,
        limit,
        offset,
    }))
}

/// A thread.
#[utoipa::path(get, path = "/api/v1/threads/{id}", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")),
    responses((status = 200, body = ThreadView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn thread(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<ThreadView>> {
    let t = visible(&api, &who, &id).await?;
    let active = api.engine.active_run(&id);
    Ok(Json(ThreadView::new(t, active)))
}

/// A thread's runs.
#[utoipa::path(get, path = "/api/v1/threads/{id}/runs", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")),
    responses((status = 200, body = Vec<RunView>), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn thread_runs(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RunView>>> {
    visible(&api, &who, &id).await?;
    let runs = store(&api)?.runs(&id).await?;
    Ok(Json(runs.into_iter().map(RunView::from).collect()))
}

/// A thread's committed frames (each invocation's record, journal included).
#[utoipa::path(get, path = "/api/v1/threads/{id}/frames", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id"), Paging),
    responses((status = 200, body = Page<Object>), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn thread_frames(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<Value>> {
    let (limit, offset) = paging.get()?;
    let t = visible(&api, &who, &id).await?;
    let frames = store(&api)?
        .frames(&id, offset, offset.saturating_add(limit))
        .await?;
    let items: Vec<Value> = frames
        .into_iter()
        .map(|f| {
            serde_json::json!({
                "frame": f.seq,
                "run": f.run,
                "runFrame": f.frame,
                "wallTimeMs": f.wall_time_ms,
                "graphVersion": f.graph_version,
                "records": f.invocations.iter().map(|i| &i.record).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "items": items, "total": t.frames, "limit": limit, "offset": offset
    })))
}

/// Where the thread's latest run (or the run `run`) stands: poll this
/// after a send.
#[utoipa::path(get, path = "/api/v1/threads/{id}/result", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id"), ResultQuery),
    responses((status = 200, body = ResultView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn result(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<ResultQuery>,
) -> ApiResult<Json<ResultView>> {
    visible(&api, &who, &id).await?;
    // `busy` is read before the run's row: a run frees its thread only
    // after its end is committed, so a thread seen idle here has its last
    // run's final state in the store. Read the other way round, a run
    // ending between the two reads was reported idle with its row still
    // `running`.
    let active = api.engine.active_run(&id);
    let queued = api.engine.queued_runs(&id);
    let run = match api.engine.store() {
        Some(store) => {
            let runs = store.runs(&id).await?.into_iter().rev();
            let found = match &q.run {
                Some(wanted) => runs.into_iter().find(|r| &r.id == wanted),
                None => runs.into_iter().find(|r| r.status != "queued"),
            };
            found.map(RunView::from)
        }
        None => None,
    };
    if let (Some(wanted), None) = (&q.run, &run) {
        return Err(ApiError {
            code: "unknown_run".into(),
            ..ApiError::not_found(format!("thread `{id}` has no run `{wanted}`"))
        });
    }
    Ok(Json(ResultView {
        thread_id: id.clone(),
        busy: active.is_some(),
        active_run_id: active,
        queued,
        run,
    }))
}

/// Cancels the run in flight on the thread (at its next frame boundary).
#[utoipa::path(post, path = "/api/v1/threads/{id}/kill", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")),
    responses((status = 202, body = Killed), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn kill(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Killed>)> {
    who.require(Role::Operator)?;
    visible(&api, &who, &id).await?;
    match api.engine.kill(&id) {
        Ok(run) => Ok((StatusCode::ACCEPTED, Json(Killed { run_id: run }))),
        Err(EngineError::UnknownRun(_) | EngineError::UnknownThread(_)) => Err(ApiError::conflict(
            "not_running",
            format!("thread `{id}` has no run in flight"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// A new thread from the state of this one after frame `after`.
#[utoipa::path(post, path = "/api/v1/threads/{id}/fork", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")), request_body = ForkRequest,
    responses((status = 201, body = Forked), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`graph_version`: the graph version the thread was recorded with cannot be rebuilt", body = crate::error::ErrorBody)))]
pub(crate) async fn fork(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Json(body): Json<ForkRequest>,
) -> ApiResult<(StatusCode, Json<Forked>)> {
    who.require(Role::Operator)?;
    visible(&api, &who, &id).await?;
    let (thread, run) = api.engine.fork(&id, body.after).await?;
    Ok((
        StatusCode::CREATED,
        Json(Forked {
            thread_id: thread,
            run_id: run.map(|h| h.run.clone()),
        }),
    ))
}

/// Which plugin versions a replay runs.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplayVersions {
    /// The versions that ran (from the store): checks that the record is
    /// reproduced exactly.
    #[default]
    Recorded,
    /// The versions the thread's graph runs now: shows what a plugin swap
    /// changes on recorded traffic.
    Current,
}

/// What to replay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Only this frame (counted over the thread's runs, from 0); every
    /// committed frame when absent.
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub frame: Option<u64>,
    /// Which plugin versions run (default `recorded`).
    pub versions: Option<ReplayVersions>,
}

/// An invocation whose replay differs from its record (the first
/// difference).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DivergenceView {
    /// Frame within the thread.
    pub seq: u64,
    /// Run id.
    pub run: String,
    /// Frame within the run.
    pub frame: u32,
    /// Node.
    pub node: String,
    /// Which output differs, e.g. `message 0 body`.
    pub what: String,
    /// What was recorded.
    pub recorded: String,
    /// What the replay produced.
    pub replayed: String,
}

/// A node whose replayed plugin is not the version that ran.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangedPlugin {
    /// Node.
    pub node: String,
    /// SHA-256 of the version that ran.
    pub recorded: String,
    /// SHA-256 of the version replayed.
    pub replayed: String,
}

/// A replay's report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    /// The thread.
    pub thread_id: String,
    /// Whether every replayed invocation gave exactly its recorded outputs.
    pub reproduced: bool,
    /// Frames replayed.
    pub frames: u64,
    /// Invocations replayed.
    pub invocations: u64,
    /// Capability calls answered from the journal.
    pub journal_entries: u64,
    /// Nodes whose replayed plugin differs from the one that ran.
    pub changed_plugins: Vec<ChangedPlugin>,
    /// The first difference of each invocation that diverged, in order.
    pub divergences: Vec<DivergenceView>,
}

impl From<ReplayReport> for Replayed {
    fn from(r: ReplayReport) -> Self {
        Self {
            reproduced: r.reproduced(),
            thread_id: r.thread,
            frames: r.frames,
            invocations: r.invocations,
            journal_entries: r.journal_entries,
            changed_plugins: r
                .changed_plugins
                .into_iter()
                .map(|c| ChangedPlugin {
                    node: c.node,
                    recorded: c.recorded,
                    replayed: c.replayed,
                })
                .collect(),
            divergences: r
                .divergences
                .into_iter()
                .map(|d| DivergenceView {
                    seq: d.seq,
                    run: d.run,
                    frame: d.frame,
                    node: d.node,
                    what: d.what,
                    recorded: d.recorded,
                    replayed: d.replayed,
                })
                .collect(),
        }
    }
}

/// Replays a thread's committed frames (all, or one) from the store: each
/// invocation runs again on the plugin version asked for, its capability
/// calls answered from the journal, and its outputs are compared with the
/// record. Nothing is written. One replay runs at a time on a host (429
/// `replay_busy` otherwise). The CLI's `weft replay` does the same offline.
#[utoipa::path(post, path = "/api/v1/threads/{id}/replay", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")), request_body = ReplayRequest,
    responses((status = 200, body = Replayed),
        (status = 404, description = "no such thread, or no committed frame of that number", body = crate::error::ErrorBody),
        (status = 409, description = "`graph_version`: a recorded graph version cannot be rebuilt", body = crate::error::ErrorBody),
        (status = 429, description = "`replay_busy`: another replay is running on this host", body = crate::error::ErrorBody)))]
pub(crate) async fn replay(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Json(body): Json<ReplayRequest>,
) -> ApiResult<Json<Replayed>> {
    who.require(Role::Operator)?;
    visible(&api, &who, &id).await?;
    if body.frame.is_some_and(|f| f > i64::MAX as u64) {
        return Err(ApiError::field("frame", "frame must be at most 2^63-1"));
    }
    let Ok(_one) = api.replays.try_acquire() else {
        return Err(ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "replay_busy",
                "another replay is running on this host; try again when it ends",
            )
        });
    };
    let options = ReplayOptions {
        frame: body.frame,
        plugins: match body.versions.unwrap_or_default() {
            ReplayVersions::Recorded => ReplayPlugins::Recorded,
            ReplayVersions::Current => ReplayPlugins::Current,
        },
    };
    let report = api.engine.replay(&id, options).await?;
    Ok(Json(report.into()))
}

/// The traces of the most recent runs.
#[utoipa::path(get, path = "/api/v1/frames", tag = "frames", security(("key" = [])),
    params(FramesQuery),
    responses((status = 200, body = Vec<Object>), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn frames(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<FramesQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let last = q.last.unwrap_or(10);
    if !(1..=100).contains(&last) {
        return Err(ApiError::field("last", "last must be between 1 and 100"));
    }
    let traces = api.engine.recent_traces(200);
    let visible: Vec<Value> = traces
        .iter()
        .rev()
        .filter(|t| {
            api.engine
                .thread_project(&t.thread)
                .is_some_and(|p| who.sees(&p))
        })
        .take(last)
        .map(|t| serde_json::to_value(t.as_ref()).unwrap_or_default())
        .collect();
    Ok(Json(visible))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list covers every status the engine has: serde's own refusal of
    /// an unknown name lists the same names.
    #[test]
    fn every_run_status_parses_and_no_other_name_does() {
        for s in RUN_STATUSES {
            assert_eq!(run_status(s.as_str()).unwrap(), s);
            let wire = serde_json::to_value(s).unwrap();
            assert_eq!(wire, s.as_str());
        }
        let e = run_status("sleeping").unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.field.as_deref()),
            ("invalid_request", Some("status"))
        );
        let serde = serde_json::from_str::<RunStatus>("\"sleeping\"")
            .unwrap_err()
            .to_string();
        let mut expected: Vec<&str> = serde.split('`').skip(3).step_by(2).collect();
        let mut listed: Vec<&str> = RUN_STATUSES.iter().map(|s| s.as_str()).collect();
        expected.sort_unstable();
        listed.sort_unstable();
        assert_eq!(listed, expected, "{serde}");
    }
}
