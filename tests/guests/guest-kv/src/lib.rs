//! A node that runs the `store` operations (contract 0.3.0) its messages
//! ask for, in order, and replies with their answers as a JSON list.
//!
//! A message's body is `{"ops": [op, …]}`, each op one of
//! `{"op": "set", "namespace", "key", "value"}`, `{"op": "get", "namespace",
//! "key"}`, `{"op": "delete", "namespace", "key"}`, `{"op": "list",
//! "namespace", "prefix"?, "after"?, "limit"?}` or `{"op": "fill",
//! "namespace", "count"}` (sets keys `k0`, `k1` … until one is refused).
//! Each answer is `{"ok": value}` or `{"err": "code: text"}`.

use serde::Deserialize;
use serde_json::{Value, json};
use weft_sdk::{Capability, Ctx, Error, Message, Node, NodeError, NodeInfo};

struct Kv;

#[derive(Deserialize)]
struct Request {
    ops: Vec<Op>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Op {
    Set {
        namespace: String,
        key: String,
        value: String,
    },
    Get {
        namespace: String,
        key: String,
    },
    Delete {
        namespace: String,
        key: String,
    },
    List {
        namespace: String,
        #[serde(default)]
        prefix: String,
        after: Option<String>,
        #[serde(default = "default_limit")]
        limit: u32,
    },
    Fill {
        namespace: String,
        count: u32,
    },
}

fn default_limit() -> u32 {
    100
}

fn answer<T: serde::Serialize>(result: Result<T, Error>) -> Value {
    match result {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "err": e.to_string() }),
    }
}

impl Node for Kv {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-kv",
            env!("CARGO_PKG_VERSION"),
            "Runs store operations and replies with the answers",
        )
        .capabilities([Capability::Store])
        .input_schema(json!({
            "type": "object",
            "properties": {"ops": {"type": "array"}},
            "required": ["ops"]
        }))
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let store = ctx.store();
        let mut answers = Vec::new();
        for message in inbox {
            let request: Request = serde_json::from_str(&message.body)?;
            for op in request.ops {
                answers.push(match op {
                    Op::Set {
                        namespace,
                        key,
                        value,
                    } => answer(store.set(&namespace, &key, &value)),
                    Op::Get { namespace, key } => answer(store.get(&namespace, &key)),
                    Op::Delete { namespace, key } => answer(store.delete(&namespace, &key)),
                    Op::List {
                        namespace,
                        prefix,
                        after,
                        limit,
                    } => answer(store.list(&namespace, &prefix, after.as_deref(), limit)),
                    Op::Fill { namespace, count } => {
                        let mut set = 0u32;
                        let mut refused = None;
                        for i in 0..count {
                            match store.set(&namespace, &format!("k{i}"), "x") {
                                Ok(()) => set += 1,
                                Err(e) => {
                                    refused = Some(e.to_string());
                                    break;
                                }
                            }
                        }
                        json!({ "ok": set, "refused": refused })
                    }
                });
            }
        }
        ctx.reply(Value::Array(answers).to_string());
        Ok(())
    }
}

weft_sdk::export_node!(Kv);
