//! Python and JavaScript nodes next to Rust ones: their faults are
//! contained exactly like a Rust node's (a typed error in the frame record,
//! the run and the host go on), and they use capabilities the same way.
//! The guests are `tests/guests/py-faulty` and `tests/guests/js-faulty`,
//! built by `cargo xtask build-plugins`.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::Arc;

use common::*;
use weft_engine::{FrameTrace, Inbound, RunStatus};
use weft_runtime::capabilities::llm::Scripted;

/// The message that starts each run: a relay number for the entry node.
fn n(value: i64) -> Inbound {
    Inbound::to("a", "relay", &serde_json::json!({ "n": value }))
}

fn faults_graph(lang: &str) -> String {
    format!(
        r#"
name: faults-{lang}
entry: a
nodes:
  a: {{ plugin: guest-relay, config: {{ send: [{{ to: raise }}, {{ to: fail }}, {{ to: spin }}, {{ to: malformed }}, {{ to: fine }}] }} }}
  raise: {{ plugin: {lang}-faulty, config: {{ fault: raise }} }}
  fail: {{ plugin: {lang}-faulty, config: {{ fault: fail }} }}
  spin: {{ plugin: {lang}-faulty, config: {{ fault: loop }}, limits: {{ fuel: 50000000 }} }}
  malformed: {{ plugin: {lang}-faulty, config: {{ fault: malformed }} }}
  fine: {{ plugin: {lang}-faulty, grants: [memory, hud] }}
  ok: {{ plugin: guest-relay, config: {{ reply: true }} }}
edges:
  - {{ from: a, to: [raise, fail, spin, malformed, fine] }}
  - {{ from: malformed, to: ok }}
"#
    )
}

fn error_code(trace: &FrameTrace, node: &str) -> Option<String> {
    trace
        .records
        .iter()
        .find(|r| r.node == node)
        .unwrap_or_else(|| panic!("{node} did not run:\n{}", trace.render()))
        .error
        .as_ref()
        .map(|e| e.code.clone())
}

async fn faults_are_contained(lang: &str) {
    let engine = engine(Arc::new(Scripted::default())).await;
    let graph = graph(&engine, &format!("faults-{lang}.yaml"), &faults_graph(lang)).await;
    let trace = run(&engine, &graph, n(0)).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());

    // An uncaught exception traps; a typed error is the node's error; an
    // endless loop runs out of fuel.
    assert_eq!(error_code(&trace, "raise").as_deref(), Some("trap"));
    let raise = trace.records.iter().find(|r| r.node == "raise").unwrap();
    let message = &raise.error.as_ref().unwrap().message;
    let bug = if lang == "py" {
        "a Python bug"
    } else {
        "a JavaScript bug"
    };
    assert!(
        message.contains(bug),
        "the trap does not say what failed: {message}"
    );
    assert_eq!(error_code(&trace, "fail").as_deref(), Some("node_error"));
    let fail = trace.records.iter().find(|r| r.node == "fail").unwrap();
    assert!(
        fail.error
            .as_ref()
            .unwrap()
            .message
            .contains("failed on purpose")
    );
    assert_eq!(error_code(&trace, "spin").as_deref(), Some("out_of_fuel"));

    // Malformed output: each bad message is rejected with its own code and
    // nothing reaches `ok`.
    assert_eq!(error_code(&trace, "malformed"), None);
    let malformed = trace
        .records
        .iter()
        .find(|r| r.node == "malformed")
        .unwrap();
    let codes: Vec<Option<String>> = malformed
        .sent
        .iter()
        .map(|s| s.rejected.as_ref().map(|r| r.code.clone()))
        .collect();
    assert_eq!(codes.len(), 2, "{:?}", malformed.sent);
    assert!(codes.iter().all(Option::is_some), "{codes:?}");
    assert!(!trace.records.iter().any(|r| r.node == "ok"));

    // The well-behaved instance of the same plugin used its capabilities.
    assert_eq!(error_code(&trace, "fine"), None);
    let fine = trace.records.iter().find(|r| r.node == "fine").unwrap();
    assert_eq!(fine.reply.as_deref(), Some("ok"));
    assert_eq!((fine.memory_writes, fine.events), (1, 1));

    // The thread and the host serve the next run.
    let again = run_on(&engine, &trace.thread, n(0)).await;
    assert_eq!(again.status, RunStatus::Completed, "{}", again.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_faults_are_contained_like_rust_ones() {
    faults_are_contained("py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_faults_are_contained_like_rust_ones() {
    faults_are_contained("js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_or_javascript_node_past_its_deadline_is_stopped() {
    let engine = engine(Arc::new(Scripted::default())).await;
    let yaml = r#"
name: deadlines
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: py }, { to: js }] } }
  py: { plugin: py-faulty, config: { fault: loop }, limits: { fuel: 1000000000000, deadline_ms: 300 } }
  js: { plugin: js-faulty, config: { fault: loop }, limits: { fuel: 1000000000000, deadline_ms: 300 } }
edges:
  - { from: a, to: [py, js] }
"#;
    let graph = graph(&engine, "deadlines.yaml", yaml).await;
    let trace = run(&engine, &graph, n(0)).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    for node in ["py", "js"] {
        assert_eq!(
            error_code(&trace, node).as_deref(),
            Some("deadline_exceeded"),
            "{}",
            trace.render()
        );
    }
}
