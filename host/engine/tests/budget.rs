//! Token and money budgets and usage metering: reserve/reconcile under 50
//! concurrent calls, warnings once each (per window, for money), budget
//! windows that start over without losing a usage event, exhaustion that
//! pauses the run until an operator raises the budget or a new window
//! begins, and fuel per node invocation in the ledger.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use weft_engine::metering::Ledger;
use weft_engine::metering::Metered;
use weft_engine::{
    Backends, BudgetConfig, Budgets, Bus, Engine, EngineConfig, EventBody, FrameTrace, Inbound,
    ManualClock, MemoryLedger, MoneyBudget, Price, PriceTable, RunStatus, Window,
};
use weft_runtime::capabilities::db::InMemoryDb;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall, NoDeltas, ScriptRule, Scripted};
use weft_runtime::{
    CallContext, CapabilityError, ChatMessage, Completion, CompletionRequest, Role,
};

fn request(words: usize, max_tokens: u32) -> CompletionRequest {
    CompletionRequest {
        messages: vec![ChatMessage {
            role: Role::User,
            content: vec!["w"; words].join(" "),
        }],
        max_tokens,
        json_schema: None,
        stream: false,
    }
}

fn ctx(thread: &str) -> CallContext {
    CallContext {
        thread: thread.into(),
        run: "r".into(),
        frame: 0,
        node: "pa".into(),
        project: "default".into(),
    }
}

fn metered(inner: Scripted, tokens: u64) -> (Arc<Metered>, Arc<MemoryLedger>, Bus) {
    let ledger = Arc::new(MemoryLedger::default());
    let bus = Bus::new(1024);
    let metered = Arc::new(Metered {
        inner: Arc::new(inner),
        budgets: Arc::new(Budgets::new(BudgetConfig {
            thread_tokens: Some(tokens),
            ..BudgetConfig::default()
        })),
        ledger: ledger.clone(),
        prices: PriceTable {
            entries: vec![Price {
                prefix: "scripted".into(),
                prompt_per_million: 1.0,
                completion_per_million: 2.0,
            }],
        },
        bus: bus.clone(),
        shared: None,
    });
    (metered, ledger, bus)
}

