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
///   unpriced: refuse                                # or: highest
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Tokens a thread may use (prompt plus completion); null: unlimited.
    pub thread_tokens: Option<u64>,
    /// Money a project may spend per window, in the price table's currency;
    /// null: unlimited.
    pub project_money: Option<MoneyBudget>,
    /// Money budgets of single projects, replacing `project_money` for them.
    pub projects: BTreeMap<String, MoneyBudget>,
    /// What happens to a call whose model has no price when its project
    /// has a money budget.
    pub unpriced: Unpriced,
}

/// The policy for `llm` calls whose model has no price, in a project with
/// a money budget (`budget.unpriced`). Without a money budget such calls
/// are always allowed (their cost is unknown, and flagged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Unpriced {
    /// Refuse the call (`budget-exhausted`, naming the model): its cost
    /// cannot be held to the budget. The default.
    #[default]
    Refuse,
    /// Reserve and charge it at the highest price in the price table
    /// (prompt and completion rates each at their highest); refused when
    /// the table is empty.
    Highest,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            thread_tokens: Some(100_000),
            project_money: None,
            projects: BTreeMap::new(),
            unpriced: Unpriced::default(),
        }
    }
}

/// The period after which a money budget starts over.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "MoneyBudgetFields")]
pub struct MoneyBudget {
    /// The most a project may spend per window, in the price table's
    /// currency (finite, at least 0).
    pub limit: f64,
    /// When the spend starts over.
    pub window: Window,
}

/// A money budget: at most `limit` per `window`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MoneyBudget")]
struct MoneyBudgetFields {
    /// The most a project may spend per window, in the price table's
    /// currency (finite, at least 0).
    #[schemars(range(min = 0))]
    limit: f64,
    /// When the spend starts over: `daily` or `monthly` (UTC), or `none`
    /// (the default: the limit is for all time).
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

/// The largest money limit or raise: a billion units of the price
/// table's currency (amounts are kept in billionths, in 64 bits).
pub const MAX_MONEY: f64 = 1e9;

/// Why a budget change was refused (nothing was changed).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    /// A limit or raise that is negative, infinite, not a number or above
    /// [`MAX_MONEY`].
    #[error("a money amount must be finite, at least 0 and at most {MAX_MONEY}, not {0}")]
    InvalidAmount(f64),
    /// A raise whose new limit would not fit: above `u64::MAX` tokens, or
    /// above [`MAX_MONEY`].
    #[error("raising the limit {limit} by {raise} overflows the largest limit ({max})")]
    Overflow {
        /// The limit now.
        limit: String,
        /// The raise asked for.
        raise: String,
        /// The largest limit.
        max: String,
    },
}

impl BudgetError {
    /// The error's stable code: `invalid_amount` or `budget_overflow`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidAmount(_) => "invalid_amount",
            Self::Overflow { .. } => "budget_overflow",
        }
    }
}

pub(super) fn check_amount(amount: f64) -> Result<(), BudgetError> {
    if amount.is_finite() && (0.0..=MAX_MONEY).contains(&amount) {
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
    /// Calls in this window whose model has no price: refused (with
    /// `budget.unpriced: refuse`) or charged at the highest price (with
    /// `highest`); counted here either way.
    pub unenforced_calls: u64,
}
