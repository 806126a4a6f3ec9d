//! Types of the `hud` capability.

use serde::{Deserialize, Serialize};

/// The kind of a HUD event a node emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The node is thinking (e.g. the PA's "looking that up…").
    Thinking,
    /// The node perceived the input (classification, analysis).
    Perceived,
    /// The node decided on a route or plan.
    Decided,
    /// The node called a tool (a database query, say).
    ToolCall,
    /// The node interpreted tool output into facts.
    Interpreted,
    /// The node updated UI state or controls.
    Updated,
}
