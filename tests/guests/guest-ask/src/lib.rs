//! A node that asks a person before it answers (contract 0.3.0).
//!
//! A tick with messages ends with an interrupt: the question is the
//! config's `question` (default: "Approve …?" with the text of the first
//! message) and the answer schema the config's `schema` (default: an
//! object with a boolean `approve`). In the frame after the question was
//! answered, rejected or timed out, it replies with the outcome as JSON:
//! `{"interrupt", "outcome": "answered", "value"}`, `{…, "outcome":
//! "rejected", "reason"}` or `{…, "outcome": "timed_out"}`; with `forward`
//! set it also sends that to the named peer (kind `outcome`).

use serde_json::{Value, json};
use weft_sdk::{Ctx, Message, Node, NodeError, NodeInfo, ResumeOutcome};

struct Ask;

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    question: Option<String>,
    schema: Option<Value>,
    forward: Option<String>,
}

/// The text a message carries (`{"text": …}`), or its body.
fn text(message: &Message) -> String {
    serde_json::from_str::<Value>(&message.body)
        .ok()
        .and_then(|v| v.get("text")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| message.body.clone())
}

impl Node for Ask {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-ask",
            env!("CARGO_PKG_VERSION"),
            "Asks a person, then replies with the answer",
        )
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let config: Config = ctx.config()?;
        if let Some(resume) = ctx.resumed() {
            let outcome = match &resume.outcome {
                ResumeOutcome::Answered { value } => {
                    json!({"interrupt": resume.interrupt, "outcome": "answered", "value": value})
                }
                ResumeOutcome::Rejected { reason } => {
                    json!({"interrupt": resume.interrupt, "outcome": "rejected", "reason": reason})
                }
                ResumeOutcome::TimedOut => {
                    json!({"interrupt": resume.interrupt, "outcome": "timed_out"})
                }
            };
            if let Some(to) = &config.forward {
                ctx.send(to.clone(), "outcome", &outcome)?;
            }
            ctx.reply(outcome.to_string());
            return Ok(());
        }
        let Some(first) = inbox.first() else {
            return Ok(());
        };
        let question = config
            .question
            .unwrap_or_else(|| format!("Approve {:?}?", text(first)));
        let schema = config.schema.unwrap_or_else(|| {
            json!({
                "type": "object",
                "properties": {"approve": {"type": "boolean"}},
                "required": ["approve"]
            })
        });
        ctx.interrupt(question, schema);
        Ok(())
    }
}

weft_sdk::export_node!(Ask);
