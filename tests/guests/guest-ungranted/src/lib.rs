//! A node that declares no capabilities and calls `llm` and `memory`
//! anyway. It replies with both outcomes, e.g.
//! `llm: denied(llm); memory: denied(memory)`, so a host test can check the
//! calls were denied (and audited) rather than trapped.

use std::fmt::Display;

use weft_sdk::{CompletionRequest, Ctx, Message, Node, NodeError, NodeInfo, Scope};

struct Ungranted;

/// `ok` or the error's display.
fn outcome<T, E: Display>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.to_string(),
    }
}

impl Node for Ungranted {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-ungranted",
            env!("CARGO_PKG_VERSION"),
            "Calls capabilities it did not ask for",
        )
    }

    fn tick(ctx: &mut Ctx<'_>, _inbox: &[Message]) -> Result<(), NodeError> {
        let llm = ctx
            .llm()
            .complete(CompletionRequest::prompt("Be brief.", "Say hi.").max_tokens(8));
        let memory = ctx
            .memory()
            .set(Scope::Thread, "guest-ungranted", "was here");
        ctx.reply(format!(
            "llm: {}; memory: {}",
            outcome(llm),
            outcome(memory)
        ));
        Ok(())
    }
}

weft_sdk::export_node!(Ungranted);
