//! [`Budgets`]: the accounts every metered call reserves from and
//! reconciles with, the projects threads belong to, and the signal that
//! wakes runs waiting on an exhausted budget.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::config::{BudgetConfig, DEFAULT_PROJECT};
use super::ledger::Ledger;
use super::money::ProjectBudget;
use super::tokens::ThreadBudget;
use crate::clock::{Clock, SystemClock};

/// Every thread's token budget and every project's money budget.
pub struct Budgets {
    pub(super) config: std::sync::RwLock<BudgetConfig>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) ledger: Option<Arc<dyn Ledger>>,
    pub(super) threads: Mutex<HashMap<String, ThreadBudget>>,
    pub(super) projects: Mutex<HashMap<String, ProjectBudget>>,
    pub(super) thread_projects: Mutex<HashMap<String, String>>,
    pub(super) unpriced_models: Mutex<HashSet<String>>,
    pub(super) raised: watch::Sender<u64>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("config", &*self.config())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

    /// The policy for unpriced calls under a money limit.
    pub(super) fn unpriced_policy(&self) -> super::config::Unpriced {
        self.config().unpriced
    }

    pub(super) fn config(&self) -> std::sync::RwLockReadGuard<'_, BudgetConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    pub(super) fn notify(&self) {
        self.raised.send_modify(|n| *n += 1);
    }

    /// Resolves when any budget is raised or a window lifts an exhaustion.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.raised.subscribe()
    }
}
