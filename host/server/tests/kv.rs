//! The `store` capability (contract 0.3.0) through the real binary: two
//! threads of one project share the project's key/value state over REST,
//! a thread of another project sees none of it, and the state outlives a
//! `kill -9`; nodes in Rust, Python and JavaScript reach the same state.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::path::Path;

use common::client::Client;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const GRAPH: &str = r#"
name: kv
entry: kv
nodes:
  kv: { plugin: guest-kv, grants: [store] }
  py: { plugin: py-faulty, grants: [store], config: { fault: count } }
  js: { plugin: js-faulty, grants: [store], config: { fault: count } }
edges:
  # Only so that every node is reachable; nothing is sent along them.
  - { from: kv, to: [py, js] }
"#;

fn data(name: &str) -> std::path::PathBuf {
    guest_data(name, &["guest-kv", "py-faulty", "js-faulty"], GRAPH)
}

fn start(data: &Path) -> Server {
    serve_guests(data, &[])
}

/// Sends `to` a message in a new thread of `project`; returns the reply.
async fn reply_of(client: &Client, project: &str, to: &str) -> String {
    let body = json!({"to": to, "text": "count", "project": project});
    client.inject_and_wait(body).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_nodes_share_the_projects_state() {
    let data = data("kv-languages");
    let server = start(&data);
    let client = Client::new(&server, Some(&server.admin));
    assert_eq!(reply_of(&client, "acme", "py").await, "1");
    assert_eq!(reply_of(&client, "acme", "js").await, "2");
    assert_eq!(reply_of(&client, "acme", "py").await, "3");
    assert_eq!(reply_of(&client, "globex", "js").await, "1");
    let (_, answers) = ops(
        &client,
        None,
        "acme",
        json!([{"op": "get", "namespace": "counters", "key": "visits"}]),
    )
    .await;
    assert_eq!(answers, json!([{"ok": "3"}]));
}

/// Runs `ops` in a new run (on `thread`, or a new thread of `project`);
/// returns the thread and the answers.
async fn ops(client: &Client, thread: Option<&str>, project: &str, ops: Value) -> (String, Value) {
    let mut body = json!({"body": {"ops": ops}, "project": project});
    if let Some(t) = thread {
        body["threadId"] = json!(t);
    }
    let (thread, reply) = client.inject_and_wait(body).await;
    (thread, serde_json::from_str(&reply).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_threads_of_a_project_share_the_store_and_another_project_does_not() {
    let data = data("kv");
    let server = start(&data);
    let client = Client::new(&server, Some(&server.admin));

    let (first, answers) = ops(
        &client,
        None,
        "acme",
        json!([
            {"op": "set", "namespace": "tickets", "key": "t-1", "value": "open"},
            {"op": "set", "namespace": "tickets", "key": "t-2", "value": "closed"},
        ]),
    )
    .await;
    assert_eq!(answers, json!([{"ok": null}, {"ok": null}]));

    let read = json!([
        {"op": "get", "namespace": "tickets", "key": "t-1"},
        {"op": "list", "namespace": "tickets", "prefix": "t-"},
    ]);
    let (second, answers) = ops(&client, None, "acme", read.clone()).await;
    assert_ne!(first, second);
    assert_eq!(answers, json!([{"ok": "open"}, {"ok": ["t-1", "t-2"]}]));

    let (_, answers) = ops(&client, None, "globex", read.clone()).await;
    assert_eq!(answers, json!([{"ok": null}, {"ok": []}]));

    // kill -9: what was committed is still there.
    drop(server);
    let server = start(&data);
    let client = Client::new(&server, Some(&server.admin));
    let (_, answers) = ops(&client, Some(&second), "acme", read).await;
    assert_eq!(answers, json!([{"ok": "open"}, {"ok": ["t-1", "t-2"]}]));
    let (code, report) = client
        .post(&format!("/api/v1/threads/{first}/replay"), json!({}))
        .await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["reproduced"], true, "{report}");
}
