//! Budgets and usage on the engine: thread token budgets, project money
//! budgets, settings reloads, and the usage ledger.

use std::sync::Arc;

use weft_runtime::capabilities::llm::LlmBackend;

use super::Engine;
use crate::error::EngineError;
use crate::metering::{
    BudgetConfig, BudgetStatus, Ledger, MemoryLedger, Metered, MoneyBudget, PriceTable,
    ProjectBudgetStatus, UsageTotals,
};

impl Engine {
    /// The token budget of a thread (once it has made a call or been raised).
    pub fn budget(&self, thread: &str) -> Option<BudgetStatus> {
        self.ctx.budgets.status(thread)
    }

    /// Every thread's token budget known to this process, with the thread's
    /// project.
    pub fn budgets(&self) -> Vec<(String, String, BudgetStatus)> {
        self.ctx
            .budgets
            .all_statuses()
            .into_iter()
            .map(|(thread, status)| {
                let project = self.ctx.budgets.project_of(&thread);
                (thread, project, status)
            })
            .collect()
    }

    /// Adds `tokens` to a thread's budget; a run waiting with status
    /// `budget_exhausted` goes on, retrying the refused node. A raise past
    /// `u64::MAX` is refused and changes nothing. Resolves once the new
    /// limit is stored.
    pub async fn raise_budget(
        &self,
        thread: &str,
        tokens: u64,
    ) -> Result<BudgetStatus, EngineError> {
        let status = self
            .ctx
            .budgets
            .raise(thread, tokens)
            .map_err(budget_error)?;
        self.store_thread_limit(thread, status.limit).await?;
        Ok(status)
    }

    /// Sets a thread's token limit (see [`Budgets::set_limit`]); resolves
    /// once it is stored.
    pub async fn set_budget(&self, thread: &str, limit: u64) -> Result<BudgetStatus, EngineError> {
        let status = self.ctx.budgets.set_limit(thread, limit);
        self.store_thread_limit(thread, limit).await?;
        Ok(status)
    }

    /// Stores a thread's token limit; resolves once it is written.
    async fn store_thread_limit(&self, thread: &str, limit: u64) -> Result<(), EngineError> {
        self.writer
            .persist_wait(
                move |store, thread: &String| store.set_thread_budget(thread, limit),
                thread.to_owned(),
            )
            .await
            .map_err(EngineError::from)
    }

    /// Stores a project's money budget (`None`: unlimited); resolves once
    /// it is written.
    async fn store_project_budget(
        &self,
        project: &str,
        budget: Option<MoneyBudget>,
    ) -> Result<(), EngineError> {
        self.writer
            .persist_wait(
                move |store, project: &String| store.set_project_budget(project, budget),
                project.to_owned(),
            )
            .await
            .map_err(EngineError::from)
    }

    /// Applies reloaded settings without a restart: a new LLM backend
    /// (providers and model routes), prices, and configured budgets (see
    /// [`Budgets::set_config`]). `llm` calls in flight finish on the backend
    /// they started with; the next call uses the new one.
    pub fn reload_settings(
        &self,
        llm: Option<Arc<dyn LlmBackend>>,
        prices: Option<PriceTable>,
        budget: Option<BudgetConfig>,
    ) {
        if llm.is_some() || prices.is_some() {
            let old = self.ctx.llm.get();
            self.ctx.llm.replace(Metered {
                inner: llm.unwrap_or_else(|| Arc::clone(&old.inner)),
                budgets: Arc::clone(&old.budgets),
                ledger: Arc::clone(&old.ledger),
                prices: prices.unwrap_or_else(|| old.prices.clone()),
                bus: old.bus.clone(),
                shared: old.shared.clone(),
            });
        }
        if let Some(budget) = budget {
            self.ctx.budgets.set_config(budget);
        }
    }

    /// A project's money budget: limit, spend in the current window,
    /// reservations, window bounds.
    pub fn project_budget(&self, project: &str) -> ProjectBudgetStatus {
        self.ctx.budgets.project_status(project)
    }

