//! Capabilities and the errors their calls return (WIT `types.capability`
//! and `types.error`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A host capability a node may be granted (`llm`, `db`, `memory`, `hud`,
/// `log`, `store`, `tools`).
///
/// A node lists what it needs in [`NodeInfo::capabilities`](crate::NodeInfo::capabilities);
/// the graph file grants them. Calling one that was not granted returns
/// [`CapabilityError::Denied`] and is audited by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Chat completion through the host's LLM providers.
    Llm,
    /// Read-only access to the graph's database.
    Db,
    /// Durable key/value state scoped to the thread or the node.
    Memory,
    /// Progress text and typed events for traces and the UI.
    Hud,
    /// Diagnostic log lines.
    Log,
    /// Key/value state shared by every thread of the project (contract
    /// 0.3.0).
    Store,
    /// Tools of the MCP servers the operator configured (contract 0.4.0).
    Tools,
}

impl Capability {
    /// Every capability, in contract (declaration) order.
    pub const ALL: [Capability; 7] = [
        Self::Llm,
        Self::Db,
        Self::Memory,
        Self::Hud,
        Self::Log,
        Self::Store,
        Self::Tools,
    ];

    /// The capability's name in the WIT contract and in graph files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llm => "llm",
            Self::Db => "db",
            Self::Memory => "memory",
            Self::Hud => "hud",
            Self::Log => "log",
            Self::Store => "store",
            Self::Tools => "tools",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a capability's name as graph files write it; the error names the
/// unknown word and lists the known ones.
impl FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown capability `{s}` (expected one of llm, db, memory, hud, log, store, tools)"
                )
            })
    }
}

/// An error returned by a host capability (WIT `error`). None of them abort
/// the tick: the node decides whether to recover or to fail with
/// [`NodeError::Capability`](crate::NodeError::Capability).
///
/// `Display` uses the contract's names, e.g. `denied(llm)` or
/// `budget-exhausted: thread token budget spent`. Serialized (in the host's
/// journal) as `{"code": "budget_exhausted", "detail": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum CapabilityError {
    /// The node was not granted the capability this call belongs to.
    #[error("denied({0})")]
    Denied(Capability),
    /// The thread's (or project's) token or money budget is spent; retrying in
    /// the same run will not help.
    #[error("budget-exhausted: {0}")]
    BudgetExhausted(String),
    /// The request is malformed (bad SQL, invalid JSON Schema, key too long …).
    #[error("invalid-input: {0}")]
    InvalidInput(String),
    /// A per-invocation limit was hit (rows, bytes, calls); the text names it.
    #[error("limit-exceeded: {0}")]
    LimitExceeded(String),
    /// The backing service is temporarily unavailable; a later frame may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The call failed for another reason, described by the text.
    #[error("failed: {0}")]
    Failed(String),
}

impl CapabilityError {
    /// The error's code, as the journal's `code` names it (`denied`,
    /// `budget_exhausted`, `invalid_input`, `limit_exceeded`,
    /// `unavailable`, `failed`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::BudgetExhausted(_) => "budget_exhausted",
            Self::InvalidInput(_) => "invalid_input",
            Self::LimitExceeded(_) => "limit_exceeded",
            Self::Unavailable(_) => "unavailable",
            Self::Failed(_) => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_errors_code_is_its_journal_code() {
        for e in [
            CapabilityError::Denied(Capability::Llm),
            CapabilityError::BudgetExhausted("x".into()),
            CapabilityError::InvalidInput("x".into()),
            CapabilityError::LimitExceeded("x".into()),
            CapabilityError::Unavailable("x".into()),
            CapabilityError::Failed("x".into()),
        ] {
            let journal = serde_json::to_value(&e).unwrap();
            assert_eq!(journal["code"], e.code(), "{e}");
        }
    }
}
