//! Write [weft](https://example.invalid/weft) nodes in Rust.
//!
//! A weft node is a WebAssembly component the host ticks once per frame: it
//! gets the messages delivered to it and answers with messages to peers, a
//! reply for the user, or both. It reaches the outside world only through
//! host capabilities (`llm`, `db`, `memory`, `hud`, `log`) that the graph
//! file grants it. This crate gives you:
//!
//! - the [`Node`] trait and the [`export_node!`] macro that turns it into a
//!   component;
//! - [`Ctx`], the per-tick context with idiomatic capability handles
//!   (`ctx.llm().complete(..)`, `ctx.memory().get_json(..)` …) and output
//!   builders (`ctx.send(..)`, `ctx.reply(..)`, `ctx.done()`,
//!   `ctx.interrupt(..)` to ask a person and wait for the answer);
//! - plain Rust types for the contract ([`Message`], [`NodeInfo`],
//!   [`Error`], [`CompletionRequest`] …), from `weft-contract`, the crate
//!   the host uses too;
//! - [`testing::TestHost`], to unit-test a node with `cargo test` on the
//!   host target, no WebAssembly involved.
//!
//! # A node
//!
//! A plugin crate has `crate-type = ["cdylib", "rlib"]` (the `cdylib` is the
//! component, the `rlib` lets native tests link it) and depends only on this
//! crate and serde. This one greets the user through the model and hands
//! the greeting to its `output` peer:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use weft_sdk::{
//!     Capability, CompletionRequest, Ctx, EventKind, Message, Node, NodeError, NodeInfo, Scope,
//! };
//!
//! /// The body this node accepts.
//! #[derive(Deserialize)]
//! struct Greet {
//!     name: String,
//! }
//!
//! /// The body this node sends.
//! #[derive(Serialize)]
//! struct Greeting {
//!     text: String,
//!     visits: u32,
//! }
//!
//! pub struct Greeter;
//!
//! impl Node for Greeter {
//!     fn describe() -> NodeInfo {
//!         NodeInfo::new("greeter", env!("CARGO_PKG_VERSION"), "Greets people by name")
//!             .input_schema(serde_json::json!({
//!                 "type": "object",
//!                 "properties": {"name": {"type": "string"}},
//!                 "required": ["name"]
//!             }))
//!             .output_schema(serde_json::json!({
//!                 "type": "object",
//!                 "properties": {"text": {"type": "string"}, "visits": {"type": "integer"}}
//!             }))
//!             .capabilities([Capability::Llm, Capability::Memory, Capability::Hud])
//!     }
//!
//!     fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
//!         for message in inbox {
//!             let greet: Greet = message.json()?;
//!             ctx.hud().progress("thinking of something nice…")?;
//!             let key = format!("visits.{}", greet.name);
//!             let visits = ctx.memory().get_json::<u32>(Scope::Thread, &key)?.unwrap_or(0) + 1;
//!             ctx.memory().set_json(Scope::Thread, &key, &visits)?;
//!             let request = CompletionRequest::prompt(
//!                 "Write a one-line greeting.",
//!                 format!("Greet {} (visit {visits}).", greet.name),
//!             )
//!             .max_tokens(40);
//!             let text = ctx.llm().complete(request)?.text;
//!             ctx.hud().emit(EventKind::Decided, &serde_json::json!({"route": "output"}))?;
//!             ctx.send("output", "greeting", &Greeting { text, visits })?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! // In the plugin crate's lib.rs, at the top level:
//! weft_sdk::export_node!(Greeter);
//! # fn main() {}
//! ```
//!
//! Build it with `cargo xtask build-plugins` (or `cargo build --target
//! wasm32-wasip2 --profile plugin`): the `.wasm` in the target folder is the
//! component the host loads.
//!
//! # Testing it
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # use weft_sdk::{Capability, CompletionRequest, Ctx, EventKind, Message, Node, NodeError, NodeInfo, Scope};
//! # #[derive(Deserialize)] struct Greet { name: String }
//! # #[derive(Serialize)] struct Greeting { text: String, visits: u32 }
//! # struct Greeter;
//! # impl Node for Greeter {
//! #     fn describe() -> NodeInfo {
//! #         NodeInfo::new("greeter", "0.1.0", "Greets").capabilities([Capability::Llm, Capability::Memory, Capability::Hud])
//! #     }
//! #     fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
//! #         for message in inbox {
//! #             let greet: Greet = message.json()?;
//! #             ctx.hud().progress("thinking of something nice…")?;
//! #             let key = format!("visits.{}", greet.name);
//! #             let visits = ctx.memory().get_json::<u32>(Scope::Thread, &key)?.unwrap_or(0) + 1;
//! #             ctx.memory().set_json(Scope::Thread, &key, &visits)?;
//! #             let request = CompletionRequest::prompt("Write a one-line greeting.", format!("Greet {}.", greet.name));
//! #             let text = ctx.llm().complete(request)?.text;
//! #             ctx.hud().emit(EventKind::Decided, &serde_json::json!({"route": "output"}))?;
//! #             ctx.send("output", "greeting", &Greeting { text, visits })?;
//! #         }
//! #         Ok(())
//! #     }
//! # }
//! use weft_sdk::testing::TestHost;
//! use weft_sdk::Error;
//!
//! let host = TestHost::for_node::<Greeter>()
//!     .answer("Hello again, Ada!")
//!     .with_memory(Scope::Thread, "visits.Ada", "1");
//! let inbox = [Message::new("user", "user", &serde_json::json!({"name": "Ada"}))];
//!
//! let output = host.tick::<Greeter>(&inbox).unwrap();
//!
//! let sent: Vec<_> = output.sent_to("output").collect();
//! assert_eq!(sent.len(), 1);
//! let body: serde_json::Value = sent[0].json().unwrap();
//! assert_eq!(body, serde_json::json!({"text": "Hello again, Ada!", "visits": 2}));
//! assert_eq!(host.memory(Scope::Thread, "visits.Ada").as_deref(), Some("2"));
//! assert_eq!(host.progress(), ["thinking of something nice…"]);
//! assert!(host.llm_requests()[0].messages[1].content.contains("Ada"));
//!
//! // A model that is out of budget fails the tick with a capability error.
//! let broke = TestHost::new().answer_error(Error::BudgetExhausted("tokens".into()));
//! let failed = broke.tick::<Greeter>(&inbox).unwrap_err();
//! assert_eq!(failed, NodeError::Capability(Error::BudgetExhausted("tokens".into())));
//! ```

