//! Interrupts through the real binary: nodes in Rust, Python and
//! JavaScript ask a person; their runs wait across a `kill -9` and a
//! restart, take answers over REST, `weft resume-run` and the chat socket,
//! and complete; bad answers are refused with the documented codes.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::client::{Client, assert_error};
use common::socket::{connect, read, send, until_type};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A graph with an asking node per language; a message's `to` picks one.
const GRAPH: &str = r#"
name: asking
entry: rust
nodes:
  rust: { plugin: guest-ask, config: { question: "Ship it?" } }
  py: { plugin: py-faulty, config: { fault: ask } }
  js: { plugin: js-faulty, config: { fault: ask } }
edges:
  # Only so that every node is reachable; nothing is sent along them.
  - { from: rust, to: [py, js] }
"#;

/// A data folder with the graph and a plugin folder holding the guests it
/// runs.
fn data_with_guests(name: &str) -> std::path::PathBuf {
    let data = temp_dir(name);
    let plugins = data.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for guest in ["guest-ask", "py-faulty", "js-faulty"] {
        let file = format!("{guest}.wasm");
        std::fs::copy(
            root().join("artifacts/guests").join(&file),
            plugins.join(&file),
        )
        .unwrap_or_else(|e| panic!("{file}: {e} (run `cargo xtask build-plugins`)"));
    }
    let graphs = data.join("graphs");
    std::fs::create_dir_all(&graphs).unwrap();
    std::fs::write(graphs.join("asking.yaml"), GRAPH).unwrap();
    data
}

fn start(data: &Path) -> Server {
    let plugins = data.join("plugins");
    let graph = data.join("graphs/asking.yaml");
    let graphs = data.join("graphs");
    Server::start_in(
        data.to_owned(),
        &["--plugins", plugins.to_str().unwrap()],
        &[
            "--graph",
            graph.to_str().unwrap(),
            "--graphs",
            graphs.to_str().unwrap(),
            // No node calls the model.
            "--script",
            "graphs/scripts/assistant-demo.json",
        ],
    )
}

