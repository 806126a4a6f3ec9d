//! Usage metering: one [`UsageEvent`] per `llm` call, priced from a
//! [`PriceTable`], and one [`InvocationEvent`] per node invocation (fuel and
//! time), kept by a [`Ledger`] and summed per node, model, thread and
//! project.
//!
//! The store keeps every event durably; [`MemoryLedger`] keeps only
//! bounded aggregates (totals, breakdowns with capped keys, spend per
//! project and UTC day, the last [`RECENT_EVENTS`] events), so its memory
//! does not grow with traffic. A project's spend in a budget window is
//! derived from the per-day spend ([`Ledger::project_cost`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One `llm` call, metered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEvent {
    /// The thread's project.
    #[serde(default = "default_project")]
    pub project: String,
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// Frame number.
    pub frame: u32,
    /// Calling node.
    pub node: String,
    /// The model that answered (or was asked, for failures).
    pub model: String,
    /// The configured name of the provider that answered; empty when the
    /// call failed or was refused (an error does not say which provider of
    /// a failover chain failed last).
    #[serde(default)]
    pub provider: String,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// The provider did not report token counts: they are estimates.
    #[serde(default)]
    pub estimated: bool,
    /// Wall time of the call in milliseconds.
    pub latency_ms: u64,
    /// Cost in the price table's currency; `None` when the model has no price.
    pub cost: Option<f64>,
    /// `ok`, or the error code of a failed call.
    pub outcome: String,
    /// When the call ended, in Unix milliseconds (UTC); budget windows
    /// count the call in the window this falls in.
    #[serde(default)]
    pub at_ms: u64,
}

fn default_project() -> String {
    crate::metering::DEFAULT_PROJECT.to_owned()
}

impl UsageEvent {
    /// Prompt plus completion tokens.
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// One node invocation, metered: the CPU fuel and time it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationEvent {
    /// The thread's project.
    pub project: String,
    /// Thread id.
    pub thread: String,
    /// Run id.
    pub run: String,
    /// Frame number.
    pub frame: u32,
    /// The invoked node.
    pub node: String,
    /// The node's plugin name.
    pub plugin: String,
    /// The plugin's version, as it describes itself.
    pub plugin_version: String,
    /// The plugin component's content hash (hex).
    pub plugin_hash: String,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall time of the invocation in microseconds, instantiation included.
    pub duration_us: u64,
    /// `ok`, or the code of the error the invocation ended with
    /// (`node_error`, `out_of_fuel` …).
    pub outcome: String,
    /// When the frame's outputs were applied, in Unix milliseconds (UTC).
    pub at_ms: u64,
}

/// Prices per one million tokens, matched on the longest model-name prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    /// `(model prefix, price per 1M prompt tokens, price per 1M completion tokens)`.
    pub entries: Vec<Price>,
}

/// The price of models whose name starts with `prefix`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Model-name prefix, e.g. `gpt-4o` (also matches `gpt-4o-mini` unless a
    /// longer prefix does).
    pub prefix: String,
    /// Per million prompt tokens.
    #[schemars(range(min = 0))]
    pub prompt_per_million: f64,
    /// Per million completion tokens.
    #[schemars(range(min = 0))]
    pub completion_per_million: f64,
}

impl Price {
    /// The cost of `prompt` and `completion` tokens at this price.
    pub fn cost(&self, prompt: u64, completion: u64) -> f64 {
        (prompt as f64 * self.prompt_per_million + completion as f64 * self.completion_per_million)
            / 1e6
    }
}

impl PriceTable {
    /// The highest price in the table: the highest prompt rate and the
    /// highest completion rate (`None` for an empty table). Unpriced calls
    /// are charged at it under `budget.unpriced: highest`.
    pub fn highest(&self) -> Option<Price> {
        let first = self.entries.first()?;
        Some(Price {
            prefix: String::new(),
            prompt_per_million: self
                .entries
                .iter()
                .map(|p| p.prompt_per_million)
                .fold(first.prompt_per_million, f64::max),
            completion_per_million: self
                .entries
                .iter()
                .map(|p| p.completion_per_million)
                .fold(first.completion_per_million, f64::max),
        })
    }

