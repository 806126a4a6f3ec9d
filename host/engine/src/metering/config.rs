//! Budget settings (`budget:` in the config file) and the budget
//! statuses operators see.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock;

/// The warning thresholds, in percent of the budget.
pub const WARNING_THRESHOLDS: [u8; 3] = [75, 90, 95];
pub use weft_runtime::contract::{BUDGET_WARNING_KIND, PROJECT_BUDGET_WARNING_KIND};
/// The project of threads opened without one.
pub const DEFAULT_PROJECT: &str = "default";

/// Budget settings (`budget:` in the config file).
///
/// ```yaml
/// budget:
///   thread_tokens: 100000
///   project_money: { limit: 5.0, window: daily }    # every project
///   projects:                                       # per-project overrides
///     acme: { limit: 50.0, window: monthly }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Tokens a thread may use (prompt plus completion); `None`: unlimited.
    pub thread_tokens: Option<u64>,
    /// Money a project may spend per window, in the price table's currency;
    /// `None`: unlimited.
    pub project_money: Option<MoneyBudget>,
    /// Money budgets of single projects, replacing `project_money` for them.
    pub projects: BTreeMap<String, MoneyBudget>,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            thread_tokens: Some(100_000),
            project_money: None,
            projects: BTreeMap::new(),
        }
    }
}

/// The period after which a money budget starts over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// A UTC calendar day.
    Daily,
    /// A UTC calendar month.
    Monthly,
    /// Never: the limit is for all time.
    #[default]
    None,
}

impl Window {
    /// The window as written in config files and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Monthly => "monthly",
            Self::None => "none",
        }
    }

    /// `[start, end)` in Unix milliseconds of the window holding `now_ms`
    /// (`[0, u64::MAX)` for [`Window::None`]).
    pub fn bounds(self, now_ms: u64) -> (u64, u64) {
        match self {
            Self::Daily => (clock::day_start(now_ms), clock::day_end(now_ms)),
            Self::Monthly => (clock::month_start(now_ms), clock::month_end(now_ms)),
            Self::None => (0, u64::MAX),
        }
    }
}

/// A money budget: at most `limit` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MoneyBudgetFields")]
pub struct MoneyBudget {
    /// The most a project may spend per window, in the price table's
    /// currency (finite, at least 0).
    pub limit: f64,
    /// When the spend starts over.
    pub window: Window,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyBudgetFields {
    limit: f64,
    #[serde(default)]
    window: Window,
}

impl TryFrom<MoneyBudgetFields> for MoneyBudget {
    type Error = BudgetError;

    fn try_from(f: MoneyBudgetFields) -> Result<Self, BudgetError> {
        Self::new(f.limit, f.window)
    }
}

impl MoneyBudget {
    /// A budget of `limit` per `window`; the limit must be finite and at
    /// least 0.
    pub fn new(limit: f64, window: Window) -> Result<Self, BudgetError> {
        check_amount(limit)?;
        Ok(Self { limit, window })
    }
}

/// Why a budget change was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    /// A limit or raise that is negative, infinite or not a number.
    #[error("a money amount must be finite and at least 0, not {0}")]
    InvalidAmount(f64),
}

pub(super) fn check_amount(amount: f64) -> Result<(), BudgetError> {
    if amount.is_finite() && amount >= 0.0 {
        Ok(())
    } else {
        Err(BudgetError::InvalidAmount(amount))
    }
}

/// A thread's budget as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetStatus {
    /// Tokens allowed.
    pub limit: u64,
    /// Tokens spent.
    pub used: u64,
    /// Tokens reserved by calls in flight.
    pub reserved: u64,
    /// `used` in percent of `limit`.
    pub percent_used: f64,
    /// A call was refused and no raise has come since.
    pub exhausted: bool,
}

/// A project's money budget as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectBudgetStatus {
    /// The project.
    pub project: String,
    /// Money allowed per window; `None`: unlimited (the spend is still kept).
    pub limit: Option<f64>,
    /// The window.
    pub window: Window,
    /// Spent in the current window (priced calls only).
    pub spent: f64,
    /// Reserved by calls in flight.
    pub reserved: f64,
    /// Start of the current window, Unix milliseconds (`None`: no window).
    pub window_start_ms: Option<u64>,
    /// End of the current window, Unix milliseconds (`None`: no window).
    pub window_end_ms: Option<u64>,
    /// `spent` in percent of `limit` (0 when unlimited).
    pub percent_used: f64,
    /// A call was refused and neither a raise nor a new window has come since.
    pub exhausted: bool,
    /// Calls in this window the budget could not hold back because their
    /// model has no price (allowed, and flagged here).
    pub unenforced_calls: u64,
}
