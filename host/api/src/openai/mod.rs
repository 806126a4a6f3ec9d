//! The OpenAI-compatible endpoint under `/v1`, beside the operators'
//! `/api/v1`: OpenAI's clients and tools run weft's graphs as if they were
//! models (see docs/openai.md).
//!
//! - `GET /v1/models`, `GET /v1/models/{id}`: the graphs this host serves,
//!   and `weft`, the alias of the active graph;
//! - `POST /v1/chat/completions`: the last message, the user's, goes to
//!   the graph's entry node as a run on a thread; the answer is the run's
//!   reply, whole or streamed (`stream: true`).
//!
//! **Conversations are threads.** A request without a thread starts a new
//! one; `metadata.thread_id` (or the `X-Weft-Thread` header) continues
//! one, with its history and memory, so the earlier messages a client
//! sends again are not replayed: weft has them. Every answer names its
//! thread (`X-Weft-Thread` and `thread_id` in the body).
//!
//! Keys, roles, projects, rate limits and budgets are `/api/v1`'s: the same
//! middleware checks the key and the limit before a handler runs (viewers
//! list models, operators run graphs; a project key's threads are in its
//! project, and another project's thread is not found). Errors are in
//! OpenAI's shape ([`error`]).

mod answer;
mod error;
mod request;
pub(crate) mod run;
mod stream;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Router};
use weft_engine::{DEFAULT_PROJECT, Inbound, LoadedGraph};

use error::OpenAiError;
pub(crate) use error::in_openai_shape;
use request::{ChatRequest, THREAD_KEY};
use run::{RunInfo, Step, Watch};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{Body, Path};
use crate::ids::ThreadId;
use crate::routes::access;

/// The model id that names whichever graph is active.
pub(crate) const ACTIVE_ALIAS: &str = "weft";

/// The header that names the conversation's thread, in requests and
/// answers.
pub(crate) const THREAD_HEADER: HeaderName = HeaderName::from_static("x-weft-thread");

/// The header naming the run that made an answer.
pub(crate) const RUN_HEADER: HeaderName = HeaderName::from_static("x-weft-run");

/// The `/v1` routes (they need a key; see [`crate::Api::router`]).
pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/{*rest}", any(unknown))
}

type Result<T> = std::result::Result<T, OpenAiError>;

/// The graph a model id names: a served graph of that name, else (for the
/// alias) the active one.
fn graph_of(api: &Api, model: &str) -> Result<Arc<LoadedGraph>> {
    if let Some(graph) = api.catalog.get(model) {
        return Ok(graph);
    }
    if model == ACTIVE_ALIAS {
        return api.catalog.active().ok_or_else(|| {
            OpenAiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_graph",
                "no graph is active",
            )
        });
    }
    Err(OpenAiError::model_not_found(model))
}

