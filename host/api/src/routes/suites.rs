//! Scenario suites on a running host (`docs/testing.md`): `POST` starts
//! one against a graph this host serves, its progress goes out on the
//! event stream as `test` events on the thread each step runs on, and the
//! result is kept for `GET` (the last [`KEPT`] suites of the host).
//!
//! The suite runs in the key's project, on threads of its own, like any
//! client's conversation: it spends the project's budget and is seen only
//! by keys that see the project.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_engine::EventBody;
use weft_engine::scenario::{self, SuiteEvent, SuiteResult};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::routes::access::{active_graph, project_for, random_hex};

/// Suites kept for `GET` (the oldest finished one goes first).
pub const KEPT: usize = 50;
/// Suites running at once on a host.
pub const RUNNING: usize = 4;
/// The longest suite text accepted, in bytes.
pub const MAX_SUITE_BYTES: usize = 256 * 1024;

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/tests", post(start).get(list))
        .route("/api/v1/tests/{id}", get(detail))
}

/// The suites of a host: running and recently finished.
#[derive(Debug, Default)]
pub(crate) struct Tests {
    kept: Mutex<VecDeque<TestView>>,
}

impl Tests {
    fn with<T>(&self, f: impl FnOnce(&mut VecDeque<TestView>) -> T) -> T {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut kept)
    }
}

/// A suite to run.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// The suite: Markdown, as in a suite file (`docs/testing.md`).
    #[schema(example = "# Smoke\n\n- send: hello\n- expect reply not empty\n")]
    pub suite: String,
    /// A file name for its messages (and its name, without a `# ` title).
    pub name: Option<String>,
    /// The graph to run it on; the active graph when absent.
    pub graph: Option<String>,
    /// Its project (a key limited to a project: its own; default
    /// `default`).
    pub project: Option<String>,
}

/// A suite, running or finished.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestView {
    /// `test_…`.
    pub id: String,
    /// The suite's name.
    pub suite: String,
    /// The graph it runs on.
    pub graph: String,
    /// Its project.
    pub project: String,
    /// `running`, `passed` or `failed`.
    pub status: String,
    /// Its steps.
    pub steps: usize,
    /// Steps that passed and failed so far.
    pub passed: usize,
    /// Steps that failed so far.
    pub failed: usize,
    /// The thread its current (or last) step runs on: follow
    /// `GET /api/v1/events?thread=` for its `test` events.
    pub thread_id: String,
    /// When it started, Unix ms.
    pub started_ms: u64,
    /// When it ended, Unix ms.
    pub ended_ms: Option<u64>,
    /// Every step's outcome so far (`weft test --json`'s `steps`).
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<scenario::StepResult>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Starts a scenario suite.
#[utoipa::path(post, path = "/api/v1/tests", operation_id = "start_test", tag = "tests", security(("key" = [])),
    request_body = TestRequest,
    responses((status = 202, description = "started: follow its `test` events, or poll `GET /api/v1/tests/{id}`", body = TestView),
        (status = 400, description = "`invalid_suite`: the suite cannot be used (the message names the line); `invalid_request`: a field is wrong", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`: a read-only key", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`: no such graph", body = crate::error::ErrorBody),
        (status = 409, description = "`too_many_tests`: 4 suites are running on this host", body = crate::error::ErrorBody),
        (status = 503, description = "`no_graph`: no graph is active", body = crate::error::ErrorBody)))]
pub(crate) async fn start(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Json(req): Json<TestRequest>,
) -> ApiResult<(StatusCode, Json<TestView>)> {
    who.require(Role::Operator)?;
    let project = project_for(&who, req.project)?;
    if req.suite.len() > MAX_SUITE_BYTES {
        return Err(ApiError::field(
            "suite",
            format!(
                "the suite has {} bytes; at most {MAX_SUITE_BYTES}",
                req.suite.len()
            ),
        ));
    }
    let file = req.name.unwrap_or_else(|| "suite.md".to_owned());
    let suite = scenario::parse(&file, &req.suite)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_suite", e.to_string()))?;
    let graph = match &req.graph {
        Some(name) => api
            .catalog
            .get(name)
            .ok_or_else(|| ApiError::not_found(format!("no graph `{name}`")))?,
        None => active_graph(&api)?,
    };
    let id = format!("test_{}", random_hex(8)?);
    let view = TestView {
        id: id.clone(),
        suite: suite.name.clone(),
        graph: graph.graph().name().to_owned(),
        project: project.clone(),
        status: "running".into(),
        steps: suite.steps.len(),
        passed: 0,
        failed: 0,
        thread_id: String::new(),
        started_ms: now_ms(),
        ended_ms: None,
        results: Vec::new(),
    };
    api.tests.with(|kept| {
        if kept.iter().filter(|t| t.ended_ms.is_none()).count() >= RUNNING {
            return Err(ApiError::conflict(
                "too_many_tests",
                format!("{RUNNING} suites are running on this host; wait for one to end"),
            ));
        }
        while kept.len() >= KEPT {
            match kept.iter().position(|t| t.ended_ms.is_some()) {
                Some(oldest) => {
                    kept.remove(oldest);
                }
                None => break,
            }
        }
        kept.push_back(view.clone());
        Ok(())
    })?;

    let task_api = Arc::clone(&api);
    tokio::spawn(async move {
        let api = task_api;
        let engine = Arc::clone(&api.engine);
        let update = |f: &dyn Fn(&mut TestView)| {
            api.tests.with(|kept| {
                if let Some(t) = kept.iter_mut().find(|t| t.id == id) {
                    f(t);
                }
            });
        };
        let result: SuiteResult =
            scenario::run_suite(&engine, &graph, &project, &suite, |thread, event| {
                update(&|t: &mut TestView| {
                    t.thread_id = thread.to_owned();
                    if let SuiteEvent::StepResult { result, .. } = &event {
                        if result.ok {
                            t.passed += 1;
                        } else {
                            t.failed += 1;
                        }
                        t.results.push((**result).clone());
                    }
                });
                let mut body = serde_json::to_value(&event).unwrap_or_default();
                if let Some(map) = body.as_object_mut() {
                    map.insert("test".into(), id.clone().into());
                }
                engine.publish(thread, "", EventBody::Test(body));
            })
            .await;
        update(&|t: &mut TestView| {
            t.status = if result.ok() { "passed" } else { "failed" }.into();
            t.ended_ms = Some(now_ms());
        });
    });
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// The suites of this host the key may see, newest first.
#[utoipa::path(get, path = "/api/v1/tests", operation_id = "list_tests", tag = "tests", security(("key" = [])),
    responses((status = 200, body = Vec<TestView>)))]
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> Json<Vec<TestView>> {
    Json(api.tests.with(|kept| {
        kept.iter()
            .rev()
            .filter(|t| who.sees(&t.project))
            .cloned()
            .collect()
    }))
}

/// One suite, with every step's outcome so far.
#[utoipa::path(get, path = "/api/v1/tests/{id}", operation_id = "test_detail", tag = "tests", security(("key" = [])),
    params(("id" = String, Path, description = "test id")),
    responses((status = 200, body = TestView),
        (status = 404, description = "`not_found`: no such suite on this host (or another project's)", body = crate::error::ErrorBody)))]
pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<TestView>> {
    api.tests
        .with(|kept| {
            kept.iter()
                .find(|t| t.id == id && who.sees(&t.project))
                .cloned()
        })
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no test `{id}` on this host")))
}
