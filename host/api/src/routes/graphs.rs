//! The graphs served (the engine's catalog): list, detail with a
//! Cytoscape.js export, the active graph and switching it, and the
//! diff-based reload of every graph from its file.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use weft_engine::{CatalogError, LoadedGraph, catalog};

use weft_engine::store::{ParsedVersion, StoredGraphVersion, VersionChanges};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::access;
use crate::routes::paging::{Page, Paging};

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/graphs", get(graphs))
        .route("/api/v1/graphs/active", get(active_graph).put(switch_graph))
        .route("/api/v1/graphs/{name}", get(graph))
        .route("/api/v1/graphs/{name}/versions", get(graph_versions))
        .route("/api/v1/graphs/{name}/versions/{id}", get(graph_version))
        .route("/api/v1/organism/reload", post(reload))
}

/// A graph.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphView {
    /// Name.
    pub name: String,
    /// Declared version.
    pub version: Option<String>,
    /// Content hash of the file.
    pub hash: String,
    /// Version id (file and plugin hashes).
    pub version_id: String,
    /// The entry node.
    pub entry: String,
    /// Whether new threads run it.
    pub active: bool,
    /// Node names.
    pub nodes: Vec<String>,
}

/// A graph with its Cytoscape.js elements.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphDetail {
    /// The graph.
    #[serde(flatten)]
    pub graph: GraphView,
    /// `{elements: {nodes, edges}}` for Cytoscape.js.
    #[schema(value_type = Object)]
    pub cytoscape: Value,
}

/// What changed from the version before (of the same graph).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionChangesView {
    /// The version before.
    pub previous_version_id: String,
    /// Nodes added.
    pub added: Vec<String>,
    /// Nodes removed.
    pub removed: Vec<String>,
    /// Nodes whose settings in the file changed (plugin reference,
    /// config, grants, limits, model, peers …).
    pub changed: Vec<String>,
    /// Nodes that run another build of their plugin (another content hash).
    pub plugins: Vec<String>,
    /// Top-level settings of the file that changed (`entry`, `defaults`,
    /// `edges` …).
    pub settings: Vec<String>,
}

impl VersionChangesView {
    fn new(previous: &str, c: VersionChanges) -> Self {
        Self {
            previous_version_id: previous.to_owned(),
            added: c.added,
            removed: c.removed,
            changed: c.changed,
            plugins: c.plugins,
            settings: c.settings,
        }
    }
}

/// A version of a graph, as the store keeps it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphVersionView {
    /// Version id (file and plugin hashes).
    pub version_id: String,
    /// The graph's name.
    pub name: String,
    /// Content hash of the file.
    pub graph_hash: String,
    /// The file it was loaded from.
    pub file: String,
    /// When it was first kept (first served or first run), Unix
    /// milliseconds.
    pub created_ms: u64,
    /// Whether the host serves this version now.
    pub served: bool,
    /// Each node's plugin content hash.
    pub plugins: std::collections::BTreeMap<String, String>,
    /// What changed from the version before (`null`: the first version).
    pub changes: Option<VersionChangesView>,
}

/// A version of a graph with its file and a line diff against the version
/// before.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphVersionDetail {
    /// The version.
    #[serde(flatten)]
    pub version: GraphVersionView,
    /// The file's text.
    pub source: String,
    /// A unified diff of the file against the version before (`null`: the
    /// first version; empty: the file did not change, so the version
    /// differs by its plugin builds, in `changes.plugins`).
    pub diff: Option<String>,
}

/// Which graph to activate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchGraph {
    /// Graph name.
    pub name: String,
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

impl From<catalog::ReloadReport> for ReloadReport {
    fn from(r: catalog::ReloadReport) -> Self {
        Self {
            graphs: r
                .edited
                .into_iter()
                .map(|c| GraphChange {
                    name: c.name,
                    version_id: c.version_id,
                    previous_version_id: c.previous_version_id,
                    added: c.added,
                    removed: c.removed,
                    changed: c.changed,
                })
                .collect(),
            errors: r
                .failed
                .into_iter()
                .map(|f| ReloadError {
                    file: f.file.display().to_string(),
                    message: f.error.to_string(),
                })
                .collect(),
        }
    }
}

