//! Usage metering: one [`UsageEvent`] per `llm` call, priced from a
//! [`PriceTable`], and one [`InvocationEvent`] per node invocation (fuel and
//! time), kept by a [`Ledger`] and summed per node, model, thread and
//! project.
//!
//! The ledger is behind a trait so that the store (issue 5) can keep events
//! durably; [`MemoryLedger`] keeps them in memory until then. Events are
//! never deleted: a project's spend in a budget window is derived from them
//! ([`Ledger::project_cost`]), not kept by resetting them.

use std::collections::BTreeMap;
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Model-name prefix, e.g. `gpt-4o` (also matches `gpt-4o-mini` unless a
    /// longer prefix does).
    pub prefix: String,
    /// Per million prompt tokens.
    pub prompt_per_million: f64,
    /// Per million completion tokens.
    pub completion_per_million: f64,
}

impl PriceTable {
    /// The cost of a call, or `None` for a model without a price (which is
    /// not the same as free: operators see it flagged).
    pub fn cost(&self, model: &str, prompt: u64, completion: u64) -> Option<f64> {
        let price = self
            .entries
            .iter()
            .filter(|p| model.starts_with(&p.prefix))
            .max_by_key(|p| p.prefix.len())?;
        Some(
            (prompt as f64 * price.prompt_per_million
                + completion as f64 * price.completion_per_million)
                / 1e6,
        )
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

#[derive(Debug, Default)]
struct Books {
    events: Vec<UsageEvent>,
    invocations: Vec<InvocationEvent>,
    totals: UsageTotals,
    breakdown: UsageBreakdown,
    /// Totals and breakdowns count events from this time on (a reset).
    since_ms: u64,
    /// Tokens per thread over all time, for token budgets (a reset of the
    /// reported totals does not give a thread its tokens back).
    thread_tokens: std::collections::HashMap<String, u64>,
}

/// A ledger in memory (events and running aggregates).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    inner: Mutex<Books>,
}

impl MemoryLedger {
    /// Every `llm` call so far, oldest first.
    pub fn events(&self) -> Vec<UsageEvent> {
        self.lock().events.clone()
    }

    /// Every node invocation so far, oldest first.
    pub fn invocations(&self) -> Vec<InvocationEvent> {
        self.lock().invocations.clone()
    }

    /// Rebuilds the books from the store's history (at start-up): every
    /// `llm` call, and invocation totals per project, thread and node.
    /// [`invocations`](Self::invocations) lists only events recorded since.
    pub fn restore(&self, history: crate::store::UsageHistory) {
        self.lock().since_ms = history.since_ms;
        for event in history.events {
            self.record(event);
        }
        let mut books = self.lock();
        let Books {
            totals, breakdown, ..
        } = &mut *books;
        for t in history.invocations {
            let add = |u: &mut UsageTotals| {
                u.invocations += t.invocations;
                u.failed_invocations += t.failed;
                u.fuel += t.fuel;
                u.invocation_us += t.duration_us;
            };
            add(totals);
            add(breakdown.by_node.entry(t.node.clone()).or_default());
            add(breakdown.by_project.entry(t.project.clone()).or_default());
            if let Some(thread) = &t.thread {
                add(breakdown.by_thread.entry(thread.clone()).or_default());
            }
        }
    }

    /// Tokens the `llm` calls of `thread` used, over all time.
    pub fn thread_tokens(&self, thread: &str) -> u64 {
        self.lock().thread_tokens.get(thread).copied().unwrap_or(0)
    }

    /// Starts the reported totals and breakdowns over at `at_ms`. Events
    /// are kept: money budgets (spend per window) and token budgets are not
    /// affected.
    pub fn reset(&self, at_ms: u64) {
        let mut books = self.lock();
        books.since_ms = at_ms;
        books.totals = UsageTotals::default();
        books.breakdown = UsageBreakdown::default();
        books.invocations.clear();
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
            events,
            totals,
            breakdown,
            since_ms,
            thread_tokens,
            ..
        } = &mut *books;
        *thread_tokens.entry(event.thread.clone()).or_default() += event.tokens();
        if event.at_ms >= *since_ms {
            totals.add(&event);
            for (map, key) in [
                (&mut breakdown.by_node, &event.node),
                (&mut breakdown.by_model, &event.model),
                (&mut breakdown.by_thread, &event.thread),
                (&mut breakdown.by_project, &event.project),
            ] {
                map.entry(key.clone()).or_default().add(&event);
            }
        }
        events.push(event);
    }

    fn record_invocation(&self, event: InvocationEvent) {
        let mut books = self.lock();
        let Books {
            invocations,
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
            (&mut breakdown.by_thread, &event.thread),
            (&mut breakdown.by_project, &event.project),
        ] {
            map.entry(key.clone()).or_default().add_invocation(&event);
        }
        invocations.push(event);
    }

