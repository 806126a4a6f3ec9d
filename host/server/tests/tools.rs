//! The `tools` capability (contract 0.4.0) through the real binary: a node
//! lists and calls the tools of two MCP servers written with the official
//! MCP Python SDK (tests/mcp/tool_server.py: one started by weft as a child
//! process on stdio, one over Streamable HTTP), sees only the tools its
//! graph grants, gets `denied` for the others and for a node without the
//! grant, gets a tool's own error, a time limit and bad arguments as typed
//! errors, and a replay answers every call from the journal without asking
//! the servers again.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::client::Client;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const GRAPH: &str = r#"
name: tools
entry: tools
nodes:
  tools:
    plugin: guest-tools
    grants: [tools]
    tools:
      local: [add, fail, slow, count]
      web: ["*"]
  bare: { plugin: guest-tools }
edges:
  # Only so that every node is reachable; nothing is sent along it.
  - { from: tools, to: bare }
"#;

/// The HTTP server of tool_server.py, stopped when dropped.
struct HttpTools {
    child: Child,
    port: u16,
}

impl HttpTools {
    fn start(python: &Path) -> Self {
        let mut child = Command::new(python)
            .arg(root().join("host/server/tests/mcp/tool_server.py"))
            .arg("http")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the tool server did not say its port: {line:?}"));
        Self { child, port }
    }
}