    /// The cost of a call, or `None` for a model without a price (which is
    /// not the same as free: operators see it flagged).
    pub fn cost(&self, model: &str, prompt: u64, completion: u64) -> Option<f64> {
        let price = self
            .entries
            .iter()
            .filter(|p| model.starts_with(&p.prefix))
            .max_by_key(|p| p.prefix.len())?;
        Some(price.cost(prompt, completion))
    }
}

/// Sums over a set of usage and invocation events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotals {
    /// `llm` calls.
    pub calls: u64,
    /// Failed (or refused) `llm` calls.
    pub failed: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Calls whose token counts were estimated (the provider reported none).
    pub estimated_calls: u64,
    /// Summed cost of the priced calls.
    pub cost: f64,
    /// Calls whose model had no price (their cost is not in `cost`).
    pub unpriced_calls: u64,
    /// Summed latency of the `llm` calls in milliseconds.
    pub latency_ms: u64,
    /// Node invocations.
    pub invocations: u64,
    /// Node invocations that ended with an error.
    pub failed_invocations: u64,
    /// Fuel the invocations consumed.
    pub fuel: u64,
    /// Summed wall time of the invocations in microseconds.
    pub invocation_us: u64,
}

impl UsageTotals {
    fn add(&mut self, e: &UsageEvent) {
        self.calls += 1;
        if e.outcome != "ok" {
            self.failed += 1;
        }
        self.prompt_tokens += e.prompt_tokens;
        self.completion_tokens += e.completion_tokens;
        if e.estimated {
            self.estimated_calls += 1;
        }
        match e.cost {
            Some(c) => self.cost += c,
            None => self.unpriced_calls += 1,
        }
        self.latency_ms += e.latency_ms;
    }

    /// Adds another set of totals to these.
    pub fn merge(&mut self, o: &UsageTotals) {
        self.calls += o.calls;
        self.failed += o.failed;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.estimated_calls += o.estimated_calls;
        self.cost += o.cost;
        self.unpriced_calls += o.unpriced_calls;
        self.latency_ms += o.latency_ms;
        self.invocations += o.invocations;
        self.failed_invocations += o.failed_invocations;
        self.fuel += o.fuel;
        self.invocation_us += o.invocation_us;
    }

    fn add_invocation(&mut self, e: &InvocationEvent) {
        self.invocations += 1;
        if e.outcome != "ok" {
            self.failed_invocations += 1;
        }
        self.fuel += e.fuel_used;
        self.invocation_us += e.duration_us;
    }
}

/// Where usage events go.
pub trait Ledger: Send + Sync {
    /// Records one `llm` call.
    fn record(&self, event: UsageEvent);
    /// Records one node invocation.
    fn record_invocation(&self, event: InvocationEvent);
    /// Totals over every event.
    fn totals(&self) -> UsageTotals;
    /// Totals per node, per model, per thread and per project.
    fn breakdown(&self) -> UsageBreakdown;
    /// The summed cost of `project`'s priced calls that ended in
    /// `[from_ms, to_ms)` (Unix milliseconds): what a budget window has
    /// spent, derived from the events.
    fn project_cost(&self, project: &str, from_ms: u64, to_ms: u64) -> f64;
}

/// Totals grouped four ways. `by_model` has `llm` calls only (invocations
/// have no model); the others have both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageBreakdown {
    /// By node name.
    pub by_node: BTreeMap<String, UsageTotals>,
    /// By model.
    pub by_model: BTreeMap<String, UsageTotals>,
    /// By thread.
    pub by_thread: BTreeMap<String, UsageTotals>,
    /// By project.
    pub by_project: BTreeMap<String, UsageTotals>,
}

/// The most recent events a [`MemoryLedger`] keeps for inspection
/// ([`MemoryLedger::events`], [`MemoryLedger::invocations`]); older ones
/// live in the store and in the aggregates only.
pub const RECENT_EVENTS: usize = 1024;

/// Distinct keys a breakdown map holds; usage of further keys (a guest
/// naming a million models) is summed under [`OTHER_KEY`].
pub const MAX_BREAKDOWN_KEYS: usize = 1024;

/// The breakdown key that sums the usage of keys beyond
/// [`MAX_BREAKDOWN_KEYS`].
pub const OTHER_KEY: &str = "(other)";