    fn totals(&self) -> UsageTotals {
        self.lock().totals.clone()
    }

    fn breakdown(&self) -> UsageBreakdown {
        self.lock().breakdown.clone()
    }

    fn project_cost(&self, project: &str, from_ms: u64, to_ms: u64) -> f64 {
        self.lock()
            .events
            .iter()
            .filter(|e| e.project == project && (from_ms..to_ms).contains(&e.at_ms))
            .filter_map(|e| e.cost)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(prefix: &str, p: f64, c: f64) -> Price {
        Price {
            prefix: prefix.into(),
            prompt_per_million: p,
            completion_per_million: c,
        }
    }

    #[test]
    fn the_longest_prefix_sets_the_price_and_unknown_models_have_none() {
        let table = PriceTable {
            entries: vec![price("gpt-4o", 2.5, 10.0), price("gpt-4o-mini", 0.15, 0.6)],
        };
        assert_eq!(table.cost("gpt-4o-2024", 1_000_000, 0), Some(2.5));
        assert_eq!(table.cost("gpt-4o-mini", 0, 1_000_000), Some(0.6));
        assert_eq!(table.cost("smollm2", 10, 10), None);
    }

    fn event(project: &str, model: &str, cost: Option<f64>, at_ms: u64) -> UsageEvent {
        UsageEvent {
            project: project.into(),
            thread: "t".into(),
            run: "r".into(),
            frame: 0,
            node: "pa".into(),
            model: model.into(),
            provider: "scripted".into(),
            prompt_tokens: 10,
            completion_tokens: 5,
            estimated: model == "b",
            latency_ms: 3,
            cost,
            outcome: "ok".into(),
            at_ms,
        }
    }

    #[test]
    fn aggregates_flag_unpriced_and_estimated_calls() {
        let ledger = MemoryLedger::default();
        for (model, cost) in [("a", Some(0.5)), ("b", None), ("a", Some(0.25))] {
            ledger.record(event("p", model, cost, 0));
        }
        let totals = ledger.totals();
        assert_eq!(totals.calls, 3);
        assert_eq!(totals.cost, 0.75);
        assert_eq!(totals.unpriced_calls, 1);
        assert_eq!(totals.estimated_calls, 1);
        let b = ledger.breakdown();
        assert_eq!(b.by_model["b"].unpriced_calls, 1);
        assert_eq!(b.by_node["pa"].prompt_tokens, 30);
        assert_eq!(b.by_project["p"].calls, 3);
        assert_eq!(b.by_project["p"].unpriced_calls, 1);
        assert_eq!(b.by_project["p"].cost, 0.75);
    }

    #[test]
    fn invocations_add_fuel_per_node_thread_and_project_but_not_model() {
        let ledger = MemoryLedger::default();
        ledger.record(event("p", "a", Some(0.5), 0));
        for (node, fuel, outcome) in [
            ("pa", 100, "ok"),
            ("pa", 50, "out_of_fuel"),
            ("io", 7, "ok"),
        ] {
            ledger.record_invocation(InvocationEvent {
                project: "p".into(),
                thread: "t".into(),
                run: "r".into(),
                frame: 0,
                node: node.into(),
                plugin: node.into(),
                plugin_version: "0.1.0".into(),
                plugin_hash: "00".into(),
                fuel_used: fuel,
                duration_us: 10,
                outcome: outcome.into(),
                at_ms: 0,
            });
        }
        let b = ledger.breakdown();
        assert_eq!(b.by_node["pa"].fuel, 150);
        assert_eq!(b.by_node["pa"].invocations, 2);
        assert_eq!(b.by_node["pa"].failed_invocations, 1);
        assert_eq!(b.by_node["pa"].calls, 1);
        assert_eq!(b.by_node["io"].fuel, 7);
        assert_eq!(b.by_thread["t"].fuel, 157);
        assert_eq!(b.by_project["p"].invocations, 3);
        assert_eq!(b.by_model["a"].invocations, 0);
        assert_eq!(ledger.totals().fuel, 157);
        assert_eq!(ledger.totals().invocation_us, 30);
        assert_eq!(ledger.invocations().len(), 3);
    }

    #[test]
    fn project_cost_sums_a_window_of_one_project() {
        let ledger = MemoryLedger::default();
        ledger.record(event("p", "a", Some(1.0), 10));
        ledger.record(event("p", "a", Some(2.0), 20));
        ledger.record(event("p", "b", None, 20));
        ledger.record(event("q", "a", Some(4.0), 20));
        assert_eq!(ledger.project_cost("p", 0, 100), 3.0);
        assert_eq!(ledger.project_cost("p", 11, 100), 2.0);
        assert_eq!(ledger.project_cost("p", 0, 20), 1.0);
        assert_eq!(ledger.project_cost("q", 0, u64::MAX), 4.0);
        assert_eq!(ledger.project_cost("r", 0, u64::MAX), 0.0);
    }
}
