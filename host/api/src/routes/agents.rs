//! The agents of the active graph (its nodes) with their state, and
//! pausing and resuming them, in one project or in every project.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use weft_engine::{LoadedGraph, Node};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::access;

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/agents/{name}", get(agent))
        .route("/api/v1/agents/{name}/pause", post(pause_agent))
        .route("/api/v1/agents/{name}/resume", post(resume_agent))
}

/// A node of a graph, with its state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    /// Node name.
    pub name: String,
    /// Graph it belongs to.
    pub graph: String,
    /// Plugin (`describe` name).
    pub plugin: String,
    /// Plugin version.
    pub plugin_version: String,
    /// Plugin content hash.
    pub plugin_hash: String,
    /// `idle` or `paused` in the project asked about.
    pub state: String,
    /// The project whose view this is (`null`: every project).
    pub project: Option<String>,
    /// What holds a paused node: a project's name, or `*` for a pause of
    /// every project.
    pub paused_for: Option<String>,
    /// Granted capabilities.
    pub grants: Vec<String>,
    /// Model its `llm` calls use.
    pub model: Option<String>,
    /// Invoked every frame.
    pub every_tick: bool,
    /// Nodes it may send to.
    pub peers: Vec<String>,
}

/// A node with its config and schemas.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentDetail {
    /// The node.
    #[serde(flatten)]
    pub agent: Agent,
    /// What the plugin says it does.
    pub description: String,
    /// Its config from the graph.
    #[schema(value_type = Object)]
    pub config: Value,
    /// JSON Schema of the messages it accepts.
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// JSON Schema of what it sends.
    #[schema(value_type = Object)]
    pub output_schema: Value,
    /// Limits: fuel, deadline, memory, output.
    #[schema(value_type = Object)]
    pub limits: Value,
}

/// The project an agent request acts in.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgentQuery {
    /// The project (default: the key's project; for a key of every
    /// project, every project).
    pub project: Option<String>,
}

fn agent_view(api: &Api, g: &LoadedGraph, node: &Node, project: Option<&str>) -> Agent {
    let plugin = g.plugin(&node.name);
    let pause = api.engine.pause_of(project, &node.name);
    Agent {
        name: node.name.clone(),
        graph: g.graph().name().to_owned(),
        plugin: node.info.name.clone(),
        plugin_version: node.info.version.clone(),
        plugin_hash: plugin.map(|p| p.hash_hex().to_owned()).unwrap_or_default(),
        state: if pause.is_some() { "paused" } else { "idle" }.into(),
        project: project.map(str::to_owned),
        paused_for: pause.map(|p| p.project.unwrap_or_else(|| "*".into())),
        grants: node.grants.iter().map(|c| c.to_string()).collect(),
        model: node.model.clone(),
        every_tick: node.every_tick,
        peers: node.peers.clone(),
    }
}

/// The node called `name` of `g`, or 404.
fn node<'g>(g: &'g LoadedGraph, name: &str) -> ApiResult<&'g Node> {
    g.graph()
        .node(name)
        .ok_or_else(|| ApiError::not_found(format!("no agent `{name}` in the active graph")))
}

/// The nodes of the active graph.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("key" = [])),
    params(AgentQuery),
    responses((status = 200, body = Vec<Agent>), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn agents(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<AgentQuery>,
) -> ApiResult<Json<Vec<Agent>>> {
    let project = who.scope(q.project.as_deref())?;
    let g = access::active_graph(&api)?;
    Ok(Json(
        g.graph()
            .nodes()
            .iter()
            .map(|n| agent_view(&api, &g, n, project.as_deref()))
            .collect(),
    ))
}

/// A node of the active graph, with its config and schemas.
#[utoipa::path(get, path = "/api/v1/agents/{name}", tag = "agents", security(("key" = [])),
    params(("name" = String, Path, description = "node name"), AgentQuery),
    responses((status = 200, body = AgentDetail), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn agent(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Query(q): Query<AgentQuery>,
) -> ApiResult<Json<AgentDetail>> {
    let project = who.scope(q.project.as_deref())?;
    let g = access::active_graph(&api)?;
    let node = node(&g, &name)?;
    let limits = serde_json::json!({
        "fuel": node.limits.fuel,
        "deadlineMs": node.limits.deadline.as_millis() as u64,
        "maxMemoryBytes": node.limits.max_memory,
        "maxOutputBytes": node.limits.max_output,
    });
    Ok(Json(AgentDetail {
        agent: agent_view(&api, &g, node, project.as_deref()),
        description: node.info.description.clone(),
        config: Value::Object(node.config.clone()),
        input_schema: node.info.input_schema.clone(),
        output_schema: node.info.output_schema.clone(),
        limits,
    }))
}

async fn set_paused(
    api: &Api,
    who: &Principal,
    name: &str,
    q: AgentQuery,
    paused: bool,
) -> ApiResult<Json<Agent>> {
    who.require(Role::Operator)?;
    let project = who.scope(q.project.as_deref())?;
    let scope = project.as_deref();
    let g = access::active_graph(api)?;
    let node = node(&g, name)?;
    let changed = if paused {
        api.engine.pause_of(scope, name).is_none() && api.engine.pause_stored(scope, name).await?
    } else {
        api.engine.resume_stored(scope, name).await?
    };
    if !changed {
        let message = match (paused, api.engine.pause_of(scope, name)) {
            (true, _) => format!("agent `{name}` is paused already"),
            (false, Some(p)) if p.project.is_none() => format!(
                "agent `{name}` is paused for every project; a key without a project scope resumes it"
            ),
            (false, _) => format!("agent `{name}` is not paused"),
        };
        return Err(ApiError::conflict("invalid_transition", message));
    }
    tracing::info!(agent = name, project = scope.unwrap_or("*"), paused, key = %who.key, "agent pause changed");
    Ok(Json(agent_view(api, &g, node, scope)))
}

/// Pauses a node in a project's threads (with a key of every project and
/// no `project`, in every thread): it gets no ticks; its messages wait.
#[utoipa::path(post, path = "/api/v1/agents/{name}/pause", tag = "agents", security(("key" = [])),
    params(("name" = String, Path, description = "node name"), AgentQuery),
    responses((status = 200, body = Agent), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn pause_agent(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Query(q): Query<AgentQuery>,
) -> ApiResult<Json<Agent>> {
    set_paused(&api, &who, &name, q, true).await
}

/// Lifts a pause of the same scope.
#[utoipa::path(post, path = "/api/v1/agents/{name}/resume", tag = "agents", security(("key" = [])),
    params(("name" = String, Path, description = "node name"), AgentQuery),
    responses((status = 200, body = Agent), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn resume_agent(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Query(q): Query<AgentQuery>,
) -> ApiResult<Json<Agent>> {
    set_paused(&api, &who, &name, q, false).await
}
