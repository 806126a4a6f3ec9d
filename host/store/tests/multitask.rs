//! Double-texting on both backends (SQLite and PostgreSQL), with the real
//! test guests: a message for a thread whose run is in flight is refused,
//! queued behind the run (across a restart too), or queued first with the
//! run stopped at its next frame boundary, kept (`preempted`) or with its
//! memory writes undone and its messages out of the thread's history
//! (`rolled_back`).
//!
//! The busy run is one that waits for a person's answer (`guest-ask`),
//! which holds its thread for as long as the test wants; `remember` makes
//! it append each message's text to the thread's memory and report that
//! list in its reply, so a reply shows which runs' writes the thread kept.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weft_engine::{
    Answer, Engine, EngineConfig, EngineError, EventBody, Inbound, LoadedGraph, Multitask,
    ReplayOptions, RunHandle, RunStatus, Sent, Store,
};

mod support;
use support::engine::{artifacts, engine_on, finish};
use support::{AnyStore, Backend, Place, place};

const ASKING: &str = r#"
name: texting
entry: ask
nodes:
  ask: { plugin: guest-ask, grants: [memory], config: { remember: true } }
"#;

/// Two nodes passing a message back and forth until the frame limit: a
/// run that is in flight (not waiting) for as long as it takes.
const BUSY: &str = r#"
name: busy
entry: a
defaults: { max_frames: 1000 }
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b }] } }
  b: { plugin: guest-relay, config: { send: [{ to: a }] } }
edges:
  - { from: a, to: b }
  - { from: b, to: a }
"#;

struct Host {
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    _handle: AnyStore,
}

async fn host(place: &Place) -> Host {
    let handle = place.open().await;
    let store = handle.store();
    let engine = engine_on(store.clone(), EngineConfig::default()).await;
    Host {
        engine,
        store,
        _handle: handle,
    }
}

async fn graph(engine: &Engine, yaml: &str) -> Arc<LoadedGraph> {
    let file = artifacts().join("texting.yaml");
    Arc::new(
        LoadedGraph::from_yaml(yaml, &file, engine.plugins(), engine.runtime())
            .await
            .unwrap(),
    )
}

/// Sends `text`; the run must start.
async fn started(engine: &Engine, thread: &str, text: &str, policy: Multitask) -> RunHandle {
    match engine
        .send(thread, Inbound::user_text(text), policy)
        .await
        .unwrap()
    {
        Sent::Started(handle) => handle,
        queued => panic!("`{text}` was queued: {queued:?}"),
    }
}

/// Sends `text`; the run must be queued. Returns its id and position.
async fn queued(engine: &Engine, thread: &str, text: &str, policy: Multitask) -> (String, usize) {
    match engine
        .send(thread, Inbound::user_text(text), policy)
        .await
        .unwrap()
    {
        Sent::Queued { run, position, .. } => (run, position),
        Sent::Started(h) => panic!("`{text}` started at once as {}", h.run),
    }
}

/// Starts a run with `text` that asks, and waits until it waits.
async fn waiting(engine: &Engine, thread: &str, text: &str) -> String {
    let handle = started(engine, thread, text, Multitask::Reject).await;
    let run = handle.run.clone();
    let trace = finish(handle).await;
    assert_eq!(trace.status, RunStatus::Interrupted, "{}", trace.render());
    run
}

/// Waits until `run` of `thread` asks (it was queued and started).
async fn until_asking(engine: &Engine, thread: &str, run: &str) {
    for _ in 0..1200 {
        if engine.active_run(thread).as_deref() == Some(run)
            && engine
                .interrupts(thread, run)
                .await
                .is_ok_and(|l| !l.is_empty())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run} never asked");
}

