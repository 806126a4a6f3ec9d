//! The weft node contract's domain types and constants, written once for
//! the host and the SDK.
//!
//! The WIT contract (`wit/`) says what crosses the boundary between the
//! host and a node; this crate says it in plain Rust. The host runtime
//! (`weft-runtime`) and the SDK (`weft-sdk`) each generate their own
//! bindings of the WIT files and convert them into these types, so neither
//! side, nor anything built on them, depends on one contract version's
//! generated code, and the two sides cannot drift apart.
//!
//! Every type serializes: the host journals host-call requests and
//! responses for replay, and the host notices a node receives
//! ([`Undeliverable`], [`BudgetWarning`]) travel as JSON message bodies.
//! The crate depends on serde, serde_json and thiserror only, so it builds
//! for `wasm32-wasip2` inside every plugin.
//!
//! | module of the WIT contract | types here |
//! |---|---|
//! | `types` | [`Capability`], [`CapabilityError`], [`CallContext`], [`Context`], [`Message`], [`Outbound`], [`TickOutput`], [`Interrupt`], [`NodeInfo`], [`NodeError`] |
//! | `llm` | [`Role`], [`ChatMessage`], [`CompletionRequest`], [`Completion`] |
//! | `db` | [`Value`], [`Column`], [`Rows`] |
//! | `memory` | [`Scope`] |
//! | `hud` | [`EventKind`] |
//! | `log` | [`Level`] |
//! | host notices (messages from [`SYSTEM_SENDER`]) | [`Undeliverable`], [`BudgetWarning`], [`Resume`] and their kinds |

#![warn(missing_docs)]

mod capability;
mod db;
mod hud;
mod llm;
mod log;
mod memory;
mod node;
mod notice;
#[cfg(test)]
mod tests;
mod tools;

pub use capability::{Capability, CapabilityError};
pub use db::{Column, Rows, Value};
pub use hud::EventKind;
pub use llm::{ChatMessage, Completion, CompletionRequest, Role};
pub use log::Level;
pub use memory::Scope;
pub use node::{
    CallContext, Context, Interrupt, Message, NodeError, NodeInfo, Outbound, TickOutput,
};
pub use notice::{
    BUDGET_WARNING_KIND, BudgetWarning, PROJECT_BUDGET_WARNING_KIND, RESUME_KIND, Resume,
    ResumeOutcome, SYSTEM_SENDER, UNDELIVERABLE_KIND, Undeliverable,
};
pub use tools::{Tool, ToolResult};
