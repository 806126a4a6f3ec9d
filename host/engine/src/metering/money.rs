//! Money budgets per project, over UTC day or month windows whose spend is
//! seeded from the ledger when a window opens.

use weft_runtime::CapabilityError;

use super::budgets::{Budgets, lock};
use super::config::{
    BudgetError, MAX_MONEY, MoneyBudget, ProjectBudgetStatus, WARNING_THRESHOLDS, Window,
    check_amount,
};
use crate::clock;

/// Unpriced models the log warns about, once each; models named after
/// these are not remembered (a guest may name a million).
pub(super) const MAX_UNPRICED_MODELS: usize = 256;

/// Why a money reservation was refused.
#[derive(Debug)]
pub(super) enum MoneyRefusal {
    /// The budget has no room for the call: the project is exhausted until
    /// a raise or a new window.
    Exhausted(CapabilityError),
    /// The model has no price and the project has a money limit
    /// (`budget.unpriced: refuse`).
    Unpriced(CapabilityError),
}

/// Money in billionths of the currency unit, so that reservations and
/// reconciliations add and subtract exactly.
pub(super) type Nanos = u64;

pub(super) fn nanos(amount: f64) -> Nanos {
    (amount * 1e9).round() as Nanos
}

pub(super) fn nanos_ceil(amount: f64) -> Nanos {
    (amount * 1e9).ceil() as Nanos
}

pub(super) fn money(n: Nanos) -> f64 {
    n as f64 / 1e9
}

/// One project's money: the current window's spend (a counter keyed by the
/// window's start) and the reservations of calls in flight.
#[derive(Debug)]
pub(super) struct ProjectBudget {
    pub(super) budget: Option<MoneyBudget>,
    /// Set by an operator (kept when the config is reloaded).
    pub(super) explicit: bool,
    pub(super) window_start: u64,
    pub(super) window_end: u64,
    pub(super) spent: Nanos,
    pub(super) reserved: Nanos,
    pub(super) warned: [bool; 3],
    pub(super) exhausted: bool,
    pub(super) unenforced: u64,
}

impl ProjectBudget {
    fn window(&self) -> Window {
        self.budget.map(|b| b.window).unwrap_or_default()
    }

    fn limit(&self) -> Option<Nanos> {
        self.budget.map(|b| nanos(b.limit))
    }

    fn percent(&self) -> f64 {
        match self.limit() {
            None => 0.0,
            Some(0) => 100.0,
            Some(limit) => self.spent as f64 * 100.0 / limit as f64,
        }
    }

    /// "in the window since …" for messages.
    fn window_text(&self) -> String {
        match self.window() {
            Window::None => "in total (the budget has no window)".to_owned(),
            w => format!(
                "in the {} window since {}",
                w.as_str(),
                clock::format_utc(self.window_start)
            ),
        }
    }

    fn status(&self, project: &str) -> ProjectBudgetStatus {
        let windowed = self.window() != Window::None;
        ProjectBudgetStatus {
            project: project.to_owned(),
            limit: self.budget.map(|b| b.limit),
            window: self.window(),
            spent: money(self.spent),
            reserved: money(self.reserved),
            window_start_ms: windowed.then_some(self.window_start),
            window_end_ms: windowed.then_some(self.window_end),
            percent_used: self.percent(),
            exhausted: self.exhausted,
            unenforced_calls: self.unenforced,
        }
    }

    /// Thresholds crossed for the first time (this window).
    fn crossed(&mut self) -> Vec<u8> {
        if self.budget.is_none() {
            return Vec::new();
        }
        let percent = self.percent();
        let mut crossed = Vec::new();
        for (i, threshold) in WARNING_THRESHOLDS.iter().enumerate() {
            if percent >= f64::from(*threshold) && !self.warned[i] {
                self.warned[i] = true;
                crossed.push(*threshold);
            }
        }
        crossed
    }

    /// After a raise: no longer exhausted, and warnings above the new level
    /// can fire again.
    fn lifted(&mut self) {
        self.exhausted = false;
        let percent = self.percent();
        for (i, threshold) in WARNING_THRESHOLDS.iter().enumerate() {
            if percent < f64::from(*threshold) {
                self.warned[i] = false;
            }
        }
    }
}

impl Budgets {
    /// The money budget the config gives `project` (its override, or the
    /// default for every project), whatever an operator set.
    pub fn configured_budget(&self, project: &str) -> Option<MoneyBudget> {
        self.configured(project)
    }

    /// The money budget configured for `project` (its override, or the
    /// default for every project).
    pub(super) fn configured(&self, project: &str) -> Option<MoneyBudget> {
        let config = self.config();
        config
            .projects
            .get(project)
            .or(config.project_money.as_ref())
            .copied()
    }