async fn call(m: &Metered, thread: &str, req: CompletionRequest) -> Result<u32, CapabilityError> {
    let ctx = ctx(thread);
    let call = LlmCall {
        ctx: &ctx,
        model: None,
        deltas: &NoDeltas,
    };
    m.complete(call, req).await.map(|c| c.completion_tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_never_overrun_a_small_budget() {
    // Every answer uses its whole max_tokens (10 words): the worst case.
    let inner = Scripted::from_rules([ScriptRule::answer(["x"; 10].join(" "))
        .repeat()
        .delay(Duration::from_millis(20))]);
    let (m, ledger, _) = metered(inner, 600);
    let calls = (0..50).map(|_| {
        let m = m.clone();
        tokio::spawn(async move { call(&m, "t", request(5, 10)).await })
    });
    let results: Vec<_> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(CapabilityError::BudgetExhausted(_))))
        .count();
    assert_eq!(ok + refused, 50);
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
    let status = m.budgets.status("t").unwrap();
    assert!(status.used <= status.limit, "{status:?}");
    assert_eq!(status.reserved, 0);
    assert!(status.exhausted);
    // Every call is in the ledger, refused ones too, none unmetered.
    assert_eq!(ledger.events().len(), 50);
    assert_eq!(ledger.totals().calls, 50);
    assert_eq!(ledger.totals().failed, refused as u64);
    assert_eq!(
        ledger.totals().prompt_tokens + ledger.totals().completion_tokens,
        status.used
    );
    // Priced calls have a cost; refused ones cost 0.
    let unpriced: Vec<_> = ledger
        .events()
        .into_iter()
        .filter(|e| e.cost.is_none())
        .collect();
    assert!(unpriced.is_empty(), "{unpriced:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_fire_once_each_and_unknown_models_cost_null() {
    // Each call spends 20 tokens (10 prompt words, 10 answer words) of 1000,
    // so the thresholds are crossed one call at a time.
    let inner = Scripted::from_rules([ScriptRule::answer(["x"; 10].join(" ")).repeat()]);
    let (m, ledger, bus) = metered(inner, 1000);
    let mut events = bus.subscribe();
    let mut warned = Vec::new();
    for _ in 0..49 {
        if call(&m, "t", request(10, 10)).await.is_err() {
            break;
        }
        while let Ok(e) = events.try_recv() {
            if let EventBody::BudgetWarning(w) = &e.body {
                warned.push(w["percent"].as_u64().unwrap());
            }
        }
    }
    assert_eq!(warned, [75, 90, 95]);
    // Priced model in this table is `scripted`; a model without a price is null.
    let unknown = ledger.events();
    assert!(
        unknown
            .iter()
            .all(|e| e.model == "scripted" && e.cost.is_some())
    );
    let (m2, ledger2, _) = metered(
        Scripted::from_rules([ScriptRule::answer("hi").repeat()]),
        1000,
    );
    let ctx = ctx("u");
    let call2 = LlmCall {
        ctx: &ctx,
        model: Some("mystery-model"),
        deltas: &NoDeltas,
    };
    m2.complete(call2, request(1, 5)).await.unwrap();
    let e = &ledger2.events()[0];
    assert_eq!(e.model, "mystery-model");
    assert_eq!(e.cost, None);
    assert_eq!(ledger2.totals().unpriced_calls, 1);
}

/// A model that classifies every message as a reflex, so the input node
/// makes one `llm` call per run.
fn reflex_classifier() -> Arc<Scripted> {
    let analysis = json!({"intent": "social", "topic": "t", "language": "en", "tone": "calm",
        "complexity": "simple", "reflex": true})
    .to_string();
    Arc::new(Scripted::from_rules(
        [ScriptRule::answer(analysis).repeat()],
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhaustion_waits_for_a_raise_then_retries_the_refused_node() {
    let llm = reflex_classifier();
    let rt = runtime();
    let plugins = plugins(&rt).await;
    let config = EngineConfig {
        budget: BudgetConfig {
            thread_tokens: Some(100_000),
            ..BudgetConfig::default()
        },
        ..EngineConfig::default()
    };
    let engine = Engine::new(
        rt,
        plugins,
        Backends {
            llm: llm.clone(),
            db: Arc::new(InMemoryDb::default()),
            tools: weft_engine::Backends::no_tools(),
        },
        config,
    );
    let graph = graph(&engine, "input-only.yaml", INPUT_ONLY).await;
    let thread = engine.open_thread(None, &graph);
    let first = run_on(&engine, &thread, Inbound::user_text("hi")).await;
    assert_eq!(first.status, RunStatus::Completed, "{}", first.render());
    let used = engine.budget(&thread).unwrap().used;
    assert!(used > 0);
    // Leave less than any call's reservation.
    engine.set_budget(&thread, used + 50).await.unwrap();

    let mut events = engine.subscribe();
    let handle = engine
        .start_run(&thread, Inbound::user_text("hi again"))
        .await
        .unwrap();
    let run_id = handle.run.clone();
    wait_for(&mut events, |e| {
        is_status(e, &run_id, RunStatus::BudgetExhausted)
    })
    .await;
    let status = engine.budget(&thread).unwrap();
    assert!(status.exhausted && status.used <= status.limit);
    assert_eq!(
        engine
            .start_run(&thread, Inbound::user_text("x"))
            .await
            .unwrap_err()
            .code(),
        "thread_busy"
    );
    let raised = engine.raise_budget(&thread, 10_000).await.unwrap();
    assert!(!raised.exhausted);
    let trace = handle.finish().await.unwrap();
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(
        trace.path(),
        vec![vec!["input"], vec!["input"], vec!["sink"]]
    );
    let refused = trace.records[0].error.as_ref().unwrap();
    assert!(refused.message.contains("budget"), "{}", refused.message);
    assert!(trace.records[1].error.is_none());
    // Usage: the refused call is metered as such.
    let outcomes: Vec<String> = engine
        .ledger()
        .events()
        .iter()
        .map(|e| e.outcome.clone())
        .collect();
    assert_eq!(outcomes, ["ok", "budget_exhausted", "ok"]);
}

/// 2025-01-31T23:00:00Z: an hour before a new day and a new month.
const JAN_31_23H: u64 = 1_738_364_400_000;
/// 2025-01-31T00:00:00Z and 2025-02-01T00:00:00Z.
const JAN_31: u64 = JAN_31_23H - 23 * 3_600_000;
const FEB_1: u64 = JAN_31_23H + 3_600_000;
const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);

/// Models named `scripted…` cost 1 per million prompt tokens and 2 per
/// million completion tokens.
fn scripted_prices() -> PriceTable {
    PriceTable {
        entries: vec![Price {
            prefix: "scripted".into(),
            prompt_per_million: 1.0,
            completion_per_million: 2.0,
        }],
    }
}

struct Money {
    metered: Arc<Metered>,
    ledger: Arc<MemoryLedger>,
    bus: Bus,
    clock: Arc<ManualClock>,
}

/// A metered backend with no token budget and `budget` for every project,
/// on a manual clock standing at [`JAN_31_23H`].
fn money(inner: Scripted, budget: MoneyBudget) -> Money {
    let ledger = Arc::new(MemoryLedger::default());
    let clock = Arc::new(ManualClock::at_ms(JAN_31_23H));
    let budgets = Budgets::new(BudgetConfig {
        thread_tokens: None,
        project_money: Some(budget),
        ..BudgetConfig::default()
    })
    .with_clock(clock.clone())
    .with_ledger(ledger.clone());
    let bus = Bus::new(4096);
    let metered = Arc::new(Metered {
        inner: Arc::new(inner),
        budgets: Arc::new(budgets),
        ledger: ledger.clone(),
        prices: scripted_prices(),
        bus: bus.clone(),
        shared: None,
    });
    Money {
        metered,
        ledger,
        bus,
        clock,
    }
}

async fn call_model(
    m: &Metered,
    thread: &str,
    model: &str,
    req: CompletionRequest,
) -> Result<Completion, CapabilityError> {
    let ctx = ctx(thread);
    let call = LlmCall {
        ctx: &ctx,
        model: Some(model),
        deltas: &NoDeltas,
    };
    m.complete(call, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_never_overrun_a_project_money_budget() {
    // Each call reserves (17 + 2 * 10) / 1e6 and costs (5 + 2 * 10) / 1e6;
    // the 50 calls together would cost 0.00125, twice the limit.
    let inner = Scripted::from_rules([ScriptRule::answer(["x"; 10].join(" "))
        .repeat()
        .delay(Duration::from_millis(20))]);
    let m = money(inner, MoneyBudget::new(0.0006, Window::Daily).unwrap());
    // Fifty threads of one project: only the project's money limits them.
    for t in 0..50 {
        m.metered.budgets.assign_project(&format!("t{t}"), "acme");
    }
    let calls = (0..50).map(|t| {
        let metered = m.metered.clone();
        tokio::spawn(async move {
            call_model(&metered, &format!("t{t}"), "scripted-small", request(5, 10)).await
        })
    });
    let results: Vec<_> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(CapabilityError::BudgetExhausted(m)) if m.contains("project `acme`")))
        .count();
    assert_eq!(ok + refused, 50);
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
    let status = m.metered.budgets.project_status("acme");
    assert!(status.spent <= 0.0006, "{status:?}");
    assert!(status.spent > 0.0, "{status:?}");
    assert_eq!(status.reserved, 0.0, "{status:?}");
    assert!(status.exhausted);
    assert_eq!(status.unenforced_calls, 0);
    // The spend is what the ledger priced; every call is in it.
    let acme = m.ledger.breakdown().by_project["acme"].clone();
    assert_eq!(acme.calls, 50);
    assert_eq!(acme.failed, refused as u64);
    assert_eq!(acme.unpriced_calls, 0);
    assert!(
        (acme.cost - status.spent).abs() < 1e-12,
        "{acme:?} {status:?}"
    );
    for e in m.ledger.events() {
        assert_eq!(e.project, "acme");
        assert_eq!(e.at_ms, JAN_31_23H);
        if e.outcome == "ok" {
            assert_eq!((e.provider.as_str(), e.estimated), ("scripted", false));
        } else {
            assert_eq!(e.provider, "", "a refused call reached no provider");
        }
    }
}

/// Calls until the project's money budget refuses one; returns how many
/// were answered, the project warnings published, and the refusal.
async fn spend_until_refused(
    m: &Money,
    events: &mut tokio::sync::broadcast::Receiver<Arc<weft_engine::Event>>,
) -> (usize, Vec<u64>, String) {
    let mut warned = Vec::new();
    for answered in 0..100 {
        let result = call_model(&m.metered, "t", "scripted-small", request(10, 10)).await;
        while let Ok(e) = events.try_recv() {
            if let EventBody::BudgetWarning(w) = &e.body {
                assert_eq!(w["scope"], "project", "{w}");
                assert_eq!(w["project"], "acme", "{w}");
                warned.push(w["percent"].as_u64().unwrap());
            }
        }
        if let Err(e) = result {
            return (answered, warned, e.to_string());
        }
    }
    panic!("the budget never refused a call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_window_starts_the_spend_over_keeps_every_event_and_warns_again() {
    // Each call costs (10 + 2 * 10) / 1e6 of 0.001 and reserves up to
    // (27 + 2 * 10) / 1e6: 32 calls fit (75 % at 25, 90 % at 30, 95 % at 32).
    let inner = Scripted::from_rules([ScriptRule::answer(["x"; 10].join(" ")).repeat()]);
    let m = money(inner, MoneyBudget::new(0.001, Window::Daily).unwrap());
    m.metered.budgets.assign_project("t", "acme");
    let mut events = m.bus.subscribe();

    let (answered, warned, refusal) = spend_until_refused(&m, &mut events).await;
    assert_eq!((answered, warned.as_slice()), (32, &[75, 90, 95][..]));
    assert!(
        refusal.contains("project `acme` money budget: 0.000960 spent of 0.001000")
            && refusal.contains("in the daily window since 2025-01-31T00:00:00Z"),
        "{refusal}"
    );
    let status = m.metered.budgets.project_status("acme");
    assert!(status.exhausted);
    assert_eq!(status.window_start_ms, Some(JAN_31));
    assert!(!m.metered.budgets.is_exhausted("other-thread"));
    assert!(m.metered.budgets.is_exhausted("t"));

    // Two hours later it is 1 February: the next call opens a new window.
    m.clock.advance(TWO_HOURS);
    m.metered.budgets.tick();
    assert!(!m.metered.budgets.is_exhausted("t"));
    let status = m.metered.budgets.project_status("acme");
    assert_eq!((status.spent, status.exhausted), (0.0, false), "{status:?}");
    assert_eq!(status.window_start_ms, Some(FEB_1));
    let (answered, warned, _) = spend_until_refused(&m, &mut events).await;
    assert_eq!((answered, warned.as_slice()), (32, &[75, 90, 95][..]));

    // Nothing was deleted: both windows' calls are in the ledger.
    let events = m.ledger.events();
    assert_eq!(events.len(), 66);
    let cost = |from, to| m.ledger.project_cost("acme", from, to);
    assert!((cost(JAN_31, FEB_1) - 0.00096).abs() < 1e-12);
    assert!((cost(FEB_1, u64::MAX) - 0.00096).abs() < 1e-12);
    assert_eq!(m.ledger.breakdown().by_project["acme"].failed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_unpriced_models_are_refused_under_a_money_budget_and_flagged() {
    let inner = Scripted::from_rules([ScriptRule::answer("one two three").repeat()]);
    let m = money(inner, MoneyBudget::new(0.0, Window::Monthly).unwrap());
    m.metered.budgets.assign_project("t", "acme");
    // A priced call does not fit a budget of 0 …
    let refused = call_model(&m.metered, "t", "scripted-small", request(2, 5)).await;
    assert!(matches!(refused, Err(CapabilityError::BudgetExhausted(_))));
    // … and an unpriced one cannot be held to it: refused too (the
    // default `budget.unpriced: refuse`), naming the model.
    m.metered.budgets.raise_project_budget("acme", 0.0).unwrap();
    let refused = call_model(&m.metered, "t", "mystery-model", request(2, 5)).await;
    let Err(CapabilityError::BudgetExhausted(message)) = refused else {
        panic!("{refused:?}");
    };
    assert!(
        message.contains("`mystery-model` has no price"),
        "{message}"
    );
    let e = m.ledger.events().pop().unwrap();
    assert_eq!(
        (e.model.as_str(), e.cost, e.outcome.as_str()),
        ("mystery-model", Some(0.0), "unpriced_refused")
    );
    let status = m.metered.budgets.project_status("acme");
    assert_eq!(status.unenforced_calls, 1);
    assert_eq!(status.spent, 0.0);
    assert!(
        !status.exhausted,
        "a raise would not help: the run does not wait"
    );
    let acme = &m.ledger.breakdown().by_project["acme"];
    assert_eq!((acme.calls, acme.unpriced_calls, acme.failed), (2, 0, 2));
}

/// The input node feeding a sink, with a priced model.
const PRICED_INPUT: &str = r#"
name: input-priced
entry: input
nodes:
  input:
    plugin: input
    grants: [llm, hud, memory, log]
    model: scripted-small
    config: { think: sink, reflex: sink }
  sink: { plugin: guest-echo }
edges:
  - { from: input, to: sink }
"#;

/// Starts a run and waits until it waits on an exhausted budget.
async fn start_until_exhausted(engine: &Arc<Engine>, thread: &str) -> weft_engine::RunHandle {
    let mut events = engine.subscribe();
    let handle = engine
        .start_run(thread, Inbound::user_text("hi again"))
        .await
        .unwrap();
    let run = handle.run.clone();
    wait_for(&mut events, |e| {
        is_status(e, &run, RunStatus::BudgetExhausted)
    })
    .await;
    handle
}

async fn finish(handle: weft_engine::RunHandle) -> FrameTrace {
    tokio::time::timeout(Duration::from_secs(120), handle.finish())
        .await
        .expect("the run did not finish in 2 minutes")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_project_waits_for_a_raise_or_the_next_window_and_fuel_is_metered() {
    let llm = reflex_classifier();
    let rt = runtime();
    let plugins = plugins(&rt).await;
    let clock = Arc::new(ManualClock::at_ms(JAN_31_23H));
    // Only completion tokens are priced, so that a call's worst case is
    // its max_tokens, whatever its prompt.
    let config = EngineConfig {
        budget: BudgetConfig {
            project_money: Some(MoneyBudget::new(1.0, Window::Daily).unwrap()),
            ..BudgetConfig::default()
        },
        prices: PriceTable {
            entries: vec![Price {
                prefix: "scripted".into(),
                prompt_per_million: 0.0,
                completion_per_million: 2.0,
            }],
        },
        clock: clock.clone(),
        ..EngineConfig::default()
    };
    let engine = Engine::new(
        rt,
        plugins,
        Backends {
            llm,
            db: Arc::new(InMemoryDb::default()),
            tools: weft_engine::Backends::no_tools(),
        },
        config,
    );
    let graph = graph(&engine, "input-priced.yaml", PRICED_INPUT).await;
    let thread = engine.open_thread_in("acme", None, &graph);
    assert_eq!(engine.thread_project(&thread).as_deref(), Some("acme"));
    let other = engine.open_thread(None, &graph);
    assert_eq!(engine.thread_project(&other).as_deref(), Some("default"));
    assert_eq!(engine.thread_project("nope"), None);
    let mut traces = vec![run_on(&engine, &thread, Inbound::user_text("hi")).await];
    assert_eq!(
        traces[0].status,
        RunStatus::Completed,
        "{}",
        traces[0].render()
    );
    let spent = engine.project_budget("acme").spent;
    assert!(spent > 0.0);

    // Less than any call's reservation is left: the run waits.
    let daily = |limit: f64| Some(MoneyBudget::new(limit, Window::Daily).unwrap());
    engine
        .set_project_budget("acme", daily(spent + 1e-6))
        .await
        .unwrap();
    let handle = start_until_exhausted(&engine, &thread).await;
    assert!(engine.project_budget("acme").exhausted);
    // Another project's thread is not held back.
    traces.push(run_on(&engine, &other, Inbound::user_text("hello")).await);
    assert_eq!(
        traces[1].status,
        RunStatus::Completed,
        "{}",
        traces[1].render()
    );
    assert_eq!(
        engine
            .raise_project_budget("acme", -1.0)
            .await
            .unwrap_err()
            .code(),
        "invalid_budget"
    );
    let raised = engine.raise_project_budget("acme", 1.0).await.unwrap();
    assert!(!raised.exhausted);
    traces.push(finish(handle).await);
    let raised_run = &traces[2];
    assert_eq!(
        raised_run.status,
        RunStatus::Completed,
        "{}",
        raised_run.render()
    );
    assert_eq!(
        raised_run.path(),
        vec![vec!["input"], vec!["input"], vec!["sink"]]
    );
    let refused = raised_run.records[0].error.as_ref().unwrap();
    assert!(
        refused.message.contains("project `acme` money budget"),
        "{}",
        refused.message
    );

    // Exhausted again, with room for one call but not for what was spent
    // today: the next day's window lets the run go on.
    let worst: f64 = refused
        .message
        .rsplit("up to ")
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no worst case in: {}", refused.message));
    let spent = engine.project_budget("acme").spent;
    engine
        .set_project_budget("acme", daily(worst + spent / 2.0))
        .await
        .unwrap();
    let handle = start_until_exhausted(&engine, &thread).await;
    clock.advance(TWO_HOURS);
    engine.tick_budgets();
    traces.push(finish(handle).await);
    assert_eq!(
        traces[3].status,
        RunStatus::Completed,
        "{}",
        traces[3].render()
    );
    let status = engine.project_budget("acme");
    assert_eq!(status.window_start_ms, Some(FEB_1));
    assert!(!status.exhausted);

    // Every call is kept; the new window spent only the last one.
    let acme: Vec<_> = engine
        .ledger()
        .events()
        .into_iter()
        .filter(|e| e.project == "acme")
        .collect();
    let outcomes: Vec<&str> = acme.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        ["ok", "budget_exhausted", "ok", "budget_exhausted", "ok"]
    );
    let last = acme.last().unwrap();
    assert_eq!(last.at_ms, FEB_1 + 3_600_000);
    assert!(
        (status.spent - last.cost.unwrap()).abs() < 1e-12,
        "{status:?}"
    );
    let jan: f64 = acme[..4].iter().filter_map(|e| e.cost).sum();
    assert!((engine.ledger().project_cost("acme", JAN_31, FEB_1) - jan).abs() < 1e-12);

    // Fuel: one invocation event per frame record, summed per node.
    let records: Vec<_> = traces.iter().flat_map(|t| &t.records).collect();
    let invocations = engine.ledger().invocations();
    assert_eq!(invocations.len(), records.len());
    let breakdown = engine.ledger().breakdown();
    for node in ["input", "sink"] {
        let fuel: u64 = records
            .iter()
            .filter(|r| r.node == node)
            .map(|r| r.fuel_used)
            .sum();
        let by_node = &breakdown.by_node[node];
        assert!(by_node.fuel > 0, "{node}: {by_node:?}");
        assert_eq!(by_node.fuel, fuel, "{node}");
        assert_eq!(
            by_node.invocations,
            records.iter().filter(|r| r.node == node).count() as u64
        );
    }
    let fuel_of = |t: &str| -> u64 {
        records
            .iter()
            .filter(|r| r.thread == t)
            .map(|r| r.fuel_used)
            .sum()
    };
    assert_eq!(breakdown.by_thread[&thread].fuel, fuel_of(&thread));
    assert_eq!(breakdown.by_project["acme"].fuel, fuel_of(&thread));
    assert_eq!(breakdown.by_project["default"].fuel, fuel_of(&other));
    assert_eq!(breakdown.by_node["input"].failed_invocations, 2);
    let first = &invocations[0];
    assert_eq!(
        (first.plugin.as_str(), first.project.as_str()),
        ("input", "acme")
    );
    assert!(!first.plugin_version.is_empty() && first.plugin_hash.len() == 64);
}
