//! Agent instances of a project (the seed Syndarix's lifecycle): spawn,
//! list, get, update, pause, resume, terminate, tasks and metrics.

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use weft_engine::{Instance, InstanceStatus};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::paging::{Page, Paging};

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/projects/{project}/agents", get(list).post(spawn))
        .route(
            "/api/v1/projects/{project}/agents/metrics",
            get(project_metrics),
        )
        .route(
            "/api/v1/projects/{project}/agents/{id}",
            get(detail).patch(update).delete(terminate),
        )
        .route("/api/v1/projects/{project}/agents/{id}/pause", post(pause))
        .route(
            "/api/v1/projects/{project}/agents/{id}/resume",
            post(resume),
        )
        .route("/api/v1/projects/{project}/agents/{id}/tasks", post(task))
        .route(
            "/api/v1/projects/{project}/agents/{id}/metrics",
            get(metrics),
        )
}

/// An agent instance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// Id.
    pub id: String,
    /// Project.
    pub project_id: String,
    /// Name.
    pub name: String,
    /// The plugin it runs.
    pub plugin: String,
    /// idle, working, waiting, paused or terminated.
    pub status: String,
    /// Its thread (tasks are runs on it).
    pub thread_id: String,
    /// The task in flight.
    pub current_run: Option<String>,
    /// Tasks finished.
    pub tasks_completed: u64,
    /// Tokens its tasks used.
    pub tokens_used: u64,
    /// Cost of its tasks.
    pub cost_incurred: f64,
    /// Its config.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Creation, Unix ms.
    pub created_ms: u64,
    /// Last change, Unix ms.
    pub updated_ms: u64,
    /// Termination, Unix ms.
    pub terminated_ms: Option<u64>,
}

impl From<Instance> for InstanceView {
    fn from(i: Instance) -> Self {
        let s = i.stored;
        Self {
            config: serde_json::from_str(&s.config).unwrap_or(Value::Null),
            id: s.id,
            project_id: s.project,
            name: s.name,
            plugin: s.plugin,
            status: s.status,
            thread_id: s.thread,
            current_run: i.current_run,
            tasks_completed: s.tasks_completed,
            tokens_used: i.tokens_used,
            cost_incurred: i.cost_incurred,
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
            terminated_ms: s.terminated_ms,
        }
    }
}

/// A new instance.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpawnRequest {
    /// Name for people (1 to 100 characters, not only spaces).
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// The plugin to run (its `describe` name, see `GET /plugins`).
    pub plugin: String,
    /// Must match the project in the path, when given.
    pub project_id: Option<String>,
    /// The served graph whose node the instance is spawned from (default:
    /// the active graph). The instance gets that node's grants, model,
    /// limits and config, never more (400 `not_in_graph` when the graph
    /// has no such node).
    pub graph: Option<String>,
    /// The node of that graph (default: the one node running `plugin`).
    pub node: Option<String>,
    /// Not accepted: an instance's config is its graph node's (400 when
    /// not empty).
    #[schema(value_type = Object)]
    pub config: Option<serde_json::Map<String, Value>>,
}

/// A change: a new name and/or a status clients may set (idle, paused,
/// terminated).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// New name (1 to 100 characters, not only spaces).
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// New status.
    pub status: Option<String>,
}

/// A task for an instance.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// Message kind (default `task`).
    pub kind: Option<String>,
    /// The message body, validated against the plugin's input schema.
    #[schema(value_type = Object)]
    pub body: Value,
}

/// A task started.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskAccepted {
    /// The run carrying the task.
    pub run_id: String,
}

/// Counts and totals of a project's instances.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceMetrics {
    /// Instances.
    pub total: u64,
    /// Working.
    pub active: u64,
    /// Idle.
    pub idle: u64,
    /// Paused.
    pub paused: u64,
    /// Terminated.
    pub terminated: u64,
    /// Tasks finished.
    pub tasks_completed: u64,
    /// Tokens used.
    pub tokens_used: u64,
    /// Cost.
    pub cost_incurred: f64,
}

/// Instance list filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InstanceQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// Items to skip.
    pub offset: Option<u64>,
}

/// A status as a client names it.
fn status(s: &str) -> ApiResult<InstanceStatus> {
    serde_json::from_value(Value::String(s.to_owned())).map_err(|_| {
        ApiError::field(
            "status",
            format!("unknown status `{s}`: idle, working, waiting, paused or terminated"),
        )
    })
}