fn graph_view(api: &Api, g: &LoadedGraph) -> GraphView {
    let active = api
        .catalog
        .active()
        .is_some_and(|a| a.version_id() == g.version_id());
    GraphView {
        name: g.graph().name().to_owned(),
        version: g.graph().version().map(str::to_owned),
        hash: g.graph().content_hash().to_hex(),
        version_id: g.version_id().to_owned(),
        entry: g.graph().entry().name.clone(),
        active,
        nodes: g.graph().nodes().iter().map(|n| n.name.clone()).collect(),
    }
}

fn graph_detail(api: &Api, g: &LoadedGraph) -> GraphDetail {
    GraphDetail {
        graph: graph_view(api, g),
        cytoscape: g.graph().to_cytoscape(),
    }
}

/// Graphs served.
#[utoipa::path(get, path = "/api/v1/graphs", tag = "graphs", security(("key" = [])),
    responses((status = 200, body = Vec<GraphView>)))]
pub(crate) async fn graphs(State(api): State<Arc<Api>>) -> Json<Vec<GraphView>> {
    Json(
        api.catalog
            .all()
            .iter()
            .map(|g| graph_view(&api, g))
            .collect(),
    )
}

/// The active graph.
#[utoipa::path(get, path = "/api/v1/graphs/active", tag = "graphs", security(("key" = [])),
    responses((status = 200, body = GraphDetail), (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn active_graph(State(api): State<Arc<Api>>) -> ApiResult<Json<GraphDetail>> {
    let g = access::active_graph(&api)?;
    Ok(Json(graph_detail(&api, &g)))
}

/// Makes another graph active for the whole host: every project's new runs
/// run it (threads keep their history and memory; runs in flight finish on
/// their version). The active graph is host-wide, not per project, so only
/// an admin key without a project scope may switch it; a key limited to a
/// project gets 403, whatever its role.
#[utoipa::path(put, path = "/api/v1/graphs/active", tag = "graphs", security(("key" = [])),
    request_body = SwitchGraph,
    responses((status = 200, body = GraphView), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn switch_graph(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Json(body): Json<SwitchGraph>,
) -> ApiResult<Json<GraphView>> {
    who.require_host(Role::Admin)?;
    let g = api.catalog.switch_active(&body.name).map_err(|e| match e {
        CatalogError::UnknownGraph(_) => ApiError {
            field: Some("name".into()),
            ..ApiError::from(e)
        },
        e => e.into(),
    })?;
    tracing::info!(graph = %body.name, key = %who.key, "active graph switched");
    Ok(Json(graph_view(&api, &g)))
}

/// A graph with its Cytoscape export.
#[utoipa::path(get, path = "/api/v1/graphs/{name}", tag = "graphs", security(("key" = [])),
    params(("name" = String, Path, description = "graph name")),
    responses((status = 200, body = GraphDetail), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn graph(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
) -> ApiResult<Json<GraphDetail>> {
    let g = api
        .catalog
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("no graph `{name}`")))?;
    Ok(Json(graph_detail(&api, &g)))
}

/// A stored version as the API shows it, with what changed from the
/// version before (`changes`, `None` for the first).
fn version_view(
    api: &Api,
    v: &StoredGraphVersion,
    changes: Option<VersionChangesView>,
) -> GraphVersionView {
    let served = api
        .catalog
        .get(&v.version.name)
        .is_some_and(|g| g.version_id() == v.version.id);
    GraphVersionView {
        version_id: v.version.id.clone(),
        name: v.version.name.clone(),
        graph_hash: v.version.graph_hash.clone(),
        file: v.version.file.clone(),
        created_ms: v.created_ms,
        served,
        plugins: v
            .version
            .plugins
            .iter()
            .map(|(node, pin)| (node.clone(), pin.hash.clone()))
            .collect(),
        changes,
    }
}

/// A graph's versions, newest first (by the time each was first kept: when
/// the host first served it or a run first started on it), each with what
/// changed from the one before. Versions stay listed after the graph is no
/// longer served, while threads may still be pinned to them.
#[utoipa::path(get, path = "/api/v1/graphs/{name}/versions", tag = "graphs", security(("key" = [])),
    params(("name" = String, Path, description = "graph name"), Paging),
    responses((status = 200, body = Page<GraphVersionView>), (status = 404, body = crate::error::ErrorBody),
        (status = 503, description = "`store_unavailable`: this host keeps no store", body = crate::error::ErrorBody)))]
