//! A node that makes one model call per tick, then forwards: the stand-in
//! for an LLM-backed node in benchmarks (`weft bench compare` pairs it with
//! a scripted model that answers after a fixed delay) and in the
//! waiting-thread memory measurement.
//!
//! Input: any JSON object. On each tick with messages it asks the model
//! for one token, then sends `{"n": 1}` to each peer of `config.send`
//! (`["b", "c"]`). With no peers it replies with the model's answer and
//! marks the run done.

use serde::Deserialize;
use serde_json::json;
use weft_sdk::{
    Capability, ChatMessage, CompletionRequest, Ctx, Message, Node, NodeError, NodeInfo,
};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    send: Vec<String>,
}

struct LlmRelay;

impl Node for LlmRelay {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-llm",
            env!("CARGO_PKG_VERSION"),
            "Calls the model once per tick, then forwards",
        )
        .input_schema(json!({"type": "object"}))
        .capabilities([Capability::Llm])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        if inbox.is_empty() {
            return Ok(());
        }
        let config: Config = ctx.config()?;
        let request = CompletionRequest::new([ChatMessage::user("ping")]).max_tokens(1);
        let answer = ctx.llm().complete(request)?;
        if config.send.is_empty() {
            ctx.reply(answer.text);
            ctx.done();
        }
        for peer in &config.send {
            ctx.send(peer.clone(), "relay", &json!({ "n": 1 }))?;
        }
        Ok(())
    }
}

weft_sdk::export_node!(LlmRelay);