/// Spawns an instance of a plugin (idle) from a node of a served graph,
/// whose grants, model, limits and config it gets.
#[utoipa::path(post, path = "/api/v1/projects/{project}/agents", tag = "instances", security(("key" = [])),
    params(("project" = String, Path, description = "project (1 to 64 characters)", min_length = 1, max_length = 64)),
    request_body = SpawnRequest,
    responses((status = 201, body = InstanceView), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn spawn(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
    Json(req): Json<SpawnRequest>,
) -> ApiResult<(StatusCode, Json<InstanceView>)> {
    who.require(Role::Operator)?;
    who.check_project(&project)?;
    if req.project_id.as_ref().is_some_and(|p| *p != project) {
        return Err(ApiError::field(
            "projectId",
            "projectId must match the project in the path",
        ));
    }
    if req.name.trim().is_empty() || req.name.chars().count() > 100 {
        return Err(ApiError::field("name", "a name has 1 to 100 characters"));
    }
    if project.is_empty() || project.chars().count() > 64 {
        return Err(ApiError::field(
            "project",
            "a project name has 1 to 64 characters",
        ));
    }
    if req.config.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::field(
            "config",
            "an instance's config is its graph node's: spawn it from a graph node with that config",
        ));
    }
    let graph = match &req.graph {
        Some(name) => api.catalog.get(name).ok_or_else(|| {
            ApiError::field("graph", format!("no served graph is named `{name}`"))
        })?,
        None => crate::routes::access::active_graph(&api)?,
    };
    let instance = api
        .agents
        .spawn_instance(
            &project,
            &req.name,
            &req.plugin,
            &graph,
            req.node.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(instance.into())))
}

/// A project's instances.
#[utoipa::path(get, path = "/api/v1/projects/{project}/agents", tag = "instances", security(("key" = [])),
    params(("project" = String, Path, description = "project"), InstanceQuery),
    responses((status = 200, body = Page<InstanceView>), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
    Query(q): Query<InstanceQuery>,
) -> ApiResult<Json<Page<InstanceView>>> {
    who.check_project(&project)?;
    let paging = Paging::check(q.limit, q.offset)?;
    let only = q.status.as_deref().map(status).transpose()?;
    let all = api
        .agents
        .instances(Some(&project), only.map(InstanceStatus::as_str))
        .await;
    Ok(Json(Page::slice(all, paging, InstanceView::from)))
}

