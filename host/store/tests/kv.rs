//! The `store` capability (contract 0.3.0) on both backends (SQLite and
//! PostgreSQL), with a real test guest: what one thread of a project writes
//! another thread of the project reads and lists, committed with the frame;
//! another project sees none of it; a node without the grant is denied;
//! the limits answer with clear errors; every frame replays exactly.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

use std::sync::Arc;

use serde_json::{Value, json};
use weft_engine::{Engine, EngineConfig, Inbound, LoadedGraph, ReplayOptions, RunStatus, Store};

mod support;
use support::engine::{artifacts, engine_on, finish};
use support::{AnyStore, Backend, Place, place};

const GRAPH: &str = r#"
name: kv
entry: kv
nodes:
  kv: { plugin: guest-kv, grants: [store] }
  ungranted: { plugin: guest-kv }
edges:
  - { from: kv, to: [ungranted] }
"#;

struct Host {
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    graph: Arc<LoadedGraph>,
    _handle: AnyStore,
}

async fn host(place: &Place) -> Host {
    let handle = place.open().await;
    let store = handle.store();
    let engine = engine_on(store.clone(), EngineConfig::default()).await;
    let graph = Arc::new(
        LoadedGraph::from_yaml(
            GRAPH,
            &artifacts().join("kv.yaml"),
            engine.plugins(),
            engine.runtime(),
        )
        .await
        .unwrap(),
    );
    Host {
        engine,
        store,
        graph,
        _handle: handle,
    }
}

/// Runs `ops` on a node of a new run of `thread`; returns the answers.
async fn run(h: &Host, thread: &str, node: &str, ops: Value) -> Vec<Value> {
    let handle = h
        .engine
        .start_run(thread, Inbound::to(node, "ops", &json!({ "ops": ops })))
        .await
        .unwrap();
    let trace = finish(handle).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    let reply = trace
        .reply
        .as_deref()
        .unwrap_or_else(|| panic!("{}", trace.render()));
    serde_json::from_str(reply).unwrap()
}

fn set(ns: &str, key: &str, value: &str) -> Value {
    json!({"op": "set", "namespace": ns, "key": key, "value": value})
}

fn get(ns: &str, key: &str) -> Value {
    json!({"op": "get", "namespace": ns, "key": key})
}

fn list(ns: &str, prefix: &str) -> Value {
    json!({"op": "list", "namespace": ns, "prefix": prefix})
}

async fn threads_of_a_project_share_it_and_other_projects_do_not_see_it(backend: Backend) {
    let dir = place(backend, "kv-share");
    let h = host(&dir).await;
    let a = h.engine.open_thread_in("acme", None, &h.graph);
    let b = h.engine.open_thread_in("acme", None, &h.graph);
    let other = h.engine.open_thread_in("globex", None, &h.graph);

    // Writes are visible to reads in the same tick, and listed in order.
    let answers = run(
        &h,
        &a,
        "kv",
        json!([
            set("orders", "o-2", "shipped"),
            set("orders", "o-1", "paid"),
            set("orders", "x-9", "other"),
            set("prices", "o-1", "12.50"),
            get("orders", "o-1"),
            list("orders", "o-"),
        ]),
    )
    .await;
    assert_eq!(answers[4], json!({"ok": "paid"}), "{answers:?}");
    assert_eq!(answers[5], json!({"ok": ["o-1", "o-2"]}), "{answers:?}");

    // Another thread of the project reads what the first committed; its own
    // delete and write in one tick are laid over the committed keys.
    let answers = run(
        &h,
        &b,
        "kv",
        json!([
            get("orders", "o-2"),
            get("prices", "o-1"),
            {"op": "delete", "namespace": "orders", "key": "o-1"},
            set("orders", "o-3", "new"),
            list("orders", ""),
            {"op": "list", "namespace": "orders", "prefix": "", "after": "o-2", "limit": 1},
            get("orders", "missing"),
        ]),
    )
    .await;
    assert_eq!(
        answers,
        [
            json!({"ok": "shipped"}),
            json!({"ok": "12.50"}),
            json!({"ok": null}),
            json!({"ok": null}),
            json!({"ok": ["o-2", "o-3", "x-9"]}),
            json!({"ok": ["o-3"]}),
            json!({"ok": null}),
        ]
    );
    let answers = run(
        &h,
        &a,
        "kv",
        json!([list("orders", ""), get("orders", "o-1")]),
    )
    .await;
    assert_eq!(answers[0], json!({"ok": ["o-2", "o-3", "x-9"]}));
    assert_eq!(answers[1], json!({"ok": null}));

    // Another project: its own, empty, state; its writes stay in it.
    let answers = run(
        &h,
        &other,
        "kv",
        json!([
            get("orders", "o-2"),
            list("orders", ""),
            set("orders", "o-2", "theirs")
        ]),
    )
    .await;
    assert_eq!(
        answers,
        [json!({"ok": null}), json!({"ok": []}), json!({"ok": null})]
    );
    assert_eq!(
        h.store
            .kv_get("acme", "orders", "o-2")
            .await
            .unwrap()
            .as_deref(),
        Some("shipped")
    );
    assert_eq!(
        h.store
            .kv_get("globex", "orders", "o-2")
            .await
            .unwrap()
            .as_deref(),
        Some("theirs")
    );

    // Every frame, the store's calls answered from the journal, replays
    // exactly; and a replay changes nothing.
    for thread in [&a, &b, &other] {
        let report = h
            .engine
            .replay(thread, ReplayOptions::default())
            .await
            .unwrap();
        assert!(report.reproduced(), "{report:?}");
        assert!(report.journal_entries > 0);
    }
    assert_eq!(h.store.kv_count("acme").await.unwrap(), 4);
}

