//! Interrupts on both backends (SQLite and PostgreSQL), with the real test
//! guests: a node that asks a person stops its run with status
//! `interrupted`; the question is in the store; a bad answer is refused and
//! changes nothing; an answer, a rejection or a timeout lets the run go on
//! and reaches the node that asked; a run waits across a restart of its
//! host; a killed run's question is cancelled; and every frame, the
//! resumed ones included, replays exactly.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weft_engine::{
    Answer, Engine, EngineConfig, EngineError, Inbound, InterruptStatus, LoadedGraph, ManualClock,
    ReplayOptions, RunStatus, Store,
};

mod support;
use support::engine::{artifacts, engine_on, finish};
use support::{AnyStore, Backend, Place, count, db, place};

/// A graph in which `ask` (a test guest in `lang`) asks before `done`
/// runs: each replies with the outcome, and the Rust one also sends it on
/// to `done` in the frame the answer reaches it.
fn graph_yaml(lang: &str) -> String {
    let ask = match lang {
        "rust" => "{ plugin: guest-ask, config: { forward: done }, interrupt_timeout_ms: 60000 }",
        "py" => "{ plugin: py-faulty, config: { fault: ask }, interrupt_timeout_ms: 60000 }",
        _ => "{ plugin: js-faulty, config: { fault: ask }, interrupt_timeout_ms: 60000 }",
    };
    format!(
        r#"
name: ask-{lang}
entry: ask
nodes:
  ask: {ask}
  done: {{ plugin: guest-echo }}
edges:
  - {{ from: ask, to: done }}
"#
    )
}

struct Host {
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    _handle: AnyStore,
}

