//! Bounds: the usage books do not grow with traffic; a plugin cannot make
//! the host's memory or logs grow beyond its invocation's limits (denied
//! calls, memory writes, db results, log lines, the journal); budget
//! changes that overflow or are not finite change nothing; and calls to
//! unpriced models cannot slip past a money budget (refused, or charged
//! at the highest price).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use serde_json::json;
use weft_engine::{FrameRecord, Inbound};
use weft_runtime::capabilities::db::InMemoryDb;
use weft_runtime::{Column, Value};

use weft_engine::metering::ledger::{MAX_BREAKDOWN_KEYS, OTHER_KEY, RECENT_EVENTS};
use weft_engine::metering::{Ledger, MAX_MONEY, Metered};
use weft_engine::{
    BudgetConfig, Budgets, Bus, MemoryLedger, MoneyBudget, Price, PriceTable, Unpriced, UsageEvent,
    Window,
};
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

/// A metered scripted model (answers "one two three") whose projects have
/// `money` as their budget, with `unpriced` as the policy; `priced` is
/// the one model in the price table.
fn metered(money: Option<f64>, unpriced: Unpriced) -> (Arc<Metered>, Arc<MemoryLedger>) {
    let ledger = Arc::new(MemoryLedger::default());
    let budgets = Budgets::new(BudgetConfig {
        thread_tokens: None,
        project_money: money.map(|limit| MoneyBudget::new(limit, Window::None).unwrap()),
        unpriced,
        ..BudgetConfig::default()
    })
    .with_ledger(ledger.clone());
    let metered = Arc::new(Metered {
        inner: Arc::new(Scripted::from_rules([
            ScriptRule::answer("one two three").repeat()
        ])),
        budgets: Arc::new(budgets),
        ledger: ledger.clone(),
        prices: PriceTable {
            entries: vec![
                Price {
                    prefix: "priced".into(),
                    prompt_per_million: 1_000.0,
                    completion_per_million: 2_000.0,
                },
                Price {
                    prefix: "cheap".into(),
                    prompt_per_million: 3_000.0,
                    completion_per_million: 1.0,
                },
            ],
        },
        bus: Bus::new(64),
        shared: None,
    });
    (metered, ledger)
}

async fn call(m: &Metered, model: &str) -> Result<(), CapabilityError> {
    let ctx = CallContext {
        thread: "t".into(),
        run: "r".into(),
        frame: 0,
        node: "n".into(),
        project: "acme".into(),
    };
    m.budgets.assign_project("t", "acme");
    m.complete(
        LlmCall {
            ctx: &ctx,
            model: Some(model),
            deltas: &NoDeltas,
        },
        request(2, 5),
    )
    .await
    .map(|_| ())
}

#[test]
fn the_usage_books_stay_bounded_however_many_calls_come() {
    let ledger = MemoryLedger::default();
    let calls = RECENT_EVENTS * 4;
    for i in 0..calls {
        ledger.record(UsageEvent {
            project: "p".into(),
            thread: format!("thread-{i}"),
            run: format!("thread-{i}.run-1"),
            frame: 0,
            node: "n".into(),
            // A guest may name any model: the breakdown caps the keys.
            model: format!("model-{i}"),
            provider: String::new(),
            prompt_tokens: 1,
            completion_tokens: 1,
            estimated: false,
            latency_ms: 0,
            cost: Some(0.25),
            outcome: "ok".into(),
            at_ms: i as u64 * 3_600_000,
        });
    }
    assert_eq!(ledger.events().len(), RECENT_EVENTS, "recent events only");
    let b = ledger.breakdown();
    assert_eq!(b.by_model.len(), MAX_BREAKDOWN_KEYS + 1);
    assert_eq!(
        b.by_model[OTHER_KEY].calls as usize,
        calls - MAX_BREAKDOWN_KEYS
    );
    assert_eq!(ledger.totals().calls as usize, calls);
    // The spend is kept as a rollup: all time exactly, recent days by day.
    assert_eq!(ledger.project_cost("p", 0, u64::MAX), 0.25 * calls as f64);
    let last_day = (calls as u64 - 1) * 3_600_000 / 86_400_000 * 86_400_000;
    assert!(ledger.project_cost("p", last_day, u64::MAX) > 0.0);
    // Idle threads' totals are dropped.
    for i in 0..calls {
        ledger.forget_thread(&format!("thread-{i}"));
    }
    assert!(ledger.breakdown().by_thread.is_empty());
}

