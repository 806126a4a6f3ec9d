//! [`Metered`]: the `llm` backend that enforces budgets and meters every
//! call, and [`Tally`]: what one invocation's calls report back to the run
//! loop.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::{CallContext, CapabilityError, Completion, CompletionRequest, Message};

use super::budgets::Budgets;
use super::config::Unpriced;
use super::ledger::{Ledger, Price, PriceTable, UsageEvent};
use super::money::{MoneyRefusal, Nanos};
use crate::events::{Bus, EventBody};
use weft_runtime::contract::{BUDGET_WARNING_KIND, PROJECT_BUDGET_WARNING_KIND, SYSTEM_SENDER};

/// What the metered `llm` calls of one invocation produced.
#[derive(Debug, Default)]
pub struct Counted {
    /// Their usage events, for the frame's commit.
    pub usage: Vec<UsageEvent>,
    /// Budget warnings for the calling node, delivered in its next tick.
    pub notices: Vec<Message>,
    /// A budget refused one of the calls.
    pub refused: bool,
}

/// Collects what one invocation's metered calls report (see [`Counted`]);
/// the run loop takes it when the invocation ends.
#[derive(Debug, Default)]
pub struct Tally(Mutex<Counted>);

impl Tally {
    fn lock(&self) -> MutexGuard<'_, Counted> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes what was counted so far.
    pub fn take(&self) -> Counted {
        std::mem::take(&mut *self.lock())
    }
}

/// Why a metered call was refused before it was made.
enum Refused {
    /// A budget has no room: the run waits for a raise or a new window
    /// (with the event body that reports it).
    Exhausted(CapabilityError, serde_json::Value),
    /// The model has no price and the project has a money limit.
    Unpriced(CapabilityError),
    /// The shared store that keeps the project's money budget cannot be
    /// reached.
    Unavailable(CapabilityError),
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
    /// The hosts sharing this host's store, when it is shared: project
    /// money budgets are held there too.
    pub shared: Option<SharedMoney>,
}

/// A store shared by several hosts, where every call under a project
/// money budget holds its worst-case cost before it is made and settles
/// its cost after, so that the hosts never grant more than the budget
/// between them (each host's own reservations alone would let each spend
/// up to the limit).
#[derive(Clone)]
pub struct SharedMoney {
    /// The shared store.
    pub store: Arc<dyn crate::store::Store>,
    /// This host's id.
    pub host: String,
    /// The holds of a host not seen for this long (milliseconds) no longer
    /// count: its calls died with it.
    pub live_ms: u64,
}

/// A call's hold in a shared store, to settle when it ends.
struct HostsHold {
    id: String,
    window_start: u64,
    limit: Nanos,
}

