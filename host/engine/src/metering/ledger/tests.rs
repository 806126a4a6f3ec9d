//! Tests of the in-memory ledger and the price table.

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
fn project_cost_sums_whole_days_of_one_project() {
    const DAY: u64 = 86_400_000;
    let ledger = MemoryLedger::default();
    ledger.record(event("p", "a", Some(1.0), 10));
    ledger.record(event("p", "a", Some(2.0), DAY + 20));
    ledger.record(event("p", "b", None, DAY + 20));
    ledger.record(event("q", "a", Some(4.0), 20));
    assert_eq!(ledger.project_cost("p", 0, 3 * DAY), 3.0);
    assert_eq!(ledger.project_cost("p", DAY, 3 * DAY), 2.0);
    assert_eq!(ledger.project_cost("p", 0, DAY), 1.0);
    assert_eq!(ledger.project_cost("q", 0, u64::MAX), 4.0);
    assert_eq!(ledger.project_cost("r", 0, u64::MAX), 0.0);
}

#[test]
fn the_books_stay_bounded_however_many_events_come() {
    let ledger = MemoryLedger::default();
    for i in 0..(RECENT_EVENTS as u64 * 3) {
        let mut e = event("p", &format!("model-{i}"), Some(0.5), i * 86_400_000);
        e.thread = format!("t{i}");
        ledger.record(e);
    }
    assert_eq!(ledger.events().len(), RECENT_EVENTS);
    let b = ledger.breakdown();
    assert_eq!(b.by_model.len(), MAX_BREAKDOWN_KEYS + 1);
    assert!(b.by_model.contains_key(OTHER_KEY));
    assert_eq!(ledger.totals().calls, RECENT_EVENTS as u64 * 3);
    assert!(ledger.lock().spend["p"].days.len() <= SPEND_DAYS as usize + 1);
    assert_eq!(
        ledger.project_cost("p", 0, u64::MAX),
        0.5 * (RECENT_EVENTS * 3) as f64
    );
    for i in 0..(RECENT_EVENTS * 3) {
        ledger.forget_thread(&format!("t{i}"));
    }
    assert!(ledger.breakdown().by_thread.is_empty());
}
