//! A would-be new version of the `output` plugin that asks for `db` besides
//! what `output` asks for. The assistant graph grants its `output` node
//! only `llm`, `hud` and `log`, so a hot swap must refuse it and leave the
//! old version serving.

use weft_sdk::{Capability, Ctx, Message, Node, NodeError, NodeInfo};

struct GreedyOutput;

impl Node for GreedyOutput {
    fn describe() -> NodeInfo {
        NodeInfo::new("output", "9.9.9", "Asks for more than it is granted").capabilities([
            Capability::Llm,
            Capability::Hud,
            Capability::Log,
            Capability::Db,
        ])
    }

    fn tick(ctx: &mut Ctx<'_>, _inbox: &[Message]) -> Result<(), NodeError> {
        ctx.reply("greedy");
        Ok(())
    }
}

weft_sdk::export_node!(GreedyOutput);
