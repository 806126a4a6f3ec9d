//! Token budgets per thread, enforced around every `llm` call.
//!
//! [`Metered`] wraps the configured LLM backend. Before a call it *reserves*
//! the most the call can cost — `max_tokens` plus the prompt's length in
//! bytes, an upper bound on its token count — and refuses the call with
//! `budget-exhausted` if that does not fit; after the call it *reconciles*
//! the reservation with the real token counts. Concurrent calls of one
//! thread therefore can never spend more than its budget.
//!
//! Crossing 75, 90 and 95 % of a budget is reported once each: as a
//! `budget_warning` event and as a `system` message of kind `budget_warning`
//! the calling node finds in its next tick. When a call is refused, the
//! thread is marked exhausted: its run stops at the frame boundary with
//! status `budget_exhausted`, the node that was refused gets its messages
//! back, and [`Engine::raise_budget`](crate::Engine::raise_budget) resumes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::{CapabilityError, Completion, CompletionRequest, Message};

use crate::events::{Bus, EventBody};
use crate::usage::{Ledger, PriceTable, UsageEvent};

/// The warning thresholds, in percent of the budget.
pub const WARNING_THRESHOLDS: [u8; 3] = [75, 90, 95];
/// The kind of the `system` message a node gets when its thread's budget
/// crosses a threshold. Body: `{"percent", "used", "limit"}`.
pub const BUDGET_WARNING_KIND: &str = "budget_warning";

/// Budget settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Tokens a thread may use (prompt plus completion); `None`: unlimited.
    pub thread_tokens: Option<u64>,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            thread_tokens: Some(100_000),
        }
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

#[derive(Debug)]
struct ThreadBudget {
    limit: u64,
    used: u64,
    reserved: u64,
    warned: [bool; 3],
    exhausted: bool,
}

impl ThreadBudget {
    fn new(limit: u64) -> Self {
        Self {
            limit,
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

/// Every thread's budget, and the warnings waiting for their nodes.
#[derive(Debug)]
pub struct Budgets {
    config: BudgetConfig,
    threads: Mutex<HashMap<String, ThreadBudget>>,
    notices: Mutex<HashMap<(String, String), Vec<Message>>>,
    raised: watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Budgets {
    /// Budgets with `config`'s defaults.
    pub fn new(config: BudgetConfig) -> Self {
        Self {
            config,
            threads: Mutex::default(),
            notices: Mutex::default(),
            raised: watch::Sender::new(0),
        }
    }

    /// Reserves `amount` tokens for a call of `thread`, or refuses it.
    fn reserve(&self, thread: &str, amount: u64) -> Result<(), CapabilityError> {
        let Some(default) = self.config.thread_tokens else {
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

    /// The budget of `thread`, if it has made a call (or been raised).
    pub fn status(&self, thread: &str) -> Option<BudgetStatus> {
        lock(&self.threads).get(thread).map(ThreadBudget::status)
    }

    /// Whether a call of `thread` was refused since the last raise.
    pub fn is_exhausted(&self, thread: &str) -> bool {
        lock(&self.threads).get(thread).is_some_and(|b| b.exhausted)
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
        let default = self.config.thread_tokens.unwrap_or(0);
        let status = {
            let mut threads = lock(&self.threads);
            let b = threads
                .entry(thread.to_owned())
                .or_insert_with(|| ThreadBudget::new(default));
            change(b);
            b.exhausted = false;
            let percent = b.status().percent_used;
            for (i, threshold) in WARNING_THRESHOLDS.iter().enumerate() {
                if percent < f64::from(*threshold) {
                    b.warned[i] = false;
                }
            }
            b.status()
        };
        self.raised.send_modify(|n| *n += 1);
        status
    }

    /// Resolves when any budget is raised.
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

impl LlmBackend for Metered {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async move {
            let ctx = call.ctx;
            // Bytes are an upper bound on tokens for the tokenizers in use.
            let prompt_bound: u64 = request
                .messages
                .iter()
                .map(|m| m.content.len() as u64 + 8)
                .sum();
            let amount = u64::from(request.max_tokens) + prompt_bound;
            let model = call.model.unwrap_or("default").to_owned();
            let event =
                |prompt: u64, completion: u64, latency_ms: u64, model: String, outcome: &str| {
                    UsageEvent {
                        thread: ctx.thread.clone(),
                        run: ctx.run.clone(),
                        frame: ctx.frame,
                        node: ctx.node.clone(),
                        cost: self.prices.cost(&model, prompt, completion),
                        model,
                        prompt_tokens: prompt,
                        completion_tokens: completion,
                        latency_ms,
                        outcome: outcome.to_owned(),
                    }
                };
            if let Err(refused) = self.budgets.reserve(&ctx.thread, amount) {
                // Metered like every call; it cost nothing.
                self.ledger.record(UsageEvent {
                    cost: Some(0.0),
                    ..event(0, 0, 0, model, "budget_exhausted")
                });
                let status = self.budgets.status(&ctx.thread);
                self.bus.publish(
                    &ctx.thread,
                    &ctx.run,
                    Some(ctx.frame),
                    Some(&ctx.node),
                    EventBody::BudgetExhausted(serde_json::json!({
                        "budget": status,
                        "message": refused.to_string(),
                    })),
                );
                return Err(refused);
            }
            let started = Instant::now();
            let result = self.inner.complete(call, request).await;
            let latency_ms = started.elapsed().as_millis() as u64;
            let (prompt, completion, model, outcome) = match &result {
                Ok(c) => (
                    u64::from(c.prompt_tokens),
                    u64::from(c.completion_tokens),
                    c.model.clone(),
                    "ok".to_owned(),
                ),
                Err(e) => (0, 0, model, error_code(e).to_owned()),
            };
            let (crossed, status) =
                self.budgets
                    .reconcile(&ctx.thread, amount, prompt + completion);
            self.ledger
                .record(event(prompt, completion, latency_ms, model, &outcome));
            if let Some(status) = status {
                for percent in crossed {
                    let body = serde_json::json!({
                        "percent": percent,
                        "used": status.used,
                        "limit": status.limit,
                    });
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
                            id: format!("{}/{}/budget-{percent}", ctx.run, ctx.frame),
                            from: crate::SYSTEM_SENDER.into(),
                            kind: BUDGET_WARNING_KIND.into(),
                            body: body.to_string(),
                        },
                    );
                }
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
