//! The ui node: keeps what the user's UI shows, with no LLM.
//!
//! It holds a [`UiState`] (state machines, key/value state, the latest
//! display and the current controls) in node-scope memory under
//! [`UI_STATE_KEY`], and changes it in two ways:
//!
//! - a `ui` message ([`UiActions`], from the PA, an expert, the thinker or
//!   the interpreter) applies its tool calls in order; every tool of
//!   [`weft_protocol::UI_TOOLS`] is implemented as documented there;
//! - an `action` message ([`UiAction`], a button the user pressed) with
//!   `go:<state>` moves the machine named in it, or else the only machine
//!   that has `<state>`, to that state. This is local: no model is asked.
//!
//! A call that cannot be applied (unknown machine, missing state, duplicate
//! machine, missing argument, an action other than `go:`) is collected as an
//! error and the others still apply. After each message the node emits one
//! `updated` HUD event `{state, errors}` with the whole new state and saves
//! it. When every call of a message failed the tick still succeeds, with a
//! warning in the log.
//!
//! The node has no config and sends no messages.

#![warn(missing_docs)]

mod state;
#[cfg(test)]
mod tests;
mod tools;

use serde_json::json;
use weft_protocol::{UiAction, UiActions, any_of, kind};
use weft_sdk::{Capability, Ctx, EventKind, Message, Node, NodeError, NodeInfo, Scope};

pub use state::{Button, Control, Display, Machine, MachineState, UiState};
pub use tools::GO_PREFIX;

/// The node-scope memory key holding the [`UiState`].
pub const UI_STATE_KEY: &str = "ui.state";

/// The ui node; see the [crate docs](crate).
pub struct Ui;

impl Node for Ui {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "ui",
            env!("CARGO_PKG_VERSION"),
            "Keeps the UI state: applies UI tool calls and button actions without an LLM",
        )
        .input_schema(any_of([UiActions::schema(), UiAction::schema()]))
        .capabilities([Capability::Memory, Capability::Hud, Capability::Log])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let mut state = load(ctx)?;
        for message in inbox {
            let (attempted, errors) = match message.kind.as_str() {
                kind::UI => {
                    let UiActions { actions } = message.json()?;
                    let errors: Vec<String> = actions
                        .iter()
                        .filter_map(|call| {
                            let error = state.apply(call).err()?;
                            Some(format!("{}: {error}", call.tool))
                        })
                        .collect();
                    (actions.len(), errors)
                }
                kind::ACTION => {
                    let action: UiAction = message.json()?;
                    let errors = match state.press(&action) {
                        Ok(()) => Vec::new(),
                        Err(error) => vec![format!("action {:?}: {error}", action.action)],
                    };
                    (1, errors)
                }
                _ => {
                    ctx.ignore(message);
                    continue;
                }
            };
            state.refresh_controls();
            ctx.hud().emit(
                EventKind::Updated,
                &json!({"state": state, "errors": errors}),
            )?;
            ctx.memory().set_json(Scope::Node, UI_STATE_KEY, &state)?;
            if attempted > 0 && errors.len() == attempted {
                ctx.log().warn(format!(
                    "nothing of message {} ({} from {}) applied: {}",
                    message.id,
                    message.kind,
                    message.from,
                    errors.join("; ")
                ));
            } else {
                ctx.log().debug(format!(
                    "applied {} of {attempted} call(s) from {}",
                    attempted - errors.len(),
                    message.from
                ));
            }
        }
        Ok(())
    }
}

/// The saved state, or an empty one before the first save. A saved state
/// that no longer parses (only this node writes it) is logged and replaced:
/// a UI stuck on a broken state would be worse than a fresh one.
fn load(ctx: &Ctx<'_>) -> Result<UiState, NodeError> {
    let Some(text) = ctx.memory().get(Scope::Node, UI_STATE_KEY)? else {
        return Ok(UiState::default());
    };
    match serde_json::from_str(&text) {
        Ok(state) => Ok(state),
        Err(error) => {
            ctx.log().error(format!(
                "the saved UI state does not parse ({error}); starting from an empty one"
            ));
            Ok(UiState::default())
        }
    }
}

weft_sdk::export_node!(Ui);
