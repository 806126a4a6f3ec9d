//! A node whose tick panics: the host must turn the trap into a node error,
//! record it in the frame trace and keep serving.

use weft_sdk::{Ctx, Message, Node, NodeError, NodeInfo};

/// The panic message, for hosts that check it reaches the trace.
pub const PANIC_MESSAGE: &str = "guest panicked on purpose";

struct Panic;

impl Node for Panic {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-panic",
            env!("CARGO_PKG_VERSION"),
            "Panics on every tick",
        )
    }

    fn tick(_ctx: &mut Ctx<'_>, _inbox: &[Message]) -> Result<(), NodeError> {
        panic!("{PANIC_MESSAGE}");
    }
}

weft_sdk::export_node!(Panic);
