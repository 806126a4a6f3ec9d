//! weft's operators' API (axum): REST under `/api/v1`, server-sent events,
//! the OpenAPI document and an offline docs page, API keys with roles and
//! project scopes, per-key rate limits, body limits, CORS and Prometheus
//! metrics.
//!
//! The API sees only the engine's domain types; it never touches wasmtime
//! or SQL. [`Api::router`] builds the routes; the `weft serve` command
//! binds them.

#![warn(missing_docs)]

pub mod auth;
mod changes;
pub mod error;
mod events;
mod instances;
mod metrics;
mod more;
pub mod oidc;
mod openapi;
mod routes;
mod ws;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};
use weft_engine::{Engine, LoadedGraph};

pub use auth::{KeyInfo, Keys, Principal, Role};
pub use changes::{ConfigReload, ConfigReloader, ReloadReport, SwapView};
pub use error::ApiError;

/// API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Requests per minute per key (sustained).
    pub rate_per_minute: u32,
    /// Requests a key may make at once above the sustained rate.
    pub burst: u32,
    /// Largest request body, bytes.
    pub body_limit: usize,
    /// Origins allowed by CORS (`*` for any); none: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Events kept for clients that reconnect with `Last-Event-ID`.
    pub event_history: usize,
    /// Events buffered per streaming client before it is told what it
    /// missed.
    pub client_buffer: usize,
    /// The host's config as operators may see it (no secrets).
    pub public_config: serde_json::Value,
    /// Bearer JWTs accepted besides API keys.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// Re-reads the host's config file (`POST /api/v1/organism/config/reload`,
    /// `--watch`, SIGHUP); none without a config file.
    pub reloader: Option<Arc<dyn changes::ConfigReloader>>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            rate_per_minute: 600,
            burst: 100,
            body_limit: 1 << 20,
            cors_origins: Vec::new(),
            event_history: 1024,
            client_buffer: 256,
            public_config: serde_json::Value::Null,
            oidc: None,
            reloader: None,
        }
    }
}

/// The graphs the host serves, by name, and the active one (what new
/// threads run).
#[derive(Debug, Default)]
pub struct Graphs {
    by_name: RwLock<BTreeMap<String, Arc<LoadedGraph>>>,
    active: RwLock<String>,
}

impl Graphs {
    /// Adds (or replaces) a graph under its name.
    pub fn insert(&self, graph: Arc<LoadedGraph>) {
        let name = graph.graph().name().to_owned();
        write(&self.by_name).insert(name, graph);
    }

    /// Puts `new` in the place of `old` (under its new name if it was
    /// renamed; still active if `old` was).
    pub fn replace(&self, old: &LoadedGraph, new: Arc<LoadedGraph>) {
        let old_name = old.graph().name().to_owned();
        let new_name = new.graph().name().to_owned();
        {
            let mut by_name = write(&self.by_name);
            by_name.remove(&old_name);
            by_name.insert(new_name.clone(), new);
        }
        let mut active = write(&self.active);
        if *active == old_name {
            *active = new_name;
        }
    }

    /// Makes `name` the active graph; false if there is no such graph.
    pub fn activate(&self, name: &str) -> bool {
        if !read(&self.by_name).contains_key(name) {
            return false;
        }
        *write(&self.active) = name.to_owned();
        true
    }

    /// The active graph.
    pub fn active(&self) -> Option<Arc<LoadedGraph>> {
        let name = read(&self.active).clone();
        read(&self.by_name).get(&name).cloned()
    }

    /// A graph by name.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedGraph>> {
        read(&self.by_name).get(name).cloned()
    }

    /// Every graph, by name.
    pub fn all(&self) -> Vec<Arc<LoadedGraph>> {
        read(&self.by_name).values().cloned().collect()
    }
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything the handlers share.
pub struct Api {
    pub(crate) engine: Arc<Engine>,
    pub(crate) agents: Arc<weft_engine::Agents>,
    pub(crate) graphs: Arc<Graphs>,
    pub(crate) keys: Arc<Keys>,
    pub(crate) config: ApiConfig,
    pub(crate) started: Instant,
    pub(crate) limiter: DefaultKeyedRateLimiter<String>,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) events: events::EventLog,
    /// The config as operators see it (replaced by a config reload).
    pub(crate) public_config: RwLock<serde_json::Value>,
    stop: watch::Sender<bool>,
    pub(crate) closing: watch::Sender<bool>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