async fn a_node_without_the_grant_is_denied_and_limits_are_clear(backend: Backend) {
    let dir = place(backend, "kv-limits");
    let h = host(&dir).await;
    let t = h.engine.open_thread_in("acme", None, &h.graph);
    let answers = run(
        &h,
        &t,
        "ungranted",
        json!([get("n", "k"), set("n", "k", "v")]),
    )
    .await;
    assert_eq!(
        answers,
        [
            json!({"err": "denied(store)"}),
            json!({"err": "denied(store)"})
        ]
    );

    let long_key = "k".repeat(257);
    let big = "v".repeat(64 * 1024 + 1);
    let answers = run(
        &h,
        &t,
        "kv",
        json!([
            set("n", &long_key, "v"),
            set("", "k", "v"),
            set("n", "tab\there", "v"),
            set("n", "k", &big),
            {"op": "list", "namespace": "n", "limit": 0},
            {"op": "fill", "namespace": "many", "count": 300},
        ]),
    )
    .await;
    let err = |i: usize| answers[i]["err"].as_str().unwrap_or_default().to_owned();
    assert!(err(0).starts_with("invalid-input"), "{answers:?}");
    assert!(err(1).starts_with("invalid-input"), "{answers:?}");
    assert!(err(2).starts_with("invalid-input"), "{answers:?}");
    assert!(err(3).starts_with("limit-exceeded"), "{answers:?}");
    assert!(err(4).starts_with("invalid-input"), "{answers:?}");
    assert_eq!(answers[5]["ok"], 256, "{answers:?}");
    assert!(
        answers[5]["refused"]
            .as_str()
            .unwrap()
            .contains("256 store keys written per invocation"),
        "{answers:?}"
    );
    // What was accepted was committed; nothing refused was.
    assert_eq!(h.store.kv_count("acme").await.unwrap(), 256);
    assert_eq!(h.store.kv_get("acme", "n", "k").await.unwrap(), None);
}

/// A project holds at most 10 000 keys: the set past that is refused (and
/// overwriting or deleting a key still works).
async fn a_project_holds_at_most_its_keys(backend: Backend) {
    let dir = place(backend, "kv-count");
    let h = host(&dir).await;
    let t = h.engine.open_thread_in("full", None, &h.graph);
    let mut total = 0u64;
    for round in 0..40 {
        let ns = format!("ns{round}");
        let answers = run(
            &h,
            &t,
            "kv",
            json!([{"op": "fill", "namespace": ns, "count": 256}]),
        )
        .await;
        total += answers[0]["ok"].as_u64().unwrap();
        if let Some(why) = answers[0]["refused"].as_str() {
            assert!(why.starts_with("limit-exceeded"), "{why}");
            assert!(why.contains("the most it may"), "{why}");
            break;
        }
    }
    assert_eq!(total, 10_000);
    assert_eq!(h.store.kv_count("full").await.unwrap(), 10_000);
    let answers = run(
        &h,
        &t,
        "kv",
        json!([
            set("ns0", "k0", "again"),
            {"op": "delete", "namespace": "ns0", "key": "k1"},
            set("ns0", "k1", "back"),
            set("ns0", "new", "no room"),
        ]),
    )
    .await;
    assert_eq!(answers[0], json!({"ok": null}), "{answers:?}");
    assert_eq!(answers[1], json!({"ok": null}), "{answers:?}");
    assert_eq!(answers[2], json!({"ok": null}), "{answers:?}");
    assert!(
        answers[3]["err"]
            .as_str()
            .unwrap()
            .starts_with("limit-exceeded"),
        "{answers:?}"
    );
}

crate::on_both_backends!(
    threads_of_a_project_share_it_and_other_projects_do_not_see_it,
    a_node_without_the_grant_is_denied_and_limits_are_clear,
    a_project_holds_at_most_its_keys,
);
