//! Token budgets and usage metering: reserve/reconcile under 50 concurrent
//! calls, warnings once each (as events and as notices the node sees), and
//! exhaustion that pauses the run until an operator raises the budget.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use weft_engine::budget::Metered;
use weft_engine::usage::Ledger;
use weft_engine::{
    Backends, BudgetConfig, Budgets, Bus, Engine, EngineConfig, EventBody, Inbound, MemoryLedger,
    Price, PriceTable, RunStatus,
};
use weft_runtime::capabilities::db::InMemoryDb;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall, NoDeltas, ScriptRule, Scripted};
use weft_runtime::{CallContext, CapabilityError, ChatMessage, CompletionRequest, Role};

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
    }
}

fn metered(inner: Scripted, tokens: u64) -> (Arc<Metered>, Arc<MemoryLedger>, Bus) {
    let ledger = Arc::new(MemoryLedger::default());
    let bus = Bus::new(1024);
    let metered = Arc::new(Metered {
        inner: Arc::new(inner),
        budgets: Arc::new(Budgets::new(BudgetConfig {
            thread_tokens: Some(tokens),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhaustion_waits_for_a_raise_then_retries_the_refused_node() {
    let analysis = json!({"intent": "social", "topic": "t", "language": "en", "tone": "calm",
        "complexity": "simple", "reflex": true})
    .to_string();
    let llm = Arc::new(Scripted::from_rules(
        [ScriptRule::answer(analysis).repeat()],
    ));
    let rt = runtime();
    let plugins = plugins(&rt).await;
    let config = EngineConfig {
        budget: BudgetConfig {
            thread_tokens: Some(100_000),
        },
        ..EngineConfig::default()
    };
    let engine = Engine::new(
        rt,
        plugins,
        Backends {
            llm: llm.clone(),
            db: Arc::new(InMemoryDb::default()),
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
    engine.set_budget(&thread, used + 50);

    let mut events = engine.subscribe();
    let handle = engine
        .start_run(&thread, Inbound::user_text("hi again"))
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
            .unwrap_err()
            .code(),
        "thread_busy"
    );
    let raised = engine.raise_budget(&thread, 10_000);
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
