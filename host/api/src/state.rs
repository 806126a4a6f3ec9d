//! What the handlers share: [`Api`] (the engine, the graph catalog, the
//! keys, the recent events, the metrics) and its settings.

use std::num::NonZeroU32;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use axum::http::StatusCode;
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::{broadcast, watch};
use weft_engine::{Agents, Catalog, Engine, LocalBus, SystemBus};

use crate::auth::Keys;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::events::StreamSlots;
use crate::metrics::Metrics;
use crate::oidc::Oidc;
use crate::reload::{ConfigReload, ConfigReloader};

/// API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Requests per minute per key (sustained).
    pub rate_per_minute: u32,
    /// Requests a key may make at once above the sustained rate.
    pub burst: u32,
    /// Largest request body, bytes.
    pub body_limit: usize,
    /// Largest plugin upload, bytes (streamed to a temporary file).
    pub upload_limit: usize,
    /// Origins allowed by CORS (`*` for any); none: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Events kept for clients that reconnect with `Last-Event-ID`.
    pub event_history: usize,
    /// Events buffered per streaming client before it is told what it
    /// missed.
    pub client_buffer: usize,
    /// Event streams and sockets one key may have open at once (SSE,
    /// `/ws/events` and chat together); more get 429 `too_many_streams`.
    pub streams_per_key: usize,
    /// The host's config as operators may see it (no secrets).
    pub public_config: serde_json::Value,
    /// Bearer JWTs accepted besides API keys.
    pub oidc: Option<Arc<Oidc>>,
    /// Re-reads the host's config file (`POST /api/v1/organism/config/reload`,
    /// `--watch`, SIGHUP); none without a config file.
    pub reloader: Option<Arc<dyn ConfigReloader>>,
    /// The bus the event streams go through; none: this host's own
    /// ([`LocalBus`], keeping `event_history` events per stream).
    pub bus: Option<Arc<dyn SystemBus>>,
    /// How webhooks are delivered.
    pub webhooks: crate::WebhookConfig,
    /// What a message for a busy thread does when its request names no
    /// policy.
    pub multitask: weft_engine::Multitask,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            rate_per_minute: 600,
            burst: 100,
            body_limit: 1 << 20,
            upload_limit: 64 << 20,
            cors_origins: Vec::new(),
            event_history: 1024,
            client_buffer: 256,
            streams_per_key: 16,
            public_config: serde_json::Value::Null,
            oidc: None,
            reloader: None,
            bus: None,
            webhooks: crate::WebhookConfig::default(),
            multitask: weft_engine::Multitask::Reject,
        }
    }
}

/// Everything the handlers share.
pub struct Api {
    pub(crate) engine: Arc<Engine>,
    pub(crate) agents: Arc<Agents>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) keys: Arc<Keys>,
    pub(crate) config: ApiConfig,
    pub(crate) started: Instant,
    /// When the API started, Unix seconds (what `/v1/models` gives as
    /// the graphs' `created`).
    pub(crate) started_unix: u64,
    pub(crate) limiter: DefaultKeyedRateLimiter<String>,
    pub(crate) metrics: Metrics,
    pub(crate) bus: Arc<dyn SystemBus>,
    pub(crate) streams: Arc<StreamSlots>,
    /// One replay at a time on this host (`POST …/replay` re-runs plugins).
    pub(crate) replays: tokio::sync::Semaphore,
    /// Scenario suites started over the API, running and recent.
    pub(crate) tests: crate::routes::suites::Tests,
    /// The config as operators see it (replaced by a config reload).
    public_config: RwLock<serde_json::Value>,
    stop: watch::Sender<bool>,
    pub(crate) closing: watch::Sender<bool>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