    /// Sets a project's money budget (`None`: unlimited), replacing the
    /// configured one; runs of the project waiting with status
    /// `budget_exhausted` go on. Resolves once it is stored.
    pub async fn set_project_budget(
        &self,
        project: &str,
        budget: Option<MoneyBudget>,
    ) -> Result<ProjectBudgetStatus, EngineError> {
        let status = self
            .ctx
            .budgets
            .set_project_budget(project, budget)
            .map_err(budget_error)?;
        self.store_project_budget(project, budget).await?;
        Ok(status)
    }

    /// Adds `amount` to a project's money limit; runs of the project
    /// waiting with status `budget_exhausted` go on, retrying the refused
    /// nodes. An amount that is negative, not finite, or that takes the
    /// limit past [`MAX_MONEY`](crate::metering::MAX_MONEY) is refused and
    /// changes nothing. Resolves once the new limit is stored.
    pub async fn raise_project_budget(
        &self,
        project: &str,
        amount: f64,
    ) -> Result<ProjectBudgetStatus, EngineError> {
        let status = self
            .ctx
            .budgets
            .raise_project_budget(project, amount)
            .map_err(budget_error)?;
        if let Some(limit) = status.limit {
            let budget = MoneyBudget::new(limit, status.window).map_err(budget_error)?;
            self.store_project_budget(project, Some(budget)).await?;
        }
        Ok(status)
    }

    /// Puts in force here the money budget the store keeps for `project`
    /// (set or raised on another host of a shared store); the runs of
    /// the project waiting on its budget go on if it now has room.
    pub async fn reload_project_budget(&self, project: &str) -> Result<(), EngineError> {
        let Some(store) = &self.ctx.store else {
            return Ok(());
        };
        let stored = store.project_budgets().await?;
        let budget = match stored.get(project) {
            Some(budget) => *budget,
            // No operator budget: the configured one applies.
            None => self.ctx.budgets.configured_budget(project),
        };
        self.ctx
            .budgets
            .set_project_budget(project, budget)
            .map_err(budget_error)?;
        Ok(())
    }

    /// Starts the budget windows that are due now (waiting runs of a
    /// project whose window rolled over go on). Runs waiting on a budget
    /// call it every [`EngineConfig::budget_tick`]; call it after moving a
    /// [`ManualClock`](crate::ManualClock).
    pub fn tick_budgets(&self) {
        self.ctx.budgets.tick();
    }

    /// Starts the reported usage totals over now (kept across restarts).
    /// Usage events stay: money budgets (spend per window) and token
    /// budgets are not affected. Returns the reset time.
    ///
    /// Totals start at the next millisecond: events are stamped in whole
    /// milliseconds, and one recorded in the reset's own millisecond may
    /// come from before it. Counting from the next one keeps the totals the
    /// same in this process and after a restart (which re-reads the events
    /// from the store by time).
    pub async fn reset_usage(&self) -> Result<u64, EngineError> {
        let now = self.ctx.budgets.now_ms() + 1;
        if let Some(store) = &self.ctx.store {
            store.reset_usage(now).await?;
        }
        self.ctx.ledger.reset(now);
        Ok(now)
    }

    /// Every metered `llm` call and node invocation, with aggregates.
    pub fn ledger(&self) -> &Arc<MemoryLedger> {
        &self.ctx.ledger
    }

    /// Usage totals (a convenience over [`ledger`](Self::ledger)).
    pub fn usage(&self) -> UsageTotals {
        self.ctx.ledger.totals()
    }
}

/// A refused budget change as the engine's error (code `invalid_budget`
/// for an amount no budget takes, `budget_overflow` for a raise this
/// budget's limit cannot take; the message names the reason).
pub(super) fn budget_error(e: crate::metering::BudgetError) -> EngineError {
    match e {
        crate::metering::BudgetError::Overflow { .. } => EngineError::BudgetOverflow(e.to_string()),
        crate::metering::BudgetError::InvalidAmount(_) => EngineError::InvalidBudget(e.to_string()),
    }
}
