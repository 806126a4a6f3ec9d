//! The `{{name}}` node: answers each user message with the model and
//! counts the conversation's turns in its memory.
//!
//! Build: `weft plugin build`; test natively: `cargo test`; test the
//! component in the sandbox: `weft plugin test`.

use weft_sdk::{
    Capability, ChatMessage, CompletionRequest, Ctx, Message, Node, NodeError, NodeInfo, Scope,
};

/// The node.
pub struct Plugin;

impl Node for Plugin {
    fn describe() -> NodeInfo {
        NodeInfo::new("{{name}}", env!("CARGO_PKG_VERSION"), "Answers the user with the model")
            .input_schema(serde_json::json!({
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"]
            }))
            .capabilities([Capability::Llm, Capability::Memory, Capability::Hud, Capability::Log])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        for message in inbox {
            let text = message.json::<serde_json::Value>()?["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            ctx.hud().progress("thinking…")?;
            let turns: u64 = ctx.memory().get_json(Scope::Node, "turns")?.unwrap_or(0) + 1;
            ctx.memory().set_json(Scope::Node, "turns", &turns)?;
            let request = CompletionRequest::new([
                ChatMessage::system("Answer in one short sentence."),
                ChatMessage::user(text),
            ])
            .max_tokens(60);
            let answer = ctx.llm().complete(request)?;
            ctx.log().info(format!("turn {turns}: {} tokens", answer.completion_tokens));
            ctx.reply(answer.text);
        }
        ctx.done();
        Ok(())
    }
}

weft_sdk::export_node!(Plugin);

#[cfg(test)]
mod tests {
    use weft_sdk::testing::TestHost;
    use weft_sdk::{Message, Scope};

    use super::Plugin;

    #[test]
    fn answers_with_the_model_and_counts_turns() {
        let host = TestHost::for_node::<Plugin>().answer("Hello! How can I help?");
        let hi = Message::new("user", "user", &serde_json::json!({"text": "hi"}));
        let output = host.tick::<Plugin>(&[hi]).unwrap();
        assert_eq!(output.reply.as_deref(), Some("Hello! How can I help?"));
        assert!(output.done);
        assert_eq!(host.memory(Scope::Node, "turns").as_deref(), Some("1"));
    }
}
