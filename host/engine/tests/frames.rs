//! The frame semantics, routing, payload validation, pause, kill, limits and
//! faults, with the configurable relay guest and the fault guests.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use weft_engine::{EngineError, EventBody, Inbound, RunStatus};
use weft_runtime::capabilities::llm::Scripted;

const CHAIN: &str = r#"
name: chain
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b }] } }
  b: { plugin: guest-relay, config: { send: [{ to: c }] } }
  c: { plugin: guest-relay, config: { reply: true } }
edges:
  - { from: a, to: b }
  - { from: b, to: c }
"#;

fn n(value: i64) -> Inbound {
    Inbound::to("a", "relay", &json!({ "n": value }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_in_frame_n_arrive_in_frame_n_plus_1() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(&engine, "chain.yaml", CHAIN).await;
    let trace = run(&engine, &graph, n(1)).await;
    assert_eq!(trace.status, RunStatus::Completed);
    assert_eq!(trace.frames, 3);
    assert_eq!(trace.path(), vec![vec!["a"], vec!["b"], vec!["c"]]);
    assert_eq!(
        reply_json(&trace),
        json!({"node": "c", "frame": 2, "inbox": [3], "undelivered": []})
    );
    // Ids are deterministic (run/frame/sender/index) and the route is recorded.
    let a = &trace.records[0];
    assert_eq!(a.sent.len(), 1);
    assert_eq!(
        a.sent[0].delivered_as.as_deref(),
        Some(format!("{}/0/a/0", trace.run).as_str())
    );
    assert_eq!(trace.records[1].inbox[0].id, format!("{}/0/a/0", trace.run));
    assert_eq!(trace.records[1].inbox[0].from, "a");
    for r in &trace.records {
        assert_eq!(r.plugin, "guest-relay");
        assert_eq!(
            r.plugin_hash,
            graph.plugin(&r.node).unwrap().hash().to_hex()
        );
        assert!(r.fuel_used > 0 && r.error.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_several_senders_is_invoked_once_per_frame_with_all_of_them() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(
        &engine,
        "fan.yaml",
        r#"
name: fan
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b }, { to: c }] } }
  b: { plugin: guest-relay, config: { send: [{ to: d, body: { n: 10 } }] } }
  c: { plugin: guest-relay, config: { send: [{ to: d, body: { n: 20 } }] } }
  d: { plugin: guest-relay, config: { reply: true } }
edges:
  - { from: a, to: [b, c] }
  - { from: b, to: d }
  - { from: c, to: d }
"#,
    )
    .await;
    let trace = run(&engine, &graph, n(0)).await;
    assert_eq!(trace.path(), vec![vec!["a"], vec!["b", "c"], vec!["d"]]);
    // Graph order, not finishing order: b's message comes first.
    assert_eq!(reply_json(&trace)["inbox"], json!([10, 20]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_to_a_non_peer_is_rejected_with_the_detail_only_in_the_trace() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(
        &engine,
        "nonpeer.yaml",
        r#"
name: nonpeer
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b }, { to: c }, { to: nowhere }], reply: true } }
  b: { plugin: guest-relay }
  c: { plugin: guest-relay }
edges:
  - { from: a, to: b }
  - { from: b, to: c }
"#,
    )
    .await;
    let trace = run(&engine, &graph, n(1)).await;
    assert_eq!(trace.status, RunStatus::Completed);
    let a0 = &trace.records[0];
    assert!(a0.sent[0].rejected.is_none());
    let to_c = a0.sent[1].rejected.as_ref().expect("c is not a peer of a");
    assert_eq!(to_c.code, "not_a_peer");
    assert!(to_c.message.contains("no edge") && to_c.message.contains("[b]"));
    let to_nowhere = a0.sent[2].rejected.as_ref().unwrap();
    assert_eq!(to_nowhere.code, "unknown_node");
    assert!(to_nowhere.message.contains("no such node"));
    // The sender is told in the next frame, without the topology.
    assert_eq!(trace.path(), vec![vec!["a"], vec!["a", "b"]]);
    let told = reply_json(&trace);
    assert_eq!(told["node"], "a");
    assert_eq!(told["undelivered"][0]["to"], "c");
    assert_eq!(told["undelivered"][0]["code"], "not_a_peer");
    let message = told["undelivered"][0]["message"].as_str().unwrap();
    assert_eq!(message, "the message to `c` was not delivered: no route");
    assert_eq!(trace.errors().count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_payload_is_rejected_at_the_sender_with_the_validation_message() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(
        &engine,
        "payload.yaml",
        r#"
name: payload
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b, body: { n: "seven" } }], reply: true } }
  b: { plugin: guest-relay, config: { reply: true } }
edges:
  - { from: a, to: b }
