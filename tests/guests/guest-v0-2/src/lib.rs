//! A node built against the second released contract, `weft:node@0.2.0`
//! (`wit/v0.2.0/`), with wit-bindgen directly, as a plugin compiled before
//! 0.3.0 (interrupts) was. The host must keep loading it next to 0.3.0
//! plugins: it logs through the 0.2.0 `log` import, stores a value through
//! 0.2.0 `memory`, and replies with what its context says (0.2.0 added the
//! project and the config).

wit_bindgen::generate!({
    path: "../../../wit/v0.2.0",
    world: "node",
});

use exports::weft::node::plugin::Guest;
use weft::node::types::{Capability, Context, Message, NodeError, NodeInfo, TickOutput};
use weft::node::{log, memory};

struct OldNode;

impl Guest for OldNode {
    fn describe() -> NodeInfo {
        NodeInfo {
            name: "guest-v0-2".into(),
            version: "1.0.0".into(),
            description: "Built against weft:node@0.2.0".into(),
            input_schema: "{}".into(),
            output_schema: "{}".into(),
            capabilities: vec![Capability::Log, Capability::Memory],
        }
    }

    fn tick(ctx: Context, inbox: Vec<Message>) -> Result<TickOutput, NodeError> {
        log::write(log::Level::Info, "a 0.2.0 node ticks").map_err(NodeError::Capability)?;
        memory::set(memory::Scope::Thread, "contract", "0.2.0").map_err(NodeError::Capability)?;
        Ok(TickOutput {
            messages: Vec::new(),
            reply: Some(format!(
                "contract 0.2.0: node {} project {} frame {} inbox {}",
                ctx.node,
                ctx.project,
                ctx.frame,
                inbox.len()
            )),
            done: true,
        })
    }
}

export!(OldNode);