/// A hold's id: random, so that no two calls on any host share one.
fn hold_id(host: &str) -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the time and a counter still make it unique here.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&n.to_le_bytes());
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}/{hex}")
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
    ) -> Result<Nanos, Refused> {
        if let Err(refused) = self.budgets.reserve(&ctx.thread, tokens) {
            let body = serde_json::json!({
                "scope": "thread",
                "budget": self.budgets.status(&ctx.thread),
                "message": refused.to_string(),
            });
            return Err(Refused::Exhausted(refused, body));
        }
        self.budgets
            .reserve_money(project, model, worst)
            .map_err(|refused| {
                self.budgets.release(&ctx.thread, tokens);
                match refused {
                    MoneyRefusal::Exhausted(refused) => {
                        let body = serde_json::json!({
                            "scope": "project",
                            "project": project,
                            "budget": self.budgets.project_status(project),
                            "message": refused.to_string(),
                        });
                        Refused::Exhausted(refused, body)
                    }
                    MoneyRefusal::Unpriced(refused) => Refused::Unpriced(refused),
                }
            })
    }

    /// With a shared store, holds the `money` reserved here for a call of
    /// `project` on every host's account; `None` when there is nothing to
    /// hold (no shared store, no money limit). A refusal gives back the
    /// `tokens` and `money` reserved here.
    async fn hold_on_hosts(
        &self,
        ctx: &CallContext,
        project: &str,
        tokens: u64,
        money: Nanos,
    ) -> Result<Option<HostsHold>, Refused> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let Some((limit, window_start, seed)) = self.budgets.money_window(project) else {
            return Ok(None);
        };
        let now = self.budgets.now_ms();
        let hold = crate::store::MoneyHold {
            id: hold_id(&shared.host),
            project: project.to_owned(),
            window_start,
            host: shared.host.clone(),
            amount: money,
            limit,
            seed,
            live_after_ms: now.saturating_sub(shared.live_ms),
            at_ms: now,
        };
        let give_back = || {
            self.budgets.release(&ctx.thread, tokens);
            self.budgets.reconcile_money(project, money, None);
        };
        match shared.store.hold_money(&hold).await {
            Ok(held) if held.granted => Ok(Some(HostsHold {
                id: hold.id,
                window_start,
                limit,
            })),
            Ok(held) => {
                self.budgets.release(&ctx.thread, tokens);
                let refused = self
                    .budgets
                    .refused_by_hosts(project, money, held.spent, held.held, money);
                let body = serde_json::json!({
                    "scope": "project",
                    "project": project,
                    "budget": self.budgets.project_status(project),
                    "message": refused.to_string(),
                });
                Err(Refused::Exhausted(refused, body))
            }
            Err(error) => {
                // Without the store no host can say what the others
                // spent: the call is not made.
                give_back();
                Err(Refused::Unavailable(CapabilityError::Unavailable(format!(
                    "project `{project}` has a money budget shared by several hosts, \
                     and the store that keeps it cannot be reached: {error}"
                ))))
            }
        }
    }

    /// Replaces a call's hold with its cost in the shared store; returns
    /// the warning thresholds it crossed first on any host (`None`: the
    /// store could not be reached; the hold then counts until this host
    /// stops beating).
    async fn settle_on_hosts(
        &self,
        project: &str,
        hold: HostsHold,
        cost: Option<f64>,
    ) -> Option<Vec<u8>> {
        let shared = self.shared.as_ref()?;
        let settle = crate::store::MoneySettle {
            id: hold.id,
            project: project.to_owned(),
            window_start: hold.window_start,
            cost: super::money::nanos(cost.unwrap_or(0.0)),
            limit: hold.limit,
            thresholds: super::config::WARNING_THRESHOLDS.to_vec(),
        };
        let mut wait = std::time::Duration::from_millis(50);
        for attempt in 1..=4 {
            match shared.store.settle_money(&settle).await {
                Ok(settled) => {
                    self.budgets
                        .hosts_spent(project, hold.window_start, settled.spent);
                    return Some(settled.crossed);
                }
                Err(error) if attempt == 4 => {
                    tracing::warn!(project, %error, hold = %settle.id, "a call's money hold could not be settled in the shared store: it counts until this host stops");
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                }
            }
        }
        None
    }

    /// The price an unpriced call is held to in a project with a money
    /// limit (`budget.unpriced: highest`); `None`: it is refused.
    fn unpriced_price(&self, project: &str, model: &str) -> Option<Price> {
        if self.budgets.unpriced_policy() != Unpriced::Highest {
            return None;
        }
        let highest = self.prices.highest()?;
        self.budgets.note_unpriced(
            project,
            model,
            "its calls are charged at the highest price in projects with a money budget \
             (budget.unpriced: highest)",
        );
        Some(highest)
    }

    /// Publishes a warning and leaves it for the calling node.
    fn warn(
        &self,
        ctx: &CallContext,
        tally: &Tally,
        kind: &str,
        id: String,
        body: serde_json::Value,
    ) {
        self.bus.publish(
            &ctx.thread,
            &ctx.run,
            Some(ctx.frame),
            Some(&ctx.node),
            EventBody::BudgetWarning(body.clone()),
        );
        tally.lock().notices.push(Message {
            id,
            from: SYSTEM_SENDER.into(),
            kind: kind.into(),
            body: body.to_string(),
        });
    }
}

