//! `weft:node@0.4.0`, the contract plugins are built against today: the
//! `tools` capability (tools of the operator's MCP servers) came.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "node",
    imports: {
        "weft:node/llm": async,
        "weft:node/db": async,
        "weft:node/memory": async,
        "weft:node/store": async,
        "weft:node/tools": async,
    },
    exports: { default: async },
});

contract!(Llm, Db, Memory, Hud, Log, Store, Tools);

/// The contract version these bindings implement.
pub(crate) const VERSION: &str = "0.4.0";

/// The WIT context of a tick: where it sits and the node's configuration.
pub(crate) fn context(c: &t::CallContext, config: &str) -> wit::Context {
    wit::Context {
        thread: c.thread.clone(),
        run: c.run.clone(),
        frame: c.frame,
        node: c.node.clone(),
        project: c.project.clone(),
        config: config.to_owned(),
    }
}

/// A tick's output in domain terms. An interrupt's answer schema that is
/// not JSON is kept as a JSON string, which the engine refuses as not a
/// schema (with the node's error in the trace).
pub(crate) fn tick_output(o: wit::TickOutput) -> t::TickOutput {
    t::TickOutput {
        messages: outbound(o.messages),
        reply: o.reply,
        done: o.done,
        interrupt: o.interrupt.map(|i| t::Interrupt {
            question: i.question,
            answer_schema: serde_json::from_str(&i.answer_schema)
                .unwrap_or(serde_json::Value::String(i.answer_schema)),
        }),
    }
}