/// A host on `place` whose clock stands at `now_ms`.
async fn host(place: &Place, now_ms: u64) -> Host {
    let handle = place.open().await;
    let store = handle.store();
    let clock = Arc::new(ManualClock::at_ms(now_ms));
    let config = EngineConfig {
        clock: clock.clone(),
        // Timeouts are driven by the test, not by the background task.
        interrupt_tick: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let engine = engine_on(store.clone(), config).await;
    Host {
        engine,
        store,
        clock,
        _handle: handle,
    }
}

async fn graph(engine: &Engine, lang: &str) -> Arc<LoadedGraph> {
    let file = artifacts().join(format!("ask-{lang}.yaml"));
    Arc::new(
        LoadedGraph::from_yaml(&graph_yaml(lang), &file, engine.plugins(), engine.runtime())
            .await
            .unwrap(),
    )
}

/// Starts a run that asks; returns the thread and run once it waits.
async fn asked(h: &Host, lang: &str) -> (String, String) {
    let graph = graph(&h.engine, lang).await;
    let thread = h.engine.open_thread(None, &graph);
    let handle = h
        .engine
        .start_run(&thread, Inbound::user_text("delete the old invoices"))
        .await
        .unwrap();
    let run = handle.run.clone();
    let trace = finish(handle).await;
    assert_eq!(trace.status, RunStatus::Interrupted, "{}", trace.render());
    let asking = trace.records.iter().find(|r| r.node == "ask").unwrap();
    assert_eq!(
        asking.interrupt.as_deref(),
        Some(format!("{run}/f0/ask").as_str()),
        "{}",
        trace.render()
    );
    (thread, run)
}

/// The outcome the node that asked replied with, in the continued run.
fn outcome(trace: &weft_engine::FrameTrace) -> Value {
    let reply = trace
        .records
        .iter()
        .find(|r| r.node == "ask")
        .and_then(|r| r.reply.clone())
        .unwrap_or_else(|| panic!("no outcome:\n{}", trace.render()));
    serde_json::from_str(&reply).unwrap()
}

async fn a_run_waits_for_an_answer_across_a_restart(backend: Backend, lang: &str) {
    let dir = place(backend, &format!("answer-{lang}"));
    let h = host(&dir, 1_000_000).await;
    let (thread, run) = asked(&h, lang).await;

    // The question is stored, pending, with its deadline.
    let list = h.engine.interrupts(&thread, &run).await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    let q = &list[0];
    assert_eq!(q.status, InterruptStatus::Pending);
    assert_eq!(q.node, "ask");
    assert_eq!(q.deadline_ms, Some(q.created_ms + 60_000));
    assert_eq!(q.answer_schema["required"], json!(["approve"]));
    let stored = h.store.runs(&thread).await.unwrap();
    assert_eq!(stored.last().unwrap().status, "interrupted");

    // The thread is held: a new message is refused.
    let busy = h
        .engine
        .start_run(&thread, Inbound::user_text("and another thing"))
        .await
        .unwrap_err();
    assert!(matches!(busy, EngineError::ThreadBusy { .. }), "{busy}");

    // The host goes away; a new one on the same store holds the run.
    drop(h);
    let h = host(&dir, 1_010_000).await;
    let (resumed, failed) = h.engine.resume_runs().await.unwrap();
    assert!(resumed.is_empty() && failed.is_empty(), "{failed:?}");
    assert_eq!(h.engine.active_run(&thread).as_deref(), Some(run.as_str()));

    // A value that fails the schema changes nothing.
    let bad = h
        .engine
        .answer_interrupt(
            &thread,
            &run,
            None,
            Answer::Value(json!({"approve": "yes"})),
        )
        .await
        .unwrap_err();
    assert!(matches!(bad, EngineError::InvalidAnswer { .. }), "{bad}");
    let still = h.engine.interrupts(&thread, &run).await.unwrap();
    assert_eq!(still[0].status, InterruptStatus::Pending);
    let pending_notices = count(
        &db(&dir),
        "SELECT COUNT(*) FROM messages WHERE thread = ?1 AND kind = 'resume'",
        &thread,
    );
    assert_eq!(pending_notices, 0);

    // The answer goes to the node that asked, and the run completes.
    let answered = h
        .engine
        .answer_interrupt(&thread, &run, None, Answer::Value(json!({"approve": true})))
        .await
        .unwrap();
    assert_eq!(answered.interrupt.status, InterruptStatus::Answered);
    let trace = finish(answered.run.expect("the run goes on")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    let got = outcome(&trace);
    assert_eq!(got["outcome"], "answered", "{got}");
    assert_eq!(got["value"], json!({"approve": true}));
    assert_eq!(got["interrupt"], format!("{run}/f0/ask"));
    if lang == "rust" {
        assert!(
            trace.records.iter().any(|r| r.node == "done"),
            "the outcome was not sent on:\n{}",
            trace.render()
        );
    }
    assert_eq!(
        h.store.runs(&thread).await.unwrap().last().unwrap().status,
        "completed"
    );

    // Answering again is a conflict; the thread takes new messages.
    let again = h
        .engine
        .answer_interrupt(
            &thread,
            &run,
            None,
            Answer::Value(json!({"approve": false})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(again, EngineError::NotInterrupted { .. }),
        "{again}"
    );
    assert_eq!(h.engine.active_run(&thread), None);

    // Every frame replays exactly, the one the answer reached included.
    let report = h
        .engine
        .replay(&thread, ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.reproduced(), "{:#?}", report.divergences);
    assert!(report.frames >= 2, "{report:?}");
}

async fn rust_answer(backend: Backend) {
    a_run_waits_for_an_answer_across_a_restart(backend, "rust").await;
}

async fn python_answer(backend: Backend) {
    a_run_waits_for_an_answer_across_a_restart(backend, "py").await;
}

async fn javascript_answer(backend: Backend) {
    a_run_waits_for_an_answer_across_a_restart(backend, "js").await;
}

async fn a_rejection_and_a_timeout_reach_the_node(backend: Backend) {
    let dir = place(backend, "reject-timeout");
    let h = host(&dir, 2_000_000).await;

    let (thread, run) = asked(&h, "rust").await;
    let rejected = h
        .engine
        .answer_interrupt(&thread, &run, None, Answer::Reject("not today".into()))
        .await
        .unwrap();
    assert_eq!(rejected.interrupt.status, InterruptStatus::Rejected);
    let trace = finish(rejected.run.unwrap()).await;
    let got = outcome(&trace);
    assert_eq!(
        (got["outcome"].as_str(), got["reason"].as_str()),
        (Some("rejected"), Some("not today"))
    );

    // Nothing times out before the deadline; at it, the node hears so.
    let (thread, run) = asked(&h, "rust").await;
    h.clock.advance(Duration::from_millis(59_999));
    assert_eq!(h.engine.time_out_interrupts().await.unwrap(), 0);
    h.clock.advance(Duration::from_millis(1));
    assert_eq!(h.engine.time_out_interrupts().await.unwrap(), 1);
    let list = h.engine.interrupts(&thread, &run).await.unwrap();
    assert_eq!(list[0].status, InterruptStatus::TimedOut);
    // The continued run is on the event stream; wait for its end in the
    // store.
    let mut tries = 0;
    loop {
        let runs = h.store.runs(&thread).await.unwrap();
        if runs.last().unwrap().status == "completed" {
            break;
        }
        tries += 1;
        assert!(tries < 600, "the timed-out run did not complete: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = h
        .engine
        .replay(&thread, ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.reproduced(), "{:#?}", report.divergences);
    let frames = h.store.frames(&thread, 0, 100).await.unwrap();
    let replies: Vec<String> = frames
        .iter()
        .flat_map(|f| &f.invocations)
        .filter(|i| i.record.node == "ask")
        .filter_map(|i| i.record.reply.clone())
        .collect();
    assert!(
        replies.iter().any(|r| r.contains("timed_out")),
        "{replies:?}"
    );

    // An answer to a question nobody asked, and to an unknown one.
    let unknown = h
        .engine
        .answer_interrupt(&thread, &run, Some("nope"), Answer::Value(json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(
            unknown,
            EngineError::UnknownInterrupt { .. } | EngineError::NotInterrupted { .. }
        ),
        "{unknown}"
    );
}

async fn a_killed_run_cancels_its_question(backend: Backend) {
    let dir = place(backend, "kill");
    let h = host(&dir, 3_000_000).await;
    let (thread, run) = asked(&h, "rust").await;
    assert_eq!(h.engine.kill(&thread).unwrap(), run);
    let mut tries = 0;
    loop {
        let list = h.engine.interrupts(&thread, &run).await.unwrap();
        if list[0].status == InterruptStatus::Cancelled {
            break;
        }
        tries += 1;
        assert!(tries < 300, "the question was not cancelled: {list:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        h.store.runs(&thread).await.unwrap().last().unwrap().status,
        "killed"
    );
    let late = h
        .engine
        .answer_interrupt(&thread, &run, None, Answer::Value(json!({"approve": true})))
        .await
        .unwrap_err();
    assert!(matches!(late, EngineError::NotInterrupted { .. }), "{late}");
    // The thread is free again.
    let graph = graph(&h.engine, "rust").await;
    h.engine.set_thread_graph(&thread, &graph);
    let next = h
        .engine
        .start_run(&thread, Inbound::user_text("again"))
        .await
        .unwrap();
    assert_eq!(finish(next).await.status, RunStatus::Interrupted);
}

crate::on_both_backends!(
    rust_answer,
    python_answer,
    javascript_answer,
    a_rejection_and_a_timeout_reach_the_node,
    a_killed_run_cancels_its_question,
);
