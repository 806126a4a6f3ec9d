//! The REST handlers and the JSON they exchange (camelCase).

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use weft_engine::store::{StoredMessage, StoredRun, StoredThread, ThreadFilter};
use weft_engine::{DEFAULT_PROJECT, Inbound, Ledger, LoadedGraph};

use crate::auth::{KeyInfo, Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::{Api, events};

type S = State<Arc<Api>>;
type Caller = Extension<Principal>;

/// Routes that need no key.
pub(crate) fn open() -> Router<Arc<Api>> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(crate::metrics::scrape))
}

/// Routes under `/api/v1` that need a key.
pub(crate) fn protected() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/organism", get(organism))
        .route("/api/v1/organism/config", get(organism_config))
        .route("/api/v1/organism/stop", post(organism_stop))
        .route("/api/v1/graphs", get(graphs))
        .route("/api/v1/graphs/active", get(active_graph).put(switch_graph))
        .route("/api/v1/graphs/{name}", get(graph))
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/agents/{name}", get(agent))
        .route("/api/v1/agents/{name}/pause", post(pause_agent))
        .route("/api/v1/agents/{name}/resume", post(resume_agent))
        .route("/api/v1/threads", get(threads))
        .route("/api/v1/threads/{id}", get(thread))
        .route(
            "/api/v1/threads/{id}/messages",
            get(thread_messages).post(send),
        )
        .route("/api/v1/threads/{id}/runs", get(thread_runs))
        .route("/api/v1/threads/{id}/frames", get(thread_frames))
        .route("/api/v1/threads/{id}/result", get(result))
        .route("/api/v1/threads/{id}/kill", post(kill))
        .route("/api/v1/threads/{id}/fork", post(fork))
        .route("/api/v1/inject", post(inject))
        .route("/api/v1/frames", get(frames))
        .route("/api/v1/usage", get(usage))
        .route("/api/v1/usage/threads", get(usage_threads))
        .route("/api/v1/usage/threads/{id}/budget", put(set_budget))
        .route("/api/v1/keys", get(keys).post(create_key))
        .route("/api/v1/keys/{id}", axum::routing::delete(revoke_key))
        .route("/api/v1/events", get(events::sse))
        .route("/api/v1/ws", get(crate::ws::chat))
        .route("/api/v1/ws/events", get(crate::ws::events))
        .merge(crate::instances::routes())
        .merge(crate::more::routes())
        .merge(crate::changes::routes())
}

// ---- shapes ----------------------------------------------------------------

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `stopping`.
    pub status: String,
}

/// The host at a glance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganismInfo {
    /// `running` or `stopping`.
    pub status: String,
    /// weft's version.
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// The graph new threads run.
    pub active_graph: Option<String>,
    /// Graphs served.
    pub graphs: usize,
    /// Plugins loaded.
    pub plugins: usize,
    /// Runs in flight.
    pub runs_in_flight: usize,
    /// Threads in the store (visible to the key).
    pub threads: u64,
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

/// Which graph to activate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchGraph {
    /// Graph name.
    pub name: String,
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

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T: ToSchema> {
    /// The items.
    pub items: Vec<T>,
    /// How many match in all.
    pub total: u64,
    /// The page size asked for.
    pub limit: u64,
    /// Items skipped.
    pub offset: u64,
}

/// Pagination.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u64>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

impl Paging {
    /// The page asked for, checked.
    pub(crate) fn get(&self) -> ApiResult<(u64, u64)> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::field("limit", "limit must be between 1 and 500"));
        }
        let offset = self.offset.unwrap_or(0);
        if offset > i64::MAX as u64 {
            return Err(ApiError::field("offset", "offset is too large"));
        }
        Ok((limit, offset))
    }
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

/// Thread list filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThreadQuery {
    /// Only threads with this status: running, completed, killed, frame_limit, store_failed, interrupted, budget_exhausted.
    pub status: Option<String>,
    /// Only threads in which this node ran.
    pub node: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u64>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

