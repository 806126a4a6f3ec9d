//! Capabilities (the plugins operators can put to work, with schemas and
//! an example payload), the global message history, usage per node and
//! per model, and project money budgets.

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use weft_engine::{Ledger, LoadedGraph};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::{MessageView, Page};

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/capabilities", get(capabilities))
        .route("/api/v1/capabilities/{name}", get(capability))
        .route("/api/v1/messages", get(messages))
        .route("/api/v1/usage/nodes/{node}", get(usage_node))
        .route("/api/v1/usage/models/{model}", get(usage_model))
        .route("/api/v1/usage/reset", post(reset_usage))
        .route(
            "/api/v1/usage/projects/{project}/budget",
            get(project_budget).put(set_project_budget),
        )
}

/// A capability: a plugin, and the agents of the active graph that run it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    /// Plugin name.
    pub name: String,
    /// Version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Host capabilities it asks for.
    pub needs: Vec<String>,
    /// Agents (nodes) of the active graph running it.
    pub agents: Vec<String>,
}

/// A capability with its schemas and an example of what it accepts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityDetail {
    /// The capability.
    #[serde(flatten)]
    pub capability: Capability,
    /// JSON Schema of its input.
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// JSON Schema of its output.
    #[schema(value_type = Object)]
    pub output_schema: Value,
    /// A payload that fits the input schema.
    #[schema(value_type = Object)]
    pub example: Value,
}

/// A minimal value that fits `schema` (its own example when it has one).
pub(crate) fn example(schema: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(e) = schema.get("examples").and_then(|e| e.get(0)) {
        return e.clone();
    }
    for key in ["example", "default", "const"] {
        if let Some(e) = schema.get(key) {
            return e.clone();
        }
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema.get(key).and_then(|e| e.get(0)) {
            return example(first, depth + 1);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "object",
    };
    match kind {
        "object" => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = serde_json::Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    if required.contains(&name.as_str()) {
                        out.insert(name.clone(), example(sub, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = schema
                .get("items")
                .map_or(Value::Null, |i| example(i, depth + 1));
            Value::Array(vec![item; min.max(1) as usize])
        }
        "string" => {
            let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            Value::String("text".chars().cycle().take(min.max(4)).collect())
        }
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(0)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0)),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

/// A capability with its input and output schemas.
fn capability_of(
    p: &weft_engine::PluginSet,
    name: &str,
    active: Option<&LoadedGraph>,
) -> Option<(Capability, Value, Value)> {
    let plugin = p.get(&weft_engine::PluginRef::Name(name.to_owned()))?;
    let info = plugin.info().clone();
    let agents = active
        .map(|g| {
            g.graph()
                .nodes()
                .iter()
                .filter(|n| n.info.name == info.name)
                .map(|n| n.name.clone())
                .collect()
        })
        .unwrap_or_default();
    Some((
        Capability {
            name: info.name.clone(),
            version: info.version.clone(),
            description: info.description.clone(),
            needs: info.capabilities.iter().map(|c| c.to_string()).collect(),
            agents,
        },
        info.input_schema.clone(),
        info.output_schema.clone(),
    ))
}

/// What the host can do: its plugins.
#[utoipa::path(get, path = "/api/v1/capabilities", tag = "capabilities", security(("key" = [])),
    responses((status = 200, body = Vec<Capability>)))]
pub(crate) async fn capabilities(State(api): State<Arc<Api>>) -> Json<Vec<Capability>> {
    let active = api.graphs.active();
    let plugins = api.engine.plugins();
    Json(
        plugins
            .names()
            .iter()
            .filter_map(|n| capability_of(plugins, n, active.as_deref()).map(|(c, ..)| c))
            .collect(),
    )
}

/// One capability with its input and output schemas and an example payload.
#[utoipa::path(get, path = "/api/v1/capabilities/{name}", tag = "capabilities", security(("key" = [])),
    params(("name" = String, Path, description = "plugin name")),
    responses((status = 200, body = CapabilityDetail), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn capability(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
) -> ApiResult<Json<CapabilityDetail>> {
    let active = api.graphs.active();
    let (capability, input, output) = capability_of(api.engine.plugins(), &name, active.as_deref())
        .ok_or_else(|| ApiError::not_found(format!("no capability `{name}`")))?;
    Ok(Json(CapabilityDetail {
        capability,
        example: example(&input, 0),
        input_schema: input,
        output_schema: output,
    }))
}

/// Message history filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Only messages to or from this node.
    pub node: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u64>,
    /// Items to skip.
    pub offset: Option<u64>,
}

/// Every thread's messages, newest first (a project key: its project's).
#[utoipa::path(get, path = "/api/v1/messages", tag = "messages", security(("key" = [])),
    params(MessageQuery),
    responses((status = 200, body = Page<MessageView>), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn messages(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<MessageQuery>,
) -> ApiResult<Json<Page<MessageView>>> {
    let (limit, offset) = crate::routes::Paging {
        limit: q.limit,
        offset: q.offset,
    }
    .get()?;
    let store = api.engine.store().ok_or_else(|| {
        ApiError::unavailable("store_unavailable", "this host keeps no message history")
    })?;
    let page = store
        .node_messages(q.node, who.project.clone(), limit, offset)
        .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(MessageView::from).collect(),
        total: page.total,
        limit,
        offset,
    }))
}

