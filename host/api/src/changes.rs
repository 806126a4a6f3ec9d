//! Changing the running host: the diff-based reload of the served graphs
//! and plugin swaps (reloaded from their file or uploaded), each published
//! as a host event on the streams.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use weft_engine::{EventBody, LoadedGraph, PluginSwap};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Body, Json, Path};

/// The largest component an upload may carry (a Python node is ~20 MB).
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/organism/reload", post(reload))
        .route("/api/v1/organism/config/reload", post(reload_config))
        .route("/api/v1/plugins/{name}/reload", post(reload_plugin))
        .route(
            "/api/v1/plugins/{name}",
            put(upload_plugin).layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
        )
}

/// What a reload changed in one graph.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphChange {
    /// Graph name.
    pub name: String,
    /// The version new threads run now.
    pub version_id: String,
    /// The version before.
    pub previous_version_id: String,
    /// Nodes added.
    pub added: Vec<String>,
    /// Nodes removed.
    pub removed: Vec<String>,
    /// Nodes whose plugin, config, grants, limits, model or peers changed.
    pub changed: Vec<String>,
}

/// The result of a reload.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReloadReport {
    /// Graphs that changed (unchanged ones are not listed).
    pub graphs: Vec<GraphChange>,
    /// Graph files that failed to load (the old version keeps serving).
    pub errors: Vec<ReloadError>,
}

/// A graph that did not reload.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadError {
    /// The file.
    pub file: String,
    /// Why.
    pub message: String,
}

/// What a node is, for comparing versions.
fn fingerprint(g: &LoadedGraph) -> BTreeMap<String, String> {
    g.graph()
        .nodes()
        .iter()
        .map(|n| {
            let hash = g
                .plugin(&n.name)
                .map(|p| p.hash_hex().to_owned())
                .unwrap_or_default();
            let grants: Vec<String> = n.grants.iter().map(|c| c.to_string()).collect();
            let print = json!({
                "plugin": hash, "config": n.config, "grants": grants, "model": n.model,
                "everyTick": n.every_tick, "peers": n.peers,
                "limits": format!("{:?}", n.limits),
            });
            (n.name.clone(), print.to_string())
        })
        .collect()
}