/// UTC days of spend per project the ledger keeps (more than the longest
/// budget window, a calendar month): money budgets seed a window from them.
pub const SPEND_DAYS: u64 = 64;

const DAY_MS: u64 = 86_400_000;

/// One project's priced spend: all time, and per UTC day for the last
/// [`SPEND_DAYS`] days.
#[derive(Debug, Default, Clone)]
struct Spend {
    total: f64,
    days: BTreeMap<u64, f64>,
}

impl Spend {
    fn add(&mut self, at_ms: u64, cost: f64) {
        self.total += cost;
        let day = at_ms - at_ms % DAY_MS;
        *self.days.entry(day).or_default() += cost;
        let newest = self.days.last_key_value().map_or(day, |(d, _)| *d);
        let horizon = newest.saturating_sub(SPEND_DAYS * DAY_MS);
        while self
            .days
            .first_key_value()
            .is_some_and(|(d, _)| *d < horizon)
        {
            self.days.pop_first();
        }
    }

    /// The spend of `[from_ms, to_ms)`, counted by whole UTC days (budget
    /// windows start and end at midnight UTC).
    fn between(&self, from_ms: u64, to_ms: u64) -> f64 {
        if from_ms == 0 {
            let after: f64 = self.days.range(to_ms..).map(|(_, c)| c).sum();
            return if to_ms == u64::MAX {
                self.total
            } else {
                self.total - after
            };
        }
        self.days.range(from_ms..to_ms).map(|(_, c)| c).sum()
    }
}

#[derive(Debug, Default)]
struct Books {
    recent: VecDeque<UsageEvent>,
    recent_invocations: VecDeque<InvocationEvent>,
    totals: UsageTotals,
    breakdown: UsageBreakdown,
    /// Totals and breakdowns count events from this time on (a reset).
    since_ms: u64,
    /// Priced spend per project, for money budgets (not affected by a
    /// reset).
    spend: HashMap<String, Spend>,
}

/// The entry of `key` in `map`, or of [`OTHER_KEY`] once the map is full.
fn entry<'a>(map: &'a mut BTreeMap<String, UsageTotals>, key: &str) -> &'a mut UsageTotals {
    let key = if map.contains_key(key) || map.len() < MAX_BREAKDOWN_KEYS {
        key
    } else {
        OTHER_KEY
    };
    map.entry(key.to_owned()).or_default()
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == RECENT_EVENTS {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// A ledger in memory: running aggregates, the last [`RECENT_EVENTS`]
/// events, and each project's spend per day. Its size does not grow with
/// the number of calls: every event is kept by the store, not here.
/// Per-thread totals are kept for the threads in use and dropped with
/// [`forget_thread`](Self::forget_thread) when a thread goes idle.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    inner: Mutex<Books>,
}

/// Usage aggregated by the store: what the ledger is rebuilt from at
/// start-up instead of every event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallTotals {
    /// Project.
    pub project: String,
    /// Node.
    pub node: String,
    /// Model.
    pub model: String,
    /// The sums of these calls.
    pub totals: UsageTotals,
}

/// A project's priced spend on one UTC day (`day_ms: None`: all time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaySpend {
    /// Project.
    pub project: String,
    /// The day's start, Unix milliseconds; `None` for the all-time sum.
    pub day_ms: Option<u64>,
    /// Summed cost.
    pub cost: f64,
}

impl MemoryLedger {
    /// The most recent `llm` calls (at most [`RECENT_EVENTS`]), oldest
    /// first.
    pub fn events(&self) -> Vec<UsageEvent> {
        self.lock().recent.iter().cloned().collect()
    }

    /// The most recent node invocations (at most [`RECENT_EVENTS`]),
    /// oldest first.
    pub fn invocations(&self) -> Vec<InvocationEvent> {
        self.lock().recent_invocations.iter().cloned().collect()
    }

