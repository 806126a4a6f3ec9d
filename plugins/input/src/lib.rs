//! The input node: the first node every user message reaches.
//!
//! For each user message (kind `user`, body [`UserText`]) it asks the model
//! for an [`Analysis`] constrained by [`Analysis::schema`], emits it as a
//! `perceived` HUD event, stores it in thread memory under
//! [`LAST_ANALYSIS_KEY`] for later nodes, and sends a `command`
//! ([`Command`]) on:
//!
//! - to the `reflex` peer when the message is a reflex (short social talk,
//!   no thinking needed), or to the `think` peer when `reflex` is `null`;
//! - to the `think` peer otherwise;
//! - and, whatever the route, to every `notify` peer (a memorizer, say).
//!
//! The peers come from the node's graph `config` ([`Config`]):
//!
//! ```json
//! { "think": "pa", "reflex": "output", "notify": ["memorizer"],
//!   "languages": { "de": ["der", "die", "wie", "viele"], "en": ["the", "how", "many"] } }
//! ```
//!
//! The model's language code is checked against the message's words
//! ([`language`]): when the message clearly uses one configured language,
//! that code wins (small models answer `en` for German too).
//!
//! An answer that does not parse is not fatal: the node logs a warning and
//! uses [`Analysis::fallback`], which takes the thinking path. A failing
//! `llm` call is: the tick fails with the capability error, so the trace
//! shows why.

#![warn(missing_docs)]

mod analysis;
pub mod language;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Deserialize;
use weft_sdk::{Capability, Ctx, EventKind, Message, Node, NodeError, NodeInfo, Scope};

pub use weft_protocol::{Analysis, Command, Complexity, Intent, LAST_ANALYSIS_KEY, UserText};

/// The `think` peer when the config names none.
pub const DEFAULT_THINK: &str = "pa";

/// The `reflex` peer when the config names none.
pub const DEFAULT_REFLEX: &str = "output";

/// The node's graph `config`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The peer that thinks about messages that are not reflexes.
    pub think: String,
    /// The peer that answers reflexes directly; `null` sends them to
    /// `think` too.
    pub reflex: Option<String>,
    /// Peers that get a copy of every `command`, whatever its route. A peer
    /// that is already the route's target is not sent a second copy.
    pub notify: Vec<String>,
    /// Common words per language (ISO 639-1 code → words) that correct
    /// the model's language code; [`language::defaults`] (English and
    /// German) when unset, `{}` turns the check off.
    pub languages: BTreeMap<String, Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            think: DEFAULT_THINK.to_owned(),
            reflex: Some(DEFAULT_REFLEX.to_owned()),
            notify: Vec::new(),
            languages: language::defaults(),
        }
    }
}

impl Config {
    /// The peer a message with `analysis` is routed to.
    pub fn route(&self, analysis: &Analysis) -> &str {
        match (&self.reflex, analysis.reflex) {
            (Some(reflex), true) => reflex,
            _ => &self.think,
        }
    }
}

/// The input node; see the [crate docs](crate).
pub struct Input;

impl Node for Input {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "input",
            env!("CARGO_PKG_VERSION"),
            "Classifies each user message and routes it to the reflex path or the thinking node",
        )
        .input_schema(UserText::schema())
        .output_schema(Command::schema())
        .capabilities([
            Capability::Llm,
            Capability::Hud,
            Capability::Memory,
            Capability::Log,
        ])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let config: Config = ctx.config()?;
        for message in inbox {
            if message.kind != weft_protocol::kind::USER {
                ctx.ignore(message);
                continue;
            }
            let UserText { text } = message.json()?;
            if text.trim().is_empty() {
                return Err(NodeError::InvalidInput(format!(
                    "message {} has empty text",
                    message.id
                )));
            }
            handle(ctx, &config, text)?;
        }
        Ok(())
    }
}

/// Classify one user message, record the analysis and route it.
fn handle(ctx: &mut Ctx<'_>, config: &Config, text: String) -> Result<(), NodeError> {
    let mut analysis = classify(ctx, &text)?;
    if let Some(code) = language::detect(&text, &config.languages)
        && code != analysis.language
    {
        ctx.log().debug(format!(
            "the message's words are {code}, not {:?}; answering in {code}",
            analysis.language
        ));
        analysis.language = code;
    }
    ctx.hud().emit(EventKind::Perceived, &analysis)?;
    ctx.memory()
        .set_json(Scope::Thread, LAST_ANALYSIS_KEY, &analysis)?;
    let peer = config.route(&analysis);
    ctx.log().debug(format!(
        "routing {:?} message on {:?} to {peer}",
        analysis.intent, analysis.topic
    ));
    let command = Command {
        analysis,
        source_text: text,
    };
    ctx.send(peer, weft_protocol::kind::COMMAND, &command)?;
    let mut notified = vec![peer];
    for other in &config.notify {
        if !notified.contains(&other.as_str()) {
            ctx.send(other, weft_protocol::kind::COMMAND, &command)?;
            notified.push(other);
        }
    }
    Ok(())
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