/// Reloads every served graph from its file and reports, per graph, the
/// nodes added, removed and changed. New threads run the new versions;
/// threads and runs in flight keep theirs. A file that no longer loads
/// leaves its old version serving.
#[utoipa::path(post, path = "/api/v1/organism/reload", tag = "organism", security(("key" = [])),
    responses((status = 200, body = ReloadReport), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn reload(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<ReloadReport>> {
    who.require(Role::Admin)?;
    Ok(Json(api.reload_graphs().await))
}

impl Api {
    /// Reloads every served graph from its file (see `POST
    /// /api/v1/organism/reload`); each changed graph is a `graph_changed`
    /// event.
    pub async fn reload_graphs(&self) -> ReloadReport {
        let mut report = ReloadReport {
            graphs: Vec::new(),
            errors: Vec::new(),
        };
        for old in self.graphs.all() {
            let file = old.graph().file().to_owned();
            let new = match self.engine.load_graph(&file).await {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "graph not reloaded; the old version keeps serving");
                    report.errors.push(ReloadError {
                        file: file.display().to_string(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            if new.version_id() == old.version_id() {
                continue;
            }
            let (before, after) = (fingerprint(&old), fingerprint(&new));
            let change = GraphChange {
                name: new.graph().name().to_owned(),
                version_id: new.version_id().to_owned(),
                previous_version_id: old.version_id().to_owned(),
                added: after
                    .keys()
                    .filter(|k| !before.contains_key(*k))
                    .cloned()
                    .collect(),
                removed: before
                    .keys()
                    .filter(|k| !after.contains_key(*k))
                    .cloned()
                    .collect(),
                changed: after
                    .iter()
                    .filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v))
                    .map(|(k, _)| k.clone())
                    .collect(),
            };
            tracing::info!(graph = %change.name, added = ?change.added, removed = ?change.removed, changed = ?change.changed, "graph reloaded");
            self.graphs.replace(&old, new);
            self.engine.publish_host(EventBody::GraphChanged {
                graph: change.name.clone(),
                version: change.version_id.clone(),
                change: "edited".into(),
            });
            report.graphs.push(change);
        }
        report
    }

    /// Serves the graph file at `path` if no served graph comes from it
    /// (`--watch` on a new file); a `graph_changed` event says so. Returns
    /// the graph's name, or `None` if the file is served already.
    pub async fn add_graph_file(&self, path: &FsPath) -> Result<Option<String>, ApiError> {
        let wanted = path.canonicalize().ok();
        let served = self.graphs.all().into_iter().any(|g| {
            g.graph()
                .file()
                .canonicalize()
                .is_ok_and(|f| Some(&f) == wanted.as_ref())
        });
        if served {
            return Ok(None);
        }
        let graph = self.engine.load_graph(path).await.map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "graph_invalid",
                e.to_string(),
            )
        })?;
        let name = graph.graph().name().to_owned();
        if self.graphs.get(&name).is_some() {
            return Err(ApiError::conflict(
                "graph_exists",
                format!("a graph named `{name}` is served from another file"),
            ));
        }
        let version = graph.version_id().to_owned();
        self.graphs.insert(graph);
        self.engine.publish_host(EventBody::GraphChanged {
            graph: name.clone(),
            version,
            change: "added".into(),
        });
        tracing::info!(graph = %name, file = %path.display(), "graph added");
        Ok(Some(name))
    }

    /// Loads the component at `path` (validating and compiling it off the
    /// request path) and swaps it in for the plugin of the same name; the
    /// served graphs that run it get new versions. `expected` is the name
    /// the component must describe itself with. A component that does not
    /// load or fit leaves the old version serving.
    pub async fn swap_plugin_file(
        &self,
        path: &FsPath,
        expected: Option<&str>,
    ) -> Result<SwapView, ApiError> {
        let bytes = tokio::fs::read(path).await.map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin_unreadable",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        self.swap_plugin_bytes(path.to_owned(), bytes, expected)
            .await
    }

    async fn swap_plugin_bytes(
        &self,
        path: PathBuf,
        bytes: Vec<u8>,
        expected: Option<&str>,
    ) -> Result<SwapView, ApiError> {
        let started = Instant::now();
        let plugin = self
            .engine
            .runtime()
            .load_bytes(path, bytes.clone())
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
            })?;
        let load_ms = started.elapsed().as_millis() as u64;
        if let Some(expected) = expected
            && plugin.info().name != expected
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin_rejected",
                format!(
                    "the component describes itself as `{}`, not `{expected}`",
                    plugin.info().name
                ),
            ));
        }
        let swap = self
            .engine
            .swap_plugin(plugin, bytes, &self.graphs.all())
            .await?;
        for (old, new) in &swap.graphs {
            self.graphs.replace(old, Arc::clone(new));
        }
        Ok(SwapView::new(&swap, load_ms))
    }
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

impl SwapView {
    fn new(swap: &PluginSwap, load_ms: u64) -> Self {
        Self {
            plugin: swap.plugin.clone(),
            version: swap.version.clone(),
            from: swap.from.clone(),
            to: swap.to.clone(),
            graphs: swap.graph_names(),
            unchanged: swap.unchanged,
            load_ms,
        }
    }
}

/// The plugin called `name`, or 404.
fn loaded_plugin(api: &Api, name: &str) -> ApiResult<weft_runtime::Plugin> {
    api.engine
        .plugins()
        .get(&weft_engine::PluginRef::Name(name.to_owned()))
        .ok_or_else(|| ApiError::not_found(format!("no plugin `{name}`")))
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
    who.require(Role::Admin)?;
    let path = loaded_plugin(&api, &name)?.path().to_owned();
    let view = api.swap_plugin_file(&path, Some(&name)).await?;
    tracing::info!(plugin = %name, key = %who.key, to = %view.to, unchanged = view.unchanged, "plugin reloaded");
    Ok(Json(view))
}

