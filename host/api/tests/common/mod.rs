//! A host with no plugins, no graphs and no store, whose router the tests
//! call without a socket (`tower::ServiceExt::oneshot`).

#![allow(clippy::unwrap_used)] // a test helper that cannot unwrap has failed

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use weft_api::{Api, ApiConfig, Keys, Role};
use weft_engine::{
    Agents, Backends, Catalog, Engine, EngineConfig, InMemoryDb, PluginSet, Runtime, RuntimeConfig,
    UnavailableLlm,
};

/// A host with no plugins, no graphs and no store, and its keys.
pub struct Host {
    pub router: Router,
    pub keys: Arc<Keys>,
}

/// A host whose key file is `name` in a folder of `suite`'s, with `admin`
/// as its bootstrap admin key.
pub fn host_with(suite: &str, name: &str, admin: &str, config: ApiConfig) -> Host {
    let runtime = Runtime::new(RuntimeConfig {
        pool: None,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let engine = Engine::new(
        Arc::new(runtime),
        Arc::new(PluginSet::new()),
        Backends {
            llm: Arc::new(UnavailableLlm),
            db: Arc::new(InMemoryDb::default()),
            tools: weft_engine::Backends::no_tools(),
        },
        EngineConfig::default(),
    );
    let dir = std::env::temp_dir().join(format!("weft-api-{suite}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.json"));
    let _ = std::fs::remove_file(&file);
    let keys = Arc::new(Keys::open(file).unwrap());
    keys.bootstrap(Some(admin)).unwrap();
    let agents = Agents::new(Arc::clone(&engine));
    let api = Api::new(
        Arc::new(Catalog::new(engine)),
        agents,
        Arc::clone(&keys),
        config,
    );
    Host {
        router: api.router(),
        keys,
    }
}

impl Host {
    /// A new key with `role` (in `project`, when given).
    pub fn key_in(&self, role: Role, project: Option<&str>) -> String {
        self.keys
            .create("test", role, project.map(str::to_owned))
            .unwrap()
            .1
    }

    /// The answer to `request`: status, headers and body (JSON, else the
    /// text as a JSON string; `null` when empty).
    pub async fn answer(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, headers, body)
    }
}