    /// Rebuilds the books from the store's aggregates (at start-up): call
    /// totals per project, node and model, invocation totals per project
    /// and node, and spend per project and day. No event is loaded.
    pub fn restore(&self, history: crate::store::UsageHistory) {
        let mut books = self.lock();
        books.since_ms = history.since_ms;
        let Books {
            totals,
            breakdown,
            spend,
            ..
        } = &mut *books;
        for c in history.calls {
            totals.merge(&c.totals);
            entry(&mut breakdown.by_node, &c.node).merge(&c.totals);
            entry(&mut breakdown.by_model, &c.model).merge(&c.totals);
            entry(&mut breakdown.by_project, &c.project).merge(&c.totals);
        }
        for t in history.invocations {
            let add = |u: &mut UsageTotals| {
                u.invocations += t.invocations;
                u.failed_invocations += t.failed;
                u.fuel += t.fuel;
                u.invocation_us += t.duration_us;
            };
            add(totals);
            add(entry(&mut breakdown.by_node, &t.node));
            add(entry(&mut breakdown.by_project, &t.project));
        }
        for d in history.spend {
            let s = spend.entry(d.project).or_default();
            match d.day_ms {
                None => s.total += d.cost,
                Some(day) => *s.days.entry(day).or_default() += d.cost,
            }
        }
    }

    /// Puts a thread's totals (from the store) back, when its state is
    /// loaded again.
    pub fn restore_thread(&self, thread: &str, usage: UsageTotals) {
        self.lock()
            .breakdown
            .by_thread
            .insert(thread.to_owned(), usage);
    }

    /// Drops a thread's totals from memory (an idle thread; the store
    /// keeps its usage).
    pub fn forget_thread(&self, thread: &str) {
        self.lock().breakdown.by_thread.remove(thread);
    }

    /// The totals of `thread` while it is in memory.
    pub fn thread_totals(&self, thread: &str) -> Option<UsageTotals> {
        self.lock().breakdown.by_thread.get(thread).cloned()
    }

    /// Starts the reported totals and breakdowns over at `at_ms`. Money
    /// budgets (spend per window) and token budgets are not affected.
    pub fn reset(&self, at_ms: u64) {
        let mut books = self.lock();
        books.since_ms = at_ms;
        books.totals = UsageTotals::default();
        books.breakdown = UsageBreakdown::default();
        books.recent_invocations.clear();
    }

    /// When the reported totals start (0: all time).
    pub fn since_ms(&self) -> u64 {
        self.lock().since_ms
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Ledger for MemoryLedger {
    fn record(&self, event: UsageEvent) {
        let mut books = self.lock();
        let Books {
            recent,
            totals,
            breakdown,
            since_ms,
            spend,
            ..
        } = &mut *books;
        if let Some(cost) = event.cost {
            spend
                .entry(event.project.clone())
                .or_default()
                .add(event.at_ms, cost);
        }
        if event.at_ms >= *since_ms {
            totals.add(&event);
            for (map, key) in [
                (&mut breakdown.by_node, &event.node),
                (&mut breakdown.by_model, &event.model),
                (&mut breakdown.by_project, &event.project),
            ] {
                entry(map, key).add(&event);
            }
            // Threads are not capped: an idle thread's entry is dropped.
            breakdown
                .by_thread
                .entry(event.thread.clone())
                .or_default()
                .add(&event);
        }
        push_bounded(recent, event);
    }

    fn record_invocation(&self, event: InvocationEvent) {
        let mut books = self.lock();
        let Books {
            recent_invocations,
            totals,
            breakdown,
            since_ms,
            ..
        } = &mut *books;
        if event.at_ms < *since_ms {
            return;
        }
        totals.add_invocation(&event);
        for (map, key) in [
            (&mut breakdown.by_node, &event.node),
            (&mut breakdown.by_project, &event.project),
        ] {
            entry(map, key).add_invocation(&event);
        }
        breakdown
            .by_thread
            .entry(event.thread.clone())
            .or_default()
            .add_invocation(&event);
        push_bounded(recent_invocations, event);
    }

    fn totals(&self) -> UsageTotals {
        self.lock().totals.clone()
    }

    fn breakdown(&self) -> UsageBreakdown {
        self.lock().breakdown.clone()
    }

    fn project_cost(&self, project: &str, from_ms: u64, to_ms: u64) -> f64 {
        self.lock()
            .spend
            .get(project)
            .map_or(0.0, |s| s.between(from_ms, to_ms))
    }
}

#[cfg(test)]
mod tests;