    /// Puts `budget` in place for `project` (a new window if the window
    /// kind changed) and lifts an exhaustion.
    pub(super) fn apply(
        &self,
        project: &str,
        p: &mut ProjectBudget,
        budget: Option<MoneyBudget>,
        now: u64,
    ) {
        let window = budget.map(|b| b.window).unwrap_or_default();
        if window != p.window() {
            let (start, end) = window.bounds(now);
            p.window_start = start;
            p.window_end = end;
            p.spent = self.seed(project, start, end);
            p.warned = [false; 3];
            p.unenforced = 0;
        }
        p.budget = budget;
        p.lifted();
    }

    /// What the ledger says `project` spent in `[start, end)`.
    fn seed(&self, project: &str, start: u64, end: u64) -> Nanos {
        self.ledger
            .as_ref()
            .map(|l| nanos(l.project_cost(project, start, end)))
            .unwrap_or(0)
    }

    /// A project's state as it is when first used in this process.
    fn open_project(&self, project: &str, budget: Option<MoneyBudget>, now: u64) -> ProjectBudget {
        let window = budget.map(|b| b.window).unwrap_or_default();
        let (start, end) = window.bounds(now);
        ProjectBudget {
            budget,
            explicit: false,
            window_start: start,
            window_end: end,
            spent: self.seed(project, start, end),
            reserved: 0,
            warned: [false; 3],
            exhausted: false,
            unenforced: 0,
        }
    }

    /// Opens the window holding `now` if the current one is over; returns
    /// whether that lifted an exhaustion. Reservations of calls in flight
    /// carry over.
    pub(super) fn roll(&self, project: &str, b: &mut ProjectBudget, now: u64) -> bool {
        if now < b.window_end {
            return false;
        }
        let (start, end) = b.window().bounds(now);
        b.window_start = start;
        b.window_end = end;
        b.spent = self.seed(project, start, end);
        b.warned = [false; 3];
        b.unenforced = 0;
        tracing::info!(
            project,
            window = b.window().as_str(),
            since = %clock::format_utc(start),
            "a new budget window started"
        );
        std::mem::take(&mut b.exhausted)
    }

