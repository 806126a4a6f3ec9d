//! The output node: writes the reply the user reads.
//!
//! It takes `respond` ([`Respond`], from the PA, an expert, the thinker or
//! the interpreter) and, on the reflex path, `command` ([`Command`]) straight
//! from `input`. All the messages of one inbox make one reply, written by
//! one streamed model call (`stream: true`, so the host sends the deltas to
//! the user as they come) from the request, the hint, the draft, the result
//! (summary and key facts) and the error, in the requested language; a
//! reflex gets a short friendly answer. The node then sets the reply and
//! marks the run done.
//!
//! A reply the model wrote is checked ([`compose::check`]): it may not
//! repeat the prompt, invent a number, or leave out a number of an expert's
//! summary. Small models fail this often; the streamed text is then
//! replaced by the material itself, so the final reply stays correct.
//!
//! If the model fails (or answers nothing), the reply is built without it
//! from the drafts, results and errors, with a warning in the log; the user
//! never gets an empty reply. Only when there is nothing to build it from (a
//! reflex, or a respond carrying no material) does the tick fail, with the
//! model's error.
//!
//! Config: `{"max_tokens": 300}`, the reply's token limit.

#![warn(missing_docs)]

pub mod compose;
#[cfg(test)]
mod tests;

use serde::Deserialize;
use weft_protocol::{Command, Respond, any_of, kind};
use weft_sdk::{Capability, Ctx, Message, Node, NodeError, NodeInfo};

pub use compose::Item;

/// The progress text shown while the reply is written.
pub const WRITING_PROGRESS: &str = "writing the reply…";

/// The node's `config`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The reply's token limit (at least 1).
    pub max_tokens: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self { max_tokens: 300 }
    }
}

/// The output node; see the [crate docs](crate).
pub struct Output;

impl Node for Output {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "output",
            env!("CARGO_PKG_VERSION"),
            "Writes and streams the reply to the user",
        )
        .input_schema(any_of([Respond::schema(), Command::schema()]))
        .capabilities([Capability::Llm, Capability::Hud, Capability::Log])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let config: Config = ctx.config()?;
        if config.max_tokens == 0 {
            return Err(NodeError::InvalidInput(format!(
                "node `{}` has a bad config: `max_tokens` must be at least 1",
                ctx.node()
            )));
        }
        let mut items = Vec::new();
        for message in inbox {
            match message.kind.as_str() {
                kind::RESPOND => items.push(Item::Respond(message.json()?)),
                kind::COMMAND => items.push(Item::Reflex(message.json()?)),
                _ => ctx.ignore(message),
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        ctx.hud().progress(WRITING_PROGRESS)?;
        let reply = write(ctx, &items, config.max_tokens)?;
        ctx.reply(reply);
        ctx.done();
        Ok(())
    }
}

/// The model's reply to `items`, or the fallback text when the model fails
/// or answers nothing.
fn write(ctx: &Ctx<'_>, items: &[Item], max_tokens: u32) -> Result<String, NodeError> {
    let failure = match ctx.llm().complete(compose::request(items, max_tokens)) {
        Ok(completion) if !completion.text.trim().is_empty() => {
            let text = completion.text.trim();
            match compose::check(text, items) {
                Ok(()) => return Ok(text.to_owned()),
                Err(why) => NodeError::Failed(format!(
                    "{} wrote an unusable reply: {why}",
                    completion.model
                )),
            }
        }
        Ok(completion) => {
            NodeError::Failed(format!("{} answered with an empty reply", completion.model))
        }
        Err(error) => NodeError::Capability(error),
    };
    match compose::fallback(items) {
        Some(text) => {
            ctx.log().warn(format!(
                "could not write the reply with the model ({failure}); sending the material as it is"
            ));
            Ok(text)
        }
        None => Err(failure),
    }
}

weft_sdk::export_node!(Output);