const STATUSES: &[&str] = &[
    "running",
    "completed",
    "killed",
    "frame_limit",
    "store_failed",
    "interrupted",
    "budget_exhausted",
    "waiting",
];

/// A message of a thread.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Id.
    pub id: String,
    /// Run.
    pub run: String,
    /// Receiver.
    pub to: String,
    /// Sender.
    pub from: String,
    /// Kind.
    pub kind: String,
    /// Body (JSON text).
    pub body: String,
    /// Frame it was sent in (absent: from outside).
    pub sent_frame: Option<u64>,
    /// Frame it was delivered in (absent: pending).
    pub delivered_frame: Option<u64>,
}

impl From<StoredMessage> for MessageView {
    fn from(m: StoredMessage) -> Self {
        Self {
            id: m.id,
            run: m.run,
            to: m.to,
            from: m.from,
            kind: m.kind,
            body: m.body,
            sent_frame: m.sent_seq,
            delivered_frame: m.delivered_seq,
        }
    }
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

/// A message into the engine.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InjectRequest {
    /// The thread (created if new); a new thread when absent.
    pub thread_id: Option<String>,
    /// Project of a new thread (keys limited to a project use theirs).
    pub project: Option<String>,
    /// The receiving node; the graph's entry when absent.
    pub to: Option<String>,
    /// Message kind (default `user`).
    pub kind: Option<String>,
    /// Chat text (for the entry node): body `{"text": …}`.
    pub text: Option<String>,
    /// A JSON body instead of `text`.
    #[schema(value_type = Object)]
    pub body: Option<Value>,
}

/// What an inject started.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// Thread.
    pub thread_id: String,
    /// Run.
    pub run_id: String,
    /// The message's id.
    pub message_id: String,
}

/// A chat message for a thread.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The text.
    pub text: String,
}

/// Where a thread's latest run stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultView {
    /// Thread.
    pub thread_id: String,
    /// Whether a run is in flight (a new message would get 409).
    pub busy: bool,
    /// The latest run.
    pub run: Option<RunView>,
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
    pub last: Option<usize>,
}

/// A thread's token budget.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetView {
    /// Thread.
    pub thread_id: String,
    /// Project.
    pub project: String,
    /// Token limit.
    pub limit: u64,
    /// Tokens used.
    pub used: u64,
    /// Reserved by calls in flight.
    pub reserved: u64,
    /// Used in percent of the limit.
    pub percent_used: f64,
    /// A call was refused since the last raise.
    pub exhausted: bool,
}

/// A budget change: exactly one of `raise` and `limit`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetChange {
    /// Tokens to add.
    pub raise: Option<u64>,
    /// The new limit.
    pub limit: Option<u64>,
}

/// A new key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// A name for people.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The project it is limited to.
    pub project: Option<String>,
}

/// A created key: the secret is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    /// The key's record.
    pub key: KeyInfo,
    /// The key itself.
    pub secret: String,
}

// ---- helpers ---------------------------------------------------------------

/// The thread, if it exists and the key sees its project (404 otherwise,
/// never 403: a key learns nothing about other projects).
async fn visible(api: &Api, who: &Principal, id: &str) -> ApiResult<StoredThread> {
    let stored = match api.engine.store() {
        Some(store) => store.thread(id).await?,
        None => None,
    };
    let not_found = || ApiError::not_found(format!("no thread `{id}`"));
    match stored {
        Some(t) if who.sees(&t.project) => Ok(t),
        Some(_) => Err(not_found()),
        None => match api.engine.thread_project(id) {
            Some(project) if who.sees(&project) => Ok(StoredThread {
                id: id.to_owned(),
                project,
                graph_version: api
                    .engine
                    .thread_graph(id)
                    .map(|g| g.version_id().to_owned())
                    .unwrap_or_default(),
                status: if api.engine.active_run(id).is_some() {
                    "running".into()
                } else {
                    "idle".into()
                },
                runs: 0,
                frames: 0,
                budget_limit: None,
                forked_from: None,
                created_ms: 0,
                updated_ms: 0,
            }),
            _ => Err(not_found()),
        },
    }
}

