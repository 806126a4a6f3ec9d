//! Bounds through the real `weft` binary: `weft bench soak` runs and
//! prints its figures; budget changes that overflow, are negative or not
//! numbers are refused with 400 and change nothing; an answered budget
//! change survives SIGKILL; agent instances get only what their graph node
//! grants, and money budgets hold for their calls.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::time::{Duration, Instant};

use common::client::{Client, assert_error, key};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const QUESTION: &str = "How many devices does customer 1042 have?";
const SCRIPT: &str = "graphs/scripts/assistant-demo.json";

#[test]
fn the_soak_benchmark_prints_resident_memory_and_a_verdict() {
    let data = temp_dir("soak");
    let out = weft(
        &data,
        &["bench", "soak", "--runs", "2000", "--every", "500"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for figure in [
        "rss at start:",
        "runs      500  rss",
        "runs     2000  rss",
        "pruned 2000 threads, usage reset; rss after:",
        "rss growth: first quarter to end",
        "verdict: BOUNDED",
    ] {
        assert!(stdout.contains(figure), "no `{figure}` in:\n{stdout}");
    }
    // 2,000 threads ran; a durable host keeps at most 1,024 idle ones in
    // memory (plus the 4 in flight).
    let line = stdout
        .lines()
        .find(|l| l.starts_with("usage: 6000 model calls, 6000 invocations"))
        .unwrap_or_else(|| panic!("no usage line in:\n{stdout}"));
    let in_memory: usize = line
        .split("threads in memory: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(in_memory <= 1024 + 4, "{line}");
}

/// Runs the demo question on a new thread and returns its id.
async fn ask(admin: &Client) -> String {
    let (status, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    admin.finished(&thread).await;
    thread
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_changes_that_overflow_or_are_not_numbers_are_refused_and_change_nothing() {
    let server = Server::start("bad-budgets", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let thread = ask(&admin).await;
    let budget = format!("/api/v1/usage/threads/{thread}/budget");
    let (status, set) = admin.put(&budget, json!({"limit": 50_000})).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    // A valid amount this budget's limit cannot take: 409.
    let (status, body) = admin.put(&budget, json!({"raise": u64::MAX})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "budget_overflow");
    for (change, code) in [
        (json!({"raise": -5}), "invalid_request"),
        (json!({"raise": 1.5}), "invalid_request"),
        (json!({"raise": 1e30}), "invalid_request"),
        (json!({"limit": -1}), "invalid_request"),
    ] {
        let (status, body) = admin.put(&budget, change.clone()).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, code);
    }
    let (_, stored) = admin.get(&format!("/api/v1/threads/{thread}")).await;
    assert_eq!(stored["budgetLimit"], 50_000, "{stored}");
    let (_, threads) = admin.get("/api/v1/usage/threads").await;
    let mine = threads
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["threadId"] == thread.as_str())
        .unwrap();
    assert_eq!(mine["limit"], 50_000, "{mine}");

    let project = "/api/v1/usage/projects/acme/budget";
    let (status, set) = admin
        .put(project, json!({"limit": 5.0, "window": "daily"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    for change in [
        json!({"raise": -1.0}),
        json!({"raise": 1e300}),
        json!({"limit": 1e10, "window": "daily"}),
        json!({"limit": -0.5, "window": "daily"}),
    ] {
        let (status, body) = admin.put(project, change.clone()).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_budget");
    }
    // Each fine alone; the sum passes the largest limit (10^9): 409.
    let (status, body) = admin.put(project, json!({"raise": 999_999_999.0})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "budget_overflow");
    // A window belongs to a new limit only.
    let (status, body) = admin
        .put(project, json!({"raise": 1.0, "window": "daily"}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    // Not a number JSON can carry (NaN, infinity): refused by the parser.
    let (status, body) = admin
        .send(reqwest::Method::PUT, project, Some(json!({"raise": "NaN"})))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (_, now) = admin.get(project).await;
    assert_eq!(
        (now["limit"].as_f64(), now["window"].as_str()),
        (Some(5.0), Some("daily")),
        "{now}"
    );

    // Nothing changed in the store either: a restart reads the same.
    let data = server.data.clone();
    server.signal("KILL");
    drop(server);
    let server = Server::start_in(data, &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let (_, now) = admin.get(project).await;
    assert_eq!(now["limit"].as_f64(), Some(5.0), "{now}");
    let (_, stored) = admin.get(&format!("/api/v1/threads/{thread}")).await;
    assert_eq!(stored["budgetLimit"], 50_000, "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_budget_change_survives_sigkill_right_after_the_answer() {
    let server = Server::start("budget-sigkill", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let thread = ask(&admin).await;
    let (status, raised) = admin
        .put(
            &format!("/api/v1/usage/threads/{thread}/budget"),
            json!({"limit": 123_456}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{raised}");
    let (status, raised) = admin
        .put(
            &format!("/api/v1/usage/threads/{thread}/budget"),
            json!({"raise": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{raised}");
    let (status, set) = admin
        .put(
            "/api/v1/usage/projects/acme/budget",
            json!({"limit": 7.25, "window": "monthly"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    // Killed the moment the answers are in: no graceful stop, no flush.
    let data = server.data.clone();
    server.signal("KILL");
    drop(server);
    let server = Server::start_in(data, &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let (_, stored) = admin.get(&format!("/api/v1/threads/{thread}")).await;
    assert_eq!(stored["budgetLimit"], 123_457, "{stored}");
    let (_, project) = admin.get("/api/v1/usage/projects/acme/budget").await;
    assert_eq!(
        (project["limit"].as_f64(), project["window"].as_str()),
        (Some(7.25), Some("monthly")),
        "{project}"
    );
}

/// A memorizer task body: what the input node sends the memorizer.
async fn memorizer_task(admin: &Client) -> (String, Value) {
    let thread = ask(admin).await;
    let (_, messages) = admin
        .get(&format!("/api/v1/threads/{thread}/messages?limit=500"))
        .await;
    let command = messages["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == "input" && m["to"] == "memorizer")
        .unwrap()
        .clone();
    let body: Value = serde_json::from_str(command["body"].as_str().unwrap()).unwrap();
    (command["kind"].as_str().unwrap().to_owned(), body)
}

/// Waits until the instance's task has ended (idle) or waits on a budget.
async fn settled(client: &Client, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, now) = client.get(path).await;
        if now["status"] == "idle" || now["status"] == "waiting" {
            return now;
        }
        assert!(Instant::now() < deadline, "still {now}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_instances_get_only_what_their_graph_node_grants_and_money_budgets_hold() {
    let data = temp_dir("instance-grants");
    let graphs = data.join("graphs");
    std::fs::create_dir_all(&graphs).unwrap();
    // The memorizer asks for llm, memory, hud and log; this graph grants
    // it no llm.
    std::fs::write(
        graphs.join("notes-nollm.yaml"),
        "name: notes-nollm\nentry: notes\nnodes:\n  notes: { plugin: memorizer, grants: [memory, hud, log] }\n",
    )
    .unwrap();
    std::fs::write(
        graphs.join("notes.yaml"),
        "name: notes\nentry: notes\nnodes:\n  notes: { plugin: memorizer, grants: [llm, memory, hud, log] }\n",
    )
    .unwrap();
    // Every model priced, so that a money budget can hold every call.
    let config = data.join("weft.yaml");
    std::fs::write(
        &config,
        "prices:\n  - { prefix: \"\", prompt_per_million: 1000, completion_per_million: 2000 }\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(root().join(SCRIPT)).unwrap();
    let mut rules: Vec<Value> = serde_json::from_str(&text).unwrap();
    let notes = rules.iter().find(|r| r["node"] == "memorizer").unwrap()["answer"].clone();
    rules.push(json!({"contains": "You keep notes", "answer": notes, "repeat": true}));
    let script = data.join("script.json");
    std::fs::write(&script, serde_json::to_string(&rules).unwrap()).unwrap();
    let server = Server::start_in(
        data.clone(),
        &["--config", config.to_str().unwrap()],
        &[
            "--script",
            script.to_str().unwrap(),
            "--graphs",
            graphs.to_str().unwrap(),
        ],
    );
    let admin = Client::new(&server, Some(&server.admin));
    let acme = Client::new(&server, Some(&key(&admin, "operator", Some("acme")).await));
    let (kind, body) = memorizer_task(&admin).await;
    let base = "/api/v1/projects/acme/agents";

    // Bad requests: an unknown graph, a graph without the plugin, a config
    // of the client's own.
    let (status, err) = acme
        .post(
            base,
            json!({"name": "n", "plugin": "memorizer", "graph": "nope"}),
        )
        .await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, err) = acme
        .post(base, json!({"name": "n", "plugin": "pa", "graph": "notes"}))
        .await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "not_in_graph");
    let (status, err) = acme
        .post(
            base,
            json!({"name": "n", "plugin": "memorizer", "graph": "notes", "config": {"x": 1}}),
        )
        .await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_request");

    // Spawned from a node without llm: its model call is denied.
    let (status, spawned) = acme
        .post(
            base,
            json!({"name": "no-llm", "plugin": "memorizer", "graph": "notes-nollm"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{spawned}");
    let id = spawned["id"].as_str().unwrap().to_owned();
    let (status, task) = acme
        .post(
            &format!("{base}/{id}/tasks"),
            json!({"kind": kind, "body": body}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    let done = settled(&acme, &format!("{base}/{id}")).await;
    assert_eq!(done["status"], "idle", "{done}");
    assert_eq!(done["tokensUsed"], 0, "{done}");
    let (_, frames) = admin
        .get(&format!("/api/v1/threads/{id}.thread/frames"))
        .await;
    let frames = frames.to_string();
    assert!(frames.contains(r#""denied":["llm"]"#), "{frames}");

    // Spawned from a node with llm, in a project whose money is spent:
    // the call is refused and the task waits on the budget.
    let (status, set) = admin
        .put(
            "/api/v1/usage/projects/acme/budget",
            json!({"limit": 0.0, "window": "none"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let (status, spawned) = acme
        .post(
            base,
            json!({"name": "llm", "plugin": "memorizer", "graph": "notes"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{spawned}");
    let id = spawned["id"].as_str().unwrap().to_owned();
    let (status, task) = acme
        .post(
            &format!("{base}/{id}/tasks"),
            json!({"kind": kind, "body": body}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, budget) = acme.get("/api/v1/usage/projects/acme/budget").await;
        if budget["exhausted"] == true {
            assert_eq!(budget["spent"].as_f64(), Some(0.0), "{budget}");
            break;
        }
        assert!(Instant::now() < deadline, "never refused: {budget}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (_, usage) = acme.get("/api/v1/usage").await;
    assert_eq!(usage["totals"]["cost"].as_f64(), Some(0.0), "{usage}");
}