impl Metered {
    /// One metered call: reserve, call the backend, reconcile. Its usage
    /// event goes to the ledger and to `tally`, with any warning it raises
    /// for the calling node and whether a budget refused it.
    pub(crate) async fn complete_counted(
        &self,
        call: LlmCall<'_>,
        request: CompletionRequest,
        tally: &Tally,
    ) -> Result<Completion, CapabilityError> {
        {
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
            let mut worst = self.prices.cost(&model, prompt_bound, max_tokens);
            // An unpriced model under a money limit: charged at the highest
            // price, or refused (`budget.unpriced`).
            let fallback = if worst.is_none() && self.budgets.money_limited(&project) {
                self.unpriced_price(&project, &model)
            } else {
                None
            };
            if let Some(price) = &fallback {
                worst = Some(price.cost(prompt_bound, max_tokens));
            }
            let cost_of = |model: &str, prompt: u64, completion: u64| {
                self.prices
                    .cost(model, prompt, completion)
                    .or_else(|| fallback.as_ref().map(|p| p.cost(prompt, completion)))
            };
            let event = |prompt: u64, completion: u64, latency_ms: u64, model: String| UsageEvent {
                project: project.clone(),
                thread: ctx.thread.clone(),
                run: ctx.run.clone(),
                frame: ctx.frame,
                node: ctx.node.clone(),
                cost: cost_of(&model, prompt, completion),
                model,
                provider: String::new(),
                prompt_tokens: prompt,
                completion_tokens: completion,
                estimated: false,
                latency_ms,
                outcome: "ok".to_owned(),
                at_ms: 0,
            };
            let reserved = match self.reserve(ctx, &project, amount, &model, worst) {
                Ok(money) if money > 0 => self
                    .hold_on_hosts(ctx, &project, amount, money)
                    .await
                    .map(|hold| (money, hold)),
                Ok(money) => Ok((money, None)),
                Err(refused) => Err(refused),
            };
            let (money, hold) = match reserved {
                Ok(reserved) => reserved,
                Err(Refused::Unavailable(refused)) => {
                    let refusal = UsageEvent {
                        cost: Some(0.0),
                        outcome: refused.code().to_owned(),
                        at_ms: self.budgets.now_ms(),
                        ..event(0, 0, 0, model)
                    };
                    tally.lock().usage.push(refusal.clone());
                    self.ledger.record(refusal);
                    return Err(refused);
                }
                Err(Refused::Unpriced(refused)) => {
                    // Metered like every call; it cost nothing. The run
                    // does not wait: no raise would let it through.
                    let refusal = UsageEvent {
                        cost: Some(0.0),
                        outcome: "unpriced_refused".to_owned(),
                        at_ms: self.budgets.now_ms(),
                        ..event(0, 0, 0, model)
                    };
                    tally.lock().usage.push(refusal.clone());
                    self.ledger.record(refusal);
                    return Err(refused);
                }
                Err(Refused::Exhausted(refused, body)) => {
                    // Metered like every call; it cost nothing.
                    let refusal = UsageEvent {
                        cost: Some(0.0),
                        outcome: "budget_exhausted".to_owned(),
                        at_ms: self.budgets.now_ms(),
                        ..event(0, 0, 0, model)
                    };
                    {
                        let mut counted = tally.lock();
                        counted.usage.push(refusal.clone());
                        counted.refused = true;
                    }
                    self.ledger.record(refusal);
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
                    outcome: e.code().to_owned(),
                    ..event(0, 0, latency_ms, model)
                },
            };
            let (crossed, status) = self.budgets.reconcile(&ctx.thread, amount, usage.tokens());
            let (mut money_crossed, mut money_status, at_ms) =
                self.budgets.reconcile_money(&project, money, usage.cost);
            if let Some(hold) = hold {
                // Across hosts, the shared store says which thresholds
                // this call crossed first, and what every host spent.
                money_crossed = self
                    .settle_on_hosts(&project, hold, usage.cost)
                    .await
                    .unwrap_or_default();
                money_status = self.budgets.project_status(&project);
            }
            let usage = UsageEvent { at_ms, ..usage };
            tally.lock().usage.push(usage.clone());
            self.ledger.record(usage);
            if let Some(status) = status {
                for percent in crossed {
                    let body = serde_json::json!({
                        "scope": "thread",
                        "percent": percent,
                        "used": status.used,
                        "limit": status.limit,
                    });
                    let id = format!("{}/{}/budget-{percent}", ctx.run, ctx.frame);
                    self.warn(ctx, tally, BUDGET_WARNING_KIND, id, body);
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
                self.warn(ctx, tally, PROJECT_BUDGET_WARNING_KIND, id, body);
            }
            result
        }
    }
}

impl LlmBackend for Metered {
    /// A call outside any invocation: warnings are published, but nobody
    /// collects its tally.
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async move {
            self.complete_counted(call, request, &Tally::default())
                .await
        })
    }
}

/// The metered backend in use now, replaced whole by a settings reload:
/// calls in flight finish on the backend they started with.
pub struct LlmSlot {
    current: RwLock<Arc<Metered>>,
}

impl LlmSlot {
    /// A slot holding `metered`.
    pub fn new(metered: Metered) -> Self {
        Self {
            current: RwLock::new(Arc::new(metered)),
        }
    }

    /// The backend in use now.
    pub fn get(&self) -> Arc<Metered> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Replaces the backend for the calls that start from now on.
    pub fn replace(&self, metered: Metered) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(metered);
    }

    /// The `llm` service of one invocation: each call goes to the backend
    /// in use when it starts and reports to the service's [`Tally`]
    /// ([`Counting::take`] once the invocation is over).
    pub fn for_invocation(self: &Arc<Self>) -> Arc<Counting> {
        Arc::new(Counting {
            slot: Arc::clone(self),
            tally: Tally::default(),
        })
    }
}

impl std::fmt::Debug for LlmSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmSlot").finish_non_exhaustive()
    }
}

/// One invocation's view of the [`LlmSlot`] (one allocation per
/// invocation: the service and its tally together).
pub struct Counting {
    slot: Arc<LlmSlot>,
    tally: Tally,
}

impl Counting {
    /// Takes what the invocation's calls counted.
    pub fn take(&self) -> Counted {
        self.tally.take()
    }
}

impl LlmBackend for Counting {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        let metered = self.slot.get();
        Box::pin(async move { metered.complete_counted(call, request, &self.tally).await })
    }
}
