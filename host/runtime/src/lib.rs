//! weft's WebAssembly component runtime.
//!
//! A node is a component implementing the `weft:node` world (see `wit/`).
//! [`Runtime::load_file`] validates a component, compiles it once (cached
//! on disk by content hash), links it against the host capabilities and
//! asks it to `describe` itself, giving a [`Plugin`]. [`Runtime::invoke`]
//! runs one `tick` in a **fresh instance** from the plugin's pre-instantiated
//! component (pooling allocator), so nothing leaks between invocations,
//! threads or tenants (unless the node opts in to keeping its instance
//! between ticks within a project: [`ReuseScope`]), with CPU fuel, a wall-clock deadline, a memory cap and
//! an output cap applied when its store is made ([`Limits`]).
//!
//! The contract's domain types ([`Message`], [`TickOutput`],
//! [`CapabilityError`] …) come from `weft-contract`, shared with the SDK,
//! and are re-exported here; the crate itself is [`contract`].
//!
//! Host capabilities live in [`capabilities`], one module per WIT interface.
//! A call to a capability the node was not granted returns the typed
//! `denied` error and is audited. WASI is present but empty: no files, no
//! network, no environment; clocks are frozen and randomness is seeded from
//! the invocation, so every frame can be replayed.
//!
//! ```no_run
//! use weft_runtime::{CallContext, Grants, Invocation, Message, Runtime, RuntimeConfig, Services};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load_file("artifacts/plugins/weft-plugin-input.wasm").await?;
//! let services = Services::unavailable();
//! let inbox = [Message { id: "m1".into(), from: "user".into(), kind: "user".into(), body: r#"{"text":"hi"}"#.into() }];
//! let outcome = runtime
//!     .invoke(&plugin, Invocation {
//!         call: CallContext { thread: "t1".into(), run: "r1".into(), frame: 0, node: "input".into(), project: "default".into() },
//!         inbox: &inbox,
//!         config: "{}",
//!         model: None,
//!         grants: Grants::all(),
//!         tools: &weft_runtime::capabilities::tools::NO_TOOLS,
//!         services: &services,
//!         limits: None,
//!         wall_time: None,
//!         reuse: None,
//!     })
//!     .await;
//! println!("{:?} in {:?}, {} fuel", outcome.result, outcome.duration, outcome.fuel_used);
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
pub mod capabilities;
mod config;
mod error;
mod inspect;
mod plugin;
mod reuse;
mod runtime;
mod sandbox;
mod types;

pub use cache::{CacheHit, ContentHash};
pub use capabilities::Services;
pub use config::{Limits, PoolConfig, RuntimeConfig};
pub use error::RuntimeError;
pub use inspect::Inspection;
pub use plugin::{Plugin, SUPPORTED_CONTRACTS};
pub use reuse::ReuseScope;
pub use runtime::{Invocation, InvokeError, Outcome, Runtime};
pub use types::*;
/// The contract's types and constants (host notices' sender and kinds
/// among them), as the SDK sees them too.
pub use weft_contract as contract;
