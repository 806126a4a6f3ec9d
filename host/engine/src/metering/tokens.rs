//! Token budgets per thread: reserve before a call, reconcile after.

use weft_runtime::CapabilityError;

use super::budgets::{Budgets, lock};
use super::config::{BudgetError, BudgetStatus, WARNING_THRESHOLDS};

#[derive(Debug, Clone)]
pub(super) struct ThreadBudget {
    pub(super) limit: u64,
    /// Set or raised by an operator (kept in the store), not the default.
    pub(super) explicit: bool,
    pub(super) used: u64,
    pub(super) reserved: u64,
    pub(super) warned: [bool; 3],
    pub(super) exhausted: bool,
}

impl ThreadBudget {
    pub(super) fn new(limit: u64) -> Self {
        Self {
            limit,
            explicit: false,
            used: 0,
            reserved: 0,
            warned: [false; 3],
            exhausted: false,
        }
    }

    pub(super) fn status(&self) -> BudgetStatus {
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

impl Budgets {
    /// Reserves `amount` tokens for a call of `thread`, or refuses it.
    pub(super) fn reserve(&self, thread: &str, amount: u64) -> Result<(), CapabilityError> {
        let Some(default) = self.config().thread_tokens else {
            return Ok(());
        };
        let mut threads = lock(&self.threads);
        let b = threads
            .entry(thread.to_owned())
            .or_insert_with(|| ThreadBudget::new(default));
        if b.used.saturating_add(b.reserved).saturating_add(amount) > b.limit {
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
    pub(super) fn release(&self, thread: &str, reserved: u64) {
        if let Some(b) = lock(&self.threads).get_mut(thread) {
            b.reserved = b.reserved.saturating_sub(reserved);
        }
    }

    /// Replaces a reservation with what the call really used; returns the
    /// thresholds crossed for the first time, with the status after.
    pub(super) fn reconcile(
        &self,
        thread: &str,
        reserved: u64,
        used: u64,
    ) -> (Vec<u8>, Option<BudgetStatus>) {
        let mut threads = lock(&self.threads);
        let Some(b) = threads.get_mut(thread) else {
            return (Vec::new(), None);
        };
        b.reserved = b.reserved.saturating_sub(reserved);
        b.used = b.used.saturating_add(used);
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

    /// Drops an idle thread's budget and project from memory (the store
    /// keeps its limit, its project and its usage; they are restored when
    /// the thread is next used). A budget with calls in flight is kept.
    pub fn forget_thread(&self, thread: &str) {
        let mut threads = lock(&self.threads);
        if threads.get(thread).is_some_and(|b| b.reserved > 0) {
            return;
        }
        threads.remove(thread);
        drop(threads);
        lock(&self.thread_projects).remove(thread);
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

    /// Adds `tokens` to the thread's limit and clears its exhaustion, so a
    /// run waiting on it goes on. Warnings above the new level can fire again.
    /// A raise whose new limit would pass `u64::MAX` is refused and
    /// changes nothing.
    pub fn raise(&self, thread: &str, tokens: u64) -> Result<BudgetStatus, BudgetError> {
        self.try_update(thread, |b| {
            b.limit = b
                .limit
                .checked_add(tokens)
                .ok_or_else(|| BudgetError::Overflow {
                    limit: b.limit.to_string(),
                    raise: tokens.to_string(),
                    max: u64::MAX.to_string(),
                })?;
            Ok(())
        })
    }

    /// Sets the thread's limit (an operator's decision; lower than what is
    /// used means the next call is refused). Clears the exhaustion flag.
    pub fn set_limit(&self, thread: &str, limit: u64) -> BudgetStatus {
        self.update(thread, |b| b.limit = limit)
    }

    fn update(&self, thread: &str, change: impl FnOnce(&mut ThreadBudget)) -> BudgetStatus {
        let updated = self.try_update(thread, |b| {
            change(b);
            Ok(())
        });
        updated.unwrap_or_else(|_| {
            self.status(thread)
                .unwrap_or_else(|| ThreadBudget::new(0).status())
        })
    }

    /// Applies `change` to a copy of the thread's budget and keeps it only
    /// if `change` succeeds: a refused change changes nothing (not even an
    /// entry is created). Clears the exhaustion; warnings above the new
    /// level can fire again.
    fn try_update(
        &self,
        thread: &str,
        change: impl FnOnce(&mut ThreadBudget) -> Result<(), BudgetError>,
    ) -> Result<BudgetStatus, BudgetError> {
        let default = self.config().thread_tokens.unwrap_or(0);
        let status = {
            let mut threads = lock(&self.threads);
            let mut b = threads
                .get(thread)
                .cloned()
                .unwrap_or_else(|| ThreadBudget::new(default));
            change(&mut b)?;
            b.explicit = true;
            b.exhausted = false;
            let percent = b.status().percent_used;
            for (i, threshold) in WARNING_THRESHOLDS.iter().enumerate() {
                if percent < f64::from(*threshold) {
                    b.warned[i] = false;
                }
            }
            let status = b.status();
            threads.insert(thread.to_owned(), b);
            status
        };
        self.notify();
        Ok(status)
    }
}
