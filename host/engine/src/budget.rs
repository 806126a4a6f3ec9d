//! Token budgets per thread and money budgets per project, enforced around
//! every `llm` call.
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
//! A call whose model has no price cannot be held to a money budget: it is
//! allowed, counted as `unenforced_calls` in the project's status, warned
//! about once per model in the log, and its usage event's cost is `None`.
//!
//! Crossing 75, 90 and 95 % of a budget is reported once each (per window,
//! for money): as a `budget_warning` event and as a `system` message the
//! calling node finds in its next tick (kind `budget_warning` for the
//! thread's tokens, `project_budget_warning` for the project's money). When
//! a call is refused, the thread (or the whole project) is marked
//! exhausted: its runs stop at the frame boundary with status
//! `budget_exhausted`, the node that was refused gets its messages back,
//! and a raise ([`Engine::raise_budget`](crate::Engine::raise_budget),
//! [`Engine::raise_project_budget`](crate::Engine::raise_project_budget))
//! or the next window resumes them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::{CallContext, CapabilityError, Completion, CompletionRequest, Message};

use crate::clock::{self, Clock, SystemClock};
use crate::events::{Bus, EventBody};
use crate::usage::{Ledger, PriceTable, UsageEvent};

/// The warning thresholds, in percent of the budget.
pub const WARNING_THRESHOLDS: [u8; 3] = [75, 90, 95];
/// The kind of the `system` message a node gets when its thread's budget
/// crosses a threshold. Body: `{"scope": "thread", "percent", "used", "limit"}`.
pub const BUDGET_WARNING_KIND: &str = "budget_warning";
/// The kind of the `system` message a node gets when its project's money
/// budget crosses a threshold. Body: `{"scope": "project", "project",
/// "percent", "spent", "limit", "windowStartMs"}`.
pub const PROJECT_BUDGET_WARNING_KIND: &str = "project_budget_warning";
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

