//! A node that lists and calls MCP tools (capability `tools`, contract
//! 0.4.0) as its messages ask, in order, and replies with the answers as a
//! JSON list.
//!
//! A message's body is `{"ops": [op, …]}`, each op `{"op": "list"}` or
//! `{"op": "call", "server", "name", "arguments"?}` (arguments: any JSON,
//! passed as it is, so a test can send one that is not an object). Each
//! answer is `{"ok": value}` or `{"err": "code: text"}`.

use serde::Deserialize;
use serde_json::{Value, json};
use weft_sdk::{Capability, Ctx, Error, Message, Node, NodeError, NodeInfo};

struct Tools;

#[derive(Deserialize)]
struct Request {
    ops: Vec<Op>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Op {
    List,
    Call {
        server: String,
        name: String,
        #[serde(default)]
        arguments: Value,
    },
}

fn answer<T: serde::Serialize>(result: Result<T, Error>) -> Value {
    match result {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "err": e.to_string() }),
    }
}

impl Node for Tools {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-tools",
            env!("CARGO_PKG_VERSION"),
            "Lists and calls MCP tools and replies with the answers",
        )
        .capabilities([Capability::Tools])
        .input_schema(json!({
            "type": "object",
            "properties": {"ops": {"type": "array"}},
            "required": ["ops"]
        }))
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let tools = ctx.tools();
        let mut answers = Vec::new();
        for message in inbox {
            let request: Request = serde_json::from_str(&message.body)?;
            for op in request.ops {
                answers.push(match op {
                    Op::List => answer(tools.list()),
                    Op::Call {
                        server,
                        name,
                        arguments,
                    } => answer(tools.call(&server, &name, &arguments)),
                });
            }
        }
        ctx.reply(Value::Array(answers).to_string());
        Ok(())
    }
}

weft_sdk::export_node!(Tools);
