//! weft's frame engine: graphs, threads, runs and frames.
//!
//! - [`graph`]: the graph file format and its validation.
//! - [`LoadedGraph`]: a graph bound to loaded plugin versions, with each
//!   node's input-schema validator compiled.
//! - [`Engine`]: threads pinned to graphs, runs executed frame by frame
//!   (see `run.rs` for the frame semantics), pause/resume of nodes, kill of
//!   runs, and the [`events`] stream.
//! - [`trace`]: [`FrameRecord`] per invocation, [`FrameTrace`] per run.
//! - [`usage`] and [`budget`]: metering of every `llm` call and node
//!   invocation, per-thread token budgets, per-project money budgets over
//!   UTC day or month windows ([`clock`]).
//! - [`store`]: the [`Store`] trait the engine commits runs and frames to
//!   (`weft-store` implements it on SQLite), and with it crash resume
//!   ([`Engine::resume_runs`]), replay ([`Engine::replay`]), fork
//!   ([`Engine::fork`]) and retention ([`Engine::prune`]).
//!
//! The public API uses weft's domain types ([`weft_runtime::NodeInfo`],
//! [`weft_runtime::Limits`], [`weft_runtime::Grants`]) and never wasmtime's,
//! axum's or SQL.

#![warn(missing_docs)]

pub mod budget;
pub mod catalog;
pub mod clock;
mod durable;
mod engine;
pub mod events;
pub mod graph;
pub mod instances;
mod loaded;
mod plugins;
mod replay;
mod run;
pub mod store;
mod swap;
pub mod trace;
pub mod usage;

pub use budget::{
    BudgetConfig, BudgetError, BudgetStatus, Budgets, DEFAULT_PROJECT, MoneyBudget,
    ProjectBudgetStatus, Window,
};
pub use catalog::{Catalog, CatalogError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Backends, Engine, EngineConfig, EngineError, Inbound, Retention, RunHandle};
pub use events::{Bus, Event, EventBody};
pub use graph::{
    Graph, GraphError, Node, PluginRef, PluginResolver, Problem, ProblemKind, Severity,
};
pub use instances::{Instance, InstanceError, InstanceStatus};
pub use loaded::{LoadError, LoadedGraph, SwapError};
pub use plugins::{PluginSet, SkippedPlugin};
pub use replay::{Divergence, ReplayOptions, ReplayPlugins, ReplayReport};
pub use run::{SYSTEM_SENDER, UNDELIVERABLE_KIND};
pub use store::{NodePause, Store, StoreError};
pub use swap::PluginSwap;
pub use trace::{FrameRecord, FrameTrace, RunStatus, TraceError};
pub use usage::{
    InvocationEvent, Ledger, MemoryLedger, Price, PriceTable, UsageBreakdown, UsageEvent,
    UsageTotals,
};

// What building an engine takes from the runtime, so that its clients
// (the API among them) need not depend on `weft-runtime`.
pub use weft_runtime::capabilities::db::InMemoryDb;
pub use weft_runtime::capabilities::llm::Unavailable as UnavailableLlm;
pub use weft_runtime::{Runtime, RuntimeConfig};
