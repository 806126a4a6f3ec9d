//! The plugins loaded: list, hot swap (reloaded from their file or
//! uploaded; the engine's catalog does the swap), and capabilities (the
//! plugins operators can put to work, with schemas and an example
//! payload).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use weft_engine::catalog::SwapReport;
use weft_engine::{LoadedGraph, PluginRef, PluginSet};

use crate::Api;
use crate::auth::{Principal, Role};
use axum::http::StatusCode;

use crate::error::{ApiError, ApiResult, Json, Path};

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/plugins/{name}/reload", post(reload_plugin))
        .route(
            "/api/v1/plugins/{name}",
            // The upload streams to a file with its own limit
            // (`api.upload_limit_kb`), not through the body limit.
            put(upload_plugin).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/capabilities", get(capabilities))
        .route("/api/v1/capabilities/{name}", get(capability))
}

/// A loaded plugin.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginView {
    /// `describe` name.
    pub name: String,
    /// Version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// SHA-256 of the component.
    pub hash: String,
    /// WIT contract version it was built for.
    pub contract: String,
    /// Component size in bytes.
    pub size: usize,
    /// Capabilities it asks for.
    pub capabilities: Vec<String>,
}

/// What a plugin swap did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwapView {
    /// Plugin name.
    pub plugin: String,
    /// Its version now (`describe`).
    pub version: String,
    /// Content hash of the version replaced.
    pub from: Option<String>,
    /// Content hash of the version serving now.
    pub to: String,
    /// Served graphs whose nodes run it (new versions of each).
    pub graphs: Vec<String>,
    /// The component was the version serving already.
    pub unchanged: bool,
    /// Time to validate, compile (or find in the cache) and describe it.
    pub load_ms: u64,
}

impl From<SwapReport> for SwapView {
    fn from(r: SwapReport) -> Self {
        let graphs = r.swap.graph_names();
        let s = r.swap;
        Self {
            plugin: s.plugin,
            version: s.version,
            from: s.from,
            to: s.to,
            graphs,
            unchanged: s.unchanged,
            load_ms: r.load_ms,
        }
    }
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

/// Loaded plugins.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", security(("key" = [])),
    responses((status = 200, body = Vec<PluginView>)))]
pub(crate) async fn plugins(State(api): State<Arc<Api>>) -> Json<Vec<PluginView>> {
    Json(
        api.engine
            .plugins()
            .all()
            .into_iter()
            .map(|p| PluginView {
                name: p.info().name.clone(),
                version: p.info().version.clone(),
                description: p.info().description.clone(),
                hash: p.hash_hex().to_owned(),
                contract: p.contract().to_owned(),
                size: p.size(),
                capabilities: p
                    .info()
                    .capabilities
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            })
            .collect(),
    )
}

/// Reloads a plugin from its file. The new component is validated (world,
/// contract version, the capabilities it asks for against each graph's
/// grants, the graphs' validation) and compiled before any node switches;
/// runs in flight switch at their next frame. A refused component leaves
/// the old version serving.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/reload", tag = "plugins", security(("key" = [])),
    params(("name" = String, Path, description = "plugin name")),
    responses((status = 200, body = SwapView), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn reload_plugin(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<SwapView>> {
    who.require_host(Role::Admin)?;
    let path = api.catalog.plugin_file(&name)?;
    let view = SwapView::from(api.catalog.swap_plugin_file(&path, Some(&name)).await?);
    tracing::info!(plugin = %name, key = %who.key, to = %view.to, unchanged = view.unchanged, "plugin reloaded");
    Ok(Json(view))
}

/// Uploads a new version of a plugin (the component's bytes as the body,
/// up to `api.upload_limit_kb`, 64 MiB by default), checked like a reload.
/// The body streams to a temporary file of its own beside the plugin's file
/// (concurrent uploads never share one); once the new version serves, that
/// file replaces the plugin's file, so a restart (or `--watch`) keeps it. A
/// body over the limit is refused (413 `upload_too_large`) as soon as it
/// passes the limit; a file that cannot be written or renamed is a 503
/// `plugin_unwritable`, never a success.
#[utoipa::path(put, path = "/api/v1/plugins/{name}", tag = "plugins", security(("key" = [])),
    params(("name" = String, Path, description = "plugin name")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "the component's bytes (any content type is accepted, e.g. application/wasm)"),
    responses((status = 200, body = SwapView), (status = 404, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn upload_plugin(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> ApiResult<Json<SwapView>> {
    who.require_host(Role::Admin)?;
    let target = api.catalog.plugin_file(&name)?;
    let staged = stage_upload(&target, body, api.config.upload_limit).await?;
    let view = SwapView::from(api.catalog.upload_plugin_file(&name, &staged).await?);
    tracing::info!(plugin = %name, key = %who.key, to = %view.to, "plugin uploaded");
    Ok(Json(view))
}

/// Streams an upload into a new temporary file beside `target` (same
/// folder, so that it can be renamed over it), refusing it once it passes
/// `limit` bytes. The file is removed when the returned path drops (after a
/// rename there is nothing left to remove).
async fn stage_upload(
    target: &std::path::Path,
    body: axum::body::Body,
    limit: usize,
) -> ApiResult<tempfile::TempPath> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;

    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let unwritable = |e: std::io::Error| {
        ApiError::unavailable(
            "plugin_unwritable",
            format!("cannot write the upload beside {}: {e}", target.display()),
        )
    };
    let prefix = format!(
        ".{}.upload-",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let (file, path) = tempfile::Builder::new()
        .prefix(&prefix)
        .tempfile_in(dir)
        .map_err(unwritable)?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = body.into_data_stream();
    let mut written = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "body_unreadable",
                format!("the upload could not be read: {e}"),
            )
        })?;
        written = written.saturating_add(chunk.len());
        if written > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload_too_large",
                format!(
                    "the component is larger than the upload limit of {limit} bytes (api.upload_limit_kb)"
                ),
            ));
        }
        file.write_all(&chunk).await.map_err(unwritable)?;
    }
    file.sync_all().await.map_err(unwritable)?;
    Ok(path)
}

/// A minimal value that fits `schema` (its own example when it has one).
fn example(schema: &Value, depth: usize) -> Value {
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
    p: &PluginSet,
    name: &str,
    active: Option<&LoadedGraph>,
) -> Option<(Capability, Value, Value)> {
    let plugin = p.get(&PluginRef::Name(name.to_owned()))?;
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
    let active = api.catalog.active();
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
    let active = api.catalog.active();
    let (capability, input, output) = capability_of(api.engine.plugins(), &name, active.as_deref())
        .ok_or_else(|| ApiError::not_found(format!("no capability `{name}`")))?;
    Ok(Json(CapabilityDetail {
        capability,
        example: example(&input, 0),
        input_schema: input,
        output_schema: output,
    }))
}