/// Usage of one node (all projects; admins and unscoped keys).
#[utoipa::path(get, path = "/api/v1/usage/nodes/{node}", tag = "usage", security(("key" = [])),
    params(("node" = String, Path, description = "node name")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn usage_node(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(node): Path<String>,
) -> ApiResult<Json<Value>> {
    unscoped(&who)?;
    let b = api.engine.ledger().breakdown();
    let totals = b
        .by_node
        .get(&node)
        .ok_or_else(|| ApiError::not_found(format!("no usage for node `{node}`")))?;
    Ok(Json(json!({ "node": node, "totals": totals })))
}

/// Usage of one model (all projects; admins and unscoped keys).
#[utoipa::path(get, path = "/api/v1/usage/models/{model}", tag = "usage", security(("key" = [])),
    params(("model" = String, Path, description = "model name")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn usage_model(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(model): Path<String>,
) -> ApiResult<Json<Value>> {
    unscoped(&who)?;
    let b = api.engine.ledger().breakdown();
    let totals = b
        .by_model
        .get(&model)
        .ok_or_else(|| ApiError::not_found(format!("no usage for model `{model}`")))?;
    Ok(Json(json!({ "model": model, "totals": totals })))
}

/// Per-node and per-model totals mix projects: project keys get 404.
fn unscoped(who: &Principal) -> ApiResult<()> {
    match &who.project {
        None => Ok(()),
        Some(_) => Err(ApiError::not_found(
            "usage per node and per model spans projects; this key sees its project's totals at /api/v1/usage",
        )),
    }
}

/// A change of a project's money budget: `raise` adds to the limit;
/// `limit` (with `window`) replaces it; `unlimited: true` removes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectBudgetChange {
    /// Money to add to the limit.
    pub raise: Option<f64>,
    /// The new limit.
    pub limit: Option<f64>,
    /// With `limit`: daily, monthly or none (default none).
    pub window: Option<String>,
    /// Remove the limit.
    pub unlimited: Option<bool>,
}

/// A project's money budget: limit, spend in the current window, window.
#[utoipa::path(get, path = "/api/v1/usage/projects/{project}/budget", tag = "usage", security(("key" = [])),
    params(("project" = String, Path, description = "project")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn project_budget(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    who.check_project(&project)?;
    Ok(Json(
        serde_json::to_value(api.engine.project_budget(&project)).unwrap_or_default(),
    ))
}

/// Raises, sets or removes a project's money budget; its runs waiting on
/// it go on. Kept across restarts.
#[utoipa::path(put, path = "/api/v1/usage/projects/{project}/budget", tag = "usage", security(("key" = [])),
    params(("project" = String, Path, description = "project")), request_body = ProjectBudgetChange,
    responses((status = 200, body = Object), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn set_project_budget(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
    Json(change): Json<ProjectBudgetChange>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Operator)?;
    who.check_project(&project)?;
    if project.is_empty() || project.len() > 64 {
        return Err(ApiError::field(
            "project",
            "a project name has 1 to 64 characters",
        ));
    }
    let status = match (change.raise, change.limit, change.unlimited) {
        (Some(amount), None, None) => api.engine.raise_project_budget(&project, amount)?,
        (None, Some(limit), None) => {
            let window = match change.window.as_deref().unwrap_or("none") {
                "daily" => weft_engine::Window::Daily,
                "monthly" => weft_engine::Window::Monthly,
                "none" => weft_engine::Window::None,
                other => {
                    return Err(ApiError::field(
                        "window",
                        format!("unknown window `{other}`: daily, monthly or none"),
                    ));
                }
            };
            let budget = weft_engine::MoneyBudget::new(limit, window)
                .map_err(|e| ApiError::field("limit", e.to_string()))?;
            api.engine.set_project_budget(&project, Some(budget))?
        }
        (None, None, Some(true)) => api.engine.set_project_budget(&project, None)?,
        _ => {
            return Err(ApiError::field(
                "raise",
                "give exactly one of `raise`, `limit` (with `window`) and `unlimited: true`",
            ));
        }
    };
    Ok(Json(serde_json::to_value(status).unwrap_or_default()))
}

/// Starts the reported usage totals over (admins). Usage events are kept
/// in the store: budgets are not affected, and the reset survives restarts.
#[utoipa::path(post, path = "/api/v1/usage/reset", tag = "usage", security(("key" = [])),
    responses((status = 200, body = Object), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn reset_usage(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Admin)?;
    let at = api.engine.reset_usage().await?;
    tracing::warn!(key = %who.key, at_ms = at, "usage totals reset");
    Ok(Json(json!({ "sinceMs": at })))
}
