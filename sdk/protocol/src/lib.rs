//! The messages weft's shipped nodes exchange.
//!
//! Every node of `graphs/assistant.yaml` and `graphs/framed.yaml` speaks
//! this protocol; a third-party node that wants to take part in those graphs
//! (say, another expert the PA can route to) uses these types and declares
//! these schemas. Each message has a *kind* (the tag in
//! [`Message::kind`](https://docs.rs/weft-sdk)) and a JSON body:
//!
//! | kind            | body                | from → to                                   |
//! |-----------------|---------------------|---------------------------------------------|
//! | `user`          | [`UserText`]        | the user → `input`                          |
//! | `command`       | [`Command`]         | `input` → `pa`, `director`, `output` (reflex), `memorizer` |
//! | `job`           | [`Job`]             | `pa` → an expert (`eras`)                   |
//! | `expert_failed` | [`ExpertFailed`]    | an expert → `pa`                            |
//! | `plan`          | [`PlanMessage`]     | `director` → `thinker`                      |
//! | `interpret`     | [`Interpret`]       | `thinker` → `interpreter`                   |
//! | `respond`       | [`Respond`]         | `pa`, experts, `thinker`, `interpreter` → `output` |
//! | `ui`            | [`UiActions`]       | `pa`, experts, `thinker`, `interpreter` → `ui` |
//! | `action`        | [`UiAction`]        | the user (a button) → `ui`                  |
//!
//! Receivers declare the union of the bodies they accept as their input
//! schema ([`any_of`]); the host validates every payload against it before
//! delivery, so a node can trust the shape of what it receives.
//!
//! Thread memory keys shared between nodes are constants here too
//! ([`LAST_ANALYSIS_KEY`], [`MEMORIZER_STATE_KEY`]).

#![warn(missing_docs)]

use serde_json::{Value, json};

mod analysis;
mod answers;
mod jobs;
mod memory;
mod plans;
#[cfg(test)]
mod tests;

pub use analysis::{Analysis, Command, Complexity, Intent, UserText};
pub use answers::{Respond, UiAction, UiActions};
pub use jobs::{ExpertFailed, Job};
pub use memory::MemorizerState;
pub use plans::{
    DATA_TOOLS, DirectorPlan, EXTERNAL_TOOL_PATTERN, Interpret, Interpreted, PlanMessage, ToolCall,
    ToolOutput, UI_TOOLS, all_tools, external_tool,
};

/// Thread-memory key: the [`Analysis`] of the latest user message (written by `input`).
pub const LAST_ANALYSIS_KEY: &str = "input.last_analysis";
/// Thread-memory key: the [`MemorizerState`] (written by `memorizer`, read by `pa`).
pub const MEMORIZER_STATE_KEY: &str = "memorizer.state";

/// Matching message words against configured vocabularies.
pub mod vocabulary;

/// Message kinds, as constants so senders and receivers cannot drift apart.
pub mod kind {
    /// A user's chat message.
    pub const USER: &str = "user";
    /// A classified user message.
    pub const COMMAND: &str = "command";
    /// A self-contained task for an expert.
    pub const JOB: &str = "job";
    /// An expert could not do its job.
    pub const EXPERT_FAILED: &str = "expert_failed";
    /// The director's plan for the thinker.
    pub const PLAN: &str = "plan";
    /// Tool output for the interpreter.
    pub const INTERPRET: &str = "interpret";
    /// Material for the final answer.
    pub const RESPOND: &str = "respond";
    /// UI tool calls.
    pub const UI: &str = "ui";
    /// A button the user pressed.
    pub const ACTION: &str = "action";
}

/// The schema accepting any of `schemas` (a receiver's input schema when it
/// takes several kinds of message).
pub fn any_of(schemas: impl IntoIterator<Item = Value>) -> Value {
    json!({"anyOf": schemas.into_iter().collect::<Vec<_>>()})
}
