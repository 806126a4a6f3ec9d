//! The memorizer node: what the conversation has established so far.
//!
//! It is the seed's `memorizer_v1`. For every `command` ([`Command`]) it
//! reads the [`MemorizerState`] from thread memory ([`MEMORIZER_STATE_KEY`],
//! the default when missing), makes **one** schema-constrained model call
//! ([`update`]) that returns the updated state, caps it on the host side
//! too ([`MAX_TOPIC_HISTORY`] topics, [`MAX_FACTS`] facts), writes it back
//! and emits an `updated {memorizer: state}` event. The PA reads the state
//! on the next turn and folds its facts into expert jobs. The memorizer
//! sends no messages.
//!
//! An answer that does not parse keeps the old state, updated only with
//! what the analysis says for sure (topic and language; see
//! [`update::fallback`]), and logs a warning. A failing `llm` or `memory`
//! call fails the tick with the capability error, so the trace shows why and
//! the stored state is left as it was. HUD is best-effort.
//!
//! It has no graph `config`.

#![warn(missing_docs)]

#[cfg(test)]
mod tests;
pub mod update;

use weft_protocol::{Command, kind};
use weft_sdk::{Capability, Ctx, EventKind, Message, Node, NodeError, NodeInfo, Scope};

pub use update::{MAX_FACTS, MAX_TOPIC_HISTORY};
pub use weft_protocol::{MEMORIZER_STATE_KEY, MemorizerState};

/// The memorizer node; see the [crate docs](crate).
pub struct Memorizer;

impl Node for Memorizer {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "memorizer",
            env!("CARGO_PKG_VERSION"),
            "Keeps what the conversation established in thread memory for the PA",
        )
        .input_schema(Command::schema())
        .capabilities([
            Capability::Llm,
            Capability::Memory,
            Capability::Hud,
            Capability::Log,
        ])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        for message in inbox {
            if message.kind != kind::COMMAND {
                ctx.ignore(message);
                continue;
            }
            let command: Command = message.json()?;
            remember(ctx, &command)?;
        }
        Ok(())
    }
}

/// Update the stored state with one command.
fn remember(ctx: &Ctx<'_>, command: &Command) -> Result<(), NodeError> {
    let old = load(ctx)?;
    let completion = ctx.llm().complete(update::request(&old, command))?;
    let state = match update::parse(&completion.text) {
        Ok(state) => state,
        Err(error) => {
            let start: String = completion.text.chars().take(80).collect();
            ctx.log().warn(format!(
                "unusable state from {} ({error}): {start:?}; keeping the old one",
                completion.model
            ));
            update::fallback(old, &command.analysis)
        }
    };
    ctx.memory()
        .set_json(Scope::Thread, MEMORIZER_STATE_KEY, &state)?;
    let event = serde_json::json!({"memorizer": state});
    if let Err(error) = ctx.hud().emit(EventKind::Updated, &event) {
        ctx.log()
            .warn(format!("could not emit the updated event: {error}"));
    }
    Ok(())
}

/// The stored state: the default when missing or unparsable (with a
/// warning); a memory error fails.
fn load(ctx: &Ctx<'_>) -> Result<MemorizerState, NodeError> {
    let Some(text) = ctx.memory().get(Scope::Thread, MEMORIZER_STATE_KEY)? else {
        return Ok(MemorizerState::default());
    };
    match serde_json::from_str(&text) {
        Ok(state) => Ok(state),
        Err(error) => {
            ctx.log().warn(format!(
                "the stored state is unusable ({error}); starting afresh"
            ));
            Ok(MemorizerState::default())
        }
    }
}

weft_sdk::export_node!(Memorizer);