/// Uploads a new version of a plugin (the component's bytes as the body,
/// up to 64 MiB), checked like a reload. Once it serves, it replaces the
/// plugin's file, so a restart (or `--watch`) keeps it.
#[utoipa::path(put, path = "/api/v1/plugins/{name}", tag = "plugins", security(("key" = [])),
    params(("name" = String, Path, description = "plugin name")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "the component's bytes (any content type is accepted, e.g. application/wasm)"),
    responses((status = 200, body = SwapView), (status = 404, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn upload_plugin(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<SwapView>> {
    who.require(Role::Admin)?;
    let path = loaded_plugin(&api, &name)?.path().to_owned();
    // The file is replaced only once the new version serves: written
    // beside it first, renamed over it after the swap.
    let staged = path.with_extension(format!("wasm.upload-{}", std::process::id()));
    let io = |e: std::io::Error| {
        ApiError::unavailable(
            "plugin_unwritable",
            format!("cannot write {}: {e}", staged.display()),
        )
    };
    tokio::fs::write(&staged, &body).await.map_err(io)?;
    let swapped = api
        .swap_plugin_bytes(path.clone(), Vec::from(body), Some(&name))
        .await;
    let view = match swapped {
        Ok(view) => view,
        Err(e) => {
            let _ = tokio::fs::remove_file(&staged).await;
            return Err(e);
        }
    };
    if let Err(e) = tokio::fs::rename(&staged, &path).await {
        // Serving already; only the file on disk is behind.
        tracing::error!(plugin = %name, file = %path.display(), error = %e, "the uploaded plugin serves but its file was not replaced: a restart loads the old one");
    }
    tracing::info!(plugin = %name, key = %who.key, to = %view.to, "plugin uploaded");
    Ok(Json(view))
}

/// What a config reload changed.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigReload {
    /// The file read.
    pub file: String,
    /// Sections applied now (`llm`, `budget`, `prices`).
    pub changed: Vec<String>,
    /// Sections that did not change.
    pub unchanged: Vec<String>,
    /// Sections that changed but take effect only at the next start
    /// (`store`, `api`).
    pub restart_needed: Vec<String>,
    /// Anything else worth knowing (e.g. `--script` answering instead of
    /// the configured providers).
    pub notes: Vec<String>,
    /// The config as operators see it now (no secrets).
    #[schema(value_type = Object)]
    pub public: serde_json::Value,
}

/// Re-reads the host's config file and applies what can change while
/// serving. A file that does not parse or validate changes nothing.
pub trait ConfigReloader: Send + Sync + std::fmt::Debug {
    /// Reloads; the error names the problem in the file.
    fn reload(&self) -> weft_runtime::capabilities::BoxFuture<'_, Result<ConfigReload, String>>;
}

impl Api {
    /// Re-reads the config file (see [`ConfigReloader`]).
    pub async fn reload_config(&self) -> Result<ConfigReload, ApiError> {
        let reloader = self.config.reloader.as_ref().ok_or_else(|| {
            ApiError::conflict(
                "no_config_file",
                "the host was started without a config file (--config); there is nothing to reload",
            )
        })?;
        let report = reloader.reload().await.map_err(|message| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "config_invalid", message)
        })?;
        *crate::write(&self.public_config) = report.public.clone();
        tracing::info!(changed = ?report.changed, restart_needed = ?report.restart_needed, "config reloaded");
        Ok(report)
    }
}

/// Re-reads the config file and applies providers, model routes, prices
/// and budgets without a restart; reports what changed (and what needs a
/// restart). A bad file changes nothing.
#[utoipa::path(post, path = "/api/v1/organism/config/reload", tag = "organism", security(("key" = [])),
    responses((status = 200, body = ConfigReload), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn reload_config(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<ConfigReload>> {
    who.require(Role::Admin)?;
    Ok(Json(api.reload_config().await?))
}
