//! A minimal node for the "no shared state" test and the benches.
//!
//! Each tick increments a `static` counter and replies
//! `{"count": n, "inbox": len}`: with a fresh instance per invocation, the
//! count is 1 every time. If an inbox body is `{"reply_bytes": N}`, the reply
//! is instead N bytes of `x` (for payload-size limits and benches). It calls
//! no capability, so a tick with an empty inbox measures the bare invocation
//! cost.

use std::sync::atomic::{AtomicU64, Ordering};

use weft_sdk::{Ctx, Message, Node, NodeError, NodeInfo};

/// Ticks seen by this instance. Deliberately global: the test is that it
/// never survives from one invocation to the next.
static COUNTER: AtomicU64 = AtomicU64::new(0);

struct Echo;

/// The `reply_bytes` asked for by a message, if any.
fn reply_bytes(message: &Message) -> Option<usize> {
    let body: serde_json::Value = serde_json::from_str(&message.body).ok()?;
    usize::try_from(body.get("reply_bytes")?.as_u64()?).ok()
}

impl Node for Echo {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-echo",
            env!("CARGO_PKG_VERSION"),
            "Counts ticks and echoes",
        )
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let count = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
        match inbox.iter().find_map(reply_bytes) {
            Some(bytes) => ctx.reply("x".repeat(bytes)),
            None => {
                ctx.reply(serde_json::json!({"count": count, "inbox": inbox.len()}).to_string())
            }
        }
        Ok(())
    }
}

weft_sdk::export_node!(Echo);