impl Api {
    /// The API over `catalog` (its engine and the graphs it serves), with
    /// keys from `keys`. Starts the task that keeps recent events and
    /// metrics (call inside a Tokio runtime).
    pub fn new(
        catalog: Arc<Catalog>,
        agents: Arc<Agents>,
        keys: Arc<Keys>,
        config: ApiConfig,
    ) -> Arc<Self> {
        let per_minute = NonZeroU32::new(config.rate_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let limiter =
            governor::RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst));
        let bus = config
            .bus
            .clone()
            .unwrap_or_else(|| Arc::new(LocalBus::new(config.event_history, config.client_buffer)));
        let public_config = RwLock::new(config.public_config.clone());
        let streams = StreamSlots::new(config.streams_per_key);
        let api = Arc::new(Self {
            engine: Arc::clone(catalog.engine()),
            agents,
            catalog,
            keys,
            config,
            public_config,
            started: Instant::now(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            limiter,
            metrics: Metrics::new(),
            bus,
            streams,
            replays: tokio::sync::Semaphore::new(1),
            tests: crate::routes::suites::Tests::default(),
            stop: watch::Sender::new(false),
            closing: watch::Sender::new(false),
        });
        spawn_collector(&api);
        crate::webhooks::spawn_deliverer(&api.engine, api.config.webhooks.clone());
        weft_engine::schedules::spawn_scheduler(
            &api.catalog,
            std::time::Duration::from_millis(500),
        );
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

    /// The bus its event streams go through.
    pub fn bus(&self) -> &Arc<dyn SystemBus> {
        &self.bus
    }

    /// The graphs it serves.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Begins a graceful stop: the engine takes no new runs (runs in flight
    /// stop at their next frame boundary), `/ready` answers 503, and event
    /// streams end so that open connections close.
    pub fn close(&self) {
        self.engine.begin_shutdown();
        self.closing.send_replace(true);
    }

    /// Re-reads the config file (see [`ConfigReloader`]) and tells the
    /// other hosts on the bus to re-read theirs.
    pub async fn reload_config(&self) -> Result<ConfigReload, ApiError> {
        let report = self.reload_config_here().await?;
        self.bus.broadcast(weft_engine::bus::Change::ConfigReloaded);
        Ok(report)
    }

    /// Re-reads this host's config file only (a reload another host
    /// broadcast).
    pub async fn reload_config_here(&self) -> Result<ConfigReload, ApiError> {
        let reloader = self.config.reloader.as_ref().ok_or_else(|| {
            ApiError::conflict(
                "no_config_file",
                "the host was started without a config file (--config); there is nothing to reload",
            )
        })?;
        let report = reloader.reload().await.map_err(|message| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "config_invalid", message)
        })?;
        *write(&self.public_config) = report.public.clone();
        tracing::info!(changed = ?report.changed, restart_needed = ?report.restart_needed, "config reloaded");
        Ok(report)
    }

    /// Why `who` may no longer act, if it may not: its key was revoked,
    /// or its token expired. Open sockets and streams ask this on every
    /// message and every few seconds.
    pub(crate) fn still_valid(&self, who: &Principal) -> Result<(), &'static str> {
        match who.expires {
            Some(exp) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                if now >= exp {
                    return Err("the token has expired");
                }
                Ok(())
            }
            None if self.keys.exists(&who.key) => Ok(()),
            None => Err("the API key was revoked"),
        }
    }

    /// The config as operators see it now.
    pub(crate) fn public_config(&self) -> serde_json::Value {
        read(&self.public_config).clone()
    }
}

/// Puts the engine's events on the bus and into the metrics, for as long
/// as the API lives.
fn spawn_collector(api: &Arc<Api>) {
    let mut rx = api.engine.subscribe();
    let weak = Arc::downgrade(api);
    tokio::spawn(async move {
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the event log fell behind the engine");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(api) = weak.upgrade() else { return };
            api.metrics.observe(&event);
            let project = if event.thread.is_empty() {
                None
            } else {
                api.engine.thread_project(&event.thread)
            };
            if let Some(project) = &project {
                crate::webhooks::enqueue_budget_event(&api, &event, project);
            }
            api.bus.publish(&event, project.as_deref());
        }
    });
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}
