//! The host itself: liveness, readiness and metrics (no key), and under
//! `/api/v1/organism` its state, its config (and reloading it) and a
//! graceful stop.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use weft_engine::Ledger;
use weft_engine::store::ThreadFilter;

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json};
use crate::reload::ConfigReload;

/// Routes that need no key.
pub(crate) fn open() -> Router<Arc<Api>> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(scrape))
}

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/organism", get(organism))
        .route("/api/v1/organism/config", get(organism_config))
        .route("/api/v1/organism/config/reload", post(reload_config))
        .route("/api/v1/organism/stop", post(organism_stop))
        .route("/api/v1/hosts", get(hosts))
}

/// A live host of the system.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostView {
    /// The host's id (`--host-id`).
    pub id: String,
    /// Where it serves its API (`http://IP:PORT`); empty if it serves none.
    pub address: String,
    /// The weft version it runs.
    pub version: String,
    /// When it started, Unix milliseconds.
    pub started_ms: u64,
    /// Its last heartbeat, Unix milliseconds (now, for the host answering).
    pub last_seen_ms: u64,
    /// Runs holding a lease on it now.
    pub runs_held: u64,
    /// Lease renewals it made since it started.
    pub lease_renewals: u64,
    /// It is the host that answered this request.
    pub this: bool,
}

/// The live hosts.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostList {
    /// By id.
    pub hosts: Vec<HostView>,
}

/// The live hosts of the system: on a store shared by several hosts,
/// every host whose heartbeat is younger than a lease; on one host's
/// store, this host. Keys without a project scope.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "organism", security(("key" = [])),
    responses((status = 200, body = HostList), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 500, body = crate::error::ErrorBody)))]
pub(crate) async fn hosts(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<HostList>> {
    who.require_host(Role::Viewer)?;
    let me = api.engine.host_id().to_owned();
    let hosts = api
        .engine
        .hosts()
        .await?
        .into_iter()
        .map(|h| HostView {
            this: h.id == me,
            id: h.id,
            address: h.address,
            version: h.version,
            started_ms: h.started_ms,
            last_seen_ms: h.last_seen_ms,
            runs_held: h.runs_held,
            lease_renewals: h.lease_renewals,
        })
        .collect();
    Ok(Json(HostList { hosts }))
}

/// `{"status": "ok", "host": "…"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `stopping`.
    pub status: String,
    /// This host's id (`--host-id`): which host of several answered.
    pub host: String,
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

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "host", responses((status = 200, body = Health)))]
pub(crate) async fn health(State(api): State<Arc<Api>>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        host: api.engine.host_id().to_owned(),
    })
}

/// Readiness: 503 while stopping.
#[utoipa::path(get, path = "/ready", tag = "host", responses(
    (status = 200, body = Health), (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn ready(State(api): State<Arc<Api>>) -> ApiResult<Json<Health>> {
    if api.engine.is_stopping() {
        return Err(ApiError::unavailable("stopping", "the host is stopping"));
    }
    Ok(Json(Health {
        status: "ok".into(),
        host: api.engine.host_id().to_owned(),
    }))
}

/// `GET /metrics`, in the OpenMetrics text format (which Prometheus
/// scrapes; `application/openmetrics-text; version=1.0.0`).
#[utoipa::path(get, path = "/metrics", tag = "host",
    responses((status = 200, description = "OpenMetrics text format", content_type = "application/openmetrics-text")))]
pub(crate) async fn scrape(State(api): State<Arc<Api>>) -> Response {
    let totals = api.engine.ledger().totals();
    match api.metrics.render(
        &totals,
        api.engine.runs_in_flight(),
        &api.engine.tool_stats(),
        &api.engine.host_beat(),
        crate::metrics::RuntimeFigures {
            instances_idle: api.engine.runtime().instances_idle() as u64,
            instances_reused: api.engine.runtime().instances_reused(),
            ticks_queued: api.engine.runtime().ticks_queued() as u64,
        },
    ) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

/// The host at a glance.
#[utoipa::path(get, path = "/api/v1/organism", tag = "organism", security(("key" = [])),
    responses((status = 200, body = OrganismInfo), (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn organism(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<OrganismInfo>> {
    let threads = match api.engine.store() {
        Some(_) => {
            let filter = ThreadFilter {
                project: who.project().map(str::to_owned),
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
        active_graph: api.catalog.active().map(|g| g.graph().name().to_owned()),
        graphs: api.catalog.all().len(),
        plugins: api.engine.plugins().names().len(),
        runs_in_flight: api.engine.runs_in_flight(),
        threads,
    }))
}

/// The host's config without secrets (keys without a project scope: it
/// names every project's budget).
#[utoipa::path(get, path = "/api/v1/organism/config", tag = "organism", security(("key" = [])),
    responses((status = 200, body = Object), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn organism_config(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Value>> {
    who.require_host(Role::Viewer)?;
    Ok(Json(api.public_config()))
}

/// Re-reads the config file and applies providers, model routes, prices
/// and budgets without a restart; reports what changed (and what needs a
/// restart). A bad file changes nothing. Admin keys without a project
/// scope only (it changes the host for every project).
#[utoipa::path(post, path = "/api/v1/organism/config/reload", tag = "organism", security(("key" = [])),
    responses((status = 200, body = ConfigReload), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn reload_config(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<ConfigReload>> {
    who.require_host(Role::Admin)?;
    Ok(Json(api.reload_config().await?))
}

/// Stops the host gracefully: no new runs, runs in flight stop after their
/// current frame (and resume at the next start), then the process exits.
/// Admin keys without a project scope only.
#[utoipa::path(post, path = "/api/v1/organism/stop", tag = "organism", security(("key" = [])),
    responses((status = 202, body = Health), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn organism_stop(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<(StatusCode, Json<Health>)> {
    who.require_host(Role::Admin)?;
    tracing::warn!(key = %who.key, "stop requested through the API");
    api.request_stop();
    Ok((
        StatusCode::ACCEPTED,
        Json(Health {
            status: "stopping".into(),
            host: api.engine.host_id().to_owned(),
        }),
    ))
}
