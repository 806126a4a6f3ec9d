//! `weft:node@0.2.0`: it added `context.project`; plugins built against
//! it keep loading.

wasmtime::component::bindgen!({
    path: "../../wit/v0.2.0",
    world: "node",
    imports: {
        "weft:node/llm": async,
        "weft:node/db": async,
        "weft:node/memory": async,
    },
    exports: { default: async },
});

contract!(Llm, Db, Memory, Hud, Log);

/// The contract version these bindings implement.
pub(crate) const VERSION: &str = "0.2.0";

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

/// A tick's output in domain terms (interrupts came with 0.3.0).
pub(crate) fn tick_output(o: wit::TickOutput) -> t::TickOutput {
    t::TickOutput {
        messages: outbound(o.messages),
        reply: o.reply,
        done: o.done,
        interrupt: None,
    }
}