/// Refuses a thread id of another project (404); unknown ids are fine (a
/// message to a new id creates the thread).
pub(crate) async fn may_use(api: &Api, who: &Principal, id: &str) -> ApiResult<()> {
    let existing = match api.engine.store() {
        Some(store) => store.thread(id).await?.map(|t| t.project),
        None => None,
    }
    .or_else(|| api.engine.thread_project(id));
    if existing.is_some_and(|p| !who.sees(&p)) {
        return Err(ApiError::not_found(format!("no thread `{id}`")));
    }
    Ok(())
}

fn store(api: &Api) -> ApiResult<&Arc<dyn weft_engine::Store>> {
    api.engine.store().ok_or_else(|| {
        ApiError::unavailable(
            "store_unavailable",
            "this host runs without a store (--ephemeral): history is not kept",
        )
    })
}

fn graph_view(api: &Api, g: &LoadedGraph) -> GraphView {
    let active = api
        .graphs
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

fn agent_view(
    api: &Api,
    g: &LoadedGraph,
    node: &weft_engine::Node,
    project: Option<&str>,
) -> Agent {
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

fn active_graph_or_503(api: &Api) -> ApiResult<Arc<LoadedGraph>> {
    api.graphs
        .active()
        .ok_or_else(|| ApiError::unavailable("no_graph", "no graph is active"))
}

// ---- handlers --------------------------------------------------------------

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "host", responses((status = 200, body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: 503 while stopping.
#[utoipa::path(get, path = "/ready", tag = "host", responses(
    (status = 200, body = Health), (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn ready(State(api): S) -> ApiResult<Json<Health>> {
    if api.engine.is_stopping() {
        return Err(ApiError::unavailable("stopping", "the host is stopping"));
    }
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

/// The host at a glance.
#[utoipa::path(get, path = "/api/v1/organism", tag = "organism", security(("key" = [])),
    responses((status = 200, body = OrganismInfo), (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn organism(
    State(api): S,
    Extension(who): Caller,
) -> ApiResult<Json<OrganismInfo>> {
    let threads = match api.engine.store() {
        Some(_) => {
            let filter = ThreadFilter {
                project: who.project.clone(),
                ..ThreadFilter::default()
            };
            api.engine.stored_threads(filter, 1, 0).await?.total
        }
        None => 0,
    };
    Ok(Json(OrganismInfo {
        status: if api.engine.is_stopping() {
            "stopping".into()
        } else {
            "running".into()
        },
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: api.started.elapsed().as_secs(),
        active_graph: api.graphs.active().map(|g| g.graph().name().to_owned()),
        graphs: api.graphs.all().len(),
        plugins: api.engine.plugins().names().len(),
        runs_in_flight: api.engine.runs_in_flight(),
        threads,
    }))
}

/// The host's config without secrets.
#[utoipa::path(get, path = "/api/v1/organism/config", tag = "organism", security(("key" = [])),
    responses((status = 200, body = Object)))]
pub(crate) async fn organism_config(State(api): S) -> Json<Value> {
    Json(crate::read(&api.public_config).clone())
}

/// Stops the host gracefully: no new runs, runs in flight stop after their
/// current frame (and resume at the next start), then the process exits.
#[utoipa::path(post, path = "/api/v1/organism/stop", tag = "organism", security(("key" = [])),
    responses((status = 202, body = Health), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn organism_stop(
    State(api): S,
    Extension(who): Caller,
) -> ApiResult<(StatusCode, Json<Health>)> {
    who.require(Role::Admin)?;
    tracing::warn!(key = %who.key, "stop requested through the API");
    api.request_stop();
    Ok((
        StatusCode::ACCEPTED,
        Json(Health {
            status: "stopping".into(),
        }),
    ))
}

/// Graphs served.
#[utoipa::path(get, path = "/api/v1/graphs", tag = "graphs", security(("key" = [])),
    responses((status = 200, body = Vec<GraphView>)))]
pub(crate) async fn graphs(State(api): S) -> Json<Vec<GraphView>> {
    Json(
        api.graphs
            .all()
            .iter()
            .map(|g| graph_view(&api, g))
            .collect(),
    )
}

/// The active graph.
#[utoipa::path(get, path = "/api/v1/graphs/active", tag = "graphs", security(("key" = [])),
    responses((status = 200, body = GraphDetail), (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn active_graph(State(api): S) -> ApiResult<Json<GraphDetail>> {
    let g = active_graph_or_503(&api)?;
    Ok(Json(GraphDetail {
        graph: graph_view(&api, &g),
        cytoscape: g.graph().to_cytoscape(),
    }))
}

/// Makes another graph active: new runs run it (threads keep their history
/// and memory; runs in flight finish on their version).
#[utoipa::path(put, path = "/api/v1/graphs/active", tag = "graphs", security(("key" = [])),
    request_body = SwitchGraph,
    responses((status = 200, body = GraphView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn switch_graph(
    State(api): S,
    Extension(who): Caller,
    Json(body): Json<SwitchGraph>,
) -> ApiResult<Json<GraphView>> {
    who.require(Role::Operator)?;
    if !api.graphs.activate(&body.name) {
        return Err(ApiError {
            field: Some("name".into()),
            ..ApiError::not_found(format!("no graph `{}`", body.name))
        });
    }
    let g = active_graph_or_503(&api)?;
    tracing::info!(graph = %body.name, key = %who.key, "active graph switched");
    api.engine
        .publish_host(weft_engine::EventBody::GraphChanged {
            graph: g.graph().name().to_owned(),
            version: g.version_id().to_owned(),
            change: "activated".into(),
        });
    Ok(Json(graph_view(&api, &g)))
}

/// A graph with its Cytoscape export.
#[utoipa::path(get, path = "/api/v1/graphs/{name}", tag = "graphs", security(("key" = [])),
    params(("name" = String, Path, description = "graph name")),
    responses((status = 200, body = GraphDetail), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn graph(State(api): S, Path(name): Path<String>) -> ApiResult<Json<GraphDetail>> {
    let g = api
        .graphs
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("no graph `{name}`")))?;
    Ok(Json(GraphDetail {
        graph: graph_view(&api, &g),
        cytoscape: g.graph().to_cytoscape(),
    }))
}

/// Loaded plugins.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", security(("key" = [])),
    responses((status = 200, body = Vec<PluginView>)))]
pub(crate) async fn plugins(State(api): S) -> Json<Vec<PluginView>> {
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

/// The nodes of the active graph.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("key" = [])),
    params(AgentQuery),
    responses((status = 200, body = Vec<Agent>), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn agents(
    State(api): S,
    Extension(who): Caller,
    Query(q): Query<AgentQuery>,
) -> ApiResult<Json<Vec<Agent>>> {
    let project = who.scope(q.project.as_deref())?;
    let g = active_graph_or_503(&api)?;
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
    State(api): S,
    Extension(who): Caller,
    Path(name): Path<String>,
    Query(q): Query<AgentQuery>,
) -> ApiResult<Json<AgentDetail>> {
    let project = who.scope(q.project.as_deref())?;
    let g = active_graph_or_503(&api)?;
    let node = g
        .graph()
        .node(&name)
        .ok_or_else(|| ApiError::not_found(format!("no agent `{name}` in the active graph")))?;
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
    let g = active_graph_or_503(api)?;
    let node = g
        .graph()
        .node(name)
        .ok_or_else(|| ApiError::not_found(format!("no agent `{name}` in the active graph")))?;
    let changed = if paused {
        api.engine.pause_of(scope, name).is_none() && api.engine.pause(scope, name)
    } else {
        api.engine.resume(scope, name)
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
    State(api): S,
    Extension(who): Caller,
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
    State(api): S,
    Extension(who): Caller,
    Path(name): Path<String>,
    Query(q): Query<AgentQuery>,
) -> ApiResult<Json<Agent>> {
    set_paused(&api, &who, &name, q, false).await
}

/// Threads, most recently changed first.
#[utoipa::path(get, path = "/api/v1/threads", tag = "threads", security(("key" = [])),
    params(ThreadQuery),
    responses((status = 200, body = Page<ThreadView>), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn threads(
    State(api): S,
    Extension(who): Caller,
    Query(q): Query<ThreadQuery>,
) -> ApiResult<Json<Page<ThreadView>>> {
    let (limit, offset) = Paging {
        limit: q.limit,
        offset: q.offset,
    }
    .get()?;
    if let Some(status) = &q.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::field(
            "status",
            format!("unknown status `{status}`; one of {}", STATUSES.join(", ")),
        ));
    }
    store(&api)?;
    let filter = ThreadFilter {
        project: who.project.clone(),
        status: q.status,
        node: q.node,
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
    State(api): S,
    Extension(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ThreadView>> {
    let t = visible(&api, &who, &id).await?;
    let active = api.engine.active_run(&id);
    Ok(Json(ThreadView::new(t, active)))
}

/// A thread's messages, in the order they were stored.
#[utoipa::path(get, path = "/api/v1/threads/{id}/messages", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id"), Paging),
    responses((status = 200, body = Page<MessageView>), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn thread_messages(
    State(api): S,
    Extension(who): Caller,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<Page<MessageView>>> {
    let (limit, offset) = paging.get()?;
    visible(&api, &who, &id).await?;
    let all = store(&api)?.messages(&id).await?;
    let total = all.len() as u64;
    Ok(Json(Page {
        items: all
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(MessageView::from)
            .collect(),
        total,
        limit,
        offset,
    }))
}

/// A thread's runs.
#[utoipa::path(get, path = "/api/v1/threads/{id}/runs", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")),
    responses((status = 200, body = Vec<RunView>), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn thread_runs(
    State(api): S,
    Extension(who): Caller,
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
    State(api): S,
    Extension(who): Caller,
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

/// Where the thread's latest run stands (poll this after a send).
#[utoipa::path(get, path = "/api/v1/threads/{id}/result", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")),
    responses((status = 200, body = ResultView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn result(
    State(api): S,
    Extension(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ResultView>> {
    visible(&api, &who, &id).await?;
    let run = match api.engine.store() {
        Some(store) => store.runs(&id).await?.pop().map(RunView::from),
        None => None,
    };
    Ok(Json(ResultView {
        thread_id: id.clone(),
        busy: api.engine.active_run(&id).is_some(),
        run,
    }))
}

/// Cancels the run in flight on the thread (at its next frame boundary).
#[utoipa::path(post, path = "/api/v1/threads/{id}/kill", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")),
    responses((status = 202, body = Killed), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn kill(
    State(api): S,
    Extension(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Killed>)> {
    who.require(Role::Operator)?;
    visible(&api, &who, &id).await?;
    match api.engine.kill(&id) {
        Ok(run) => Ok((StatusCode::ACCEPTED, Json(Killed { run_id: run }))),
        Err(
            weft_engine::EngineError::UnknownRun(_) | weft_engine::EngineError::UnknownThread(_),
        ) => Err(ApiError::conflict(
            "not_running",
            format!("thread `{id}` has no run in flight"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// A new thread from the state of this one after frame `after`.
#[utoipa::path(post, path = "/api/v1/threads/{id}/fork", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")), request_body = ForkRequest,
    responses((status = 201, body = Forked), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn fork(
    State(api): S,
    Extension(who): Caller,
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

/// Starts a run with one message; the message is durable when this answers.
async fn start(
    api: &Api,
    who: &Principal,
    thread: Option<String>,
    project: Option<String>,
    inbound: Inbound,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    who.require(Role::Operator)?;
    if let Some(id) = &thread {
        if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c == '/') {
            return Err(ApiError::field(
                "threadId",
                "a thread id has 1 to 128 characters, no `/` and no control characters",
            ));
        }
        may_use(api, who, id).await?;
    }
    let project = match (&who.project, project) {
        (Some(mine), Some(asked)) if *mine != asked => {
            return Err(ApiError::field(
                "project",
                "this key is limited to another project",
            ));
        }
        (Some(mine), _) => mine.clone(),
        (None, Some(asked)) => asked,
        (None, None) => DEFAULT_PROJECT.to_owned(),
    };
    if project.is_empty() || project.len() > 64 {
        return Err(ApiError::field(
            "project",
            "a project name has 1 to 64 characters",
        ));
    }
    let graph = active_graph_or_503(api)?;
    let thread = api
        .engine
        .open_thread_in(&project, thread.as_deref(), &graph);
    let handle = api.engine.start_run(&thread, inbound).await?;
    api.metrics.run_started();
    let run = handle.run.clone();
    // The run goes on without us; its end is on the event stream.
    drop(handle);
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            thread_id: thread,
            message_id: format!("{run}/in"),
            run_id: run,
        }),
    ))
}

/// Puts a message into the engine: a run starts on the thread (a new one
/// unless `threadId` is given). 409 when the thread is busy.
#[utoipa::path(post, path = "/api/v1/inject", tag = "messages", security(("key" = [])),
    request_body = InjectRequest,
    responses((status = 202, body = Accepted), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn inject(
    State(api): S,
    Extension(who): Caller,
    Json(req): Json<InjectRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let inbound = match (req.text, req.body) {
        (Some(text), None) => Inbound {
            to: req.to,
            kind: req.kind.unwrap_or_else(|| "user".into()),
            body: serde_json::json!({ "text": text }).to_string(),
        },
        (None, Some(body)) => Inbound {
            to: req.to,
            kind: req.kind.unwrap_or_else(|| "user".into()),
            body: body.to_string(),
        },
        _ => {
            return Err(ApiError::field(
                "text",
                "give exactly one of `text` and `body`",
            ));
        }
    };
    start(&api, &who, req.thread_id, req.project, inbound).await
}

/// A chat message for the thread (its graph's entry node); 409 while a run
/// is in flight.
#[utoipa::path(post, path = "/api/v1/threads/{id}/messages", tag = "messages", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")), request_body = SendRequest,
    responses((status = 202, body = Accepted), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn send(
    State(api): S,
    Extension(who): Caller,
    Path(id): Path<String>,
    Json(req): Json<SendRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    if req.text.trim().is_empty() {
        return Err(ApiError::field("text", "the text is empty"));
    }
    start(&api, &who, Some(id), None, Inbound::user_text(&req.text)).await
}

/// The traces of the most recent runs.
#[utoipa::path(get, path = "/api/v1/frames", tag = "frames", security(("key" = [])),
    params(FramesQuery),
    responses((status = 200, body = Vec<Object>), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn frames(
    State(api): S,
    Extension(who): Caller,
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

/// Usage: totals, per node, per model, per project (a key limited to a
/// project sees its project's totals only).
#[utoipa::path(get, path = "/api/v1/usage", tag = "usage", security(("key" = [])),
    responses((status = 200, body = Object)))]
pub(crate) async fn usage(State(api): S, Extension(who): Caller) -> Json<Value> {
    let breakdown = api.engine.ledger().breakdown();
    match &who.project {
        Some(p) => Json(serde_json::json!({
            "project": p,
            "totals": breakdown.by_project.get(p).cloned().unwrap_or_default(),
        })),
        None => Json(serde_json::json!({
            "sinceMs": api.engine.ledger().since_ms(),
            "totals": api.engine.ledger().totals(),
            "byNode": breakdown.by_node,
            "byModel": breakdown.by_model,
            "byProject": breakdown.by_project,
        })),
    }
}

/// Thread token budgets, most used first.
#[utoipa::path(get, path = "/api/v1/usage/threads", tag = "usage", security(("key" = [])),
    responses((status = 200, body = Vec<BudgetView>)))]
pub(crate) async fn usage_threads(State(api): S, Extension(who): Caller) -> Json<Vec<BudgetView>> {
    let mut list: Vec<BudgetView> = api
        .engine
        .budgets()
        .into_iter()
        .filter(|(_, project, _)| who.sees(project))
        .map(|(thread, project, s)| BudgetView {
            thread_id: thread,
            project,
            limit: s.limit,
            used: s.used,
            reserved: s.reserved,
            percent_used: s.percent_used,
            exhausted: s.exhausted,
        })
        .collect();
    list.sort_by(|a, b| b.percent_used.total_cmp(&a.percent_used));
    Json(list)
}

/// Raises or sets a thread's token budget; a run waiting on it goes on.
#[utoipa::path(put, path = "/api/v1/usage/threads/{id}/budget", tag = "usage", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")), request_body = BudgetChange,
    responses((status = 200, body = BudgetView), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn set_budget(
    State(api): S,
    Extension(who): Caller,
    Path(id): Path<String>,
    Json(change): Json<BudgetChange>,
) -> ApiResult<Json<BudgetView>> {
    who.require(Role::Operator)?;
    let t = visible(&api, &who, &id).await?;
    let s = match (change.raise, change.limit) {
        (Some(n), None) => api.engine.raise_budget(&id, n),
        (None, Some(n)) => api.engine.set_budget(&id, n),
        _ => {
            return Err(ApiError::field(
                "raise",
                "give exactly one of `raise` and `limit`",
            ));
        }
    };
    Ok(Json(BudgetView {
        thread_id: id,
        project: t.project,
        limit: s.limit,
        used: s.used,
        reserved: s.reserved,
        percent_used: s.percent_used,
        exhausted: s.exhausted,
    }))
}

/// API keys (admins).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("key" = [])),
    responses((status = 200, body = Vec<KeyInfo>), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn keys(State(api): S, Extension(who): Caller) -> ApiResult<Json<Vec<KeyInfo>>> {
    who.require(Role::Admin)?;
    Ok(Json(api.keys.list()))
}

/// Creates a key; its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("key" = [])),
    request_body = KeyRequest,
    responses((status = 201, body = KeyCreated), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn create_key(
    State(api): S,
    Extension(who): Caller,
    Json(req): Json<KeyRequest>,
) -> ApiResult<impl IntoResponse> {
    who.require(Role::Admin)?;
    if req.name.trim().is_empty() || req.name.len() > 100 {
        return Err(ApiError::field(
            "name",
            "a key name has 1 to 100 characters",
        ));
    }
    if let Some(p) = &req.project
        && (p.is_empty() || p.len() > 64)
    {
        return Err(ApiError::field(
            "project",
            "a project name has 1 to 64 characters",
        ));
    }
    let (key, secret) = api
        .keys
        .create(&req.name, req.role, req.project)
        .map_err(|e| ApiError::unavailable("keys_unavailable", e))?;
    Ok((StatusCode::CREATED, Json(KeyCreated { key, secret })))
}

/// Revokes a key.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", security(("key" = [])),
    params(("id" = String, Path, description = "key id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn revoke_key(
    State(api): S,
    Extension(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Role::Admin)?;
    if id == who.key {
        return Err(ApiError::conflict(
            "own_key",
            "a key cannot revoke itself; use another admin key",
        ));
    }
    match api.keys.revoke(&id) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found(format!("no key `{id}`"))),
        Err(e) => Err(ApiError::unavailable("keys_unavailable", e)),
    }
}
