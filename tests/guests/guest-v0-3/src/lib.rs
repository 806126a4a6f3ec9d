//! A node built against the third released contract, `weft:node@0.3.0`
//! (`wit/v0.3.0/`), with wit-bindgen directly, as a plugin compiled before
//! 0.4.0 (the `tools` capability) was. The host must keep loading it next
//! to 0.4.0 plugins: it logs through the 0.3.0 `log` import, writes the
//! project's state through 0.3.0 `store`, and replies with what its
//! context says.

wit_bindgen::generate!({
    path: "../../../wit/v0.3.0",
    world: "node",
});

use exports::weft::node::plugin::Guest;
use weft::node::types::{Capability, Context, Message, NodeError, NodeInfo, TickOutput};
use weft::node::{log, store};

struct OldNode;

impl Guest for OldNode {
    fn describe() -> NodeInfo {
        NodeInfo {
            name: "guest-v0-3".into(),
            version: "1.0.0".into(),
            description: "Built against weft:node@0.3.0".into(),
            input_schema: "{}".into(),
            output_schema: "{}".into(),
            capabilities: vec![Capability::Log, Capability::Store],
        }
    }

    fn tick(ctx: Context, inbox: Vec<Message>) -> Result<TickOutput, NodeError> {
        log::write(log::Level::Info, "a 0.3.0 node ticks").map_err(NodeError::Capability)?;
        store::set("contract", "version", "0.3.0").map_err(NodeError::Capability)?;
        Ok(TickOutput {
            messages: Vec::new(),
            reply: Some(format!(
                "contract 0.3.0: node {} project {} frame {} inbox {}",
                ctx.node,
                ctx.project,
                ctx.frame,
                inbox.len()
            )),
            done: true,
            interrupt: None,
        })
    }
}

export!(OldNode);
