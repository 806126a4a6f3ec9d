//! The input node: the first node every user message reaches.
//!
//! For each user message (kind `user`, body `{"text": "…"}`) it asks the
//! model for an [`Analysis`] constrained by a JSON Schema, emits it as a
//! `perceived` HUD event, stores it in thread memory under
//! [`LAST_ANALYSIS_KEY`] for later nodes, and sends a `command`
//! (`{analysis, source_text}`) to `output` when the message is a reflex
//! (short social talk, no thinking needed) or to `pa` otherwise.
//!
//! An answer that does not parse is not fatal: the node logs a warning and
//! uses [`Analysis::fallback`], which routes to the PA. A failing `llm` call
//! is: the tick fails with the capability error, so the trace shows why.

#![warn(missing_docs)]

mod analysis;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::json;
use weft_sdk::{Capability, Ctx, EventKind, Message, Node, NodeError, NodeInfo, Scope};

pub use analysis::{Analysis, Complexity, Intent};

/// The thread-memory key holding the analysis of the latest user message.
pub const LAST_ANALYSIS_KEY: &str = "input.last_analysis";

/// The message kind this node handles.
pub const USER_KIND: &str = "user";

/// The kind of the messages this node sends.
pub const COMMAND_KIND: &str = "command";

/// The peer that answers reflexes directly.
pub const REFLEX_PEER: &str = "output";

/// The peer that thinks about everything else.
pub const PA_PEER: &str = "pa";

/// The body of a user message.
#[derive(Debug, Deserialize)]
struct UserText {
    text: String,
}

/// The body of the `command` this node sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The classification of the user's message.
    pub analysis: Analysis,
    /// The user's message, verbatim.
    pub source_text: String,
}

/// The input node; see the [crate docs](crate).
pub struct Input;

impl Node for Input {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "input",
            env!("CARGO_PKG_VERSION"),
            "Classifies each user message and routes it to the reflex path or the PA",
        )
        .input_schema(json!({
            "type": "object",
            "properties": {"text": {"type": "string", "minLength": 1}},
            "required": ["text"]
        }))
        .output_schema(json!({
            "type": "object",
            "properties": {
                "analysis": analysis::schema(),
                "source_text": {"type": "string"}
            },
            "required": ["analysis", "source_text"],
            "additionalProperties": false
        }))
        .capabilities([
            Capability::Llm,
            Capability::Hud,
            Capability::Memory,
            Capability::Log,
        ])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        for message in inbox {
            if message.kind != USER_KIND {
                ctx.log().warn(format!(
                    "ignoring message {} of kind {:?} from {}",
                    message.id, message.kind, message.from
                ));
                continue;
            }
            let UserText { text } = message.json()?;
            if text.trim().is_empty() {
                return Err(NodeError::InvalidInput(format!(
                    "message {} has empty text",
                    message.id
                )));
            }
            handle(ctx, text)?;
        }
        Ok(())
    }
}

/// Classify one user message, record the analysis and route it.
fn handle(ctx: &mut Ctx<'_>, text: String) -> Result<(), NodeError> {
    let analysis = classify(ctx, &text)?;
    ctx.hud().emit(EventKind::Perceived, &analysis)?;
    ctx.memory()
        .set_json(Scope::Thread, LAST_ANALYSIS_KEY, &analysis)?;
    let peer = if analysis.reflex {
        REFLEX_PEER
    } else {
        PA_PEER
    };
    ctx.log().debug(format!(
        "routing {:?} message on {:?} to {peer}",
        analysis.intent, analysis.topic
    ));
    ctx.send(
        peer,
        COMMAND_KIND,
        &Command {
            analysis,
            source_text: text,
        },
    )
}

/// Ask the model for the analysis of `text`, falling back when its answer is
/// not a valid [`Analysis`]. Only an `llm` error fails.
fn classify(ctx: &Ctx<'_>, text: &str) -> Result<Analysis, NodeError> {
    let completion = ctx.llm().complete(analysis::request(text))?;
    match serde_json::from_str(&completion.text) {
        Ok(analysis) => Ok(analysis),
        Err(error) => {
            let start: String = completion.text.chars().take(80).collect();
            ctx.log().warn(format!(
                "unusable analysis from {} ({error}): {start:?}; using the fallback",
                completion.model
            ));
            Ok(Analysis::fallback())
        }
    }
}

weft_sdk::export_node!(Input);