/// An instance.
#[utoipa::path(get, path = "/api/v1/projects/{project}/agents/{id}", tag = "instances", security(("key" = [])),
    params(("project" = String, Path, description = "project"), ("id" = String, Path, description = "instance id")),
    responses((status = 200, body = InstanceView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<InstanceView>> {
    who.check_project(&project)?;
    Ok(Json(api.agents.instance(&id, Some(&project)).await?.into()))
}

/// Renames an instance and/or moves it to a status clients may set; the
/// state machine decides (409 otherwise).
#[utoipa::path(patch, path = "/api/v1/projects/{project}/agents/{id}", tag = "instances", security(("key" = [])),
    params(("project" = String, Path, description = "project"), ("id" = String, Path, description = "instance id")),
    request_body = UpdateRequest,
    responses((status = 200, body = InstanceView), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn update(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path((project, id)): Path<(String, String)>,
    Json(req): Json<UpdateRequest>,
) -> ApiResult<Json<InstanceView>> {
    who.require(Role::Operator)?;
    who.check_project(&project)?;
    if let Some(name) = &req.name
        && (name.trim().is_empty() || name.chars().count() > 100)
    {
        return Err(ApiError::field("name", "a name has 1 to 100 characters"));
    }
    let mut instance = api.agents.instance(&id, Some(&project)).await?;
    if let Some(s) = &req.status {
        instance = api
            .agents
            .transition_instance(&id, Some(&project), status(s)?)
            .await?;
    }
    if let Some(name) = req.name {
        instance = api
            .agents
            .rename_instance(&id, Some(&project), &name)
            .await?;
    }
    Ok(Json(instance.into()))
}

async fn move_to(
    api: &Api,
    who: &Principal,
    project: &str,
    id: &str,
    to: InstanceStatus,
) -> ApiResult<Json<InstanceView>> {
    who.require(Role::Operator)?;
    who.check_project(project)?;
    Ok(Json(
        api.agents
            .transition_instance(id, Some(project), to)
            .await?
            .into(),
    ))
}

/// Pauses an instance (its task in flight waits).
#[utoipa::path(post, path = "/api/v1/projects/{project}/agents/{id}/pause", tag = "instances", security(("key" = [])),
    params(("project" = String, Path, description = "project"), ("id" = String, Path, description = "instance id")),
    responses((status = 200, body = InstanceView), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn pause(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<InstanceView>> {
    move_to(&api, &who, &project, &id, InstanceStatus::Paused).await
}

/// Resumes a paused instance.
#[utoipa::path(post, path = "/api/v1/projects/{project}/agents/{id}/resume", tag = "instances", security(("key" = [])),
    params(("project" = String, Path, description = "project"), ("id" = String, Path, description = "instance id")),
    responses((status = 200, body = InstanceView), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn resume(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<InstanceView>> {
    move_to(&api, &who, &project, &id, InstanceStatus::Idle).await
}

/// Terminates an instance (its task in flight is killed).
#[utoipa::path(delete, path = "/api/v1/projects/{project}/agents/{id}", tag = "instances", security(("key" = [])),
    params(("project" = String, Path, description = "project"), ("id" = String, Path, description = "instance id")),
    responses((status = 200, body = InstanceView), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn terminate(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<InstanceView>> {
    move_to(&api, &who, &project, &id, InstanceStatus::Terminated).await
}

/// Gives an idle instance a task.
#[utoipa::path(post, path = "/api/v1/projects/{project}/agents/{id}/tasks", tag = "instances", security(("key" = [])),
    params(("project" = String, Path, description = "project"), ("id" = String, Path, description = "instance id")),
    request_body = TaskRequest,
    responses((status = 202, body = TaskAccepted), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn task(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path((project, id)): Path<(String, String)>,
    Json(req): Json<TaskRequest>,
) -> ApiResult<(StatusCode, Json<TaskAccepted>)> {
    who.require(Role::Operator)?;
    who.check_project(&project)?;
    let kind = req.kind.unwrap_or_else(|| "task".into());
    let handle = api
        .agents
        .instance_task(&id, Some(&project), &kind, &req.body)
        .await?;
    api.metrics.run_started();
    Ok((
        StatusCode::ACCEPTED,
        Json(TaskAccepted {
            run_id: handle.run.clone(),
        }),
    ))
}

fn totals<'a>(instances: impl Iterator<Item = &'a Instance>) -> InstanceMetrics {
    let mut m = InstanceMetrics {
        total: 0,
        active: 0,
        idle: 0,
        paused: 0,
        terminated: 0,
        tasks_completed: 0,
        tokens_used: 0,
        cost_incurred: 0.0,
    };
    for i in instances {
        m.total += 1;
        match status(&i.stored.status) {
            Ok(InstanceStatus::Working) => m.active += 1,
            Ok(InstanceStatus::Idle) => m.idle += 1,
            Ok(InstanceStatus::Paused) => m.paused += 1,
            Ok(InstanceStatus::Terminated) => m.terminated += 1,
            Ok(InstanceStatus::Waiting) | Err(_) => {}
        }
        m.tasks_completed += i.stored.tasks_completed;
        m.tokens_used += i.tokens_used;
        m.cost_incurred += i.cost_incurred;
    }
    m
}

/// A project's instance counts and totals.
#[utoipa::path(get, path = "/api/v1/projects/{project}/agents/metrics", tag = "instances", security(("key" = [])),
    params(("project" = String, Path, description = "project")),
    responses((status = 200, body = InstanceMetrics)))]
pub(crate) async fn project_metrics(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
) -> ApiResult<Json<InstanceMetrics>> {
    who.check_project(&project)?;
    let all = api.agents.instances(Some(&project), None).await;
    Ok(Json(totals(all.iter())))
}

/// One instance's totals.
#[utoipa::path(get, path = "/api/v1/projects/{project}/agents/{id}/metrics", tag = "instances", security(("key" = [])),
    params(("project" = String, Path, description = "project"), ("id" = String, Path, description = "instance id")),
    responses((status = 200, body = InstanceMetrics), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn metrics(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<InstanceMetrics>> {
    who.check_project(&project)?;
    let one = api.agents.instance(&id, Some(&project)).await?;
    Ok(Json(totals(std::iter::once(&one))))
}
