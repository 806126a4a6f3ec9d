//! Usage metering: one [`UsageEvent`] per `llm` call, priced from a
//! [`PriceTable`], kept by a [`Ledger`] and summed per node, model and thread.
//!
//! The ledger is behind a trait so that the store (issue 5) can keep events
//! durably; [`MemoryLedger`] keeps them in memory until then.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One `llm` call, metered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEvent {
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
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Wall time of the call in milliseconds.
    pub latency_ms: u64,
    /// Cost in the price table's currency; `None` when the model has no price.
    pub cost: Option<f64>,
    /// `ok`, or the error code of a failed call.
    pub outcome: String,
}

impl UsageEvent {
    /// Prompt plus completion tokens.
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
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

/// Sums over a set of usage events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotals {
    /// Calls.
    pub calls: u64,
    /// Failed calls.
    pub failed: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Summed cost of the priced calls.
    pub cost: f64,
    /// Calls whose model had no price (their cost is not in `cost`).
    pub unpriced_calls: u64,
    /// Summed latency in milliseconds.
    pub latency_ms: u64,
}

impl UsageTotals {
    fn add(&mut self, e: &UsageEvent) {
        self.calls += 1;
        if e.outcome != "ok" {
            self.failed += 1;
        }
        self.prompt_tokens += e.prompt_tokens;
        self.completion_tokens += e.completion_tokens;
        match e.cost {
            Some(c) => self.cost += c,
            None => self.unpriced_calls += 1,
        }
        self.latency_ms += e.latency_ms;
    }
}

/// Where usage events go.
pub trait Ledger: Send + Sync {
    /// Records one call.
    fn record(&self, event: UsageEvent);
    /// Totals over every event.
    fn totals(&self) -> UsageTotals;
    /// Totals per node, per model and per thread.
    fn breakdown(&self) -> UsageBreakdown;
}

/// Totals grouped three ways.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageBreakdown {
    /// By node name.
    pub by_node: BTreeMap<String, UsageTotals>,
    /// By model.
    pub by_model: BTreeMap<String, UsageTotals>,
    /// By thread.
    pub by_thread: BTreeMap<String, UsageTotals>,
}

/// A ledger in memory (events and running aggregates).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    inner: Mutex<(Vec<UsageEvent>, UsageTotals, UsageBreakdown)>,
}

impl MemoryLedger {
    /// Every event so far, oldest first.
    pub fn events(&self) -> Vec<UsageEvent> {
        self.lock().0.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<UsageEvent>, UsageTotals, UsageBreakdown)> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Ledger for MemoryLedger {
    fn record(&self, event: UsageEvent) {
        let mut inner = self.lock();
        let (events, totals, breakdown) = &mut *inner;
        totals.add(&event);
        breakdown
            .by_node
            .entry(event.node.clone())
            .or_default()
            .add(&event);
        breakdown
            .by_model
            .entry(event.model.clone())
            .or_default()
            .add(&event);
        breakdown
            .by_thread
            .entry(event.thread.clone())
            .or_default()
            .add(&event);
        events.push(event);
    }

    fn totals(&self) -> UsageTotals {
        self.lock().1.clone()
    }

    fn breakdown(&self) -> UsageBreakdown {
        self.lock().2.clone()
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

    #[test]
    fn aggregates_flag_unpriced_calls() {
        let ledger = MemoryLedger::default();
        for (model, cost) in [("a", Some(0.5)), ("b", None), ("a", Some(0.25))] {
            ledger.record(UsageEvent {
                thread: "t".into(),
                run: "r".into(),
                frame: 0,
                node: "pa".into(),
                model: model.into(),
                prompt_tokens: 10,
                completion_tokens: 5,
                latency_ms: 3,
                cost,
                outcome: "ok".into(),
            });
        }
        let totals = ledger.totals();
        assert_eq!(totals.calls, 3);
        assert_eq!(totals.cost, 0.75);
        assert_eq!(totals.unpriced_calls, 1);
        let b = ledger.breakdown();
        assert_eq!(b.by_model["b"].unpriced_calls, 1);
        assert_eq!(b.by_node["pa"].prompt_tokens, 30);
    }
}
