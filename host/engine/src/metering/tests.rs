//! Unit tests of the money accounts.

use std::sync::Arc;

use weft_runtime::CapabilityError;

use super::ledger::Ledger;
use super::*;
use crate::clock::ManualClock;
use crate::metering::ledger::{MemoryLedger, UsageEvent};

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
        "a money amount must be finite, at least 0 and at most 1000000000, not NaN"
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
    let super::money::MoneyRefusal::Exhausted(CapabilityError::BudgetExhausted(message)) = err
    else {
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
fn unpriced_calls_under_a_money_limit_are_refused_and_counted_as_unenforced() {
    let (b, _, _) = budgets(Window::Daily, 0.0);
    assert!(matches!(
        b.reserve_money("acme", "mystery", None),
        Err(super::money::MoneyRefusal::Unpriced(_))
    ));
    assert!(b.reserve_money("acme", "m", Some(0.001)).is_err());
    let status = b.project_status("acme");
    assert_eq!(status.unenforced_calls, 1);
    assert_eq!(status.percent_used, 100.0);
}

#[test]
fn raises_that_overflow_or_are_not_finite_change_nothing() {
    let (b, _, _) = budgets(Window::Daily, 1.0);
    let before = b.project_status("acme");
    for amount in [
        f64::NAN,
        f64::INFINITY,
        -1.0,
        1e300,
        super::config::MAX_MONEY,
    ] {
        assert!(b.raise_project_budget("acme", amount).is_err(), "{amount}");
        assert_eq!(b.project_status("acme"), before, "{amount}");
    }
    b.set_limit("t", 10);
    assert!(matches!(
        b.raise("t", u64::MAX),
        Err(BudgetError::Overflow { .. })
    ));
    assert_eq!(b.status("t").unwrap().limit, 10);
}