/// Approves `run`'s question; returns the outcome its node replied with.
async fn approve(engine: &Engine, thread: &str, run: &str) -> Value {
    let answered = engine
        .answer_interrupt(thread, run, None, Answer::Value(json!({"approve": true})))
        .await
        .unwrap();
    let trace = finish(answered.run.expect("the run goes on")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    serde_json::from_str(trace.reply.as_deref().unwrap()).unwrap()
}

/// The thread's runs as (id, status), in the order they were accepted.
async fn runs(store: &dyn Store, thread: &str) -> Vec<(String, String)> {
    store
        .runs(thread)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.status))
        .collect()
}

/// The texts of the user messages in the thread's history.
async fn history(store: &dyn Store, thread: &str) -> Vec<String> {
    store
        .messages(thread)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.from == "user")
        .map(|m| {
            let body: Value = serde_json::from_str(&m.body).unwrap();
            body["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The thread's memory key `seen`.
async fn seen(store: &dyn Store, thread: &str) -> Value {
    store
        .memory(thread)
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.key == "seen")
        .and_then(|w| w.value)
        .map_or(Value::Null, |v| serde_json::from_str(&v).unwrap())
}

async fn reject_refuses_and_changes_nothing(backend: Backend) {
    let dir = place(backend, "mt-reject");
    let h = host(&dir).await;
    let g = graph(&h.engine, ASKING).await;
    let thread = h.engine.open_thread(None, &g);
    let first = waiting(&h.engine, &thread, "one").await;

    let busy = h
        .engine
        .send(&thread, Inbound::user_text("two"), Multitask::Reject)
        .await
        .unwrap_err();
    assert!(
        matches!(&busy, EngineError::ThreadBusy { run, .. } if *run == first),
        "{busy}"
    );
    assert_eq!(runs(h.store.as_ref(), &thread).await.len(), 1);
    assert_eq!(history(h.store.as_ref(), &thread).await, ["one"]);
}

async fn enqueue_runs_after_the_run_in_flight_in_order(backend: Backend) {
    let dir = place(backend, "mt-enqueue");
    let h = host(&dir).await;
    let g = graph(&h.engine, ASKING).await;
    let thread = h.engine.open_thread(None, &g);
    let mut events = h.engine.subscribe();
    let first = waiting(&h.engine, &thread, "one").await;

    let (second, at) = queued(&h.engine, &thread, "two", Multitask::Enqueue).await;
    assert_eq!(at, 0);
    let (third, at) = queued(&h.engine, &thread, "three", Multitask::Enqueue).await;
    assert_eq!(at, 1);
    assert_eq!(
        h.engine.queued_runs(&thread),
        [second.clone(), third.clone()]
    );
    // Committed before the answer: both are in the store as queued, with
    // their messages, and the run in flight is untouched.
    assert_eq!(
        runs(h.store.as_ref(), &thread).await,
        [
            (first.clone(), "interrupted".into()),
            (second.clone(), "queued".into()),
            (third.clone(), "queued".into()),
        ]
    );
    assert_eq!(
        history(h.store.as_ref(), &thread).await,
        ["one", "two", "three"]
    );
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = events.recv().await.unwrap();
            if let EventBody::RunQueued {
                position,
                behind,
                multitask,
            } = &e.body
            {
                break (e.run.clone(), *position, behind.clone(), *multitask);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        event,
        (second.clone(), 0, first.clone(), Multitask::Enqueue)
    );

    // Each starts when the one before it ends, and sees its writes.
    assert_eq!(
        approve(&h.engine, &thread, &first).await["seen"],
        json!(["one"])
    );
    until_asking(&h.engine, &thread, &second).await;
    assert_eq!(
        approve(&h.engine, &thread, &second).await["seen"],
        json!(["one", "two"])
    );
    until_asking(&h.engine, &thread, &third).await;
    assert_eq!(
        approve(&h.engine, &thread, &third).await["seen"],
        json!(["one", "two", "three"])
    );
    let statuses: Vec<String> = runs(h.store.as_ref(), &thread)
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(statuses, ["completed", "completed", "completed"]);
    assert!(h.engine.queued_runs(&thread).is_empty());
}

async fn a_queued_run_survives_a_restart(backend: Backend) {
    let dir = place(backend, "mt-restart");
    let (thread, first, second) = {
        let h = host(&dir).await;
        let g = graph(&h.engine, ASKING).await;
        let thread = h.engine.open_thread(None, &g);
        let first = waiting(&h.engine, &thread, "one").await;
        let (second, _) = queued(&h.engine, &thread, "two", Multitask::Enqueue).await;
        (thread, first, second)
    };
    // The host goes away; a new one holds the waiting run again and the
    // queued one behind it.
    let h = host(&dir).await;
    let (resumed, failed) = h.engine.resume_runs().await.unwrap();
    assert!(resumed.is_empty() && failed.is_empty(), "{failed:?}");
    assert_eq!(
        h.engine.active_run(&thread).as_deref(),
        Some(first.as_str())
    );
    assert_eq!(h.engine.queued_runs(&thread), std::slice::from_ref(&second));
    approve(&h.engine, &thread, &first).await;
    until_asking(&h.engine, &thread, &second).await;
    assert_eq!(
        approve(&h.engine, &thread, &second).await["seen"],
        json!(["one", "two"])
    );
}

async fn interrupt_stops_the_run_and_keeps_its_effects(backend: Backend) {
    let dir = place(backend, "mt-interrupt");
    let h = host(&dir).await;
    let g = graph(&h.engine, ASKING).await;
    let thread = h.engine.open_thread(None, &g);
    let first = waiting(&h.engine, &thread, "one").await;
    approve(&h.engine, &thread, &first).await;
    let second = waiting(&h.engine, &thread, "two").await;

    let (third, at) = queued(&h.engine, &thread, "three", Multitask::Interrupt).await;
    assert_eq!(at, 0);
    until_asking(&h.engine, &thread, &third).await;
    // The waiting run ended preempted, its question cancelled; its write
    // and its message stay.
    assert_eq!(
        runs(h.store.as_ref(), &thread).await,
        [
            (first.clone(), "completed".into()),
            (second.clone(), "preempted".into()),
            (third.clone(), "interrupted".into()),
        ]
    );
    let questions = h.engine.interrupts(&thread, &second).await.unwrap();
    assert_eq!(questions[0].status, weft_engine::InterruptStatus::Cancelled);
    assert_eq!(
        history(h.store.as_ref(), &thread).await,
        ["one", "two", "three"]
    );
    assert_eq!(
        approve(&h.engine, &thread, &third).await["seen"],
        json!(["one", "two", "three"])
    );
}

async fn rollback_undoes_the_runs_writes_and_messages(backend: Backend) {
    let dir = place(backend, "mt-rollback");
    let h = host(&dir).await;
    let g = graph(&h.engine, ASKING).await;
    let thread = h.engine.open_thread(None, &g);
    let first = waiting(&h.engine, &thread, "one").await;
    approve(&h.engine, &thread, &first).await;
    let second = waiting(&h.engine, &thread, "two").await;
    assert_eq!(seen(h.store.as_ref(), &thread).await, json!(["one", "two"]));

    let (third, _) = queued(&h.engine, &thread, "three", Multitask::Rollback).await;
    until_asking(&h.engine, &thread, &third).await;
    assert_eq!(
        runs(h.store.as_ref(), &thread).await,
        [
            (first.clone(), "completed".into()),
            (second.clone(), "rolled_back".into()),
            (third.clone(), "interrupted".into()),
        ]
    );
    // The stopped run's message left the history and its write was undone
    // before the new run read the memory.
    assert_eq!(history(h.store.as_ref(), &thread).await, ["one", "three"]);
    assert_eq!(
        approve(&h.engine, &thread, &third).await["seen"],
        json!(["one", "three"])
    );
    assert_eq!(
        seen(h.store.as_ref(), &thread).await,
        json!(["one", "three"])
    );
    // Its frames stay, and every frame of the thread still replays exactly.
    let report = h
        .engine
        .replay(&thread, ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.divergences.is_empty(), "{report:?}");
    // A fork after the rollback does not bring the undone write back.
    let frames = h.store.thread(&thread).await.unwrap().unwrap().frames;
    let (fork, _) = h.engine.fork(&thread, frames - 1).await.unwrap();
    assert_eq!(seen(h.store.as_ref(), &fork).await, json!(["one", "three"]));

    // A rollback of a run whose thread had no earlier write leaves none.
    let other = h.engine.open_thread(None, &g);
    waiting(&h.engine, &other, "alone").await;
    let (next, _) = queued(&h.engine, &other, "again", Multitask::Rollback).await;
    until_asking(&h.engine, &other, &next).await;
    assert_eq!(seen(h.store.as_ref(), &other).await, json!(["again"]));
}

async fn a_running_run_is_preempted_at_a_frame_boundary(backend: Backend) {
    let dir = place(backend, "mt-running");
    let h = host(&dir).await;
    let g = graph(&h.engine, BUSY).await;
    let thread = h.engine.open_thread(None, &g);
    let mut events = h.engine.subscribe();
    let handle = h
        .engine
        .start_run(&thread, Inbound::to("a", "relay", &json!({"n": 0})))
        .await
        .unwrap();
    let first = handle.run.clone();
    // Some frames in, it is preempted by a new message.
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let e = events.recv().await.unwrap();
            if e.run == first && e.frame == Some(2) && matches!(e.body, EventBody::Frame(_)) {
                break;
            }
        }
    })
    .await
    .unwrap();
    let sent = h
        .engine
        .send(
            &thread,
            Inbound::to("a", "relay", &json!({"n": 0})),
            Multitask::Interrupt,
        )
        .await
        .unwrap();
    let Sent::Queued {
        run: second,
        behind,
        ..
    } = sent
    else {
        panic!("started at once: {sent:?}");
    };
    assert_eq!(behind, first);
    let trace = finish(handle).await;
    assert_eq!(trace.status, RunStatus::Preempted, "{}", trace.render());
    assert!(trace.frames >= 3 && trace.frames < 1000, "{}", trace.frames);
    // The new run holds the thread; killing it ends the test quickly.
    assert_eq!(
        h.engine.active_run(&thread).as_deref(),
        Some(second.as_str())
    );
    h.engine.kill(&thread).unwrap();
    let stored = runs(h.store.as_ref(), &thread).await;
    assert_eq!(stored[0], (first, "preempted".into()));
}

