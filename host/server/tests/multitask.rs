//! Double-texting through the real binary: a message for a thread whose
//! run is in flight, over REST (`multitask` in the request, or
//! `api.multitask` from the config file), `weft inject --multitask` and the
//! chat socket; each policy's effect on the thread's runs, history and
//! memory; a queued run across `kill -9` and a restart.
//!
//! The busy run is one that waits for a person's answer (`guest-ask`,
//! which also appends each message's text to the thread's memory and
//! reports that list in its reply).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::client::{Client, assert_error};
use common::socket::{connect, read, send, until_type};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const GRAPH: &str = r#"
name: texting
entry: ask
nodes:
  ask: { plugin: guest-ask, grants: [memory], config: { remember: true } }
"#;

/// A data folder with the graph, the guest and a config file whose
/// default policy is `enqueue`.
fn data(name: &str) -> std::path::PathBuf {
    let data = guest_data(name, &["guest-ask"], GRAPH);
    std::fs::write(data.join("weft.yaml"), "api:\n  multitask: enqueue\n").unwrap();
    data
}

fn start(data: &Path) -> Server {
    let config = data.join("weft.yaml");
    serve_guests(data, &["--config", config.to_str().unwrap()])
}

/// Polls `run` of `thread` until it has `status`; returns the result.
async fn until_status(client: &Client, thread: &str, run: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (code, result) = client
            .get(&format!("/api/v1/threads/{thread}/result?run={run}"))
            .await;
        assert_eq!(code, StatusCode::OK, "{result}");
        if result["run"]["status"] == status {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} did not reach `{status}`: {result}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Approves `run`'s question and waits for its reply.
async fn approve(client: &Client, thread: &str, run: &str) -> Value {
    let (code, body) = client
        .post(
            &format!("/api/v1/threads/{thread}/runs/{run}/resume"),
            json!({"value": {"approve": true}}),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let done = until_status(client, thread, run, "completed").await;
    serde_json::from_str(done["run"]["reply"].as_str().unwrap()).unwrap()
}

/// Sends `text` to the thread; returns the 202's body.
async fn message(client: &Client, thread: &str, text: &str, multitask: Option<&str>) -> Value {
    let mut body = json!({ "text": text });
    if let Some(policy) = multitask {
        body["multitask"] = json!(policy);
    }
    let (code, accepted) = client
        .post(&format!("/api/v1/threads/{thread}/messages"), body)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{accepted}");
    accepted
}

fn run_of(accepted: &Value) -> String {
    accepted["runId"].as_str().unwrap().to_owned()
}

/// The user texts in the thread's history.
async fn history(client: &Client, thread: &str) -> Vec<String> {
    let (code, page) = client
        .get(&format!("/api/v1/threads/{thread}/messages?limit=500"))
        .await;
    assert_eq!(code, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == "user")
        .map(|m| {
            let body: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
            body["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_policy_over_rest_and_the_cli_and_a_queued_run_across_kill_9() {
    let data = data("multitask");
    let server = start(&data);
    let client = Client::new(&server, Some(&server.admin));

    let (code, accepted) = client.post("/api/v1/inject", json!({"text": "one"})).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["status"], "started");
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    let r1 = run_of(&accepted);
    until_status(&client, &thread, &r1, "interrupted").await;

    // The config's default (`enqueue`) queues; `reject` refuses; a policy
    // that is not one is a 400 naming the field.
    let queued = message(&client, &thread, "two", None).await;
    assert_eq!(queued["status"], "queued", "{queued}");
    assert_eq!(
        (&queued["position"], &queued["behind"]),
        (&json!(0), &json!(r1))
    );
    let r2 = run_of(&queued);
    let (code, body) = client
        .post(
            &format!("/api/v1/threads/{thread}/messages"),
            json!({"text": "no", "multitask": "reject"}),
        )
        .await;
    assert_error(code, &body, StatusCode::CONFLICT, "thread_busy");
    let (code, body) = client
        .post(
            &format!("/api/v1/threads/{thread}/messages"),
            json!({"text": "no", "multitask": "later"}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let (code, result) = client
        .get(&format!("/api/v1/threads/{thread}/result"))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(result["activeRunId"], r1.as_str(), "{result}");
    assert_eq!(result["queued"], json!([r2]));
    assert_eq!(
        result["run"]["id"],
        r1.as_str(),
        "a queued run is not the result"
    );

    // enqueue: the queued run starts when the first ends, after its writes.
    assert_eq!(approve(&client, &thread, &r1).await["seen"], json!(["one"]));
    until_status(&client, &thread, &r2, "interrupted").await;

    // rollback: the waiting run is undone; its message leaves the history.
    let r3 = run_of(&message(&client, &thread, "three", Some("rollback")).await);
    until_status(&client, &thread, &r2, "rolled_back").await;
    until_status(&client, &thread, &r3, "interrupted").await;
    assert_eq!(history(&client, &thread).await, ["one", "three"]);
    assert_eq!(
        approve(&client, &thread, &r3).await["seen"],
        json!(["one", "three"])
    );

    // interrupt: the waiting run is stopped with its effects kept.
    let started = message(&client, &thread, "four", None).await;
    assert_eq!(
        started["status"], "started",
        "the thread was free: {started}"
    );
    let r4 = run_of(&started);
    until_status(&client, &thread, &r4, "interrupted").await;
    let r5 = run_of(&message(&client, &thread, "five", Some("interrupt")).await);
    until_status(&client, &thread, &r4, "preempted").await;
    until_status(&client, &thread, &r5, "interrupted").await;
    assert_eq!(
        history(&client, &thread).await,
        ["one", "three", "four", "five"]
    );

    // The CLI queues behind the waiting run and says so.
    let out = output_of({
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_weft"));
        c.current_dir(root()).args([
            "--server",
            &server.base,
            "--key",
            &server.admin,
            "inject",
            "six",
            "--thread",
            &thread,
            "--multitask",
            "enqueue",
            "--json",
        ]);
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let accepted: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(accepted["status"], "queued", "{accepted}");
    let r6 = run_of(&accepted);

    // kill -9 with a run waiting and one queued behind it: a new process
    // holds both again, in order.
    drop(server);
    let server = start(&data);
    let client = Client::new(&server, Some(&server.admin));
    let result = until_status(&client, &thread, &r5, "interrupted").await;
    assert_eq!(result["activeRunId"], r5.as_str(), "{result}");
    assert_eq!(result["queued"], json!([r6]));
    assert_eq!(
        approve(&client, &thread, &r5).await["seen"],
        json!(["one", "three", "four", "five"])
    );
    until_status(&client, &thread, &r6, "interrupted").await;
    assert_eq!(
        approve(&client, &thread, &r6).await["seen"],
        json!(["one", "three", "four", "five", "six"])
    );

    let (code, runs) = client.get(&format!("/api/v1/threads/{thread}/runs")).await;
    assert_eq!(code, StatusCode::OK, "{runs}");
    let statuses: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "completed",
            "rolled_back",
            "completed",
            "preempted",
            "completed",
            "completed"
        ]
    );
    // Every frame, the stopped runs' too, replays exactly.
    let (code, report) = client
        .post(&format!("/api/v1/threads/{thread}/replay"), json!({}))
        .await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["reproduced"], true, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_socket_takes_a_policy_per_message() {
    let data = data("multitask-ws");
    let server = start(&data);
    let mut socket = connect(
        &server.base,
        &format!("/api/v1/ws?access_token={}", server.admin),
    )
    .await;
    let session = read(&mut socket).await;
    assert_eq!(session["type"], "session");

    send(&mut socket, json!({"type": "message", "text": "one"})).await;
    let first = until_type(&mut socket, "accepted").await;
    until_type(&mut socket, "interrupt").await;
    send(
        &mut socket,
        json!({"type": "message", "text": "two", "multitask": "reject"}),
    )
    .await;
    assert_eq!(
        until_type(&mut socket, "error").await["code"],
        "thread_busy"
    );
    send(
        &mut socket,
        json!({"type": "message", "text": "two", "multitask": "interrupt"}),
    )
    .await;
    let second = until_type(&mut socket, "accepted").await;
    assert_eq!(second["queued"], true, "{second}");
    assert_eq!(second["behind"], first["runId"]);
    // The first run ends preempted; the second asks; an answer completes it.
    let done = until_type(&mut socket, "done").await;
    assert_eq!(
        (&done["runId"], &done["status"]),
        (&first["runId"], &json!("preempted")),
        "{done}"
    );
    let question = until_type(&mut socket, "interrupt").await;
    assert_eq!(question["runId"], second["runId"], "{question}");
    send(
        &mut socket,
        json!({"type": "resume", "value": {"approve": true}}),
    )
    .await;
    // A run that asks sends `done` with `interrupted` first.
    let done = loop {
        let m = until_type(&mut socket, "done").await;
        if m["status"] != "interrupted" {
            break m;
        }
    };
    assert_eq!(
        (&done["runId"], &done["status"]),
        (&second["runId"], &json!("completed")),
        "{done}"
    );
    let reply: Value = serde_json::from_str(done["reply"].as_str().unwrap()).unwrap();
    assert_eq!(reply["seen"], json!(["one", "two"]), "{reply}");
}
