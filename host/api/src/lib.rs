//! weft's operators' API (axum): REST under `/api/v1`, server-sent events,
//! the OpenAPI document and an offline docs page, API keys with roles and
//! project scopes, per-key rate limits, body limits, CORS and Prometheus
//! metrics.
//!
//! The API sees only the engine's domain types; it never touches wasmtime
//! or SQL. The graphs it serves, and changing them while serving (reload,
//! plugin swap), are the engine's [`weft_engine::Catalog`]. [`Api::router`]
//! builds the routes; the `weft serve` command binds them.
//!
//! Layout: [`Api`] (`state.rs`) is what handlers share; `routes/` holds one
//! module per resource (organism, graphs, plugins, agents, instances,
//! threads, messages, usage, keys, events, sockets) over the helpers they
//! share (`paging`, `access`, `feed`); [`error`] is the one error shape;
//! [`ids`] parses the ids clients give; `middleware.rs` checks keys and
//! counts requests; `app.rs` puts the routes and their middleware together
//! ([`Api::router`], which also answers without a socket); `ui.rs` serves
//! the operators' dashboard (built from `ui/`) at `/`; `openai/` is the
//! OpenAI-compatible endpoint under `/v1` (models are graphs, a chat
//! completion is a run on a thread).

#![warn(missing_docs)]

mod app;
pub mod auth;
pub mod error;
mod events;
pub mod ids;
mod mcp;
mod metrics;
mod middleware;
pub mod oidc;
mod openai;
mod openapi;
mod reload;
mod routes;
mod state;
mod ui;
mod webhooks;

pub use auth::{KeyInfo, Keys, Principal, Role};
pub use error::ApiError;
pub use ids::ThreadId;
pub use reload::{BoxFuture, ConfigReload, ConfigReloader};
pub use state::{Api, ApiConfig};
pub use webhooks::{WebhookConfig, signature};
