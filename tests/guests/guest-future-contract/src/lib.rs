//! A node built against a future contract, `weft:node@9.0.0`: the same
//! `types` and `plugin` interfaces as 0.1.0, under a version the host does
//! not know. The host must refuse it as an incompatible contract version
//! rather than guess at its ABI.

wit_bindgen::generate!({
    inline: "
        package weft:node@9.0.0;

        interface types {
            enum capability {
                llm,
                db,
                memory,
                hud,
                log,
            }

            variant error {
                denied(capability),
                budget-exhausted(string),
                invalid-input(string),
                limit-exceeded(string),
                unavailable(string),
                failed(string),
            }

            record context {
                thread: string,
                run: string,
                frame: u32,
                node: string,
            }

            record message {
                id: string,
                %from: string,
                kind: string,
                body: string,
            }

            record outbound {
                to: string,
                kind: string,
                body: string,
            }

            record tick-output {
                messages: list<outbound>,
                reply: option<string>,
                done: bool,
            }

            record node-info {
                name: string,
                version: string,
                description: string,
                input-schema: string,
                output-schema: string,
                capabilities: list<capability>,
            }

            variant node-error {
                invalid-input(string),
                capability(error),
                failed(string),
            }
        }

        interface plugin {
            use types.{context, message, tick-output, node-info, node-error};

            describe: func() -> node-info;

            tick: func(ctx: context, inbox: list<message>) -> result<tick-output, node-error>;
        }

        world node {
            export plugin;
        }
    ",
});

use exports::weft::node::plugin::{Context, Guest, Message, NodeError, NodeInfo, TickOutput};

#[allow(dead_code)]
struct Future;

impl Guest for Future {
    fn describe() -> NodeInfo {
        NodeInfo {
            name: "guest-future-contract".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Speaks contract 9.0.0".to_owned(),
            input_schema: "{}".to_owned(),
            output_schema: "{}".to_owned(),
            capabilities: Vec::new(),
        }
    }

    fn tick(_ctx: Context, _inbox: Vec<Message>) -> Result<TickOutput, NodeError> {
        Ok(TickOutput {
            messages: Vec::new(),
            reply: Some("from the future".to_owned()),
            done: true,
        })
    }
}

// Native linkers reject export names like `weft:node/plugin@9.0.0#tick`;
// only the component needs them.
#[cfg(target_arch = "wasm32")]
export!(Future);