/// Polls the thread until its latest run has `status`.
async fn until_status(client: &Client, thread: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (code, result) = client
            .get(&format!("/api/v1/threads/{thread}/result"))
            .await;
        assert_eq!(code, StatusCode::OK, "{result}");
        if result["run"]["status"] == status {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not reach `{status}`: {result}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_asked_in_three_languages_wait_across_kill_9_and_complete_after_an_answer() {
    let data = data_with_guests("interrupts");
    let server = start(&data);
    let client = Client::new(&server, Some(&server.admin));

    // One thread per language, each waiting for an answer.
    let mut asked = Vec::new();
    for (node, question) in [
        ("rust", "Ship it?"),
        ("py", "Go on? (asked from Python)"),
        ("js", "Go on? (asked from JavaScript)"),
    ] {
        let (code, accepted) = client
            .post(
                "/api/v1/inject",
                json!({"to": node, "text": format!("from {node}")}),
            )
            .await;
        assert_eq!(code, StatusCode::ACCEPTED, "{accepted}");
        let thread = accepted["threadId"].as_str().unwrap().to_owned();
        let run = accepted["runId"].as_str().unwrap().to_owned();
        let result = until_status(&client, &thread, "interrupted").await;
        assert_eq!(result["busy"], true, "an interrupted run holds its thread");
        let (code, list) = client
            .get(&format!("/api/v1/threads/{thread}/runs/{run}/interrupts"))
            .await;
        assert_eq!(code, StatusCode::OK, "{list}");
        assert_eq!(list[0]["question"], question, "{list}");
        assert_eq!(list[0]["status"], "pending");
        assert_eq!(list[0]["id"], format!("{run}/f0/{node}"));
        assert_eq!(list[0]["answerSchema"]["required"], json!(["approve"]));
        asked.push((node, thread, run));
    }

    // Bad answers change nothing.
    let (_, thread, run) = &asked[0];
    let resume = format!("/api/v1/threads/{thread}/runs/{run}/resume");
    let (code, body) = client
        .post(&resume, json!({"value": {"approve": "yes"}}))
        .await;
    assert_error(
        code,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_answer",
    );
    let (code, body) = client.post(&resume, json!({})).await;
    assert_error(code, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (code, body) = client
        .post(&resume, json!({"value": true, "reject": "no"}))
        .await;
    assert_error(code, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (code, body) = client
        .post(
            &resume,
            json!({"value": {"approve": true}, "interrupt": "no-such"}),
        )
        .await;
    assert_error(code, &body, StatusCode::NOT_FOUND, "unknown_interrupt");
    let (code, body) = client
        .post(
            &format!("/api/v1/threads/{thread}/messages"),
            json!({"text": "hello?"}),
        )
        .await;
    assert_error(code, &body, StatusCode::CONFLICT, "thread_busy");

    // kill -9, and a new process on the same data.
    drop(server);
    let server = start(&data);
    let client = Client::new(&server, Some(&server.admin));
    for (_, thread, run) in &asked {
        let result = until_status(&client, thread, "interrupted").await;
        assert_eq!(result["run"]["id"], run.as_str());
    }

    // Rust: answered with the CLI, which waits for the reply.
    let (_, thread, run) = &asked[0];
    let out = output_of({
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_weft"));
        c.current_dir(root()).args([
            "--server",
            &server.base,
            "--key",
            &server.admin,
            "resume-run",
            thread,
            run,
            "--value",
            r#"{"approve": true}"#,
            "--wait",
        ]);
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reply: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(reply["outcome"], "answered", "{reply}");
    assert_eq!(reply["value"], json!({"approve": true}));

    // Python: answered over REST; JavaScript: rejected over REST.
    let (_, thread, run) = &asked[1];
    let (code, body) = client
        .post(
            &format!("/api/v1/threads/{thread}/runs/{run}/resume"),
            json!({"value": {"approve": false}}),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["resumed"], true);
    assert_eq!(body["interrupt"]["status"], "answered");
    let done = until_status(&client, thread, "completed").await;
    let reply: Value = serde_json::from_str(done["run"]["reply"].as_str().unwrap()).unwrap();
    assert_eq!(
        (reply["outcome"].as_str(), &reply["value"]),
        (Some("answered"), &json!({"approve": false})),
        "{reply}"
    );
    let (_, thread, run) = &asked[2];
    let resume = format!("/api/v1/threads/{thread}/runs/{run}/resume");
    let (code, body) = client.post(&resume, json!({"reject": "too risky"})).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let done = until_status(&client, thread, "completed").await;
    let reply: Value = serde_json::from_str(done["run"]["reply"].as_str().unwrap()).unwrap();
    assert_eq!(
        (reply["outcome"].as_str(), reply["reason"].as_str()),
        (Some("rejected"), Some("too risky")),
        "{reply}"
    );

    // Once answered: 409; another thread's run: 404.
    let (code, body) = client
        .post(&resume, json!({"value": {"approve": true}}))
        .await;
    assert_error(code, &body, StatusCode::CONFLICT, "run_not_interrupted");
    let (code, body) = client
        .post(
            &format!("/api/v1/threads/{thread}/runs/no-such-run/resume"),
            json!({"value": {"approve": true}}),
        )
        .await;
    assert!(
        code == StatusCode::NOT_FOUND || code == StatusCode::CONFLICT,
        "{code} {body}"
    );

    // The thread's history shows both the question and the answer, and
    // every frame replays exactly.
    let (code, list) = client
        .get(&format!("/api/v1/threads/{thread}/runs/{run}/interrupts"))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(list[0]["status"], "rejected");
    assert_eq!(list[0]["answer"], "too risky");
    let (code, report) = client
        .post(&format!("/api/v1/threads/{thread}/replay"), json!({}))
        .await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["reproduced"], true, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_socket_shows_the_question_and_takes_the_answer() {
    let data = data_with_guests("interrupts-ws");
    let server = start(&data);
    let mut socket = connect(
        &server.base,
        &format!("/api/v1/ws?access_token={}", server.admin),
    )
    .await;
    assert_eq!(read(&mut socket).await["type"], "session");
    // The event stream, over its own socket.
    let mut events = connect(
        &server.base,
        &format!("/api/v1/ws/events?access_token={}", server.admin),
    )
    .await;

    send(&mut socket, json!({"type": "message", "text": "deploy"})).await;
    let question = until_type(&mut socket, "interrupt").await;
    assert_eq!(question["question"], "Ship it?", "{question}");
    assert_eq!(question["node"], "rust");
    assert_eq!(question["answerSchema"]["required"], json!(["approve"]));
    let event = until_type(&mut events, "interrupt").await;
    assert_eq!(
        event["event"]["data"]["id"], question["interruptId"],
        "{event}"
    );

    // A wrong answer is an error on the socket; a right one resumes.
    send(
        &mut socket,
        json!({"type": "resume", "value": {"approve": 1}}),
    )
    .await;
    let refused = until_type(&mut socket, "error").await;
    assert_eq!(refused["code"], "invalid_answer", "{refused}");
    send(
        &mut socket,
        json!({"type": "resume", "value": {"approve": true}}),
    )
    .await;
    let resumed = until_type(&mut socket, "resumed").await;
    assert_eq!(resumed["resumed"], true, "{resumed}");
    assert_eq!(resumed["interruptId"], question["interruptId"]);
    let done = loop {
        let m = until_type(&mut socket, "done").await;
        if m["status"] == "completed" {
            break m;
        }
    };
    let reply: Value = serde_json::from_str(done["reply"].as_str().unwrap()).unwrap();
    assert_eq!(reply["outcome"], "answered", "{reply}");
    let resolved = until_type(&mut events, "interrupt_resolved").await;
    assert_eq!(
        resolved["event"]["data"]["status"], "answered",
        "{resolved}"
    );
}
