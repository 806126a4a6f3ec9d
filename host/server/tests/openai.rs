//! The OpenAI-compatible `/v1` of `weft serve`, over a real socket with
//! the scripted model: OpenAI's official Python client (PyPI `openai`,
//! installed into `.tools/venv` by `cargo xtask test`) runs
//! tests/openai/client.py against it (models, a whole and a streamed
//! answer, follow-ups on the same conversation, its error classes); then
//! plain HTTP for what the client hides (the stream's lines), and for
//! projects, busy threads and budgets.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::process::Command;
use std::time::Duration;

use common::client::{Client, key};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SCRIPT: &str = "graphs/scripts/assistant-demo.json";
const QUESTION: &str = "How many devices does customer 1042 have?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openais_python_client_chats_with_the_assistant_through_v1() {
    let python = tools_python("openai", "OpenAI's Python client");
    let server = Server::start("openai-client", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let operator = key(&admin, "operator", None).await;
    let viewer = key(&admin, "viewer", None).await;
    let script = root().join("host/server/tests/openai/client.py");
    let out = run_python(&python, &script, &server, &operator, &viewer).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "the client failed:\n{stdout}\n{}\nserver log:\n{}",
        text(&out.stderr),
        server.log()
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let thread = summary["thread"].as_str().unwrap();

    // The conversation is one thread with the three runs, in order.
    let (status, runs) = admin.get(&format!("/api/v1/threads/{thread}/runs")).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    let ids: Vec<&Value> = runs.as_array().unwrap().iter().map(|r| &r["id"]).collect();
    let expected: Vec<&Value> = summary["runs"].as_array().unwrap().iter().collect();
    assert_eq!(ids, expected, "{runs}");
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "completed"),
        "{runs}"
    );
    let (_, result) = admin.get(&format!("/api/v1/threads/{thread}/result")).await;
    assert_eq!(
        result["run"]["reply"].as_str().unwrap().trim(),
        summary["last"],
        "{result}"
    );
    // It keeps memory: the memorizer reads, in the follow-up, the state
    // it wrote in the first run (in the first, there was none).
    let reads = memorizer_reads(&admin, thread).await;
    let first = &summary["runs"][0];
    let second = &summary["runs"][1];
    let read_in = |run: &Value| {
        reads
            .iter()
            .find(|(r, _)| r == run)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("no memory read in {run}: {reads:?}"))
    };
    assert!(
        read_in(first).is_null(),
        "a new thread has no memory: {reads:?}"
    );
    assert!(
        read_in(second)
            .as_str()
            .is_some_and(|s| s.contains("metering")),
        "the follow-up sees the first run's memory: {reads:?}"
    );
    // The streamed answer went to a thread of its own.
    let stream_thread = summary["stream_thread"].as_str().unwrap();
    assert_ne!(stream_thread, thread);
    let (status, runs) = admin
        .get(&format!("/api/v1/threads/{stream_thread}/runs"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");

    // The snippets of the README and docs/openai.md run as written.
    for (file, second) in [
        ("README.md", "thread-"),
        ("docs/openai.md", "CompletionUsage("),
    ] {
        let snippet = fenced_block(file, "python tested");
        let path = server.data.join("snippet.py");
        std::fs::write(&path, snippet).unwrap();
        let out = run_python(&python, &path, &server, &operator, &viewer).await;
        let printed = text(&out.stdout);
        assert!(
            out.status.success(),
            "the snippet of {file} failed:\n{printed}\n{}",
            text(&out.stderr)
        );
        let lines: Vec<&str> = printed.lines().collect();
        assert!(lines[0].contains("3 metering devices"), "{file}: {printed}");
        assert!(lines[1].starts_with(second), "{file}: {printed}");
    }
}

/// Runs a Python file with the client's settings for `server`.
async fn run_python(
    python: &std::path::Path,
    file: &std::path::Path,
    server: &Server,
    operator: &str,
    viewer: &str,
) -> std::process::Output {
    let mut command = Command::new(python);
    command
        .arg(file)
        .env("OPENAI_BASE_URL", server.url("/v1"))
        .env("OPENAI_API_KEY", operator)
        .env("WEFT_VIEWER_KEY", viewer)
        .env_remove("OPENAI_ORG_ID")
        .env_remove("OPENAI_PROJECT_ID");
    output_of(command).await
}

/// What the memorizer's `memory.get` of its state answered: (run, answer).
async fn memorizer_reads(admin: &Client, thread: &str) -> Vec<(Value, Value)> {
    let (status, frames) = admin
        .get(&format!("/api/v1/threads/{thread}/frames?limit=500"))
        .await;
    assert_eq!(status, StatusCode::OK, "{frames}");
    let mut reads = Vec::new();
    for frame in frames["items"].as_array().unwrap() {
        for record in frame["records"].as_array().unwrap() {
            if record["node"] != "memorizer" {
                continue;
            }
            for entry in record["journal"].as_array().unwrap() {
                if entry["op"] == "get" && entry["request"]["key"] == "memorizer.state" {
                    reads.push((frame["run"].clone(), entry["response"]["ok"].clone()));
                }
            }
        }
    }
    reads
}

/// `POST /v1/chat/completions` with `key`: status, headers, body text.
async fn chat(
    server: &Server,
    key: &str,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// The `data:` lines of a server-sent stream.
fn data_lines(body: &str) -> Vec<&str> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect()
}

fn ask(thread: Option<&str>, stream: bool) -> Value {
    let mut body = json!({
        "model": "assistant",
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": stream,
    });
    if let Some(thread) = thread {
        body["metadata"] = json!({"thread_id": thread});
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_streams_plain_sse_and_keeps_projects_busy_threads_and_budgets() {
    let data = temp_dir("openai-rules");
    // Slow answers, so that a run is still going when a second request
    // for its thread comes.
    let text = std::fs::read_to_string(root().join(SCRIPT)).unwrap();
    let mut rules: Vec<Value> = serde_json::from_str(&text).unwrap();
    for rule in &mut rules {
        rule["delay_ms"] = 300.into();
    }
    let script = data.join("slow.json");
    std::fs::write(&script, serde_json::to_string(&rules).unwrap()).unwrap();
    let server = Server::start_in(data, &[], &["--script", script.to_str().unwrap()]);
    let admin = Client::new(&server, Some(&server.admin));

    // The stream as sent: chunks, no progress line, [DONE] last.
    let (status, headers, body) = chat(&server, &server.admin, ask(Some("chat-a"), true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(headers["x-weft-thread"], "chat-a");
    let lines = data_lines(&body);
    assert_eq!(lines.last(), Some(&"[DONE]"), "{body}");
    let chunks: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["thread_id"] == "chat-a"), "{body}");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(streamed.contains("3 metering devices"), "{body}");
    assert!(
        !body.contains("writing the reply"),
        "a progress line: {body}"
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );

    // A second request while the thread's run goes on: 409 thread_busy.
    let first = {
        let base = server.base.clone();
        let key = server.admin.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&ask(Some("chat-a"), false))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    wait_busy(&admin, "chat-a").await;
    let (status, _, body) = chat(&server, &server.admin, ask(Some("chat-a"), false)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "thread_busy", "{body}");
    assert_eq!(first.await.unwrap(), StatusCode::OK);

    // A project key's threads are in its project; it cannot continue
    // another project's thread (as if there were none).
    let acme = key(&admin, "operator", Some("acme")).await;
    let (status, headers, body) = chat(&server, &acme, ask(None, false)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let own = headers["x-weft-thread"].to_str().unwrap();
    let (_, thread) = admin.get(&format!("/api/v1/threads/{own}")).await;
    assert_eq!(thread["project"], "acme", "{thread}");
    let (status, _, body) = chat(&server, &acme, ask(Some("chat-a"), false)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "thread_not_found", "{body}");
    assert_eq!(error["error"]["param"], "metadata.thread_id", "{body}");
    let (_, runs) = admin.get("/api/v1/threads/chat-a/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 2, "untouched: {runs}");

    // A budget that runs out mid-run stops it: the stream ends with an
    // `insufficient_quota` error, and the thread is free again.
    let (_, budget) = admin.get("/api/v1/usage/threads").await;
    let used = budget
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["threadId"] == "chat-a")
        .map(|b| b["used"].as_u64().unwrap())
        .unwrap_or_else(|| panic!("no budget for chat-a: {budget}"));
    let (status, set) = admin
        .put(
            "/api/v1/usage/threads/chat-a/budget",
            json!({"limit": used}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let (status, _, body) = chat(&server, &server.admin, ask(Some("chat-a"), true)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the stream began before the budget ran out"
    );
    let last: Value = serde_json::from_str(data_lines(&body).last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "insufficient_quota", "{body}");
    assert_eq!(last["error"]["type"], "insufficient_quota", "{body}");
    assert!(!body.contains("[DONE]"), "{body}");
    let (_, runs) = admin.get("/api/v1/threads/chat-a/runs").await;
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(runs[2]["status"], "killed", "{runs:?}");
    // Spent: refused before a run starts (429, and no retry helps).
    let (status, headers, body) = chat(&server, &server.admin, ask(Some("chat-a"), false)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers["x-should-retry"], "false");
    let (_, runs) = admin.get("/api/v1/threads/chat-a/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 3, "no run started");
    // Raised: the conversation goes on.
    let (status, _) = admin
        .put(
            "/api/v1/usage/threads/chat-a/budget",
            json!({"raise": 1_000_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = chat(&server, &server.admin, ask(Some("chat-a"), false)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["thread_id"], "chat-a");
    assert!(
        answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("3 metering devices"),
        "{answer}"
    );
}

/// Waits until a run is in flight on `thread`.
async fn wait_busy(admin: &Client, thread: &str) {
    for _ in 0..200 {
        let (status, result) = admin.get(&format!("/api/v1/threads/{thread}/result")).await;
        if status == StatusCode::OK && result["busy"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no run started on {thread}");
}