pub(crate) async fn graph_versions(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<Page<GraphVersionView>>> {
    let (limit, offset) = paging.get()?;
    let store = access::store(&api)?;
    // One more than the page: the version before the page's last one.
    let page = store
        .graph_versions(&name, limit.saturating_add(1), offset)
        .await?;
    if page.total == 0 && api.catalog.get(&name).is_none() {
        return Err(ApiError::not_found(format!("no graph `{name}`")));
    }
    // Each file parsed once, compared with its neighbours.
    let parsed: Vec<ParsedVersion<'_>> = page
        .items
        .iter()
        .map(|v| ParsedVersion::new(&v.version))
        .collect();
    let items = page
        .items
        .iter()
        .zip(&parsed)
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .enumerate()
        .map(|(i, (v, p))| {
            let changes = page
                .items
                .get(i + 1)
                .zip(parsed.get(i + 1))
                .map(|(b, bp)| VersionChangesView::new(&b.version.id, p.changes_since(bp)));
            version_view(&api, v, changes)
        })
        .collect();
    Ok(Json(Page {
        items,
        total: page.total,
        limit,
        offset,
    }))
}

/// One version of a graph: its file, what changed from the version before
/// and a line diff of the file.
#[utoipa::path(get, path = "/api/v1/graphs/{name}/versions/{id}", tag = "graphs", security(("key" = [])),
    params(("name" = String, Path, description = "graph name"), ("id" = String, Path, description = "version id")),
    responses((status = 200, body = GraphVersionDetail), (status = 404, body = crate::error::ErrorBody),
        (status = 503, description = "`store_unavailable`: this host keeps no store", body = crate::error::ErrorBody)))]
pub(crate) async fn graph_version(
    State(api): State<Arc<Api>>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<GraphVersionDetail>> {
    let store = access::store(&api)?;
    let missing = || ApiError::not_found(format!("graph `{name}` has no version `{id}`"));
    let stored = store.graph_version(&id).await?.ok_or_else(missing)?;
    if stored.version.name != name {
        return Err(missing());
    }
    let before = store.graph_version_before(&id).await?;
    let diff = before.as_ref().map(|b| {
        if b.version.source == stored.version.source {
            return String::new();
        }
        similar::TextDiff::from_lines(&b.version.source, &stored.version.source)
            .unified_diff()
            .context_radius(3)
            .header(&short(&b.version.id), &short(&stored.version.id))
            .to_string()
    });
    Ok(Json(GraphVersionDetail {
        version: version_view(
            &api,
            &stored,
            before.as_ref().map(|b| {
                VersionChangesView::new(&b.version.id, stored.version.changes_since(&b.version))
            }),
        ),
        source: stored.version.source.clone(),
        diff,
    }))
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Reloads every served graph from its file and reports, per graph, the
/// nodes added, removed and changed. New threads run the new versions;
/// threads and runs in flight keep theirs. A file that no longer loads
/// leaves its old version serving. Admin keys without a project scope
/// only.
#[utoipa::path(post, path = "/api/v1/organism/reload", tag = "organism", security(("key" = [])),
    responses((status = 200, body = ReloadReport), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn reload(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<ReloadReport>> {
    who.require_host(Role::Admin)?;
    Ok(Json(api.catalog.reload().await.into()))
}
