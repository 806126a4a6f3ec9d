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
//!
//! With `remember` set (and `memory` granted), asking also appends the
//! message's text to the thread's memory key `seen` (a JSON list), and the
//! outcome carries that list as it stands when the answer arrives: a test
//! sees in the reply which earlier runs' writes the thread kept.

use serde_json::{Value, json};
use weft_sdk::{Capability, Ctx, Message, Node, NodeError, NodeInfo, ResumeOutcome, Scope};

struct Ask;

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    question: Option<String>,
    schema: Option<Value>,
    forward: Option<String>,
    remember: bool,
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
        .capabilities([Capability::Memory])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let config: Config = ctx.config()?;
        if let Some(resume) = ctx.resumed() {
            let mut outcome = match &resume.outcome {
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
            if config.remember {
                let seen: Vec<String> = ctx
                    .memory()
                    .get_json(Scope::Thread, "seen")?
                    .unwrap_or_default();
                outcome["seen"] = json!(seen);
            }
            if let Some(to) = &config.forward {
                ctx.send(to.clone(), "outcome", &outcome)?;
            }
            ctx.reply(outcome.to_string());
            return Ok(());
        }
        let Some(first) = inbox.first() else {
            return Ok(());
        };
        if config.remember {
            let memory = ctx.memory();
            let mut seen: Vec<String> = memory.get_json(Scope::Thread, "seen")?.unwrap_or_default();
            seen.push(text(first));
            memory.set_json(Scope::Thread, "seen", &seen)?;
        }
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