impl Api {
    /// The API over `agents`' engine, serving `graphs`, with keys from
    /// `keys`. Starts the tasks that keep recent events and metrics (call
    /// inside a Tokio runtime).
    pub fn new(
        agents: Arc<weft_engine::Agents>,
        graphs: Arc<Graphs>,
        keys: Arc<Keys>,
        config: ApiConfig,
    ) -> Arc<Self> {
        let per_minute = NonZeroU32::new(config.rate_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let limiter =
            governor::RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst));
        let metrics = metrics::Metrics::new();
        let events = events::EventLog::new(config.event_history, config.client_buffer);
        let public_config = RwLock::new(config.public_config.clone());
        let api = Arc::new(Self {
            engine: Arc::clone(agents.engine()),
            agents,
            graphs,
            keys,
            config,
            public_config,
            started: Instant::now(),
            limiter,
            metrics,
            events,
            stop: watch::Sender::new(false),
            closing: watch::Sender::new(false),
        });
        events::spawn_collector(&api);
        api
    }

    /// Resolves when an admin asked the host to stop (`POST
    /// /api/v1/organism/stop`).
    pub async fn stop_requested(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub(crate) fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    /// The engine it serves.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Begins a graceful stop: the engine takes no new runs (runs in flight
    /// stop at their next frame boundary), `/ready` answers 503, and event
    /// streams end so that open connections close.
    pub fn close(&self) {
        self.engine.begin_shutdown();
        self.closing.send_replace(true);
    }

    /// Every route, with auth, rate limits, body limits, CORS and metrics.
    pub fn router(self: &Arc<Self>) -> Router {
        let protected = routes::protected()
            .route_layer(middleware::from_fn_with_state(
                Arc::clone(self),
                authenticate,
            ))
            .with_state(Arc::clone(self));
        let open = routes::open().with_state(Arc::clone(self));
        let mut router = Router::new()
            .merge(open)
            .merge(protected)
            .merge(openapi::docs())
            .fallback(|| async {
                ApiError::not_found("no such route (the API is under /api/v1; see /api/v1/docs)")
            })
            // Extractors refuse larger bodies with a 413 in the error shape;
            // a route may raise its own limit (plugin uploads).
            .layer(axum::extract::DefaultBodyLimit::max(self.config.body_limit))
            .layer(middleware::from_fn_with_state(
                Arc::clone(self),
                metrics::track,
            ));
        if let Some(cors) = cors(&self.config.cors_origins) {
            router = router.layer(cors);
        }
        router
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("x-api-key"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// Finds the caller's key (`Authorization: Bearer KEY` or `X-Api-Key`),
/// refuses requests without a valid one, and applies the key's rate limit.
async fn authenticate(State(api): State<Arc<Api>>, mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    // Browsers cannot set headers on WebSockets and EventSource: those two
    // may pass the key as `access_token` in the query.
    let streaming = matches!(
        request.uri().path(),
        "/api/v1/ws" | "/api/v1/ws/events" | "/api/v1/events"
    );
    let from_query = streaming
        .then(|| request.uri().query())
        .flatten()
        .and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("access_token="))
        });
    let key = bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or(from_query);
    let Some(key) = key else {
        return ApiError::unauthorized(
            "this needs an API key: send `Authorization: Bearer KEY` (or `X-Api-Key: KEY`)",
        )
        .into_response();
    };
    let key = key.trim();
    let principal = match &api.config.oidc {
        // A JWT has three dot-separated parts; API keys have none.
        Some(oidc) if key.matches('.').count() == 2 => match oidc.verify(key) {
            Ok(p) => p,
            Err(why) => return ApiError::unauthorized(why).into_response(),
        },
        _ => match api.keys.verify(key) {
            Some(p) => p,
            None => {
                return ApiError::unauthorized("the API key is not valid (unknown or revoked)")
                    .into_response();
            }
        },
    };
    if let Err(not_until) = api.limiter.check_key(&principal.key) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        api.metrics.rate_limited();
        return ApiError {
            retry_after: Some(wait.as_secs().max(1)),
            ..ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests for this key ({} per minute, bursts of {}); retry in {} ms",
                    api.config.rate_per_minute,
                    api.config.burst,
                    wait.as_millis()
                ),
            )
        }
        .into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}
