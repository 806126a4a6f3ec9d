//! A node that tries to make the host amplify what it costs: it repeats
//! one host call many times and replies with how many succeeded and the
//! first error, e.g. `denied: 0 ok, 1000000 failed; first error: …`.
//!
//! Config: `{"mode": M, "times": N, "bytes": B, "sql": S}`, where `M` is
//! - `denied`: call `llm` (never granted to it) `N` times;
//! - `memory`: set `N` thread keys of `B` bytes each;
//! - `db`: run `S` `N` times;
//! - `log`: write `N` empty log lines.

use serde::Deserialize;
use weft_sdk::{CompletionRequest, Ctx, Level, Message, Node, NodeError, NodeInfo, Scope};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: String,
    #[serde(default = "one")]
    times: u32,
    #[serde(default)]
    bytes: usize,
    #[serde(default)]
    sql: String,
}

fn one() -> u32 {
    1
}

struct Amplify;

impl Node for Amplify {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-amplify",
            env!("CARGO_PKG_VERSION"),
            "Repeats one host call many times",
        )
        .capabilities([
            weft_sdk::Capability::Memory,
            weft_sdk::Capability::Db,
            weft_sdk::Capability::Log,
        ])
    }

    fn tick(ctx: &mut Ctx<'_>, _inbox: &[Message]) -> Result<(), NodeError> {
        let config: Config = ctx.config()?;
        let value = "x".repeat(config.bytes);
        let mut ok = 0u32;
        let mut failed = 0u32;
        let mut first = None;
        for i in 0..config.times {
            let result = match config.mode.as_str() {
                "denied" => ctx
                    .llm()
                    .complete(CompletionRequest::prompt("", "hi").max_tokens(1))
                    .map(|_| ()),
                "memory" => ctx.memory().set(Scope::Thread, &format!("k{i}"), &value),
                "db" => ctx.db().query(&config.sql, &[]).map(|_| ()),
                "log" => ctx.log().write(Level::Info, ""),
                other => {
                    return Err(NodeError::InvalidInput(format!("unknown mode `{other}`")));
                }
            };
            match result {
                Ok(()) => ok += 1,
                Err(e) => {
                    failed += 1;
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
        ctx.reply(format!(
            "{}: {ok} ok, {failed} failed; first error: {}",
            config.mode,
            first.unwrap_or_else(|| "none".into())
        ));
        Ok(())
    }
}

weft_sdk::export_node!(Amplify);
