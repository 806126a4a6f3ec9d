//! The MCP server at `/mcp` of `weft serve`, over a real socket with the
//! scripted model: the official MCP Python SDK (PyPI `mcp`, installed into
//! `.tools/venv` by `cargo xtask test`) runs tests/mcp/client.py against
//! it (tools, calls on one thread, resources, a viewer refused); then
//! plain HTTP for what needs no client (no key).

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::process::Command;

use common::client::{Client, key};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const SCRIPT: &str = "graphs/scripts/assistant-demo.json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_mcp_sdk_lists_and_calls_graphs_and_reads_threads() {
    let python = tools_python("mcp", "the MCP Python SDK");
    let server = Server::start("mcp-client", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let operator = key(&admin, "operator", None).await;
    let viewer = key(&admin, "viewer", None).await;
    let script = root().join("host/server/tests/mcp/client.py");
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .env("WEFT_MCP_URL", server.url("/mcp"))
        .env("WEFT_OPERATOR_KEY", &operator)
        .env("WEFT_VIEWER_KEY", &viewer);
    let out = output_of(command).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "the MCP client failed:\n{stdout}\n{}\nserver log:\n{}",
        text(&out.stderr),
        server.log()
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    // Every served graph is a tool.
    let tools: Vec<&str> = summary["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"assistant"), "{summary}");
    let (_, graphs) = admin.get("/api/v1/graphs").await;
    assert_eq!(tools.len(), graphs.as_array().unwrap().len(), "{graphs}");
    assert!(
        summary["reply"]
            .as_str()
            .unwrap()
            .contains("3 metering devices"),
        "{summary}"
    );
    assert!(
        summary["unknown"]
            .as_str()
            .is_some_and(|e| e.contains("no tool `no-such-graph`")),
        "{summary}"
    );
    // Both calls ran on one thread, in order, and completed.
    let thread = summary["thread"].as_str().unwrap();
    let (status, runs) = admin.get(&format!("/api/v1/threads/{thread}/runs")).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    let ids: Vec<&Value> = runs.as_array().unwrap().iter().map(|r| &r["id"]).collect();
    let expected: Vec<&Value> = summary["runs"].as_array().unwrap().iter().collect();
    assert_eq!(ids, expected, "{runs}");
    assert_eq!(summary["thread_runs"], 2, "{summary}");
    assert_eq!(summary["run"]["id"], summary["runs"][0], "{summary}");
    assert_eq!(summary["run"]["status"], "completed", "{summary}");
    // A viewer sees the tools but may not run them.
    assert_eq!(summary["viewer_tools"], tools.len(), "{summary}");
    assert_eq!(summary["viewer_refused"], true, "{summary}");
    assert!(
        summary["viewer_message"]
            .as_str()
            .unwrap()
            .contains("Operator role"),
        "{summary}"
    );

    // The README's block runs as written.
    let snippet = fenced_block("README.md", "python tested-mcp");
    let path = server.data.join("mcp-snippet.py");
    std::fs::write(&path, snippet).unwrap();
    let mut command = Command::new(&python);
    command
        .arg(&path)
        .env("WEFT_MCP_URL", server.url("/mcp"))
        .env("WEFT_KEY", &operator);
    let out = output_of(command).await;
    let printed = text(&out.stdout);
    assert!(
        out.status.success(),
        "the README's MCP block failed:\n{printed}\n{}",
        text(&out.stderr)
    );
    let lines: Vec<&str> = printed.lines().collect();
    assert!(lines[0].contains("'assistant'"), "{printed}");
    assert!(lines[1].contains("3 metering devices"), "{printed}");
    assert!(lines[2].starts_with("thread-"), "{printed}");

    // Without a key, nothing: the same 401 as the rest of the API.
    let http = reqwest::Client::new();
    let answer = http
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    server.terminate();
}