impl Drop for HttpTools {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data folder with the guest, the graph and a config naming both
/// servers; the server started.
fn start(name: &str, python: &Path, http: &HttpTools) -> Server {
    let data = guest_data(name, &["guest-tools"], GRAPH);
    let script = root().join("host/server/tests/mcp/tool_server.py");
    let config = data.join("weft.yaml");
    std::fs::write(
        &config,
        format!(
            "tools:\n  servers:\n    local:\n      command: {python:?}\n      args: [{script:?}, stdio]\n      timeout_ms: 2000\n    web:\n      url: \"http://127.0.0.1:{}/mcp\"\n",
            http.port,
            python = python.display().to_string(),
            script = script.display().to_string(),
        ),
    )
    .unwrap();
    serve_guests(&data, &["--config", config.to_str().unwrap()])
}

/// Runs `ops` on node `to` in a new run (on `thread`, or a new thread);
/// returns the thread and the answers.
async fn ops(client: &Client, thread: Option<&str>, to: &str, ops: Value) -> (String, Value) {
    let mut body = json!({"body": {"ops": ops}, "to": to});
    if let Some(t) = thread {
        body["threadId"] = json!(t);
    }
    let (thread, reply) = client.inject_and_wait(body).await;
    (thread, serde_json::from_str(&reply).unwrap())
}

fn names(list: &Value) -> Vec<String> {
    list["ok"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tool list: {list}"))
        .iter()
        .map(|t| {
            format!(
                "{}.{}",
                t["server"].as_str().unwrap(),
                t["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn err(answer: &Value) -> &str {
    answer["err"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lists_and_calls_granted_mcp_tools_and_replays_without_the_servers() {
    let python = tools_python("mcp", "the MCP Python SDK");
    let http = HttpTools::start(&python);
    let server = start("tools", &python, &http);
    let client = Client::new(&server, Some(&server.admin));

    let (thread, answers) = ops(
        &client,
        None,
        "tools",
        json!([
            {"op": "list"},
            {"op": "call", "server": "local", "name": "add", "arguments": {"a": 2, "b": 3.5}},
            {"op": "call", "server": "web", "name": "echo", "arguments": {"text": "über"}},
            {"op": "call", "server": "local", "name": "count"},
            {"op": "call", "server": "local", "name": "fail", "arguments": {"message": "no way"}},
            {"op": "call", "server": "local", "name": "secret"},
            {"op": "call", "server": "elsewhere", "name": "add"},
            {"op": "call", "server": "local", "name": "add", "arguments": [1, 2]},
            {"op": "call", "server": "local", "name": "slow", "arguments": {"seconds": 10}},
        ]),
    )
    .await;
    let log = || server.log();
    // Only the granted tools: four of `local`, every one of `web`.
    assert_eq!(
        names(&answers[0]),
        [
            "local.add",
            "local.count",
            "local.fail",
            "local.slow",
            "web.add",
            "web.count",
            "web.echo",
            "web.fail",
            "web.secret",
            "web.slow",
        ],
        "{}",
        log()
    );
    let add = &answers[0]["ok"][0];
    assert_eq!(add["description"], "Adds two numbers.");
    assert_eq!(add["input_schema"]["required"], json!(["a", "b"]), "{add}");
    // Answers: the text, the whole content, no error.
    let sum = &answers[1]["ok"];
    assert_eq!(sum["text"], "5.5", "{sum}");
    assert_eq!(sum["is_error"], false);
    assert_eq!(sum["content"]["content"][0]["type"], "text", "{sum}");
    assert_eq!(answers[2]["ok"]["text"], "über", "{}", answers[2]);
    assert_eq!(answers[3]["ok"]["text"], "1", "{}", answers[3]);
    // The tool's own error reaches the node as a result, not a failure.
    let failed = &answers[4]["ok"];
    assert_eq!(failed["is_error"], true, "{failed}");
    assert!(
        failed["text"].as_str().unwrap().contains("fail"),
        "{failed}"
    );
    // A tool the graph does not grant, and a server it does not name.
    assert_eq!(err(&answers[5]), "denied(tools)");
    assert_eq!(err(&answers[6]), "denied(tools)");
    // Arguments that are not an object, and a call past the time limit.
    assert!(
        err(&answers[7]).starts_with("invalid-input: "),
        "{}",
        answers[7]
    );
    assert!(
        err(&answers[8]).starts_with("unavailable: ") && err(&answers[8]).contains("2000 ms"),
        "{}",
        answers[8]
    );
    assert!(
        log().contains("denied: tool not granted to node"),
        "{}",
        log()
    );

    // A node without the grant is denied the list and every call.
    let (_, bare) = ops(
        &client,
        None,
        "bare",
        json!([{"op": "list"}, {"op": "call", "server": "local", "name": "add", "arguments": {"a": 1, "b": 1}}]),
    )
    .await;
    assert_eq!(err(&bare[0]), "denied(tools)");
    assert_eq!(err(&bare[1]), "denied(tools)");

    // The trace journals every call with its answer.
    let (code, trace) = client
        .get(&format!("/api/v1/threads/{thread}/frames"))
        .await;
    assert_eq!(code, StatusCode::OK, "{trace}");
    let text = trace.to_string();
    assert!(
        text.contains("\"server_tools\"") && text.contains("\"no way\""),
        "{trace}"
    );

    // A replay answers from the journal: exact, and `count` is not called
    // again (the next live call is the second).
    let (code, report) = client
        .post(&format!("/api/v1/threads/{thread}/replay"), json!({}))
        .await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["reproduced"], true, "{report}");
    let (_, again) = ops(
        &client,
        Some(&thread),
        "tools",
        json!([{"op": "call", "server": "local", "name": "count"}]),
    )
    .await;
    assert_eq!(again[0]["ok"]["text"], "2", "{again}");

    // The metrics count the calls per server, tool and outcome.
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"weft_tool_calls{server="local",tool="count",outcome="ok"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"weft_tool_calls{server="local",tool="slow",outcome="unavailable"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_unavailable_and_a_bad_config_is_refused() {
    let python = tools_python("mcp", "the MCP Python SDK");
    let http = HttpTools::start(&python);
    let port = http.port;
    drop(http);
    // `web` is down; `local` names a program that does not exist.
    let data = guest_data("tools-down", &["guest-tools"], GRAPH);
    let config = data.join("weft.yaml");
    std::fs::write(
        &config,
        format!(
            "tools:\n  servers:\n    local: {{ command: /nonexistent/mcp-server }}\n    web: {{ url: \"http://127.0.0.1:{port}/mcp\", timeout_ms: 2000 }}\n"
        ),
    )
    .unwrap();
    let server = serve_guests(&data, &["--config", config.to_str().unwrap()]);
    let client = Client::new(&server, Some(&server.admin));
    let (_, answers) = ops(
        &client,
        None,
        "tools",
        json!([
            {"op": "list"},
            {"op": "call", "server": "local", "name": "add", "arguments": {"a": 1, "b": 1}},
            {"op": "call", "server": "web", "name": "add", "arguments": {"a": 1, "b": 1}},
        ]),
    )
    .await;
    assert!(
        err(&answers[0]).starts_with("unavailable: no granted MCP server answered"),
        "{answers}"
    );
    assert!(
        err(&answers[1]).contains("/nonexistent/mcp-server")
            && err(&answers[1]).contains("could not be started"),
        "{answers}"
    );
    assert!(
        err(&answers[2]).starts_with("unavailable: MCP server `web`"),
        "{answers}"
    );
    drop(server);

    // A config with a server that is both a URL and a command is refused
    // at start, naming the key.
    std::fs::write(
        &config,
        "tools:\n  servers:\n    both: { url: \"http://127.0.0.1:1/mcp\", command: x }\n",
    )
    .unwrap();
    let out = weft(
        &data,
        &["--config", config.to_str().unwrap(), "serve", "--port", "0"],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("tools.servers.both: give `url` or `command`, not both"),
        "{stderr}"
    );
}

/// The shipped framed graph with the built-in tool server `local` (this
/// binary's `weft tools-server`): the director plans a call of
/// `local.days_between`, the thinker makes it, the interpreter sees its
/// answer, and the reply rests on it. The model is scripted so that each
/// step only answers when the one before saw the tool's result.
#[test]
fn the_framed_graph_plans_and_calls_the_builtin_tools() {
    let data = temp_dir("tools-framed");
    let script = data.join("script.json");
    let plan = json!({
        "goal": "count the days",
        "steps": ["ask the calendar tool"],
        "present_as": "text",
        "tool_sequence": [
            {"tool": "local.days_between", "args": {"from": "2026-01-01", "to": "2026-03-01"}}
        ],
        "reasoning": "a date question",
        "response_hint": "say the number"
    });
    let interpreted = json!({
        "summary": "There are 59 days between the two dates.",
        "row_count": null,
        "key_facts": ["59 days"],
        "confidence": 0.9
    });
    std::fs::write(
        &script,
        json!([
            {"node": "input", "answer": "{\"intent\": \"question\", \"topic\": \"dates\", \"language\": \"en\", \"tone\": \"neutral\", \"complexity\": \"complex\", \"reflex\": false}"},
            {"node": "director", "contains": "- local.days_between {from, to}", "answer": plan.to_string()},
            {"node": "interpreter", "contains": "\"days\":59", "answer": interpreted.to_string()},
            {"node": "output", "contains": "59 days", "answer": "There are 59 days between the two dates."}
        ])
        .to_string(),
    )
    .unwrap();
    let out = weft(
        &data,
        &[
            "run",
            "--json",
            "--quiet",
            "--script",
            script.to_str().unwrap(),
            "--graph",
            "graphs/framed.yaml",
            "How many days are there from 2026-01-01 to 2026-03-01?",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let trace: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(trace["status"], "completed", "{trace}");
    assert_eq!(
        trace["reply"], "There are 59 days between the two dates.",
        "{trace}"
    );
}
