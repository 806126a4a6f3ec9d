//! The webhook outbox on both backends (SQLite and PostgreSQL): a run's
//! status change writes its deliveries in the store (one per subscribed
//! webhook of the thread's project, none for other projects or events);
//! claims lease them; attempts reschedule, deliver or fail them; other
//! events are written once per key; removing a webhook removes its
//! deliveries.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use weft_engine::store::{AttemptOutcome, DeliveryAttempt, DeliveryStatus, Webhook, WebhookEvent};
use weft_engine::{Answer, EngineConfig, Inbound, LoadedGraph, RunStatus, Store};

mod support;
use support::engine::{artifacts, engine_on, finish};
use support::{Backend, place};

const GRAPH: &str = r#"
name: hooked
entry: ask
nodes:
  ask: { plugin: guest-ask }
"#;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn hook(id: &str, project: &str, events: &[&str]) -> Webhook {
    Webhook {
        id: id.into(),
        project: project.into(),
        url: "https://example.com/hook".into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        secret: format!("whsec_{id}"),
        created_ms: 1,
    }
}

async fn the_outbox_follows_runs_and_attempts(backend: Backend) {
    let dir = place(backend, "outbox");
    let handle = dir.open().await;
    let store: Arc<dyn Store> = handle.store();
    let engine = engine_on(store.clone(), EngineConfig::default()).await;
    store
        .put_webhook(hook(
            "wh_a",
            "default",
            &["run_finished", "run_interrupted"],
        ))
        .await
        .unwrap();
    store
        .put_webhook(hook("wh_b", "default", &["run_failed"]))
        .await
        .unwrap();
    store
        .put_webhook(hook(
            "wh_other",
            "elsewhere",
            &["run_finished", "run_interrupted"],
        ))
        .await
        .unwrap();
    assert_eq!(
        store.webhooks(Some("default".into())).await.unwrap().len(),
        2
    );
    assert_eq!(store.webhooks(None).await.unwrap().len(), 3);

    // A run asks (run_interrupted), is answered and completes
    // (run_finished): two deliveries for wh_a, none for the others.
    let file = artifacts().join("hooked.yaml");
    let graph = Arc::new(
        LoadedGraph::from_yaml(GRAPH, &file, engine.plugins(), engine.runtime())
            .await
            .unwrap(),
    );
    let thread = engine.open_thread(None, &graph);
    let handle_run = engine
        .start_run(&thread, Inbound::user_text("go"))
        .await
        .unwrap();
    let run = handle_run.run.clone();
    assert_eq!(finish(handle_run).await.status, RunStatus::Interrupted);
    let answered = engine
        .answer_interrupt(&thread, &run, None, Answer::Value(json!({"approve": true})))
        .await
        .unwrap();
    assert_eq!(
        finish(answered.run.unwrap()).await.status,
        RunStatus::Completed
    );
    let page = store.deliveries("wh_a", 10, 0).await.unwrap();
    assert_eq!(page.total, 2, "{page:?}");
    let events: Vec<&str> = page.items.iter().map(|d| d.event.as_str()).collect();
    assert_eq!(events, ["run_finished", "run_interrupted"], "newest first");
    let body: Value = serde_json::from_str(&page.items[0].body).unwrap();
    assert_eq!(body["type"], "run_finished");
    assert_eq!(body["id"], page.items[0].id.as_str());
    assert_eq!(body["project"], "default");
    assert_eq!(body["data"]["threadId"], thread.as_str());
    assert_eq!(body["data"]["runId"], run.as_str());
    assert_eq!(body["data"]["status"], "completed");
    assert!(
        page.items
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending)
    );
    assert_eq!(store.deliveries("wh_b", 10, 0).await.unwrap().total, 0);
    assert_eq!(store.deliveries("wh_other", 10, 0).await.unwrap().total, 0);

    // Claims lease what is due; a second claim gets nothing meanwhile.
    let now = now_ms() + 1;
    let claimed = store.claim_deliveries(now, 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|c| c.url == "https://example.com/hook"));
    assert!(
        claimed
            .iter()
            .all(|c| c.secret == "whsec_wh_a" && c.attempts == 0)
    );
    assert!(
        store
            .claim_deliveries(now, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A failed attempt reschedules; a later one delivers; one out of
    // attempts fails.
    let attempt = |n: u32, code: u16| DeliveryAttempt {
        attempt: n,
        at_ms: now,
        status_code: Some(code),
        error: (code >= 300).then(|| format!("HTTP {code}")),
        duration_ms: 3,
    };
    let (first, second) = (
        claimed[0].delivery.id.clone(),
        claimed[1].delivery.id.clone(),
    );
    store
        .record_attempt(AttemptOutcome {
            delivery: first.clone(),
            attempt: attempt(1, 500),
            status: DeliveryStatus::Pending,
            next_ms: now + 5_000,
        })
        .await
        .unwrap();
    store
        .record_attempt(AttemptOutcome {
            delivery: second.clone(),
            attempt: attempt(1, 500),
            status: DeliveryStatus::Failed,
            next_ms: now,
        })
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries(now + 4_999, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_deliveries(now + 5_000, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].delivery.id.as_str(), again[0].attempts),
        (first.as_str(), 1)
    );
    store
        .record_attempt(AttemptOutcome {
            delivery: first.clone(),
            attempt: attempt(2, 204),
            status: DeliveryStatus::Delivered,
            next_ms: now,
        })
        .await
        .unwrap();
    let page = store.deliveries("wh_a", 10, 0).await.unwrap();
    let by_id = |id: &str| page.items.iter().find(|d| d.id == id).unwrap().clone();
    let delivered = by_id(&first);
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(
        delivered
            .attempts
            .iter()
            .map(|a| a.status_code)
            .collect::<Vec<_>>(),
        [Some(500), Some(204)]
    );
    assert_eq!(delivered.attempts[0].error.as_deref(), Some("HTTP 500"));
    assert_eq!(by_id(&second).status, DeliveryStatus::Failed);
    assert!(
        store
            .claim_deliveries(now + 600_000, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Other events: once per key, for the subscribed webhooks of the
    // project only.
    store
        .put_webhook(hook("wh_budget", "default", &["budget_warning"]))
        .await
        .unwrap();
    let warning = WebhookEvent {
        project: "default".into(),
        event: "budget_warning".into(),
        key: format!("budget_warning/{run}/0/thread/75"),
        data: json!({"scope": "thread", "percent": 75}),
        at_ms: now,
    };
    assert_eq!(
        store.enqueue_webhook_event(warning.clone()).await.unwrap(),
        1
    );
    assert_eq!(store.enqueue_webhook_event(warning).await.unwrap(), 0);
    let budget = store.deliveries("wh_budget", 10, 0).await.unwrap();
    assert_eq!(budget.total, 1);
    let body: Value = serde_json::from_str(&budget.items[0].body).unwrap();
    assert_eq!(body["data"]["percent"], 75);

    // Removing a webhook removes its deliveries.
    assert!(store.delete_webhook("wh_a").await.unwrap());
    assert!(!store.delete_webhook("wh_a").await.unwrap());
    assert_eq!(store.deliveries("wh_a", 10, 0).await.unwrap().total, 0);
}

crate::on_both_backends!(the_outbox_follows_runs_and_attempts);
