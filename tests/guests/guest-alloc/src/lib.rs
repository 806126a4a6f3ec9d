//! A node whose tick allocates until the memory limit stops it.

use std::hint::black_box;

use weft_sdk::{Ctx, Message, Node, NodeError, NodeInfo};

/// Each allocation: 1 MiB, filled so the pages are really touched.
const CHUNK: usize = 1 << 20;

struct Alloc;

impl Node for Alloc {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-alloc",
            env!("CARGO_PKG_VERSION"),
            "Allocates without bound",
        )
    }

    fn tick(_ctx: &mut Ctx<'_>, _inbox: &[Message]) -> Result<(), NodeError> {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            let fill = black_box(chunks.len() as u8 | 1);
            chunks.push(vec![fill; CHUNK]);
            black_box(&chunks);
        }
    }
}

weft_sdk::export_node!(Alloc);
