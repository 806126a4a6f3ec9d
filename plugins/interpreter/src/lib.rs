//! The interpreter node: turns tool output into facts.
//!
//! For each `interpret` ([`Interpret`] from the thinker) it shows progress,
//! makes one schema-constrained model call that produces an
//! [`Interpreted`] `{summary, row_count, key_facts, confidence}` from the
//! tool outputs (cut to at most 40 rows and 8 KB of JSON in the prompt),
//! emits it as an `interpreted` HUD event, and sends
//!
//! - a `respond` ([`Respond`]) with the result to output (its `error` lists
//!   the tools that failed, if any), and
//! - a `ui` ([`UiActions`]) to the ui node with one
//!   `emit_display {title: "summary", items: key_facts}`.
//!
//! The data is there even when the model is not: an answer that does not
//! parse, or a failing `llm` call, gives [`fallback::interpret`]'s
//! deterministic summary (row count and first rows, confidence 0.3) with a
//! warning, so the user still gets the facts.
//!
//! Config: `{"output": "output", "ui": "ui"}`.

#![warn(missing_docs)]

pub mod fallback;
pub mod prompt;
#[cfg(test)]
mod tests;

use serde::Deserialize;
use serde_json::json;
use weft_protocol::{Interpret, Interpreted, Respond, ToolCall, UiActions, any_of, kind};
use weft_sdk::{Capability, Ctx, EventKind, Message, Node, NodeError, NodeInfo};

/// The progress text shown while the model reads the outputs.
pub const INTERPRETING_PROGRESS: &str = "reading the results…";

/// The title of the display the key facts are shown in.
pub const DISPLAY_TITLE: &str = "summary";

/// The node's `config`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The peer that writes the reply.
    pub output: String,
    /// The peer that shows the key facts.
    pub ui: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            output: "output".to_owned(),
            ui: "ui".to_owned(),
        }
    }
}

impl Config {
    /// The node's config from `ctx`, checked.
    fn load(ctx: &Ctx<'_>) -> Result<Self, NodeError> {
        let config: Self = ctx.config()?;
        for (key, peer) in [("output", &config.output), ("ui", &config.ui)] {
            if peer.trim().is_empty() {
                return Err(NodeError::InvalidInput(format!(
                    "node `{}` has a bad config: `{key}` is empty",
                    ctx.node()
                )));
            }
        }
        Ok(config)
    }
}

/// The interpreter node; see the [crate docs](crate).
pub struct Interpreter;

impl Node for Interpreter {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "interpreter",
            env!("CARGO_PKG_VERSION"),
            "Summarises tool output into facts for the reply and the UI",
        )
        .input_schema(Interpret::schema())
        .output_schema(any_of([Respond::schema(), UiActions::schema()]))
        .capabilities([Capability::Llm, Capability::Hud, Capability::Log])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let config = Config::load(ctx)?;
        for message in inbox {
            if message.kind != kind::INTERPRET {
                ctx.ignore(message);
                continue;
            }
            let interpret: Interpret = message.json()?;
            handle(ctx, &config, interpret)?;
        }
        Ok(())
    }
}

/// Interpret one set of outputs and send the result on.
fn handle(ctx: &mut Ctx<'_>, config: &Config, interpret: Interpret) -> Result<(), NodeError> {
    ctx.hud().progress(INTERPRETING_PROGRESS)?;
    let result = interpreted(ctx, &interpret);
    ctx.hud()
        .emit(EventKind::Interpreted, &json!({ "result": result }))?;
    let failures: Vec<String> = interpret
        .outputs
        .iter()
        .filter_map(|output| {
            let error = output.error.as_ref()?;
            Some(format!("{}: {error}", output.tool))
        })
        .collect();
    let display = ToolCall {
        tool: "emit_display".to_owned(),
        args: json!({"title": DISPLAY_TITLE, "items": result.key_facts}),
    };
    let respond = Respond {
        request: interpret.request,
        language: interpret.language,
        response_hint: interpret.response_hint,
        draft: None,
        result: Some(result),
        error: (!failures.is_empty()).then(|| failures.join("; ")),
    };
    ctx.send(config.output.as_str(), kind::RESPOND, &respond)?;
    let actions = UiActions {
        actions: vec![display],
    };
    ctx.send(config.ui.as_str(), kind::UI, &actions)
}

/// The model's interpretation, or the deterministic fallback when the call
/// fails or its answer does not parse.
fn interpreted(ctx: &Ctx<'_>, interpret: &Interpret) -> Interpreted {
    let problem = match ctx.llm().complete(prompt::request(interpret)) {
        Ok(completion) => match serde_json::from_str::<Interpreted>(&completion.text) {
            Ok(result) => return tidy(result),
            Err(error) => {
                let start: String = completion.text.chars().take(80).collect();
                format!(
                    "unusable interpretation from {} ({error}): {start:?}",
                    completion.model
                )
            }
        },
        Err(error) => format!("the llm call failed ({error})"),
    };
    ctx.log()
        .warn(format!("{problem}; summarising the data without the model"));
    fallback::interpret(&interpret.outputs)
}

/// Keep a parsed answer within the protocol's schema (the receiver's input
/// schema rejects a confidence outside 0..1) and drop empty facts.
fn tidy(mut result: Interpreted) -> Interpreted {
    result.confidence = result.confidence.clamp(0.0, 1.0);
    result.key_facts.retain(|fact| !fact.trim().is_empty());
    result
}

weft_sdk::export_node!(Interpreter);