/// The graphs served, by name, and the alias of the active one.
fn model_ids(api: &Api) -> Vec<String> {
    let mut ids: Vec<String> = api
        .catalog
        .all()
        .iter()
        .map(|g| g.graph().name().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    if api.catalog.active().is_some() && !ids.iter().any(|id| id == ACTIVE_ALIAS) {
        ids.push(ACTIVE_ALIAS.to_owned());
    }
    ids
}

/// `GET /v1/models`: the graphs a key may run (every served graph: graphs
/// are host-wide), and the active graph's alias.
async fn models(State(api): State<Arc<Api>>) -> Response {
    let data = model_ids(&api)
        .iter()
        .map(|id| answer::Model::new(id, api.started_unix))
        .collect();
    axum::Json(answer::ModelList {
        object: "list",
        data,
    })
    .into_response()
}

/// `GET /v1/models/{id}`.
async fn model(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Result<Response> {
    graph_of(&api, &id)?;
    Ok(axum::Json(answer::Model::new(&id, api.started_unix)).into_response())
}

/// Any other path under `/v1`.
async fn unknown(method: axum::http::Method, uri: axum::http::Uri) -> OpenAiError {
    OpenAiError::new(
        StatusCode::NOT_FOUND,
        "unknown_url",
        format!(
            "invalid URL ({method} {}): weft serves /v1/models and /v1/chat/completions",
            uri.path()
        ),
    )
}

/// The thread asked for: the header's or `metadata.thread_id` (the same
/// one when both are given).
fn thread_asked(headers: &HeaderMap, request: &ChatRequest) -> Result<Option<ThreadId>> {
    let header = headers
        .get(&THREAD_HEADER)
        .map(|v| {
            let text = v.to_str().map_err(|_| "it is not text".to_owned())?;
            ThreadId::parse(text).map_err(|e| e.to_string())
        })
        .transpose()
        .map_err(|why| {
            OpenAiError::invalid(
                THREAD_HEADER.as_str(),
                "invalid_value",
                format!("the {THREAD_HEADER} header is not a thread id: {why}"),
            )
        })?;
    match (header, &request.thread) {
        (Some(h), Some(m)) if h != *m => Err(OpenAiError::invalid(
            &format!("metadata.{THREAD_KEY}"),
            "invalid_value",
            format!(
                "the {THREAD_HEADER} header (`{h}`) and metadata.{THREAD_KEY} (`{m}`) name different threads"
            ),
        )),
        (Some(h), _) => Ok(Some(h)),
        (None, m) => Ok(m.clone()),
    }
}

/// Why a budget refuses the thread's next run before it starts, if one
/// does: its token budget or its project's money budget is spent.
fn spent_budget(api: &Api, thread: &str) -> Option<String> {
    if let Some(b) = api.engine.budget(thread).filter(|b| b.exhausted) {
        return Some(format!(
            "thread `{thread}`'s token budget is spent ({} of {} tokens used); an operator raises it (PUT /api/v1/usage/threads/{thread}/budget)",
            b.used, b.limit
        ));
    }
    let project = api.engine.thread_project(thread)?;
    api.engine.project_budget(&project).exhausted.then(|| {
        format!(
            "project `{project}`'s money budget is spent; an operator raises it (PUT /api/v1/usage/projects/{project}/budget) or the next window begins"
        )
    })
}

/// `POST /v1/chat/completions`: one run of the graph `model` names, on the
/// conversation's thread; its reply whole, or streamed.
async fn chat_completions(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response> {
    who.require(Role::Operator)?;
    let request = request::parse(&body)?;
    let asked = thread_asked(&headers, &request)?;
    let graph = graph_of(&api, &request.model)?;
    if let Some(id) = &asked {
        access::may_use(&api, &who, id.as_str())
            .await
            .map_err(|e| match e.status {
                // Another project's thread: as if there were none.
                StatusCode::NOT_FOUND => OpenAiError {
                    param: Some(format!("metadata.{THREAD_KEY}")),
                    ..OpenAiError::new(StatusCode::NOT_FOUND, "thread_not_found", e.message)
                },
                _ => e.into(),
            })?;
    }
    let project = who.project().unwrap_or(DEFAULT_PROJECT);
    let thread = api
        .engine
        .open_thread_in(project, asked.as_ref().map(ThreadId::as_str), &graph);
    if let Some(why) = spent_budget(&api, &thread) {
        return Err(OpenAiError::budget_spent(why));
    }
    // Subscribed before the run starts, so that none of its text is missed.
    let events = api.engine.subscribe();
    let handle = api
        .engine
        .start_run(&thread, Inbound::user_text(&request.text))
        .await?;
    api.metrics.run_started();
    let info = RunInfo {
        thread,
        run: handle.run.clone(),
        graph: graph.graph().name().to_owned(),
        version: graph.version_id().to_owned(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let ids = run_headers(&info);
    let mut watch = Watch::new(Arc::clone(&api), info, events, handle);
    if request.stream {
        return Ok((ids, stream::events(watch, request.include_usage)).into_response());
    }
    let trace = loop {
        if let Step::Ended(result) = watch.next().await {
            break result?;
        }
    };
    let completion = answer::Completion::new(&watch.info, &trace);
    Ok((ids, axum::Json(completion)).into_response())
}

/// `X-Weft-Thread` and `X-Weft-Run` of an answer.
fn run_headers(info: &RunInfo) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [(THREAD_HEADER, &info.thread), (RUN_HEADER, &info.run)] {
        // Thread ids are checked text (no control characters); a run id
        // is the thread's with a suffix.
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    headers
}