    /// Runs `f` on `project`'s state (created, and rolled over, as needed)
    /// with the current time, never earlier than the window's start.
    pub(super) fn with_project<R>(
        &self,
        project: &str,
        f: impl FnOnce(&mut ProjectBudget, u64) -> R,
    ) -> R {
        let (result, lifted) = {
            let mut projects = lock(&self.projects);
            // The time is read under the lock, so that calls see it in order.
            let now = self.now_ms();
            let b = match projects.entry(project.to_owned()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.open_project(project, self.configured(project), now))
                }
            };
            let lifted = self.roll(project, b, now);
            let now = now.max(b.window_start);
            (f(b, now), lifted)
        };
        if lifted {
            self.notify();
        }
        result
    }

    /// Whether `project` has a money limit now.
    pub(super) fn money_limited(&self, project: &str) -> bool {
        self.with_project(project, |b, _| b.limit().is_some())
    }

    /// Counts a call of an unpriced model in `project`'s window and warns
    /// once per model (for the first [`MAX_UNPRICED_MODELS`] models named).
    pub(super) fn note_unpriced(&self, project: &str, model: &str, what: &str) {
        self.with_project(project, |b, _| b.unenforced += 1);
        let mut models = lock(&self.unpriced_models);
        if models.len() < MAX_UNPRICED_MODELS && models.insert(model.to_owned()) {
            tracing::warn!(project, model, "the model has no price: {what}");
        }
    }

    /// Reserves the worst-case cost of a call (`None`: its model has no
    /// price) from `project`'s money budget, or refuses it. Returns what was
    /// reserved. An unpriced call in a project with a money limit is
    /// refused ([`MoneyRefusal::Unpriced`]) without marking the project
    /// exhausted: a raise would not let it through.
    pub(super) fn reserve_money(
        &self,
        project: &str,
        model: &str,
        worst: Option<f64>,
    ) -> Result<Nanos, MoneyRefusal> {
        let result = self.with_project(project, |b, _| {
            let Some(limit) = b.limit() else {
                return Ok(Some(0));
            };
            let Some(worst) = worst else {
                return Ok(None);
            };
            let amount = nanos_ceil(worst);
            if b.spent.saturating_add(b.reserved).saturating_add(amount) > limit {
                b.exhausted = true;
                return Err(MoneyRefusal::Exhausted(CapabilityError::BudgetExhausted(
                    format!(
                        "project `{project}` money budget: {:.6} spent of {:.6} {} \
                     ({:.6} reserved by calls in flight); this call may cost up to {:.6}",
                        money(b.spent),
                        money(limit),
                        b.window_text(),
                        money(b.reserved),
                        money(amount)
                    ),
                )));
            }
            b.reserved += amount;
            Ok(Some(amount))
        })?;
        match result {
            Some(amount) => Ok(amount),
            None => {
                self.note_unpriced(
                    project,
                    model,
                    "its calls are refused in projects with a money budget (budget.unpriced: refuse)",
                );
                Err(MoneyRefusal::Unpriced(CapabilityError::BudgetExhausted(
                    format!(
                        "model `{model}` has no price and project `{project}` has a money budget: \
                     a call whose cost cannot be known is refused (budget.unpriced: refuse)"
                    ),
                )))
            }
        }
    }

    /// Replaces a money reservation with the call's cost (`None`: not
    /// priced); returns the thresholds crossed for the first time in this
    /// window, the status after, and the time the cost counts at.
    pub(super) fn reconcile_money(
        &self,
        project: &str,
        reserved: Nanos,
        cost: Option<f64>,
    ) -> (Vec<u8>, ProjectBudgetStatus, u64) {
        self.with_project(project, |b, now| {
            b.reserved = b.reserved.saturating_sub(reserved);
            b.spent = b.spent.saturating_add(nanos(cost.unwrap_or(0.0)));
            (b.crossed(), b.status(project), now)
        })
    }

    /// For a hold in a store shared by several hosts: `project`'s limit,
    /// its window's start and what this host knows it spent there; `None`
    /// when it has no money limit.
    pub(super) fn money_window(&self, project: &str) -> Option<(Nanos, u64, Nanos)> {
        self.with_project(project, |b, _| {
            b.limit().map(|limit| (limit, b.window_start, b.spent))
        })
    }

    /// The hosts sharing the store refused a call this host had reserved
    /// `reserved` for: the reservation is given back, the project is
    /// exhausted (its runs wait for a raise or a new window), and the
    /// refusal says what every host spent and holds.
    pub(super) fn refused_by_hosts(
        &self,
        project: &str,
        reserved: Nanos,
        spent: Nanos,
        held: Nanos,
        amount: Nanos,
    ) -> CapabilityError {
        self.with_project(project, |b, _| {
            b.reserved = b.reserved.saturating_sub(reserved);
            b.spent = b.spent.max(spent);
            b.exhausted = true;
            CapabilityError::BudgetExhausted(format!(
                "project `{project}` money budget: {:.6} spent of {:.6} {} on every host \
                 ({:.6} held by calls in flight); this call may cost up to {:.6}",
                money(spent),
                money(b.limit().unwrap_or(0)),
                b.window_text(),
                money(held),
                money(amount)
            ))
        })
    }

    /// Takes what every host spent in `project`'s window starting at
    /// `window_start` (from the shared store) as its spend here.
    pub(super) fn hosts_spent(&self, project: &str, window_start: u64, spent: Nanos) {
        self.with_project(project, |b, _| {
            if b.window_start == window_start {
                b.spent = spent;
            }
        });
    }

    /// The money budget of `project`: limit, spend in the current window,
    /// reservations, window bounds.
    pub fn project_status(&self, project: &str) -> ProjectBudgetStatus {
        self.with_project(project, |b, _| b.status(project))
    }

    /// Sets `project`'s money budget (`None`: unlimited), replacing the
    /// configured one, and clears its exhaustion. A different window starts
    /// its spend from the ledger.
    pub fn set_project_budget(
        &self,
        project: &str,
        budget: Option<MoneyBudget>,
    ) -> Result<ProjectBudgetStatus, BudgetError> {
        if let Some(b) = &budget {
            check_amount(b.limit)?;
        }
        let status = self.with_project(project, |p, now| {
            self.apply(project, p, budget, now);
            p.explicit = true;
            p.status(project)
        });
        self.notify();
        Ok(status)
    }

    /// Adds `amount` to `project`'s money limit (an unlimited project stays
    /// unlimited) and clears its exhaustion, so its waiting runs go on.
    pub fn raise_project_budget(
        &self,
        project: &str,
        amount: f64,
    ) -> Result<ProjectBudgetStatus, BudgetError> {
        check_amount(amount)?;
        let status = self.with_project(project, |b, _| {
            if let Some(budget) = &mut b.budget {
                let limit = budget.limit + amount;
                if !limit.is_finite() || limit > MAX_MONEY {
                    return Err(BudgetError::Overflow {
                        limit: budget.limit.to_string(),
                        raise: amount.to_string(),
                        max: MAX_MONEY.to_string(),
                    });
                }
                budget.limit = limit;
            }
            b.explicit = true;
            b.lifted();
            Ok(b.status(project))
        })?;
        self.notify();
        Ok(status)
    }
}