crate::on_both_backends!(
    reject_refuses_and_changes_nothing,
    enqueue_runs_after_the_run_in_flight_in_order,
    a_queued_run_survives_a_restart,
    interrupt_stops_the_run_and_keeps_its_effects,
    rollback_undoes_the_runs_writes_and_messages,
    a_running_run_is_preempted_at_a_frame_boundary,
);

/// Without a store there are no frames to undo a run from: `rollback` is
/// refused with a clear error, and the thread is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_needs_a_store() {
    let rt = support::engine::runtime();
    let plugins = support::engine::plugins(&rt).await;
    let backends = weft_engine::Backends {
        llm: Arc::new(weft_runtime::capabilities::llm::Scripted::default()),
        db: Arc::new(weft_runtime::capabilities::db::InMemoryDb::default()),
        tools: weft_engine::Backends::no_tools(),
    };
    let engine = Engine::new(rt, plugins, backends, EngineConfig::default());
    let g = graph(&engine, ASKING).await;
    let thread = engine.open_thread(None, &g);
    let first = waiting(&engine, &thread, "one").await;
    let refused = engine
        .send(&thread, Inbound::user_text("two"), Multitask::Rollback)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, EngineError::PolicyUnavailable(_)),
        "{refused}"
    );
    assert_eq!(engine.active_run(&thread).as_deref(), Some(first.as_str()));
    assert!(engine.queued_runs(&thread).is_empty());
    // `interrupt` works without a store.
    let (second, _) = queued(&engine, &thread, "two", Multitask::Interrupt).await;
    until_asking(&engine, &thread, &second).await;
}
