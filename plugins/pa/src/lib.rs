//! The PA (personal assistant) node: decides who answers each user message.
//!
//! The PA is the seed's `pa_v1`. For every `command` ([`Command`]) it makes
//! **one** schema-constrained model call ([`route`]) that picks an expert
//! from the configured ones, or `none`, and writes the expert's job. Experts
//! are stateless, so the prompt carries what the memorizer knows
//! ([`MEMORIZER_STATE_KEY`]) and the PA's own recent routing history, and
//! tells the model to fold the facts the expert needs into the job.
//!
//! - `none`: the PA answers itself. It sends a `respond` ([`Respond`], the
//!   routing answer's `job` as the draft) to `output` and a `ui` message
//!   ([`UiActions`]: `set_state {key: "topic"}`) to `ui`.
//! - an expert: it sends the `job` ([`Job`], attempt 1) to that expert and
//!   remembers it ([`PENDING_KEY`]); the expert answers `output` itself.
//!
//! Either way it shows the routing answer's `thinking_message` as progress
//! and emits `thinking {message}` and `decided {expert, job, language}`.
//!
//! When an expert reports `expert_failed` ([`ExpertFailed`]) for attempt 1,
//! the PA reformulates the job once ([`retry`], a second schema-constrained
//! call) and sends it back to the same expert as attempt 2. When attempt 2
//! fails too, or the reformulation does, it gives up: a `respond` with the
//! `error` and an apologetic draft goes to `output`, plus the `ui` message.
//!
//! The peers come from the graph `config` ([`Config`]):
//!
//! ```json
//! { "experts": { "eras": "heating-cost billing data: customers, properties, devices, readings" },
//!   "output": "output", "ui": "ui", "history": 6 }
//! ```
//!
//! An unusable routing answer is not fatal (the PA answers itself, with a
//! warning); a failing `llm` call on a `command` fails the tick with the
//! capability error. HUD and memory are best-effort: their failures are
//! logged and the PA carries on, since a reply matters more than a progress
//! line or a history entry.

#![warn(missing_docs)]

mod config;
pub mod retry;
pub mod route;
mod state;
#[cfg(test)]
mod tests;

use serde::Serialize;
use weft_protocol::{Command, ExpertFailed, Job, Respond, UiActions, any_of, kind};
use weft_sdk::{Capability, Ctx, EventKind, Message, Node, NodeError, NodeInfo};

pub use config::Config;
pub use route::{NONE, Routing};
pub use state::{HISTORY_KEY, PENDING_KEY, PendingJob, Turn};
pub use weft_protocol::{LAST_ANALYSIS_KEY, MEMORIZER_STATE_KEY};

/// The PA node; see the [crate docs](crate).
pub struct Pa;

impl Node for Pa {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "pa",
            env!("CARGO_PKG_VERSION"),
            "Routes each command to a stateless expert with a self-contained job, or answers directly",
        )
        .input_schema(any_of([Command::schema(), ExpertFailed::schema()]))
        .output_schema(any_of([
            Job::schema(),
            Respond::schema(),
            UiActions::schema(),
        ]))
        .capabilities([
            Capability::Llm,
            Capability::Memory,
            Capability::Hud,
            Capability::Log,
        ])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let config = Config::load(ctx)?;
        for message in inbox {
            match message.kind.as_str() {
                kind::COMMAND => route::handle(ctx, &config, message.json()?)?,
                kind::EXPERT_FAILED => retry::handle(ctx, &config, &message.from, message.json()?)?,
                _ => ctx.ignore(message),
            }
        }
        Ok(())
    }
}

/// The `ui` message that shows `topic` as the UI's `topic` state.
fn topic_ui(topic: &str) -> UiActions {
    UiActions {
        actions: vec![weft_protocol::ToolCall {
            tool: "set_state".to_owned(),
            args: serde_json::json!({"key": "topic", "value": topic}),
        }],
    }
}

/// Show progress text; a HUD failure is logged, not fatal.
fn progress(ctx: &Ctx<'_>, text: &str) {
    if let Err(error) = ctx.hud().progress(text) {
        ctx.log().warn(format!("could not show progress: {error}"));
    }
}

/// Emit a HUD event; a HUD failure is logged, not fatal.
fn emit(ctx: &Ctx<'_>, kind: EventKind, data: &impl Serialize) {
    if let Err(error) = ctx.hud().emit(kind, data) {
        ctx.log()
            .warn(format!("could not emit a {kind:?} event: {error}"));
    }
}

weft_sdk::export_node!(Pa);