fn check_amount(amount: f64) -> Result<(), BudgetError> {
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

#[derive(Debug)]
struct ThreadBudget {
    limit: u64,
    /// Set or raised by an operator (kept in the store), not the default.
    explicit: bool,
    used: u64,
    reserved: u64,
    warned: [bool; 3],
    exhausted: bool,
}

impl ThreadBudget {
    fn new(limit: u64) -> Self {
        Self {
            limit,
            explicit: false,
            used: 0,
            reserved: 0,
            warned: [false; 3],
            exhausted: false,
        }
    }

    fn status(&self) -> BudgetStatus {
        BudgetStatus {
            limit: self.limit,
            used: self.used,
            reserved: self.reserved,
            percent_used: if self.limit == 0 {
                100.0
            } else {
                self.used as f64 * 100.0 / self.limit as f64
            },
            exhausted: self.exhausted,
        }
    }
}

/// Money in billionths of the currency unit, so that reservations and
/// reconciliations add and subtract exactly.
type Nanos = u64;

fn nanos(amount: f64) -> Nanos {
    (amount * 1e9).round() as Nanos
}

fn nanos_ceil(amount: f64) -> Nanos {
    (amount * 1e9).ceil() as Nanos
}

fn money(n: Nanos) -> f64 {
    n as f64 / 1e9
}

/// One project's money: the current window's spend (a counter keyed by the
/// window's start) and the reservations of calls in flight.
#[derive(Debug)]
struct ProjectBudget {
    budget: Option<MoneyBudget>,
    /// Set by an operator (kept when the config is reloaded).
    explicit: bool,
    window_start: u64,
    window_end: u64,
    spent: Nanos,
    reserved: Nanos,
    warned: [bool; 3],
    exhausted: bool,
    unenforced: u64,
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

/// Every thread's token budget, every project's money budget, and the
/// warnings waiting for their nodes.
pub struct Budgets {
    config: std::sync::RwLock<BudgetConfig>,
    clock: Arc<dyn Clock>,
    ledger: Option<Arc<dyn Ledger>>,
    threads: Mutex<HashMap<String, ThreadBudget>>,
    projects: Mutex<HashMap<String, ProjectBudget>>,
    thread_projects: Mutex<HashMap<String, String>>,
    unpriced_models: Mutex<HashSet<String>>,
    notices: Mutex<HashMap<(String, String), Vec<Message>>>,
    raised: watch::Sender<u64>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("config", &*self.config())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Budgets {
    /// Budgets with `config`'s defaults, on the system clock, with window
    /// spends starting from zero (see [`with_ledger`](Self::with_ledger)).
    pub fn new(config: BudgetConfig) -> Self {
        Self {
            config: std::sync::RwLock::new(config),
            clock: Arc::new(SystemClock),
            ledger: None,
            threads: Mutex::default(),
            projects: Mutex::default(),
            thread_projects: Mutex::default(),
            unpriced_models: Mutex::default(),
            notices: Mutex::default(),
            raised: watch::Sender::new(0),
        }
    }

    /// Reads the time from `clock` (windows, usage event times).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Seeds a project's spend from `ledger` whenever a window opens (the
    /// first use in this process, a rollover, a change of window): what the
    /// usage events say the window has spent.
    pub fn with_ledger(mut self, ledger: Arc<dyn Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Now, in Unix milliseconds, from the budgets' clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Puts `thread` in `project`. A thread's first project sticks: later
    /// calls for the same thread change nothing. Returns the thread's project.
    pub fn assign_project(&self, thread: &str, project: &str) -> String {
        lock(&self.thread_projects)
            .entry(thread.to_owned())
            .or_insert_with(|| project.to_owned())
            .clone()
    }

    /// Puts `thread` back in the project the store says it belongs to
    /// (whatever a caller assigned before its state was loaded).
    pub(crate) fn restore_project(&self, thread: &str, project: &str) {
        lock(&self.thread_projects).insert(thread.to_owned(), project.to_owned());
    }

    /// The project of `thread` ([`DEFAULT_PROJECT`] if it was never assigned).
    pub fn project_of(&self, thread: &str) -> String {
        lock(&self.thread_projects)
            .get(thread)
            .cloned()
            .unwrap_or_else(|| DEFAULT_PROJECT.to_owned())
    }

    /// Reserves `amount` tokens for a call of `thread`, or refuses it.
    fn reserve(&self, thread: &str, amount: u64) -> Result<(), CapabilityError> {
        let Some(default) = self.config().thread_tokens else {
            return Ok(());
        };
        let mut threads = lock(&self.threads);
        let b = threads
            .entry(thread.to_owned())
            .or_insert_with(|| ThreadBudget::new(default));
        if b.used + b.reserved + amount > b.limit {
            b.exhausted = true;
            return Err(CapabilityError::BudgetExhausted(format!(
                "thread `{thread}` has used {} of {} tokens ({} reserved by calls in flight); \
                 this call may need up to {amount}",
                b.used, b.limit, b.reserved
            )));
        }
        b.reserved += amount;
        Ok(())
    }

    /// Gives back a reservation of a call that did not happen.
    fn release(&self, thread: &str, reserved: u64) {
        if let Some(b) = lock(&self.threads).get_mut(thread) {
            b.reserved = b.reserved.saturating_sub(reserved);
        }
    }

    /// Replaces a reservation with what the call really used; returns the
    /// thresholds crossed for the first time, with the status after.
    fn reconcile(&self, thread: &str, reserved: u64, used: u64) -> (Vec<u8>, Option<BudgetStatus>) {
        let mut threads = lock(&self.threads);
        let Some(b) = threads.get_mut(thread) else {
            return (Vec::new(), None);
        };
        b.reserved = b.reserved.saturating_sub(reserved);
        b.used += used;
        let percent = b.status().percent_used;
        let mut crossed = Vec::new();
        for (i, threshold) in WARNING_THRESHOLDS.iter().enumerate() {
            if percent >= f64::from(*threshold) && !b.warned[i] {
                b.warned[i] = true;
                crossed.push(*threshold);
            }
        }
        (crossed, Some(b.status()))
    }

    /// Restores a thread's budget from the store: the limit an operator set
    /// (`None`: the configured default) and the tokens its calls used.
    /// Warnings already crossed are not repeated.
    pub fn restore_thread(&self, thread: &str, explicit: Option<u64>, used: u64) {
        let Some(limit) = explicit.or(self.config().thread_tokens) else {
            return;
        };
        let mut b = ThreadBudget::new(limit);
        b.explicit = explicit.is_some();
        b.used = used;
        let percent = b.status().percent_used;
        for (i, threshold) in WARNING_THRESHOLDS.iter().enumerate() {
            b.warned[i] = percent >= f64::from(*threshold);
        }
        lock(&self.threads).insert(thread.to_owned(), b);
    }

    /// Every thread's token budget (threads that made a call or were set).
    pub fn all_statuses(&self) -> Vec<(String, BudgetStatus)> {
        lock(&self.threads)
            .iter()
            .map(|(t, b)| (t.clone(), b.status()))
            .collect()
    }

    /// The thread's token limit if an operator set or raised it.
    pub fn explicit_limit(&self, thread: &str) -> Option<u64> {
        lock(&self.threads)
            .get(thread)
            .filter(|b| b.explicit)
            .map(|b| b.limit)
    }

    /// The budget of `thread`, if it has made a call (or been raised).
    pub fn status(&self, thread: &str) -> Option<BudgetStatus> {
        lock(&self.threads).get(thread).map(ThreadBudget::status)
    }

    /// Whether a call of `thread` was refused since the last raise, by the
    /// thread's token budget or by its project's money budget (whose window
    /// may have rolled over since: checked here).
    pub fn is_exhausted(&self, thread: &str) -> bool {
        if lock(&self.threads).get(thread).is_some_and(|b| b.exhausted) {
            return true;
        }
        let project = self.project_of(thread);
        let now = self.now_ms();
        let (exhausted, lifted) = {
            let mut projects = lock(&self.projects);
            match projects.get_mut(&project) {
                None => (false, false),
                Some(b) => {
                    let lifted = self.roll(&project, b, now);
                    (b.exhausted, lifted)
                }
            }
        };
        if lifted {
            self.notify();
        }
        exhausted
    }

    /// Adds `tokens` to the thread's limit and clears its exhaustion, so a
    /// run waiting on it goes on. Warnings above the new level can fire again.
    pub fn raise(&self, thread: &str, tokens: u64) -> BudgetStatus {
        self.update(thread, |b| b.limit = b.limit.saturating_add(tokens))
    }

    /// Sets the thread's limit (an operator's decision; lower than what is
    /// used means the next call is refused). Clears the exhaustion flag.
    pub fn set_limit(&self, thread: &str, limit: u64) -> BudgetStatus {
        self.update(thread, |b| b.limit = limit)
    }

    fn update(&self, thread: &str, change: impl FnOnce(&mut ThreadBudget)) -> BudgetStatus {
        let default = self.config().thread_tokens.unwrap_or(0);
        let status = {
            let mut threads = lock(&self.threads);
            let b = threads
                .entry(thread.to_owned())
                .or_insert_with(|| ThreadBudget::new(default));
            change(b);
            b.explicit = true;
            b.exhausted = false;
            let percent = b.status().percent_used;
            for (i, threshold) in WARNING_THRESHOLDS.iter().enumerate() {
                if percent < f64::from(*threshold) {
                    b.warned[i] = false;
                }
            }
            b.status()
        };
        self.notify();
        status
    }

    /// The money budget configured for `project` (its override, or the
    /// default for every project).
    fn configured(&self, project: &str) -> Option<MoneyBudget> {
        let config = self.config();
        config
            .projects
            .get(project)
            .or(config.project_money.as_ref())
            .copied()
    }

    fn config(&self) -> std::sync::RwLockReadGuard<'_, BudgetConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts `budget` in place for `project` (a new window if the window
    /// kind changed) and lifts an exhaustion.
    fn apply(&self, project: &str, p: &mut ProjectBudget, budget: Option<MoneyBudget>, now: u64) {
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

    /// Replaces the configured budgets (a config reload). Threads and
    /// projects whose budget an operator set keep it; the others take the
    /// new defaults at once (a higher limit lets their waiting runs go on).
    pub fn set_config(&self, config: BudgetConfig) {
        let thread_tokens = config.thread_tokens;
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        if let Some(limit) = thread_tokens {
            for b in lock(&self.threads).values_mut().filter(|b| !b.explicit) {
                b.limit = limit;
                if b.used + b.reserved < limit {
                    b.exhausted = false;
                }
            }
        }
        let projects: Vec<String> = lock(&self.projects).keys().cloned().collect();
        for project in projects {
            let budget = self.configured(&project);
            self.with_project(&project, |p, now| {
                if !p.explicit && p.budget != budget {
                    self.apply(&project, p, budget, now);
                }
            });
        }
        self.notify();
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
    fn roll(&self, project: &str, b: &mut ProjectBudget, now: u64) -> bool {
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
    fn with_project<R>(&self, project: &str, f: impl FnOnce(&mut ProjectBudget, u64) -> R) -> R {
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

    /// Reserves the worst-case cost of a call (`None`: its model has no
    /// price) from `project`'s money budget, or refuses it. Returns what was
    /// reserved.
    fn reserve_money(
        &self,
        project: &str,
        model: &str,
        worst: Option<f64>,
    ) -> Result<Nanos, CapabilityError> {
        let result = self.with_project(project, |b, _| {
            let Some(limit) = b.limit() else {
                return Ok(Some(0));
            };
            let Some(worst) = worst else {
                b.unenforced += 1;
                return Ok(None);
            };
            let amount = nanos_ceil(worst);
            if b.spent + b.reserved + amount > limit {
                b.exhausted = true;
                return Err(CapabilityError::BudgetExhausted(format!(
                    "project `{project}` money budget: {:.6} spent of {:.6} {} \
                     ({:.6} reserved by calls in flight); this call may cost up to {:.6}",
                    money(b.spent),
                    money(limit),
                    b.window_text(),
                    money(b.reserved),
                    money(amount)
                )));
            }
            b.reserved += amount;
            Ok(Some(amount))
        });
        match result? {
            Some(amount) => Ok(amount),
            None => {
                if lock(&self.unpriced_models).insert(model.to_owned()) {
                    tracing::warn!(
                        project,
                        model,
                        "the model has no price: money budgets cannot hold back its calls \
                         (they are allowed, and counted as unenforced)"
                    );
                }
                Ok(0)
            }
        }
    }

    /// Replaces a money reservation with the call's cost (`None`: not
    /// priced); returns the thresholds crossed for the first time in this
    /// window, the status after, and the time the cost counts at.
    fn reconcile_money(
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
                budget.limit += amount;
            }
            b.explicit = true;
            b.lifted();
            b.status(project)
        });
        self.notify();
        Ok(status)
    }

    /// Rolls every project whose window is over into its next window (runs
    /// waiting on an exhausted project go on). The engine calls this
    /// periodically while runs wait; with a [`ManualClock`](crate::ManualClock)
    /// tests call it after moving the clock.
    pub fn tick(&self) {
        let now = self.now_ms();
        let lifted = {
            let mut projects = lock(&self.projects);
            let mut lifted = false;
            for (project, b) in projects.iter_mut() {
                lifted |= self.roll(project, b, now);
            }
            lifted
        };
        if lifted {
            self.notify();
        }
    }

    fn notify(&self) {
        self.raised.send_modify(|n| *n += 1);
    }

    /// Resolves when any budget is raised or a window lifts an exhaustion.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.raised.subscribe()
    }

    /// Warnings waiting for `node` of `thread`, removed.
    pub(crate) fn take_notices(&self, thread: &str, node: &str) -> Vec<Message> {
        lock(&self.notices)
            .remove(&(thread.to_owned(), node.to_owned()))
            .unwrap_or_default()
    }

    fn push_notice(&self, thread: &str, node: &str, message: Message) {
        lock(&self.notices)
            .entry((thread.to_owned(), node.to_owned()))
            .or_default()
            .push(message);
    }
}

/// The metering and budget wrapper around the real LLM backend.
pub struct Metered {
    /// The backend that answers.
    pub inner: Arc<dyn LlmBackend>,
    /// Budgets to enforce.
    pub budgets: Arc<Budgets>,
    /// Where usage goes.
    pub ledger: Arc<dyn Ledger>,
    /// Prices for the cost of each call.
    pub prices: PriceTable,
    /// Warning events go here.
    pub bus: Bus,
}

impl Metered {
    /// Reserves tokens from the thread and money from its project; on a
    /// refusal, gives back what was reserved and returns the refusal with
    /// the event body that reports it.
    fn reserve(
        &self,
        ctx: &CallContext,
        project: &str,
        tokens: u64,
        model: &str,
        worst: Option<f64>,
    ) -> Result<Nanos, (CapabilityError, serde_json::Value)> {
        if let Err(refused) = self.budgets.reserve(&ctx.thread, tokens) {
            let body = serde_json::json!({
                "scope": "thread",
                "budget": self.budgets.status(&ctx.thread),
                "message": refused.to_string(),
            });
            return Err((refused, body));
        }
        self.budgets
            .reserve_money(project, model, worst)
            .map_err(|refused| {
                self.budgets.release(&ctx.thread, tokens);
                let body = serde_json::json!({
                    "scope": "project",
                    "project": project,
                    "budget": self.budgets.project_status(project),
                    "message": refused.to_string(),
                });
                (refused, body)
            })
    }

    /// Publishes a warning and leaves it for the calling node.
    fn warn(&self, ctx: &CallContext, kind: &str, id: String, body: serde_json::Value) {
        self.bus.publish(
            &ctx.thread,
            &ctx.run,
            Some(ctx.frame),
            Some(&ctx.node),
            EventBody::BudgetWarning(body.clone()),
        );
        self.budgets.push_notice(
            &ctx.thread,
            &ctx.node,
            Message {
                id,
                from: crate::SYSTEM_SENDER.into(),
                kind: kind.into(),
                body: body.to_string(),
            },
        );
    }
}

impl LlmBackend for Metered {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async move {
            let ctx = call.ctx;
            let project = self.budgets.project_of(&ctx.thread);
            // Bytes are an upper bound on tokens for the tokenizers in use.
            let prompt_bound: u64 = request
                .messages
                .iter()
                .map(|m| m.content.len() as u64 + 8)
                .sum();
            let max_tokens = u64::from(request.max_tokens);
            let amount = max_tokens + prompt_bound;
            let model = call.model.unwrap_or("default").to_owned();
            // Priced by the model the node asks for: the name the price
            // table knows only if the node names a real model.
            let worst = self.prices.cost(&model, prompt_bound, max_tokens);
            let event = |prompt: u64, completion: u64, latency_ms: u64, model: String| UsageEvent {
                project: project.clone(),
                thread: ctx.thread.clone(),
                run: ctx.run.clone(),
                frame: ctx.frame,
                node: ctx.node.clone(),
                cost: self.prices.cost(&model, prompt, completion),
                model,
                provider: String::new(),
                prompt_tokens: prompt,
                completion_tokens: completion,
                estimated: false,
                latency_ms,
                outcome: "ok".to_owned(),
                at_ms: 0,
            };
            let money = match self.reserve(ctx, &project, amount, &model, worst) {
                Ok(money) => money,
                Err((refused, body)) => {
                    // Metered like every call; it cost nothing.
                    self.ledger.record(UsageEvent {
                        cost: Some(0.0),
                        outcome: "budget_exhausted".to_owned(),
                        at_ms: self.budgets.now_ms(),
                        ..event(0, 0, 0, model)
                    });
                    self.bus.publish(
                        &ctx.thread,
                        &ctx.run,
                        Some(ctx.frame),
                        Some(&ctx.node),
                        EventBody::BudgetExhausted(body),
                    );
                    return Err(refused);
                }
            };
            let started = Instant::now();
            let result = self.inner.complete(call, request).await;
            let latency_ms = started.elapsed().as_millis() as u64;
            let usage = match &result {
                Ok(c) => UsageEvent {
                    provider: c.provider.clone(),
                    estimated: c.usage_estimated,
                    ..event(
                        u64::from(c.prompt_tokens),
                        u64::from(c.completion_tokens),
                        latency_ms,
                        c.model.clone(),
                    )
                },
                Err(e) => UsageEvent {
                    outcome: error_code(e).to_owned(),
                    ..event(0, 0, latency_ms, model)
                },
            };
            let (crossed, status) = self.budgets.reconcile(&ctx.thread, amount, usage.tokens());
            let (money_crossed, money_status, at_ms) =
                self.budgets.reconcile_money(&project, money, usage.cost);
            self.ledger.record(UsageEvent { at_ms, ..usage });
            if let Some(status) = status {
                for percent in crossed {
                    let body = serde_json::json!({
                        "scope": "thread",
                        "percent": percent,
                        "used": status.used,
                        "limit": status.limit,
                    });
                    let id = format!("{}/{}/budget-{percent}", ctx.run, ctx.frame);
                    self.warn(ctx, BUDGET_WARNING_KIND, id, body);
                }
            }
            for percent in money_crossed {
                let body = serde_json::json!({
                    "scope": "project",
                    "project": project,
                    "percent": percent,
                    "spent": money_status.spent,
                    "limit": money_status.limit,
                    "windowStartMs": money_status.window_start_ms,
                });
                let id = format!("{}/{}/project-budget-{percent}", ctx.run, ctx.frame);
                self.warn(ctx, PROJECT_BUDGET_WARNING_KIND, id, body);
            }
            result
        })
    }
}

fn error_code(e: &CapabilityError) -> &'static str {
    match e {
        CapabilityError::Denied(_) => "denied",
        CapabilityError::BudgetExhausted(_) => "budget_exhausted",
        CapabilityError::InvalidInput(_) => "invalid_input",
        CapabilityError::LimitExceeded(_) => "limit_exceeded",
        CapabilityError::Unavailable(_) => "unavailable",
        CapabilityError::Failed(_) => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::usage::{MemoryLedger, UsageEvent};

    // 2025-01-31T23:00:00Z.
    const JAN_31_23H: u64 = 1_738_364_400_000;
    const HOUR: u64 = 3_600_000;

    fn budgets(window: Window, limit: f64) -> (Budgets, Arc<ManualClock>, Arc<MemoryLedger>) {
        let clock = Arc::new(ManualClock::at_ms(JAN_31_23H));
        let ledger = Arc::new(MemoryLedger::default());
        let config = BudgetConfig {
            project_money: Some(MoneyBudget::new(limit, window).unwrap()),
            ..BudgetConfig::default()
        };
        let budgets = Budgets::new(config)
            .with_clock(clock.clone())
            .with_ledger(ledger.clone());
        (budgets, clock, ledger)
    }

    fn spend(b: &Budgets, ledger: &MemoryLedger, project: &str, cost: f64) -> Vec<u8> {
        let reserved = b.reserve_money(project, "m", Some(cost)).unwrap();
        let (crossed, _, at_ms) = b.reconcile_money(project, reserved, Some(cost));
        ledger.record(UsageEvent {
            project: project.into(),
            thread: "t".into(),
            run: "r".into(),
            frame: 0,
            node: "n".into(),
            model: "m".into(),
            provider: "p".into(),
            prompt_tokens: 1,
            completion_tokens: 1,
            estimated: false,
            latency_ms: 0,
            cost: Some(cost),
            outcome: "ok".into(),
            at_ms,
        });
        crossed
    }

    #[test]
    fn money_budgets_parse_and_refuse_nonsense() {
        let config: BudgetConfig = serde_json::from_value(serde_json::json!({
            "project_money": { "limit": 5.0, "window": "daily" },
            "projects": { "acme": { "limit": 50, "window": "monthly" }, "free": { "limit": 1 } }
        }))
        .unwrap();
        assert_eq!(config.thread_tokens, Some(100_000));
        assert_eq!(
            config.project_money,
            Some(MoneyBudget::new(5.0, Window::Daily).unwrap())
        );
        assert_eq!(config.projects["acme"].window, Window::Monthly);
        assert_eq!(config.projects["free"].window, Window::None);
        for bad in [
            serde_json::json!({ "project_money": { "limit": -1.0 } }),
            serde_json::json!({ "project_money": { "limit": 1.0, "window": "weekly" } }),
            serde_json::json!({ "project_money": { "limit": 1.0, "per": "day" } }),
        ] {
            assert!(
                serde_json::from_value::<BudgetConfig>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            MoneyBudget::new(f64::NAN, Window::None)
                .unwrap_err()
                .to_string(),
            "a money amount must be finite and at least 0, not NaN"
        );
    }

    #[test]
    fn a_config_reload_moves_configured_budgets_and_keeps_operators_ones() {
        let (b, _, _) = budgets(Window::Daily, 1.0);
        assert_eq!(b.project_status("free").limit, Some(1.0));
        b.set_project_budget("set", Some(MoneyBudget::new(3.0, Window::None).unwrap()))
            .unwrap();
        b.set_limit("pinned", 10);
        let _ = b.reserve("follows", 1);
        let mut config = b.config().clone();
        config.thread_tokens = Some(5_000);
        config.project_money = Some(MoneyBudget::new(7.0, Window::Monthly).unwrap());
        b.set_config(config);
        let free = b.project_status("free");
        assert_eq!((free.limit, free.window), (Some(7.0), Window::Monthly));
        assert_eq!(
            b.project_status("set").limit,
            Some(3.0),
            "an operator's budget stays"
        );
        assert_eq!(b.project_status("new").limit, Some(7.0));
        assert_eq!(b.status("follows").unwrap().limit, 5_000);
        assert_eq!(
            b.status("pinned").unwrap().limit,
            10,
            "an operator's limit stays"
        );
    }

    #[test]
    fn overrides_replace_the_default_and_a_set_budget_replaces_both() {
        let (b, _, _) = budgets(Window::Daily, 1.0);
        let mut config = b.config().clone();
        config.projects.insert(
            "acme".into(),
            MoneyBudget::new(9.0, Window::Monthly).unwrap(),
        );
        let b = Budgets::new(config);
        assert_eq!(b.project_status("other").limit, Some(1.0));
        let acme = b.project_status("acme");
        assert_eq!((acme.limit, acme.window), (Some(9.0), Window::Monthly));
        let set = b
            .set_project_budget("acme", Some(MoneyBudget::new(2.0, Window::None).unwrap()))
            .unwrap();
        assert_eq!(
            (set.limit, set.window, set.window_start_ms),
            (Some(2.0), Window::None, None)
        );
        assert!(b.raise_project_budget("acme", -1.0).is_err());
        assert_eq!(
            b.raise_project_budget("acme", 0.5).unwrap().limit,
            Some(2.5)
        );
        let unlimited = b.set_project_budget("acme", None).unwrap();
        assert_eq!(unlimited.limit, None);
        assert_eq!(b.raise_project_budget("acme", 1.0).unwrap().limit, None);
    }

    #[test]
    fn a_refusal_names_the_project_the_spend_and_the_window() {
        let (b, _, ledger) = budgets(Window::Daily, 1.0);
        spend(&b, &ledger, "acme", 0.75);
        let err = b.reserve_money("acme", "m", Some(0.5)).unwrap_err();
        let CapabilityError::BudgetExhausted(message) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            message,
            "project `acme` money budget: 0.750000 spent of 1.000000 in the daily window \
             since 2025-01-31T00:00:00Z (0.000000 reserved by calls in flight); \
             this call may cost up to 0.500000"
        );
        let status = b.project_status("acme");
        assert!(status.exhausted);
        assert_eq!(status.reserved, 0.0);
        assert_eq!(status.window_start_ms, Some(JAN_31_23H - 23 * HOUR));
        assert_eq!(status.window_end_ms, Some(JAN_31_23H + HOUR));
    }

    #[test]
    fn a_new_window_starts_over_keeps_every_event_and_warns_again() {
        let (b, clock, ledger) = budgets(Window::Monthly, 1.0);
        let warned: Vec<Vec<u8>> = [0.5, 0.26, 0.15, 0.03, 0.02]
            .into_iter()
            .map(|cost| spend(&b, &ledger, "acme", cost))
            .collect();
        assert_eq!(warned, [vec![], vec![75], vec![90], vec![], vec![95]]);
        assert!(b.reserve_money("acme", "m", Some(0.1)).is_err());
        assert!(b.project_status("acme").exhausted);
        let mut raised = b.subscribe();
        raised.borrow_and_update();

        // Two hours later it is February: a new monthly window.
        clock.advance(std::time::Duration::from_millis(2 * HOUR));
        b.tick();
        assert!(
            raised.has_changed().unwrap(),
            "the rollover lifts the exhaustion"
        );
        let status = b.project_status("acme");
        assert_eq!(status.spent, 0.0);
        assert!(!status.exhausted);
        assert_eq!(status.window_start_ms, Some(JAN_31_23H + HOUR));
        // Every event is kept; the old window's spend is still in the ledger.
        assert_eq!(ledger.events().len(), 5);
        assert!((ledger.project_cost("acme", 0, JAN_31_23H + HOUR) - 0.96).abs() < 1e-9);
        // Warnings fire again, once each, in the new window.
        let mut warned = Vec::new();
        for _ in 0..20 {
            warned.extend(spend(&b, &ledger, "acme", 0.049));
        }
        assert_eq!(warned, [75, 90, 95]);
        assert_eq!(ledger.events().len(), 25);
        assert!((b.project_status("acme").spent - 0.98).abs() < 1e-9);
    }

    #[test]
    fn a_window_opened_later_starts_from_what_the_ledger_says() {
        let (b, clock, ledger) = budgets(Window::Daily, 1.0);
        spend(&b, &ledger, "acme", 0.25);
        clock.advance(std::time::Duration::from_millis(2 * HOUR));
        spend(&b, &ledger, "acme", 0.5);
        // A fresh set of budgets over the same ledger (a restart, with the
        // store) sees today's spend, not yesterday's.
        let fresh = Budgets::new(b.config().clone())
            .with_clock(clock.clone())
            .with_ledger(ledger.clone());
        assert_eq!(fresh.project_status("acme").spent, 0.5);
        // Switching to a monthly window re-derives the spend for the month.
        let monthly = fresh
            .set_project_budget(
                "acme",
                Some(MoneyBudget::new(1.0, Window::Monthly).unwrap()),
            )
            .unwrap();
        assert_eq!(monthly.spent, 0.5, "February only");
        let total = fresh
            .set_project_budget("acme", Some(MoneyBudget::new(1.0, Window::None).unwrap()))
            .unwrap();
        assert_eq!(total.spent, 0.75);
    }

    #[test]
    fn unpriced_calls_are_allowed_and_counted_as_unenforced() {
        let (b, _, _) = budgets(Window::Daily, 0.0);
        assert_eq!(b.reserve_money("acme", "mystery", None).unwrap(), 0);
        assert!(b.reserve_money("acme", "m", Some(0.001)).is_err());
        let status = b.project_status("acme");
        assert_eq!(status.unenforced_calls, 1);
        assert_eq!(status.percent_used, 100.0);
    }
}
