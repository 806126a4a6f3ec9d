//! weft's frame engine: graphs, threads, runs and frames.
//!
//! - [`graph`]: the graph file format and its validation; [`LoadedGraph`]:
//!   a graph bound to loaded plugin versions, with each node's
//!   input-schema validator compiled.
//! - [`Engine`] (`engine.rs`): the facade over the engine's parts, each in
//!   its own module — threads (`threads.rs`), pauses, shutdown and swaps
//!   (`control.rs`), [`metering`] (budgets, the ledger, the metered `llm`),
//!   runs and the frame loop (`run/`), and the store's uses beyond
//!   commits (`durable/`: resume, fork, prune, replay).
//! - [`agents`]: agent instances, and [`catalog`]: the served graphs, the
//!   active graph, reload and plugin swap; both clients of the facade.
//! - [`events`]: the event stream; [`trace`]: [`FrameRecord`] per
//!   invocation, [`FrameTrace`] per run.
//! - [`store`]: the [`Store`] trait the engine commits runs and frames to
//!   (`weft-store` implements it on SQLite).
//!
//! The public API uses weft's domain types ([`weft_runtime::NodeInfo`],
//! [`weft_runtime::Limits`], [`weft_runtime::Grants`]) and never wasmtime's,
//! axum's or SQL.

#![warn(missing_docs)]

pub mod agents;
pub mod bus;
pub mod catalog;
pub mod clock;
mod config;
mod control;
mod durable;
mod engine;
mod error;
pub mod events;
pub mod graph;
mod loaded;
pub mod metering;
mod multitask;
mod plugins;
mod run;
pub mod scenario;
pub mod schedules;
pub mod store;
mod threads;
pub mod trace;

pub use agents::{Agents, Instance, InstanceError, InstanceStatus};
pub use bus::{LocalBus, SystemBus};
pub use catalog::{Catalog, CatalogError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Backends, EngineConfig, LeaseConfig, Retention, default_host_id};
pub use control::PluginSwap;
pub use durable::{Divergence, PluginChange, ReplayOptions, ReplayPlugins, ReplayReport};
pub use engine::Engine;
pub use error::EngineError;
pub use events::{Bus, Event, EventBody};
pub use graph::{
    Graph, GraphError, Node, PluginRef, PluginResolver, Problem, ProblemKind, Severity,
};
pub use loaded::{LoadError, LoadedGraph, SwapError};
pub use metering::{
    BudgetConfig, BudgetError, BudgetStatus, Budgets, DEFAULT_PROJECT, InvocationEvent, Ledger,
    MAX_MONEY, MemoryLedger, MoneyBudget, Price, PriceTable, ProjectBudgetStatus, SharedMoney,
    Unpriced, UsageBreakdown, UsageEvent, UsageTotals, Window,
};
pub use plugins::{PluginSet, SkippedPlugin};
pub use run::{Answer, Answered, Inbound, RunHandle, Sent};
pub use store::{InterruptStatus, NodePause, Store, StoreError, StoredInterrupt};
pub use threads::{InvalidThreadId, Multitask, ThreadId};
pub use trace::{FrameRecord, FrameTrace, RunStatus, TraceError};
pub use weft_runtime::contract::{SYSTEM_SENDER, UNDELIVERABLE_KIND};

// What building an engine takes from the runtime, so that its clients
// (the API among them) need not depend on `weft-runtime`.
pub use weft_runtime::capabilities::db::InMemoryDb;
pub use weft_runtime::capabilities::llm::Unavailable as UnavailableLlm;
pub use weft_runtime::capabilities::tools::{ToolBox, ToolStat};
pub use weft_runtime::{Runtime, RuntimeConfig};
