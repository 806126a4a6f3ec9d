//! A node whose behaviour is its graph config, for engine tests and the
//! frame benchmarks.
//!
//! Input: `{"n": integer, ...}`. On each tick with messages it sends, for
//! each entry of `config.send` (`[{"to", "kind"?, "body"?}]`), one message:
//! the given `body`, or `{"n": n + 1}` where `n` is the largest `n` in the
//! inbox. With `config.reply` set it replies with a JSON summary:
//! `{"node", "frame", "inbox": [n…], "undelivered": [{to, code, message}]}`.
//! With no config it does nothing at all: a no-op node.

use serde::Deserialize;
use serde_json::{Value, json};
use weft_sdk::{Ctx, Message, Node, NodeError, NodeInfo};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Config {
    send: Vec<Send>,
    reply: bool,
}

#[derive(Deserialize)]
struct Send {
    to: String,
    #[serde(default = "default_kind")]
    kind: String,
    #[serde(default)]
    body: Option<Value>,
}

fn default_kind() -> String {
    "relay".into()
}

struct Relay;

impl Node for Relay {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-relay",
            env!("CARGO_PKG_VERSION"),
            "Forwards messages as configured",
        )
        .input_schema(json!({
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"]
        }))
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let config: Config = ctx.config()?;
        let ns: Vec<i64> = inbox
            .iter()
            .filter_map(|m| {
                serde_json::from_str::<Value>(&m.body)
                    .ok()?
                    .get("n")?
                    .as_i64()
            })
            .collect();
        if config.reply {
            let undelivered: Vec<Value> = ctx
                .undelivered()
                .iter()
                .map(|u| json!({"to": u.to, "code": u.code, "message": u.message}))
                .collect();
            ctx.reply(
                json!({
                    "node": ctx.node(),
                    "frame": ctx.frame(),
                    "inbox": ns,
                    "undelivered": undelivered
                })
                .to_string(),
            );
        }
        if inbox.is_empty() {
            return Ok(());
        }
        let next = ns.iter().copied().max().unwrap_or(0) + 1;
        for send in &config.send {
            let body = send.body.clone().unwrap_or_else(|| json!({ "n": next }));
            ctx.send(send.to.clone(), send.kind.clone(), &body)?;
        }
        Ok(())
    }
}

weft_sdk::export_node!(Relay);