"#,
    )
    .await;
    let mut events = engine.subscribe();
    let trace = run(&engine, &graph, n(1)).await;
    let rejected = trace.records[0].sent[0].rejected.as_ref().unwrap();
    assert_eq!(rejected.code, "invalid_payload");
    assert!(rejected.message.contains("/n"), "{}", rejected.message);
    assert!(rejected.message.contains("integer"), "{}", rejected.message);
    // b never ran; a heard why.
    assert!(trace.records.iter().all(|r| r.node == "a"));
    let told = reply_json(&trace);
    assert_eq!(told["undelivered"][0]["code"], "invalid_payload");
    assert!(
        told["undelivered"][0]["message"]
            .as_str()
            .unwrap()
            .contains("integer")
    );
    let error = wait_for(&mut events, |e| matches!(e.body, EventBody::Error(_))).await;
    assert_eq!(error.node.as_deref(), Some("a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inbound_messages_are_refused_before_a_run_starts() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(&engine, "chain.yaml", CHAIN).await;
    let thread = engine.open_thread(Some("t-bad"), &graph);
    let invalid = engine
        .start_run(&thread, Inbound::to("a", "relay", &json!({"n": "x"})))
        .await
        .unwrap_err();
    assert!(matches!(&invalid, EngineError::InvalidPayload { node, .. } if node == "a"));
    let not_json = engine
        .start_run(
            &thread,
            Inbound {
                to: None,
                kind: "relay".into(),
                body: "{".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&not_json, EngineError::InvalidPayload { message, .. } if message.contains("not JSON"))
    );
    let unknown = engine
        .start_run(&thread, Inbound::to("zz", "relay", &json!({"n": 1})))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), "unknown_node");
    assert_eq!(
        engine.start_run("nope", n(1)).await.unwrap_err(),
        EngineError::UnknownThread("nope".into())
    );
    // Nothing started: the thread takes a good message at once.
    let trace = run_on(&engine, &thread, n(1)).await;
    assert_eq!(trace.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_gets_no_ticks_and_resume_delivers_its_messages() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(&engine, "chain.yaml", CHAIN).await;
    let mut events = engine.subscribe();
    assert!(engine.pause(None, "b"));
    assert!(!engine.pause(None, "b"));
    let thread = engine.open_thread(None, &graph);
    let handle = engine.start_run(&thread, n(5)).await.unwrap();
    let run_id = handle.run.clone();
    wait_for(&mut events, |e| is_status(e, &run_id, RunStatus::Waiting)).await;
    // The thread is busy while its run waits.
    assert_eq!(
        engine.start_run(&thread, n(1)).await.unwrap_err().code(),
        "thread_busy"
    );
    assert!(engine.resume(None, "b"));
    let trace = handle.finish().await.unwrap();
    assert_eq!(trace.status, RunStatus::Completed);
    assert_eq!(trace.path(), vec![vec!["a"], vec!["b"], vec!["c"]]);
    assert_eq!(reply_json(&trace)["inbox"], json!([7]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_for_one_project_holds_only_that_projects_threads() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(&engine, "chain.yaml", CHAIN).await;
    let mut events = engine.subscribe();
    assert!(engine.pause(Some("acme"), "b"));
    assert_eq!(
        engine.pause_of(Some("acme"), "b"),
        Some(weft_engine::NodePause::new(Some("acme"), "b"))
    );
    assert_eq!(engine.pause_of(Some("beta"), "b"), None);
    assert_eq!(engine.pause_of(None, "b"), None, "not paused everywhere");
    // Lifting a pause needs its own scope.
    assert!(!engine.resume(None, "b"));
    assert!(!engine.resume(Some("beta"), "b"));

    let held = engine.open_thread_in("acme", None, &graph);
    let handle = engine.start_run(&held, n(5)).await.unwrap();
    let run_id = handle.run.clone();
    wait_for(&mut events, |e| is_status(e, &run_id, RunStatus::Waiting)).await;

    let free = engine.open_thread_in("beta", None, &graph);
    let trace = run_on(&engine, &free, n(5)).await;
    assert_eq!(trace.status, RunStatus::Completed, "beta is not held");

    assert!(engine.resume(Some("acme"), "b"));
    let trace = handle.finish().await.unwrap();
    assert_eq!(trace.status, RunStatus::Completed);
    assert_eq!(trace.path(), vec![vec!["a"], vec!["b"], vec!["c"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_stops_a_run_at_the_next_frame_boundary() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(
        &engine,
        "ping.yaml",
        r#"
name: ping
entry: a
defaults: { max_frames: 1000 }
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b }] } }
  b: { plugin: guest-relay, config: { send: [{ to: a }] } }
edges:
  - { from: a, to: b }
  - { from: b, to: a }
"#,
    )
    .await;
    let mut events = engine.subscribe();
    let thread = engine.open_thread(None, &graph);
    let handle = engine.start_run(&thread, n(0)).await.unwrap();
    let run_id = handle.run.clone();
    wait_for(&mut events, |e| {
        e.run == run_id && e.frame == Some(3) && matches!(e.body, EventBody::Frame(_))
    })
    .await;
    assert_eq!(engine.kill(&thread).unwrap(), run_id);
    let trace = handle.finish().await.unwrap();
    assert_eq!(trace.status, RunStatus::Killed);
    assert!(trace.frames >= 4 && trace.frames < 1000);
    // Whatever was in flight is reported, not lost silently.
    assert_eq!(trace.undelivered.len(), 1);
    assert!(engine.active_run(&thread).is_none());
    assert!(engine.kill(&thread).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stops_at_its_frame_limit() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(
        &engine,
        "loop.yaml",
        r#"
name: loop
entry: a
defaults: { max_frames: 5 }
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: a }] } }
edges:
  - { from: a, to: a }
