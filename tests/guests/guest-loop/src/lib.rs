//! A node whose tick never returns and never calls the host: only the CPU
//! limits (fuel, epoch deadline) can stop it.

use std::hint::black_box;

use weft_sdk::{Ctx, Message, Node, NodeError, NodeInfo};

struct Loop;

impl Node for Loop {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-loop",
            env!("CARGO_PKG_VERSION"),
            "Spins forever on every tick",
        )
    }

    fn tick(_ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let mut spins = black_box(inbox.len() as u64);
        loop {
            // black_box keeps the optimiser from proving the loop dead.
            spins = black_box(spins.wrapping_add(1));
        }
    }
}

weft_sdk::export_node!(Loop);