#[test]
fn budget_changes_that_overflow_or_are_not_finite_are_refused_and_change_nothing() {
    let budgets = Budgets::new(BudgetConfig {
        project_money: Some(MoneyBudget::new(5.0, Window::Daily).unwrap()),
        ..BudgetConfig::default()
    });
    budgets.set_limit("t", 1_000);
    let thread_before = budgets.status("t").unwrap();
    let refused = budgets.raise("t", u64::MAX).unwrap_err();
    assert_eq!(refused.code(), "budget_overflow");
    assert_eq!(budgets.status("t").unwrap(), thread_before);
    // A thread never seen: refused without creating its budget.
    assert!(budgets.raise("unseen", u64::MAX).is_err());
    assert_eq!(budgets.status("unseen"), None);

    let before = budgets.project_status("acme");
    for amount in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5, 1e300] {
        let refused = budgets.raise_project_budget("acme", amount).unwrap_err();
        assert_eq!(refused.code(), "invalid_amount", "{amount}");
        assert_eq!(budgets.project_status("acme"), before, "{amount}");
    }
    // Each amount is fine alone; the sum passes the largest limit.
    let refused = budgets.raise_project_budget("acme", MAX_MONEY).unwrap_err();
    assert_eq!(refused.code(), "budget_overflow");
    assert_eq!(budgets.project_status("acme"), before);
    for limit in [f64::NAN, -1.0, MAX_MONEY * 2.0] {
        assert!(MoneyBudget::new(limit, Window::Daily).is_err(), "{limit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpriced_calls_are_refused_under_a_money_budget_by_default() {
    let (m, ledger) = metered(Some(100.0), Unpriced::default());
    let Err(CapabilityError::BudgetExhausted(message)) = call(&m, "mystery").await else {
        panic!("an unpriced call passed a money budget");
    };
    assert!(message.contains("budget.unpriced: refuse"), "{message}");
    let status = m.budgets.project_status("acme");
    assert_eq!((status.unenforced_calls, status.exhausted), (1, false));
    // Priced calls still go.
    call(&m, "priced-1").await.unwrap();
    assert_eq!(
        ledger
            .events()
            .iter()
            .map(|e| e.outcome.as_str())
            .collect::<Vec<_>>(),
        ["unpriced_refused", "ok"]
    );
    // Without a money budget unpriced calls are allowed, their cost unknown.
    let (free, ledger) = metered(None, Unpriced::Refuse);
    call(&free, "mystery").await.unwrap();
    assert_eq!(ledger.events()[0].cost, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpriced_calls_are_charged_at_the_highest_price_and_stop_at_the_budget() {
    // The highest price: 3,000 per million prompt tokens, 2,000 per
    // million completion tokens (of two different models). A call of 2
    // prompt words and 3 answer words costs 0.012; its worst case (the
    // prompt's 3 bytes + 8 and max_tokens 5) reserves 0.043.
    let (m, ledger) = metered(Some(0.1), Unpriced::Highest);
    call(&m, "mystery").await.unwrap();
    let e = ledger.events().pop().unwrap();
    assert_eq!(e.outcome, "ok");
    assert!((e.cost.unwrap() - 0.012).abs() < 1e-12, "{e:?}");
    let status = m.budgets.project_status("acme");
    assert!((status.spent - 0.012).abs() < 1e-9, "{status:?}");
    assert_eq!(status.unenforced_calls, 1);
    // Four more fit (0.06 spent; 0.06 + 0.043 > 0.1), then refused.
    let mut answered = 1;
    let refused = loop {
        match call(&m, "mystery").await {
            Ok(()) => answered += 1,
            Err(e) => break e,
        }
        assert!(answered < 100, "never refused");
    };
    assert_eq!(answered, 5);
    assert!(
        matches!(refused, CapabilityError::BudgetExhausted(_)),
        "{refused:?}"
    );
    let status = m.budgets.project_status("acme");
    assert!(status.exhausted);
    assert!((status.spent - 0.06).abs() < 1e-9, "{status:?}");
    // An empty price table has no highest price: refused.
    let empty = Metered {
        prices: PriceTable::default(),
        inner: m.inner.clone(),
        budgets: Arc::new(Budgets::new(BudgetConfig {
            project_money: Some(MoneyBudget::new(100.0, Window::None).unwrap()),
            unpriced: Unpriced::Highest,
            ..BudgetConfig::default()
        })),
        ledger: Arc::new(MemoryLedger::default()),
        bus: Bus::new(8),
        shared: None,
    };
    assert!(call(&empty, "mystery").await.is_err());
}

/// Counts the log lines whose message contains a text, across threads.
struct LineCounter {
    denied: Arc<AtomicUsize>,
    summaries: Arc<AtomicUsize>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LineCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0.starts_with("denied: capability not granted") {
            self.denied.fetch_add(1, Ordering::Relaxed);
        }
        if message
            .0
            .starts_with("refused host calls of one invocation")
        {
            self.summaries.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs `guest-amplify` once with `config` and returns its record and reply.
async fn amplify(db: InMemoryDb, config: serde_json::Value) -> (FrameRecord, String) {
    let engine = engine_with(Arc::new(Scripted::new(["unused"])), Arc::new(db)).await;
    let yaml = format!(
        "name: amplify\nentry: a\nnodes:\n  a: {{ plugin: guest-amplify, grants: [memory, db, log], config: {config} }}\n"
    );
    let graph = graph(&engine, "amplify.yaml", &yaml).await;
    let trace = run(&engine, &graph, Inbound::to("a", "go", &json!({}))).await;
    let reply = trace
        .reply
        .clone()
        .unwrap_or_else(|| panic!("no reply:\n{}", trace.render()));
    (trace.records[0].clone(), reply)
}

fn journal_bytes(record: &FrameRecord) -> usize {
    serde_json::to_string(&record.journal).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_denied_calls_makes_one_log_line_and_a_bounded_journal() {
    let denied = Arc::new(AtomicUsize::new(0));
    let summaries = Arc::new(AtomicUsize::new(0));
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(LineCounter {
        denied: denied.clone(),
        summaries: summaries.clone(),
    });
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let (record, reply) = amplify(
        InMemoryDb::default(),
        // As many as the fuel limit allows the guest's loop.
        json!({ "mode": "denied", "times": 200_000 }),
    )
    .await;
    assert!(
        reply.starts_with("denied: 0 ok, 200000 failed; first error: denied"),
        "{reply}"
    );
    // One line for the first denial, one summary; not 200,000.
    assert_eq!(denied.load(Ordering::Relaxed), 1);
    assert_eq!(summaries.load(Ordering::Relaxed), 1);
    // The journal holds the calls up to the host-call limit, no more.
    let limit = weft_runtime::Limits::default().max_host_calls as usize;
    assert_eq!(
        record.journal.len(),
        limit,
        "{} entries",
        record.journal.len()
    );
    assert_eq!(record.denied, [weft_runtime::Capability::Llm]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_writes_are_bounded_in_keys_and_in_bytes_by_the_output_limit() {
    let (_, reply) = amplify(
        InMemoryDb::default(),
        json!({ "mode": "memory", "times": 5000, "bytes": 1 }),
    )
    .await;
    assert_eq!(
        reply,
        "memory: 1024 ok, 3976 failed; first error: limit-exceeded: at most 1024 memory keys written per invocation"
    );
    // 200,000-byte values: five fit the 1 MiB output limit, the sixth not.
    let (record, reply) = amplify(
        InMemoryDb::default(),
        json!({ "mode": "memory", "times": 10, "bytes": 200_000 }),
    )
    .await;
    assert!(
        reply.starts_with(
            "memory: 5 ok, 5 failed; first error: limit-exceeded: memory writes of 1200012 bytes"
        ),
        "{reply}"
    );
    assert_eq!(record.error, None);
}

fn table(rows: usize, text: usize) -> InMemoryDb {
    let column = |name: &str| Column {
        name: name.into(),
        data_type: "TEXT".into(),
        nullable: false,
        primary_key: false,
    };
    InMemoryDb::default().with_table(
        "big",
        vec![column("t")],
        (0..rows)
            .map(|_| vec![Value::Text("y".repeat(text))])
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_results_are_bounded_in_bytes_and_the_journal_in_size() {
    // 1,000 rows (the row cap) of 1,100 bytes: over the 1 MiB output limit.
    let (record, reply) = amplify(
        table(1000, 1100),
        json!({ "mode": "db", "sql": "SELECT * FROM big" }),
    )
    .await;
    assert!(
        reply.starts_with(
            "db: 0 ok, 1 failed; first error: limit-exceeded: the query's result is 1108001 bytes"
        ),
        "{reply}"
    );
    assert!(journal_bytes(&record) < 10_000);
    // 700 KB results fit one by one, but the journal (4 MiB) takes five.
    let (record, reply) = amplify(
        table(1000, 700),
        json!({ "mode": "db", "sql": "SELECT * FROM big", "times": 20 }),
    )
    .await;
    assert!(
        reply.starts_with(
            "db: 5 ok, 15 failed; first error: limit-exceeded: the invocation's journal is full"
        ),
        "{reply}"
    );
    let max = weft_runtime::Limits::default().max_journal;
    assert!(journal_bytes(&record) <= max, "{}", journal_bytes(&record));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_log_lines_cannot_be_written_without_end() {
    let (record, reply) = amplify(
        InMemoryDb::default(),
        json!({ "mode": "log", "times": 100_000 }),
    )
    .await;
    assert!(
        reply.starts_with(
            "log: 4096 ok, 95904 failed; first error: limit-exceeded: at most 262144 bytes of log"
        ),
        "{reply}"
    );
    assert_eq!(record.logs.len(), 4096);
}