"#,
    )
    .await;
    let trace = run(&engine, &graph, n(0)).await;
    assert_eq!(trace.status, RunStatus::FrameLimit);
    assert_eq!(trace.frames, 5);
    assert_eq!(trace.undelivered.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tick_nodes_run_each_frame_without_keeping_the_run_alive() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(
        &engine,
        "tick.yaml",
        r#"
name: tick
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b }] } }
  b: { plugin: guest-relay, config: { reply: true } }
  clock: { plugin: guest-echo, every_tick: true }
edges:
  - { from: a, to: b }
"#,
    )
    .await;
    let trace = run(&engine, &graph, n(0)).await;
    assert_eq!(trace.status, RunStatus::Completed);
    assert_eq!(trace.path(), vec![vec!["a", "clock"], vec!["b", "clock"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_nodes_are_recorded_and_the_thread_goes_on() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(
        &engine,
        "faults.yaml",
        r#"
name: faults
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: spin }, { to: boom }, { to: ok }] } }
  spin: { plugin: guest-loop, limits: { fuel: 5000000 } }
  boom: { plugin: guest-panic }
  ok: { plugin: guest-relay, config: { reply: true } }
edges:
  - { from: a, to: [spin, boom, ok] }
"#,
    )
    .await;
    let trace = run(&engine, &graph, n(0)).await;
    assert_eq!(trace.status, RunStatus::Completed);
    let code = |node: &str| {
        trace
            .records
            .iter()
            .find(|r| r.node == node)
            .and_then(|r| r.error.as_ref())
            .map(|e| e.code.clone())
    };
    assert_eq!(code("spin").as_deref(), Some("out_of_fuel"));
    assert_eq!(code("boom").as_deref(), Some("trap"));
    assert_eq!(code("ok"), None);
    assert_eq!(reply_json(&trace)["inbox"], json!([1]));
    // The same thread serves the next run.
    let again = run_on(&engine, &trace.thread, n(0)).await;
    assert_eq!(again.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_llm_call_does_not_hold_up_other_threads() {
    use weft_runtime::capabilities::llm::ScriptRule;
    let analysis = json!({"intent": "social", "topic": "t", "language": "en", "tone": "calm",
        "complexity": "simple", "reflex": true})
    .to_string();
    let llm = Arc::new(Scripted::from_rules([
        ScriptRule::answer(analysis.clone())
            .contains("slow")
            .delay(std::time::Duration::from_secs(30)),
        ScriptRule::answer(analysis).contains("fast"),
    ]));
    let engine = engine(llm).await;
    let graph = graph(&engine, "input-only.yaml", INPUT_ONLY).await;
    let slow_thread = engine.open_thread(None, &graph);
    let slow = engine
        .start_run(&slow_thread, Inbound::user_text("slow please"))
        .await
        .unwrap();
    let fast = run(&engine, &graph, Inbound::user_text("fast please")).await;
    assert_eq!(fast.status, RunStatus::Completed);
    assert_eq!(fast.path(), vec![vec!["input"], vec!["sink"]]);
    assert_eq!(engine.active_run(&slow_thread), Some(slow.run.clone()));
    engine.kill(&slow_thread).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_limit_above_the_pool_is_refused_when_the_graph_loads() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let yaml = r#"
name: big
entry: a
nodes:
  a: { plugin: guest-relay, limits: { max_memory_mb: 1024 } }
"#;
    let file = artifacts_dir().join("big.yaml");
    let err = weft_engine::LoadedGraph::from_yaml(yaml, &file, engine.plugins(), engine.runtime())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("`a`") && message.contains("1024") && message.contains("256"),
        "{message}"
    );
}
