//! weft's frame engine.
//!
//! So far: [`graph`], the graph file format. A graph names the nodes of an
//! agent (each a plugin with grants and limits), the edges along which they
//! may send messages, and the entry node user messages arrive at. Threads,
//! runs and frames come next (see DESIGN.md, "The frame engine").
//!
//! The public API uses weft's domain types ([`weft_runtime::NodeInfo`],
//! [`weft_runtime::Limits`], [`weft_runtime::Grants`]) and never wasmtime's.

#![warn(missing_docs)]

pub mod graph;

pub use graph::{
    Graph, GraphError, Node, PluginRef, PluginResolver, Problem, ProblemKind, Severity,
};
