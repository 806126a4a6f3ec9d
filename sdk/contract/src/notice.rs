//! Host notices: messages the host itself puts in a node's inbox, from
//! [`SYSTEM_SENDER`], with a kind below and a JSON body. They are not
//! validated against the node's input schema; the SDK takes them out of the
//! inbox before the node sees it.

use serde::{Deserialize, Serialize};

/// The sender of host (engine) notices to nodes.
pub const SYSTEM_SENDER: &str = "system";

/// The kind of the notice a node gets in the next frame when a message it
/// sent was rejected. Body: `{"to", "kind", "code", "message"}`
/// ([`Undeliverable`]); not validated against the node's input schema.
pub const UNDELIVERABLE_KIND: &str = "undeliverable";

/// The kind of the `system` message a node gets when its thread's budget
/// crosses a threshold. Body: `{"scope": "thread", "percent", "used",
/// "limit"}` ([`BudgetWarning`]).
pub const BUDGET_WARNING_KIND: &str = "budget_warning";

/// The kind of the `system` message a node gets when its project's money
/// budget crosses a threshold. Body: `{"scope": "project", "project",
/// "percent", "spent", "limit", "windowStartMs"}`.
pub const PROJECT_BUDGET_WARNING_KIND: &str = "project_budget_warning";

/// The kind of the `system` message a node gets in the run's next frame
/// after its [`Interrupt`](crate::Interrupt) was answered, rejected or
/// timed out. Body: [`Resume`] (`{"interrupt", "outcome", "value"?,
/// "reason"?}`).
pub const RESUME_KIND: &str = "resume";

/// How an interrupt ended (the body of a [`RESUME_KIND`] notice).
///
/// ```
/// use weft_contract::{Resume, ResumeOutcome};
/// let body = r#"{"interrupt":"r1/f0/ask","outcome":"answered","value":true}"#;
/// let resume: Resume = serde_json::from_str(body).unwrap();
/// assert_eq!(resume.outcome, ResumeOutcome::Answered { value: serde_json::json!(true) });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The interrupt's id (`<run>/f<frame>/<node>`).
    pub interrupt: String,
    /// What happened to it.
    #[serde(flatten)]
    pub outcome: ResumeOutcome,
}

/// What happened to an interrupt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ResumeOutcome {
    /// A person answered; `value` satisfies the interrupt's answer schema.
    Answered {
        /// The answer.
        value: serde_json::Value,
    },
    /// A person declined to answer.
    Rejected {
        /// Why, as they gave it (may be empty).
        reason: String,
    },
    /// Nobody answered within the node's `interrupt_timeout_ms`.
    TimedOut,
}

/// A message this node sent that the host did not deliver, and why (the
/// body of an [`UNDELIVERABLE_KIND`] notice). The reason never reveals the
/// graph's topology beyond "no route".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undeliverable {
    /// The receiver the node named.
    pub to: String,
    /// The message kind.
    pub kind: String,
    /// `not_a_peer` (no route: also for a node the graph does not have) or
    /// `invalid_payload`.
    pub code: String,
    /// What was wrong (for `invalid_payload`, the schema violation).
    pub message: String,
}

/// The thread's token budget crossed a threshold (the body of a
/// [`BUDGET_WARNING_KIND`] notice, its `scope` aside).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetWarning {
    /// 75, 90 or 95.
    pub percent: u8,
    /// Tokens used.
    pub used: u64,
    /// Tokens allowed.
    pub limit: u64,
}
