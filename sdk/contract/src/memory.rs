//! Types of the `memory` capability.

use serde::{Deserialize, Serialize};

/// Which state a memory key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Shared by every node of the thread.
    Thread,
    /// Private to this node within the thread.
    Node,
}