#![warn(missing_docs)]

extern crate self as weft_sdk;

mod capabilities;
mod convert;
mod ctx;
mod host;
pub mod testing;

pub use capabilities::{Db, Hud, Llm, Log, Memory, Store, Tools};
pub use ctx::Ctx;
pub use host::{Host, WasmHost};
/// An error returned by a host capability: the contract's
/// [`CapabilityError`](weft_contract::CapabilityError), under the name nodes
/// use. `Display` uses the contract's names, e.g. `denied(llm)` or
/// `budget-exhausted: thread token budget spent`.
pub use weft_contract::CapabilityError as Error;
pub use weft_contract::{
    BUDGET_WARNING_KIND, BudgetWarning, CallContext, Capability, ChatMessage, Column, Completion,
    CompletionRequest, Context, EventKind, Interrupt, Level, Message, NodeError, NodeInfo,
    Outbound, RESUME_KIND, Resume, ResumeOutcome, Role, Rows, SYSTEM_SENDER, Scope, TickOutput,
    Tool, ToolResult, UNDELIVERABLE_KIND, Undeliverable, Value,
};

/// A weft node: what it is ([`describe`](Node::describe)) and what it does
/// each frame ([`tick`](Node::tick)).
///
/// Both are associated functions, not methods: every invocation runs in a
/// fresh instance, so there is no `self` to keep between ticks. Keep state
/// in [`Ctx::memory`]. Export the implementation with [`export_node!`].
pub trait Node {
    /// Identity, schemas and the capabilities the node needs. Called once
    /// when the plugin is loaded; it must not call capabilities.
    fn describe() -> NodeInfo;

    /// Process one frame. `inbox` holds the messages delivered in this
    /// frame, oldest first (empty for `every_tick` nodes with no mail).
    /// Build the output through `ctx`; it is kept only if this returns `Ok`.
    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError>;
}

/// Export a [`Node`] implementation as the component's `plugin` interface.
///
/// Invoke it once, at the top level of the plugin crate:
/// `weft_sdk::export_node!(MyNode);`.
#[macro_export]
macro_rules! export_node {
    ($ty:ty) => {
        const _: () = {
            struct __WeftNodeExport;

            impl $crate::bindings::exports::weft::node::plugin::Guest for __WeftNodeExport {
                fn describe() -> $crate::bindings::exports::weft::node::plugin::NodeInfo {
                    $crate::__private::describe::<$ty>()
                }

                fn tick(
                    ctx: $crate::bindings::exports::weft::node::plugin::Context,
                    inbox: ::std::vec::Vec<$crate::bindings::exports::weft::node::plugin::Message>,
                ) -> ::core::result::Result<
                    $crate::bindings::exports::weft::node::plugin::TickOutput,
                    $crate::bindings::exports::weft::node::plugin::NodeError,
                > {
                    $crate::__private::tick::<$ty>(ctx, inbox)
                }
            }

            // Only a component has the exports: their names
            // (`weft:node/plugin@0.1.0#tick`) are not valid symbols for native
            // linkers, and native builds (unit tests through the `rlib`) never
            // call them.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::export!(__WeftNodeExport with_types_in $crate::bindings);

            // Natively, use the glue so a private node type is not dead code.
            #[cfg(not(target_arch = "wasm32"))]
            let _ = (
                <__WeftNodeExport as $crate::bindings::exports::weft::node::plugin::Guest>::describe,
                <__WeftNodeExport as $crate::bindings::exports::weft::node::plugin::Guest>::tick,
            );
        };
    };
}

/// The generated bindings of the `weft:node/node` world. Not part of the
/// SDK's API: use the types at the crate root instead.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "node",
        pub_export_macro: true,
        default_bindings_module: "weft_sdk::bindings",
        // The generated code reaches the runtime through this path, so plugin
        // crates need no direct wit-bindgen dependency.
        runtime_path: "weft_sdk::__private::wit_bindgen::rt",
    });
}

/// Support for [`export_node!`]; not part of the SDK's API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::bindings::exports::weft::node::plugin as wit;
    use crate::{Ctx, Message, Node, WasmHost};

    /// `plugin.describe` for `N`.
    pub fn describe<N: Node>() -> wit::NodeInfo {
        N::describe().into()
    }

    /// `plugin.tick` for `N`, against the component's imports.
    pub fn tick<N: Node>(
        context: wit::Context,
        inbox: Vec<wit::Message>,
    ) -> Result<wit::TickOutput, wit::NodeError> {
        let inbox: Vec<Message> = inbox.into_iter().map(Into::into).collect();
        let mut ctx = Ctx::new(&WasmHost, context.into());
        let inbox = ctx.take_notices(inbox);
        match N::tick(&mut ctx, &inbox) {
            Ok(()) => Ok(ctx.into_output().into()),
            Err(error) => Err(error.into()),
        }
    }
}
