//! Metering: token budgets per thread and money budgets per project,
//! enforced around every `llm` call, and the usage ledger.
//!
//! [`Metered`] wraps the configured LLM backend. Before a call it *reserves*
//! the most the call can cost — `max_tokens` plus the prompt's length in
//! bytes, an upper bound on its token count — from the thread's token
//! budget, and that many tokens priced with the [`PriceTable`] from the
//! thread's project's money budget. It refuses the call with
//! `budget-exhausted` if either does not fit; after the call it
//! *reconciles* both reservations with the real token counts and cost.
//! Concurrent calls therefore can never spend more than a budget.
//!
//! A project's money budget runs over a [`Window`]: a UTC calendar day or
//! month (or no window). What a window has spent is a counter keyed by the
//! window's start, seeded from the [`Ledger`]'s usage events when the window
//! opens: a new window starts from what the events say, and no event is
//! ever deleted. Windows roll over lazily (when a budget is used or looked
//! at) and on [`Budgets::tick`]; the time comes from an injectable
//! [`Clock`].
//!
//! A call whose model has no price cannot be held to a money budget. In a
//! project without one it is allowed and its usage event's cost is `None`.
//! In a project with one, `budget.unpriced` decides ([`Unpriced`]): refuse
//! it (the default), or reserve and charge it at the highest price in the
//! table. Either way it is counted as `unenforced_calls` in the project's
//! status and warned about once per model in the log.
//!
//! Crossing 75, 90 and 95 % of a budget is reported once each (per window,
//! for money): as a `budget_warning` event and as a `system` message the
//! calling node finds in its next tick (kind `budget_warning` for the
//! thread's tokens, `project_budget_warning` for the project's money). When
//! a call is refused, the thread (or the whole project) is marked
//! exhausted: its runs stop at the frame boundary with status
//! `budget_exhausted`, the node that was refused gets its messages back,
//! and a raise (`Engine::raise_budget`,
//! `Engine::raise_project_budget`)
//! or the next window resumes them.

//!
//! The parts:
//! - [`config`]: the budget settings and the statuses operators see;
//! - [`Budgets`]: the accounts — thread tokens (`tokens.rs`), project
//!   money over windows (`money.rs`);
//! - [`ledger`]: usage events, prices and the in-memory books;
//! - [`Metered`]: the metered `llm` backend, whose calls report their usage,
//!   warnings and refusals to the invocation that made them as a
//!   `Tally` — values the run loop takes, not shared staging maps.

mod budgets;
pub mod config;
pub mod ledger;
mod metered;
mod money;
mod tokens;

pub use budgets::Budgets;
pub use config::{
    BUDGET_WARNING_KIND, BudgetConfig, BudgetError, BudgetStatus, DEFAULT_PROJECT, MAX_MONEY,
    MoneyBudget, PROJECT_BUDGET_WARNING_KIND, ProjectBudgetStatus, Unpriced, WARNING_THRESHOLDS,
    Window,
};
pub use ledger::{
    InvocationEvent, Ledger, MemoryLedger, Price, PriceTable, UsageBreakdown, UsageEvent,
    UsageTotals,
};
pub(crate) use metered::{Counted, LlmSlot};
pub use metered::{Metered, SharedMoney};

#[cfg(test)]
mod tests;
