//! Re-reading the host's config file while serving (`POST
//! /api/v1/organism/config/reload`, `--watch`, SIGHUP): what a reload
//! reports, and the hook the host implements ([`ConfigReloader`]).

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use utoipa::ToSchema;

/// A boxed future that may move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
    fn reload(&self) -> BoxFuture<'_, Result<ConfigReload, String>>;
}
