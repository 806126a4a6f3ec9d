//! `weft serve` over a real socket: auth, roles and projects, inject,
//! send, kill, pause, the one error shape for bad input, rate limits,
//! events with resumption, metrics, OpenAPI, and a graceful stop with runs
//! in flight that loses nothing.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::time::{Duration, Instant};

use common::client::{Client, assert_error, key};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const QUESTION: &str = "How many devices does customer 1042 have?";
const SCRIPT: &str = "graphs/scripts/assistant-demo.json";

/// The demo script with every answer delayed.
fn slow_script(dir: &std::path::Path, delay_ms: u64) -> String {
    let text = std::fs::read_to_string(root().join(SCRIPT)).unwrap();
    let mut rules: Vec<Value> = serde_json::from_str(&text).unwrap();
    for rule in &mut rules {
        rule["delay_ms"] = delay_ms.into();
    }
    let path = dir.join(format!("slow-{delay_ms}.json"));
    std::fs::write(&path, serde_json::to_string(&rules).unwrap()).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inject_runs_the_assistant_and_every_read_route_answers() {
    let server = Server::start("api-basic", &[], &["--script", SCRIPT]);
    let anon = Client::new(&server, None);
    let admin = Client::new(&server, Some(&server.admin));
    // Unauthenticated: health, ready, OpenAPI, docs, metrics. Everything
    // else under /api/v1 needs a key.
    assert_eq!(anon.get("/health").await.0, StatusCode::OK);
    assert_eq!(anon.get("/ready").await.0, StatusCode::OK);
    let (status, doc) = anon.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/v1/inject"]["post"].is_object());
    let (status, page) = anon.get("/api/v1/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.as_str().unwrap().contains("swagger"),
        "an offline page"
    );
    for path in [
        "/api/v1/organism",
        "/api/v1/threads",
        "/api/v1/usage",
        "/api/v1/events",
    ] {
        let (status, body) = anon.get(path).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let forged = Client::new(&server, Some("weft_forged"));
    let (status, body) = forged.get("/api/v1/organism").await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // Inject really enters the engine and answers with the ids.
    let (status, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    let run = accepted["runId"].as_str().unwrap();
    assert_eq!(accepted["messageId"], format!("{run}/in"));
    admin.answered(&thread).await;

    // A chat message on the same thread continues it.
    let (status, second) = admin
        .post(
            &format!("/api/v1/threads/{thread}/messages"),
            json!({"text": "Thanks!"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    assert_eq!(second["runId"], format!("{thread}.run-2"));
    admin.finished(&thread).await;

    let (_, info) = admin.get("/api/v1/organism").await;
    assert_eq!(
        (info["status"].as_str(), info["activeGraph"].as_str()),
        (Some("running"), Some("assistant"))
    );
    assert_eq!(info["threads"], 1);
    let (_, threads) = admin.get("/api/v1/threads?limit=10&offset=0").await;
    assert_eq!(threads["total"], 1);
    assert_eq!(threads["items"][0]["runs"], 2);
    let (_, by_node) = admin.get("/api/v1/threads?node=eras").await;
    assert_eq!(by_node["total"], 1);
    let (_, none) = admin.get("/api/v1/threads?node=director").await;
    assert_eq!(
        none["total"], 0,
        "the director is not in the assistant graph"
    );
    let (_, detail) = admin.get(&format!("/api/v1/threads/{thread}")).await;
    assert_eq!(detail["status"], "completed");
    let (_, messages) = admin
        .get(&format!("/api/v1/threads/{thread}/messages?limit=500"))
        .await;
    assert!(messages["total"].as_u64().unwrap() >= 6, "{messages}");
    assert!(
        messages["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["deliveredFrame"].is_u64())
    );
    let (_, runs) = admin.get(&format!("/api/v1/threads/{thread}/runs")).await;
    assert_eq!(runs.as_array().unwrap().len(), 2);
    let (_, frames) = admin
        .get(&format!("/api/v1/threads/{thread}/frames?limit=2"))
        .await;
    assert_eq!(frames["items"].as_array().unwrap().len(), 2);
    assert_eq!(frames["items"][0]["records"][0]["node"], "input");
    let (_, recent) = admin.get("/api/v1/frames?last=1").await;
    assert_eq!(recent.as_array().unwrap().len(), 1);
    let (_, usage) = admin.get("/api/v1/usage").await;
    assert!(usage["totals"]["calls"].as_u64().unwrap() >= 4, "{usage}");
    assert!(usage["byNode"]["eras"].is_object());
    let (_, budgets) = admin.get("/api/v1/usage/threads").await;
    assert!(budgets.is_array());
    let (_, graphs) = admin.get("/api/v1/graphs").await;
    assert!(
        graphs
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "assistant" && g["active"] == true)
    );
    let (_, active) = admin.get("/api/v1/graphs/active").await;
    assert!(active["cytoscape"]["elements"]["nodes"].is_array());
    let (_, plugins) = admin.get("/api/v1/plugins").await;
    assert!(
        plugins
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["hash"].as_str().unwrap().len() == 64 && p["contract"].is_string())
    );
    let (_, agents) = admin.get("/api/v1/agents").await;
    assert!(
        agents
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "eras" && a["state"] == "idle")
    );
    let (_, eras) = admin.get("/api/v1/agents/eras").await;
    assert!(
        eras["inputSchema"].is_object() && eras["config"]["mode"] == "intent",
        "{eras}"
    );
    let (_, config) = admin.get("/api/v1/organism/config").await;
    assert!(config["store"]["sync"].is_string(), "{config}");
    let (status, body) = admin.get("/api/v1/threads/thread-unknown").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Metrics count requests, invocations and tokens.
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("weft_http_requests_total{"), "{metrics}");
    assert!(
        metrics.contains("weft_node_invocations_total{node=\"eras\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weft_llm_tokens{kind=\"prompt\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_replays_over_the_api_exactly_and_nothing_is_written() {
    let server = Server::start("api-replay", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let (status, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    admin.finished(&thread).await;
    let (_, before) = admin.get(&format!("/api/v1/threads/{thread}")).await;
    let replay = format!("/api/v1/threads/{thread}/replay");

    // Every committed frame, on the recorded versions: reproduced.
    let (status, all) = admin.post(&replay, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["threadId"], thread.as_str());
    assert_eq!(all["reproduced"], true, "{all}");
    assert_eq!(all["divergences"], json!([]));
    let frames = all["frames"].as_u64().unwrap();
    assert!(frames >= 3, "the assistant runs several frames: {all}");
    assert!(all["invocations"].as_u64().unwrap() >= frames, "{all}");
    assert!(
        all["journalEntries"].as_u64().unwrap() >= 1,
        "the model calls come from the journal: {all}"
    );

    // One frame; and the current versions (the same plugins here).
    let (status, one) = admin
        .post(&replay, json!({"frame": 0, "versions": "current"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        (one["frames"].as_u64(), one["reproduced"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(one["changedPlugins"], json!([]));

    // Refusals: a frame the thread does not have, an unknown version set,
    // an unknown field, a thread that does not exist, a viewer.
    let (status, body) = admin.post(&replay, json!({"frame": frames + 5})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = admin.post(&replay, json!({"versions": "latest"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = admin.post(&replay, json!({"from": 1})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = admin
        .post("/api/v1/threads/thread-none/replay", json!({}))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let viewer = Client::new(&server, Some(&key(&admin, "viewer", None).await));
    let (status, body) = viewer.post(&replay, json!({})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");

    // A replay writes nothing: the thread is as it was.
    let (_, after) = admin.get(&format!("/api/v1/threads/{thread}")).await;
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_projects_decide_what_a_key_may_see_and_do() {
    let server = Server::start("api-roles", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let viewer = Client::new(&server, Some(&key(&admin, "viewer", None).await));
    let operator = Client::new(&server, Some(&key(&admin, "operator", None).await));
    let acme = Client::new(&server, Some(&key(&admin, "operator", Some("acme")).await));
    let globex = Client::new(&server, Some(&key(&admin, "admin", Some("globex")).await));

    // Viewers read, operators act, admins manage keys.
    let (status, body) = viewer
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(viewer.get("/api/v1/threads").await.0, StatusCode::OK);
    let (status, body) = operator
        .post("/api/v1/keys", json!({"name": "x", "role": "viewer"}))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = operator.post("/api/v1/organism/stop", json!({})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = viewer.post("/api/v1/agents/eras/pause", json!({})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");

    // A project key's threads are in its project, invisible to others.
    let (status, accepted) = acme.post("/api/v1/inject", json!({"text": QUESTION})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    acme.finished(&thread).await;
    let (_, mine) = acme.get("/api/v1/threads").await;
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0]["project"], "acme");
    let (_, theirs) = globex.get("/api/v1/threads").await;
    assert_eq!(theirs["total"], 0);
    for path in [
        format!("/api/v1/threads/{thread}"),
        format!("/api/v1/threads/{thread}/messages"),
        format!("/api/v1/threads/{thread}/frames"),
        format!("/api/v1/threads/{thread}/result"),
    ] {
        let (status, body) = globex.get(&path).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, body) = globex
        .post(
            &format!("/api/v1/threads/{thread}/messages"),
            json!({"text": "hi"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = globex
        .post("/api/v1/inject", json!({"text": "hi", "threadId": thread}))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = acme
        .post("/api/v1/inject", json!({"text": "hi", "project": "globex"}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    // Unscoped keys see every project.
    let (_, all) = viewer.get("/api/v1/threads").await;
    assert_eq!(all["total"], 1);
    let (_, usage) = acme.get("/api/v1/usage").await;
    assert_eq!(usage["project"], "acme");
    assert!(
        usage.get("byNode").is_none(),
        "a project key sees its totals only"
    );

    // Keys are listed without secrets and can be revoked.
    let (_, keys) = admin.get("/api/v1/keys").await;
    assert_eq!(keys.as_array().unwrap().len(), 5);
    assert!(!keys.to_string().contains("weft_"), "no secrets: {keys}");
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "viewer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = admin
        .send(reqwest::Method::DELETE, &format!("/api/v1/keys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = viewer.get("/api/v1/threads").await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_pause_and_busy_threads_act_on_the_engine() {
    let data = temp_dir("api-act");
    let slow = slow_script(&data, 500);
    let server = Server::start_in(data, &[], &["--script", &slow]);
    let admin = Client::new(&server, Some(&server.admin));
    let (_, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    // Busy: a second message is refused with 409.
    let (status, body) = admin
        .post(
            &format!("/api/v1/threads/{thread}/messages"),
            json!({"text": "again"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "thread_busy");
    let (_, result) = admin.get(&format!("/api/v1/threads/{thread}/result")).await;
    assert_eq!(result["busy"], true);
    // Kill stops the run at its next frame boundary.
    let (status, killed) = admin
        .post(&format!("/api/v1/threads/{thread}/kill"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{killed}");
    assert_eq!(killed["runId"], accepted["runId"]);
    let result = admin.finished(&thread).await;
    assert_eq!(result["run"]["status"], "killed");
    let (status, body) = admin
        .post(&format!("/api/v1/threads/{thread}/kill"), json!({}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "not_running");

    // A paused agent holds its messages until it is resumed.
    let (status, paused) = admin.post("/api/v1/agents/output/pause", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["state"], "paused");
    let (status, body) = admin.post("/api/v1/agents/output/pause", json!({})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "invalid_transition");
    let (_, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, frames) = admin
            .get(&format!("/api/v1/threads/{thread}/frames?limit=10"))
            .await;
        // Frames 0-2, and 3 with the ui node alone: output waits.
        if frames["total"].as_u64().unwrap_or(0) >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "frames 0-2 did not run: {}",
            frames["total"]
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, result) = admin.get(&format!("/api/v1/threads/{thread}/result")).await;
    assert_eq!(result["busy"], true, "waiting for the paused output node");
    let (status, _) = admin.post("/api/v1/agents/output/resume", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    admin.answered(&thread).await;
    let (status, body) = admin.post("/api/v1/agents/nobody/pause", json!({})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Agents per project: a key of project acme pauses a node for acme alone.
    let acme = Client::new(&server, Some(&key(&admin, "operator", Some("acme")).await));
    let (status, paused) = acme.post("/api/v1/agents/eras/pause", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(
        (&paused["state"], &paused["project"], &paused["pausedFor"]),
        (&json!("paused"), &json!("acme"), &json!("acme"))
    );
    let (_, everywhere) = admin.get("/api/v1/agents/eras").await;
    assert_eq!(everywhere["state"], "idle", "not paused for every project");
    let (_, default) = admin.get("/api/v1/agents/eras?project=default").await;
    assert_eq!(
        default["state"], "idle",
        "not paused for the default project"
    );
    let (_, seen) = admin.get("/api/v1/agents?project=acme").await;
    let eras = seen
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "eras")
        .unwrap();
    assert_eq!(eras["pausedFor"], "acme");
    let (status, body) = acme.get("/api/v1/agents?project=default").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    // A pause of every project holds acme too, and only a key of every
    // project lifts it.
    let (status, _) = admin.post("/api/v1/agents/output/pause", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, output) = acme.get("/api/v1/agents/output").await;
    assert_eq!(output["pausedFor"], "*");
    let (status, body) = acme.post("/api/v1/agents/output/resume", json!({})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "invalid_transition");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("every project")
    );
    for (client, path) in [
        (&admin, "/api/v1/agents/output/resume"),
        (&acme, "/api/v1/agents/eras/resume"),
    ] {
        let (status, body) = client.post(path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["state"], "idle");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_4xx_in_the_one_error_shape() {
    let server = Server::start("api-bad", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let http = reqwest::Client::new();
    let raw = |body: &'static str, content_type: &'static str| {
        http.post(server.url("/api/v1/inject"))
            .bearer_auth(&server.admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (body, content_type, status, code) in [
        (
            "{\"text\": ",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        // serde would read an array as the fields in order: refused.
        (
            "[\"hello\", null, null]",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "{\"text\": 5}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "{\"text\": \"x\", \"extra\": 1}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "{}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "{\"text\": \"x\"}",
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "{\"to\": \"nobody\", \"text\": \"x\"}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "{\"to\": \"eras\", \"body\": {\"nonsense\": true}}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
    ] {
        let resp = raw(body, content_type).await.unwrap();
        let got = resp.status();
        let value: Value = resp.json().await.unwrap();
        assert_error(got, &value, status, code);
    }
    // A body over the limit (1 MiB by default).
    let huge = "x".repeat(2 << 20);
    let resp = http
        .post(server.url("/api/v1/inject"))
        .bearer_auth(&server.admin)
        .json(&json!({ "text": huge }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    for (path, code) in [
        ("/api/v1/threads?limit=0", "invalid_request"),
        ("/api/v1/threads?limit=501", "invalid_request"),
        ("/api/v1/threads?limit=ten", "invalid_query"),
        ("/api/v1/threads?offset=-1", "invalid_query"),
        ("/api/v1/threads?status=sleeping", "invalid_request"),
        ("/api/v1/threads?colour=red", "invalid_query"),
        ("/api/v1/frames?last=0", "invalid_request"),
    ] {
        let (status, body) = admin.get(path).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, code);
    }
    let (status, body) = admin.get("/api/v1/nothing-here").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = admin
        .post("/api/v1/threads/t-1/fork", json!({"after": "first"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/usage/threads/x/budget",
            Some(json!({"raise": 5, "limit": 5})),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    let (status, body) = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/graphs/active",
            Some(json!({"name": "nope"})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = admin
        .post("/api/v1/keys", json!({"name": "k", "role": "superuser"}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let data = temp_dir("api-rate");
    let config = data.join("weft.yaml");
    std::fs::write(&config, "api: { rate_per_minute: 60, burst: 5 }\n").unwrap();
    let server = Server::start_in(
        data,
        &["--config", config.to_str().unwrap()],
        &["--script", SCRIPT],
    );
    let http = reqwest::Client::new();
    let mut limited = None;
    for _ in 0..10 {
        let resp = http
            .get(server.url("/api/v1/organism"))
            .bearer_auth(&server.admin)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(resp);
            break;
        }
    }
    let resp = limited.expect("the 6th quick request is limited");
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Unauthenticated routes are not limited per key.
    assert_eq!(
        http.get(server.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// Reads SSE events from `resp` until `want` of them have come.
async fn read_events(resp: reqwest::Response, want: usize) -> Vec<(Option<u64>, String, Value)> {
    read_sse(resp, |events| events.len() >= want).await
}

/// Reads SSE events (id, type, data) from `resp` until `done` says the
/// events so far are enough.
async fn read_sse(
    resp: reqwest::Response,
    done: impl Fn(&[(Option<u64>, String, Value)]) -> bool,
) -> Vec<(Option<u64>, String, Value)> {
    use futures_util::StreamExt;
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(&events) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events in time")
            .expect("stream open")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut kind = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !kind.is_empty() {
                events.push((id, kind, serde_json::from_str(&data).unwrap_or(Value::Null)));
                if done(&events) {
                    return events;
                }
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_live_and_resume_after_a_disconnect() {
    let server = Server::start("api-events", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let http = reqwest::Client::new();
    let live = http
        .get(server.url("/api/v1/events"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let (_, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    let first = read_events(live, 4).await;
    assert_eq!(first[0].1, "run_started", "{first:?}");
    assert!(
        first
            .iter()
            .all(|(id, _, e)| e["thread"] == thread.as_str() && id.is_some())
    );
    admin.finished(&thread).await;
    // Reconnect after the 4th event: the rest comes from the history, in order.
    let last = first[3].0.unwrap();
    let resumed = http
        .get(server.url(&format!("/api/v1/events?thread={thread}")))
        .bearer_auth(&server.admin)
        .header("Last-Event-ID", last.to_string())
        .send()
        .await
        .unwrap();
    let rest = read_events(resumed, 3).await;
    assert_eq!(rest[0].0, Some(last + 1), "{rest:?}");
    assert!(rest.windows(2).all(|w| w[0].0 < w[1].0));
    // The same stream over a WebSocket, resuming the same way.
    {
        use futures_util::StreamExt;
        let ws_url = server.base.replace("http://", "ws://");
        let (mut socket, _) = tokio_tungstenite::connect_async(format!(
            "{ws_url}/api/v1/ws/events?thread={thread}&lastEventId={last}&access_token={}",
            server.admin
        ))
        .await
        .expect("event socket");
        let mut ids = Vec::new();
        while ids.len() < 3 {
            let msg = tokio::time::timeout(Duration::from_secs(30), socket.next())
                .await
                .expect("in time")
                .expect("open")
                .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(value["event"]["thread"], thread.as_str(), "{value}");
                ids.push(value["id"].as_u64().unwrap());
            }
        }
        assert_eq!(ids, rest.iter().map(|e| e.0.unwrap()).collect::<Vec<_>>());
    }
    // From the start, all of this run's events are still in the history.
    let old = http
        .get(server.url("/api/v1/events"))
        .bearer_auth(&server.admin)
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    let events = read_events(old, 1).await;
    assert_eq!(events[0].1, "run_started", "{events:?}");
    assert!(events[0].0.unwrap() < last, "{events:?}");
    // A client that asks for events older than the history is told how
    // many it lost, then gets the oldest kept.
    let data = temp_dir("api-events-short");
    let config = data.join("weft.yaml");
    std::fs::write(&config, "api: { event_history: 4 }\n").unwrap();
    let short = Server::start_in(
        data,
        &["--config", config.to_str().unwrap()],
        &["--script", SCRIPT],
    );
    let short_admin = Client::new(&short, Some(&short.admin));
    let (_, accepted) = short_admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    short_admin
        .answered(accepted["threadId"].as_str().unwrap())
        .await;
    let old = http
        .get(short.url("/api/v1/events"))
        .bearer_auth(&short.admin)
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    let events = read_events(old, 2).await;
    assert_eq!(events[0].1, "missed", "{events:?}");
    let lost = events[0].2["missed"].as_u64().unwrap();
    assert!(lost > 0, "{events:?}");
    let after = events[0].2["after"].as_u64().unwrap();
    assert_eq!(
        events[1].0,
        Some(after + lost + 1),
        "the oldest kept event follows: {events:?}"
    );
    let (status, body) = {
        let resp = http
            .get(server.url("/api/v1/events"))
            .bearer_auth(&server.admin)
            .header("Last-Event-ID", "yesterday")
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    };
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_with_runs_in_flight_loses_nothing() {
    let data = temp_dir("api-stop");
    let slow = slow_script(&data, 300);
    let server = Server::start_in(data.clone(), &[], &["--script", &slow]);
    let admin = Client::new(&server, Some(&server.admin));
    let mut threads = Vec::new();
    for _ in 0..20 {
        let (status, accepted) = admin
            .post("/api/v1/inject", json!({"text": QUESTION}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        threads.push(accepted["threadId"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _) = admin.post("/api/v1/organism/stop", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut server = server;
    let exit = server.wait();
    assert!(exit.success(), "{exit}");
    // Restarted, the host resumes every run that was stopped mid-way.
    let server = Server::start_in(data, &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    for thread in &threads {
        admin.answered(thread).await;
        let (_, frames) = admin
            .get(&format!("/api/v1/threads/{thread}/frames?limit=50"))
            .await;
        assert_eq!(frames["total"], 5, "{thread}: every frame once");
        let (_, messages) = admin
            .get(&format!("/api/v1/threads/{thread}/messages?limit=500"))
            .await;
        let items = messages["items"].as_array().unwrap();
        assert!(
            items.iter().all(|m| m["deliveredFrame"].is_u64()),
            "nothing pending: {messages}"
        );
    }
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_websocket_streams_a_question_to_the_assistant() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = Server::start("api-ws", &[], &["--script", SCRIPT]);
    let ws_url = server.base.replace("http://", "ws://");
    // Authentication comes before the upgrade.
    let refused = tokio_tungstenite::connect_async(format!("{ws_url}/api/v1/ws")).await;
    assert!(refused.is_err(), "no key, no socket");
    let (mut socket, _) = tokio_tungstenite::connect_async(format!(
        "{ws_url}/api/v1/ws?access_token={}",
        server.admin
    ))
    .await
    .expect("websocket");
    let first = tokio::time::timeout(Duration::from_secs(30), socket.next())
        .await
        .expect("a message in time")
        .expect("socket open")
        .unwrap();
    let session: Value = serde_json::from_str(first.into_text().unwrap().as_str()).unwrap();
    assert_eq!(session["type"], "session");
    let thread = session["threadId"].as_str().unwrap().to_owned();
    socket
        .send(Message::Text(
            json!({"type": "message", "text": QUESTION})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let done = loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("in time")
            .expect("open")
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let value: Value = serde_json::from_str(text.as_str()).unwrap();
        let kind = value["type"].as_str().unwrap().to_owned();
        if kind == "done" {
            break value;
        }
        seen.push((kind, value));
    };
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds[0], "accepted", "{kinds:?}");
    assert!(kinds.contains(&"progress"), "{kinds:?}");
    assert!(kinds.contains(&"delta"), "the reply streams: {kinds:?}");
    assert!(kinds.contains(&"controls"), "{kinds:?}");
    let streamed: String = seen
        .iter()
        .filter(|(k, _)| k == "delta")
        .map(|(_, v)| v["text"].as_str().unwrap())
        .collect();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["reply"].as_str().unwrap().trim(), streamed.trim());
    assert!(streamed.contains("3 metering devices"));
    // Bad messages get an error and the session goes on.
    socket
        .send(Message::Text("{\"type\": \"shout\"}".into()))
        .await
        .unwrap();
    let msg = socket.next().await.unwrap().unwrap();
    let value: Value = serde_json::from_str(msg.into_text().unwrap().as_str()).unwrap();
    assert_eq!(
        (value["type"].as_str(), value["code"].as_str()),
        (Some("error"), Some("invalid_message"))
    );
    // The session survives a graph switch: its thread keeps its graph.
    let admin = Client::new(&server, Some(&server.admin));
    let (status, switched) = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/graphs/active",
            Some(json!({"name": "framed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{switched}");
    socket
        .send(Message::Text(
            json!({"type": "message", "text": QUESTION})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let again = loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("in time")
            .expect("open")
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let value: Value = serde_json::from_str(text.as_str()).unwrap();
        if value["type"] == "done" {
            break value;
        }
    };
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(again["runId"], format!("{thread}.run-2"));
    // The thread is the one the session named.
    let (_, result) = admin.get(&format!("/api/v1/threads/{thread}/result")).await;
    assert_eq!(result["run"]["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_instances_follow_the_lifecycle_and_transitions_are_atomic() {
    let data = temp_dir("api-instances");
    // The demo script, and an answer for a memorizer that runs as an
    // instance (whose node is named after the instance).
    let text = std::fs::read_to_string(root().join(SCRIPT)).unwrap();
    let mut rules: Vec<Value> = serde_json::from_str(&text).unwrap();
    let notes = rules.iter().find(|r| r["node"] == "memorizer").unwrap()["answer"].clone();
    rules.push(
        json!({"contains": "You keep notes", "answer": notes, "repeat": true, "delay_ms": 300}),
    );
    let script = data.join("instances.json");
    std::fs::write(&script, serde_json::to_string(&rules).unwrap()).unwrap();
    let server = Server::start_in(data.clone(), &[], &["--script", script.to_str().unwrap()]);
    let admin = Client::new(&server, Some(&server.admin));
    let acme = Client::new(&server, Some(&key(&admin, "operator", Some("acme")).await));
    let globex = Client::new(
        &server,
        Some(&key(&admin, "operator", Some("globex")).await),
    );

    // A real task body: what the input node sends the memorizer.
    let (_, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    admin.finished(&thread).await;
    let (_, messages) = admin
        .get(&format!("/api/v1/threads/{thread}/messages?limit=500"))
        .await;
    let command = messages["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == "input" && m["to"] == "memorizer")
        .unwrap();
    let body: Value = serde_json::from_str(command["body"].as_str().unwrap()).unwrap();
    let kind = command["kind"].as_str().unwrap().to_owned();

    let base = "/api/v1/projects/acme/agents";
    let (status, spawned) = acme
        .post(base, json!({"name": "notes", "plugin": "memorizer"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{spawned}");
    assert_eq!(spawned["status"], "idle");
    let id = spawned["id"].as_str().unwrap().to_owned();
    let one = format!("{base}/{id}");
    let (status, body_err) = acme
        .post(base, json!({"name": "x", "plugin": "nope"}))
        .await;
    assert_error(
        status,
        &body_err,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );

    // A task makes it work, then it is idle again, with its usage.
    let (status, task) = acme
        .post(&format!("{one}/tasks"), json!({"kind": kind, "body": body}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    let (_, working) = acme.get(&one).await;
    assert_eq!(working["status"], "working", "{working}");
    let (status, busy) = acme
        .post(&format!("{one}/tasks"), json!({"kind": kind, "body": body}))
        .await;
    assert_error(status, &busy, StatusCode::CONFLICT, "invalid_transition");
    let deadline = Instant::now() + Duration::from_secs(30);
    let idle = loop {
        let (_, now) = acme.get(&one).await;
        if now["status"] == "idle" {
            break now;
        }
        assert!(Instant::now() < deadline, "still {now}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert_eq!(idle["tasksCompleted"], 1);
    assert!(idle["tokensUsed"].as_u64().unwrap() > 0, "{idle}");

    // Clients cannot set system-owned states; the state machine decides.
    let (status, err) = acme
        .send(
            reqwest::Method::PATCH,
            &one,
            Some(json!({"status": "working"})),
        )
        .await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "system_owned_state");
    let (status, renamed) = acme
        .send(
            reqwest::Method::PATCH,
            &one,
            Some(json!({"name": "notes-2"})),
        )
        .await;
    assert_eq!(
        (status, renamed["name"].as_str()),
        (StatusCode::OK, Some("notes-2"))
    );

    // Of ten concurrent pauses exactly one wins.
    let pause_path = format!("{one}/pause");
    let pauses = (0..10).map(|_| acme.post(&pause_path, json!({})));
    let results = futures_util::future::join_all(pauses).await;
    let won = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let lost = results
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "invalid_transition")
        .count();
    assert_eq!((won, lost), (1, 9), "{results:?}");
    let (status, err) = acme
        .post(&format!("{one}/tasks"), json!({"kind": kind, "body": body}))
        .await;
    assert_error(status, &err, StatusCode::CONFLICT, "invalid_transition");
    let (status, resumed) = acme.post(&format!("{one}/resume"), json!({})).await;
    assert_eq!(
        (status, resumed["status"].as_str()),
        (StatusCode::OK, Some("idle"))
    );

    // Another project sees nothing.
    let (status, err) = globex.get(&one.replace("acme", "globex")).await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
    let (status, err) = globex.get(&one).await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
    let (_, list) = acme.get(&format!("{base}?status=idle")).await;
    assert_eq!(list["total"], 1);

    // Terminated is final.
    let (status, gone) = acme.send(reqwest::Method::DELETE, &one, None).await;
    assert_eq!(
        (status, gone["status"].as_str()),
        (StatusCode::OK, Some("terminated")),
        "{gone}"
    );
    assert!(gone["terminatedMs"].is_u64());
    let (status, err) = acme.post(&format!("{one}/resume"), json!({})).await;
    assert_error(status, &err, StatusCode::CONFLICT, "invalid_transition");
    let (_, metrics) = acme.get(&format!("{base}/metrics")).await;
    assert_eq!(
        (metrics["total"].as_u64(), metrics["terminated"].as_u64()),
        (Some(1), Some(1)),
        "{metrics}"
    );
    assert_eq!(metrics["tasksCompleted"], 1);
    let (_, one_metrics) = acme.get(&format!("{one}/metrics")).await;
    assert_eq!(one_metrics["total"], 1);

    // Instances survive a restart.
    let status = server.terminate();
    assert!(status.success());
    let server = Server::start_in(data, &[], &["--script", script.to_str().unwrap()]);
    let admin = Client::new(&server, Some(&server.admin));
    let (_, after) = admin.get(&one).await;
    assert_eq!(
        (after["status"].as_str(), after["name"].as_str()),
        (Some("terminated"), Some("notes-2"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_history_usage_details_and_a_diff_based_reload() {
    let data = temp_dir("api-more");
    let graphs = data.join("graphs");
    std::fs::create_dir_all(&graphs).unwrap();
    let graph = graphs.join("assistant.yaml");
    std::fs::copy(root().join("graphs/assistant.yaml"), &graph).unwrap();
    let server = Server::start_in(
        data,
        &[],
        &[
            "--script",
            SCRIPT,
            "--graph",
            graph.to_str().unwrap(),
            "--graphs",
            graphs.to_str().unwrap(),
        ],
    );
    let admin = Client::new(&server, Some(&server.admin));
    let (_, caps) = admin.get("/api/v1/capabilities").await;
    let eras = caps
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "eras")
        .unwrap();
    assert_eq!(eras["agents"], json!(["eras"]));
    assert!(eras["needs"].as_array().unwrap().contains(&json!("db")));
    let (_, detail) = admin.get("/api/v1/capabilities/input").await;
    assert!(detail["inputSchema"].is_object());
    assert!(detail["example"].is_object(), "{detail}");
    let (status, err) = admin.get("/api/v1/capabilities/nope").await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");

    let (_, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    admin.finished(&thread).await;
    let (_, history) = admin.get("/api/v1/messages?node=eras").await;
    let items = history["items"].as_array().unwrap();
    assert!(
        !items.is_empty()
            && items
                .iter()
                .all(|m| m["to"] == "eras" || m["from"] == "eras"),
        "{history}"
    );
    // The expert answers this question from its grounding alone (no model
    // call): input, memorizer and output call the model.
    let (_, node) = admin.get("/api/v1/usage/nodes/eras").await;
    assert_eq!(node["totals"]["calls"], 0, "{node}");
    assert_eq!(node["totals"]["invocations"], 1, "{node}");
    let (_, model) = admin.get("/api/v1/usage/models/small").await;
    assert_eq!(model["totals"]["calls"], 3, "{model}");
    let (status, err) = admin.get("/api/v1/usage/models/gpt-9").await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");

    // A usage reset starts the reported totals over (admins only).
    let (status, err) = Client::new(&server, Some(&key(&admin, "operator", None).await))
        .post("/api/v1/usage/reset", json!({}))
        .await;
    assert_error(status, &err, StatusCode::FORBIDDEN, "forbidden");
    let (status, reset) = admin.post("/api/v1/usage/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    let (_, usage) = admin.get("/api/v1/usage").await;
    assert_eq!(
        (usage["totals"]["calls"].as_u64(), usage["sinceMs"].clone()),
        (Some(0), reset["sinceMs"].clone())
    );
    let (_, again) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    admin.answered(again["threadId"].as_str().unwrap()).await;
    let (_, usage) = admin.get("/api/v1/usage").await;
    assert_eq!(usage["totals"]["calls"], 3, "{usage}");

    // Usage over time counts every kept call (the reset only restarts the
    // totals): two questions, three model calls each, all by `small`.
    let (status, series) = admin.get("/api/v1/usage/series?by=model").await;
    assert_eq!(status, StatusCode::OK, "{series}");
    assert_eq!(series["keys"], json!(["small"]), "{series}");
    assert_eq!(series["bucketMs"], 3_600_000);
    let calls: u64 = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(calls, 6, "{series}");
    let (_, by_node) = admin.get("/api/v1/usage/series?by=node&bucket=day").await;
    for node in ["input", "memorizer", "output"] {
        assert!(
            by_node["keys"].as_array().unwrap().contains(&json!(node)),
            "{by_node}"
        );
    }
    let (_, empty) = admin
        .get("/api/v1/usage/series?sinceMs=2000&untilMs=1000")
        .await;
    assert_eq!(empty["points"], json!([]), "{empty}");
    // A range of more than 1000 buckets is cut to the last 1000.
    let (_, long) = admin
        .get("/api/v1/usage/series?bucket=minute&sinceMs=0")
        .await;
    assert_eq!(
        long["untilMs"].as_u64().unwrap() - long["sinceMs"].as_u64().unwrap(),
        1000 * 60_000,
        "{long}"
    );
    let (status, err) = admin.get("/api/v1/usage/series?by=thread").await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_request");
    // Threads filtered by project and time.
    let count = |v: &Value| v["total"].as_u64().unwrap();
    let (_, all) = admin.get("/api/v1/threads").await;
    let (_, mine) = admin.get("/api/v1/threads?project=default").await;
    assert_eq!(count(&mine), count(&all));
    assert!(count(&all) >= 2, "{all}");
    let (_, other) = admin.get("/api/v1/threads?project=elsewhere").await;
    assert_eq!(count(&other), 0, "{other}");
    let (_, old) = admin.get("/api/v1/threads?untilMs=1").await;
    assert_eq!(count(&old), 0, "{old}");
    let (_, recent) = admin.get("/api/v1/threads?sinceMs=1").await;
    assert_eq!(count(&recent), count(&all));

    // Reload: one node's config changed.
    let viewer = Client::new(&server, Some(&key(&admin, "viewer", None).await));
    let (status, err) = viewer.post("/api/v1/organism/reload", json!({})).await;
    assert_error(status, &err, StatusCode::FORBIDDEN, "forbidden");
    let (_, unchanged) = admin.post("/api/v1/organism/reload", json!({})).await;
    assert_eq!(unchanged["graphs"], json!([]), "{unchanged}");
    let text = std::fs::read_to_string(&graph).unwrap();
    std::fs::write(&graph, text.replace("max_retries: 3", "max_retries: 2")).unwrap();
    let (status, report) = admin.post("/api/v1/organism/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let change = &report["graphs"][0];
    assert_eq!(change["name"], "assistant");
    assert_eq!(change["changed"], json!(["eras"]));
    assert_eq!(
        (change["added"].clone(), change["removed"].clone()),
        (json!([]), json!([]))
    );
    let (_, active) = admin.get("/api/v1/graphs/active").await;
    assert_eq!(active["versionId"], change["versionId"]);
    // The graph's history: the new version first, with what changed and a
    // diff of the file; the first version has nothing before it.
    let (status, versions) = viewer.get("/api/v1/graphs/assistant/versions").await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    assert_eq!(versions["total"], 2, "{versions}");
    let (new, old) = (&versions["items"][0], &versions["items"][1]);
    assert_eq!(new["versionId"], change["versionId"]);
    assert_eq!(new["served"], true);
    assert_eq!(old["served"], false);
    assert_eq!(new["changes"]["previousVersionId"], old["versionId"]);
    assert_eq!(new["changes"]["changed"], json!(["eras"]), "{new}");
    assert_eq!(new["changes"]["plugins"], json!([]), "{new}");
    assert_eq!(old["changes"], Value::Null, "{old}");
    assert!(new["createdMs"].as_u64().unwrap() >= old["createdMs"].as_u64().unwrap());
    assert_eq!(new["plugins"]["eras"], old["plugins"]["eras"]);
    let id = new["versionId"].as_str().unwrap();
    let (status, detail) = viewer
        .get(&format!("/api/v1/graphs/assistant/versions/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let diff = detail["diff"].as_str().unwrap();
    assert!(
        diff.lines()
            .any(|l| l.starts_with('-') && l.contains("max_retries: 3"))
            && diff
                .lines()
                .any(|l| l.starts_with('+') && l.contains("max_retries: 2")),
        "{diff}"
    );
    assert!(
        detail["source"]
            .as_str()
            .unwrap()
            .contains("max_retries: 2")
    );
    let (_, page) = viewer
        .get("/api/v1/graphs/assistant/versions?limit=1&offset=1")
        .await;
    assert_eq!(page["items"][0]["versionId"], old["versionId"], "{page}");
    assert_eq!(page["items"][0]["changes"], Value::Null, "{page}");
    for (path, status, code) in [
        (
            "/api/v1/graphs/nope/versions",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/graphs/assistant/versions/nope",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/graphs/assistant/versions?limit=0",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ] {
        let (got, err) = viewer.get(path).await;
        assert_error(got, &err, status, code);
    }
    // A version is found under its own graph's name only.
    let (got, err) = viewer
        .get(&format!("/api/v1/graphs/framed/versions/{id}"))
        .await;
    assert_error(got, &err, StatusCode::NOT_FOUND, "not_found");
    // A broken file leaves the old version serving.
    std::fs::write(&graph, "name: assistant\nnodes: [").unwrap();
    let (_, report) = admin.post("/api/v1/organism/reload", json!({})).await;
    assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{report}");
    let (_, still) = admin.get("/api/v1/graphs/active").await;
    assert_eq!(still["versionId"], change["versionId"]);
    let (status, _) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_route_project_matrix() {
    let server = Server::start("api-matrix", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let (_, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    let t = accepted["threadId"].as_str().unwrap().to_owned();
    admin.finished(&t).await;
    let roles = [
        (
            "viewer",
            Client::new(&server, Some(&key(&admin, "viewer", None).await)),
        ),
        (
            "operator",
            Client::new(&server, Some(&key(&admin, "operator", None).await)),
        ),
        (
            "admin",
            Client::new(&server, Some(&key(&admin, "admin", None).await)),
        ),
    ];
    let rank = |r: &str| {
        ["viewer", "operator", "admin"]
            .iter()
            .position(|x| *x == r)
            .unwrap()
    };
    use reqwest::Method as M;
    let routes: Vec<(M, String, Option<Value>, &str)> = vec![
        (M::GET, "/api/v1/organism".into(), None, "viewer"),
        (M::GET, "/api/v1/organism/config".into(), None, "viewer"),
        (M::GET, "/api/v1/graphs".into(), None, "viewer"),
        (M::GET, "/api/v1/graphs/active".into(), None, "viewer"),
        (M::GET, "/api/v1/graphs/assistant".into(), None, "viewer"),
        (
            M::GET,
            "/api/v1/graphs/assistant/versions".into(),
            None,
            "viewer",
        ),
        (M::GET, "/api/v1/plugins".into(), None, "viewer"),
        (M::GET, "/api/v1/capabilities".into(), None, "viewer"),
        (M::GET, "/api/v1/capabilities/eras".into(), None, "viewer"),
        (M::GET, "/api/v1/agents".into(), None, "viewer"),
        (M::GET, "/api/v1/agents/eras".into(), None, "viewer"),
        (M::GET, "/api/v1/threads".into(), None, "viewer"),
        (M::GET, format!("/api/v1/threads/{t}"), None, "viewer"),
        (
            M::GET,
            format!("/api/v1/threads/{t}/messages"),
            None,
            "viewer",
        ),
        (M::GET, format!("/api/v1/threads/{t}/runs"), None, "viewer"),
        (
            M::GET,
            format!("/api/v1/threads/{t}/frames"),
            None,
            "viewer",
        ),
        (
            M::GET,
            format!("/api/v1/threads/{t}/result"),
            None,
            "viewer",
        ),
        (M::GET, "/api/v1/messages".into(), None, "viewer"),
        (M::GET, "/api/v1/frames".into(), None, "viewer"),
        (M::GET, "/api/v1/usage".into(), None, "viewer"),
        (M::GET, "/api/v1/usage/threads".into(), None, "viewer"),
        (
            M::GET,
            "/api/v1/usage/projects/default/budget".into(),
            None,
            "viewer",
        ),
        (
            M::GET,
            "/api/v1/projects/default/agents".into(),
            None,
            "viewer",
        ),
        (
            M::GET,
            "/api/v1/projects/default/agents/metrics".into(),
            None,
            "viewer",
        ),
        (
            M::POST,
            "/api/v1/inject".into(),
            Some(json!({"text": QUESTION})),
            "operator",
        ),
        (
            M::PUT,
            "/api/v1/graphs/active".into(),
            Some(json!({"name": "assistant"})),
            "admin",
        ),
        (
            M::POST,
            "/api/v1/agents/eras/pause".into(),
            Some(json!({})),
            "operator",
        ),
        (
            M::POST,
            "/api/v1/agents/eras/resume".into(),
            Some(json!({})),
            "operator",
        ),
        (
            M::PUT,
            format!("/api/v1/usage/threads/{t}/budget"),
            Some(json!({"raise": 10})),
            "operator",
        ),
        (
            M::PUT,
            "/api/v1/usage/projects/default/budget".into(),
            Some(json!({"raise": 1.0})),
            "operator",
        ),
        (
            M::POST,
            format!("/api/v1/threads/{t}/fork"),
            Some(json!({"after": 3})),
            "operator",
        ),
        (
            M::POST,
            "/api/v1/projects/default/agents".into(),
            Some(json!({"name": "n", "plugin": "ui"})),
            "operator",
        ),
        (M::GET, "/api/v1/keys".into(), None, "admin"),
        (
            M::POST,
            "/api/v1/keys".into(),
            Some(json!({"name": "k", "role": "viewer"})),
            "admin",
        ),
        (
            M::POST,
            "/api/v1/organism/reload".into(),
            Some(json!({})),
            "admin",
        ),
        (
            M::POST,
            "/api/v1/organism/config/reload".into(),
            Some(json!({})),
            "admin",
        ),
        (
            M::POST,
            "/api/v1/plugins/output/reload".into(),
            Some(json!({})),
            "admin",
        ),
    ];
    for (method, path, body, needs) in &routes {
        for (role, client) in &roles {
            let (status, answer) = client.send(method.clone(), path, body.clone()).await;
            if rank(role) >= rank(needs) {
                // Allowed: the action is taken or refused on its merits
                // (pausing a paused agent is a 409), never for the role.
                assert!(
                    status.is_success() || status == StatusCode::CONFLICT,
                    "{role} {method} {path}: {status} {answer}"
                );
            } else {
                assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
            }
        }
    }
    // A key of another project sees none of the default project's ids.
    let other = Client::new(&server, Some(&key(&admin, "admin", Some("acme")).await));
    for path in [
        format!("/api/v1/threads/{t}"),
        format!("/api/v1/threads/{t}/messages"),
        format!("/api/v1/threads/{t}/runs"),
        format!("/api/v1/threads/{t}/frames"),
        format!("/api/v1/threads/{t}/result"),
        "/api/v1/usage/projects/default/budget".into(),
        "/api/v1/projects/default/agents".into(),
        "/api/v1/projects/default/agents/metrics".into(),
        "/api/v1/usage/nodes/eras".into(),
    ] {
        let (status, answer) = other.get(&path).await;
        assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
    }
    for (method, path, body) in [
        (M::POST, format!("/api/v1/threads/{t}/kill"), json!({})),
        (
            M::POST,
            format!("/api/v1/threads/{t}/fork"),
            json!({"after": 0}),
        ),
        (
            M::PUT,
            format!("/api/v1/usage/threads/{t}/budget"),
            json!({"raise": 5}),
        ),
        (
            M::POST,
            "/api/v1/projects/default/agents".into(),
            json!({"name": "n", "plugin": "ui"}),
        ),
    ] {
        let (status, answer) = other.send(method, &path, Some(body)).await;
        assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
    }
    let (_, messages) = other.get("/api/v1/messages").await;
    assert_eq!(messages["total"], 0);
    let (_, frames) = other.get("/api/v1/frames").await;
    assert_eq!(frames, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_tokens_are_validated_against_the_jwks() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    const SECRET: &[u8] = b"weft-test-oidc-secret-0123456789abcdef";
    let data = temp_dir("api-oidc");
    let jwks = data.join("jwks.json");
    std::fs::write(
        &jwks,
        json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256",
            "k": "d2VmdC10ZXN0LW9pZGMtc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWY"}]})
        .to_string(),
    )
    .unwrap();
    let config = data.join("weft.yaml");
    std::fs::write(
        &config,
        format!(
            "api:\n  oidc: {{ issuer: \"https://id.example\", audience: weft, jwks_file: \"{}\" }}\n",
            jwks.display()
        ),
    )
    .unwrap();
    let server = Server::start_in(
        data,
        &["--config", config.to_str().unwrap()],
        &["--script", SCRIPT],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |claims: Value, secret: &[u8]| {
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("k1".into());
        encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
    };
    let claims = |role: Option<&str>, project: Option<&str>, exp: u64, aud: &str| {
        let mut c = json!({"iss": "https://id.example", "aud": aud, "sub": "ada", "exp": exp});
        if let Some(r) = role {
            c["weft_role"] = r.into();
        }
        // No project: every project, which a token says explicitly.
        c["weft_project"] = project.unwrap_or("*").into();
        c
    };
    let operator = Client::new(
        &server,
        Some(&token(
            claims(Some("operator"), None, now + 600, "weft"),
            SECRET,
        )),
    );
    let (status, accepted) = operator
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    operator.finished(&thread).await;
    // Without the role claim: a viewer.
    let viewer = Client::new(
        &server,
        Some(&token(claims(None, None, now + 600, "weft"), SECRET)),
    );
    assert_eq!(viewer.get("/api/v1/threads").await.0, StatusCode::OK);
    let (status, body) = viewer.post("/api/v1/inject", json!({"text": "hi"})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    // The project claim scopes the token.
    let acme = Client::new(
        &server,
        Some(&token(
            claims(Some("admin"), Some("acme"), now + 600, "weft"),
            SECRET,
        )),
    );
    let (status, body) = acme.get(&format!("/api/v1/threads/{thread}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    for (bad, why) in [
        (
            token(claims(Some("admin"), None, now - 3600, "weft"), SECRET),
            "expired",
        ),
        (
            token(
                claims(Some("admin"), None, now + 600, "weft"),
                b"another-secret-0123456789abcdefghij",
            ),
            "signature",
        ),
        (
            token(claims(Some("admin"), None, now + 600, "elsewhere"), SECRET),
            "audience",
        ),
        (
            token(claims(Some("root"), None, now + 600, "weft"), SECRET),
            "role",
        ),
    ] {
        let (status, body) = Client::new(&server, Some(&bad))
            .get("/api/v1/organism")
            .await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(why),
            "{why}: {body}"
        );
    }
    // API keys keep working next to tokens.
    let admin = Client::new(&server, Some(&server.admin));
    assert_eq!(admin.get("/api/v1/keys").await.0, StatusCode::OK);
}

#[test]
fn the_cli_client_injects_lists_threads_and_reports_usage() {
    let server = Server::start("api-cli", &[], &["--script", SCRIPT]);
    let dir = temp_dir("api-cli-client");
    let client = |args: &[&str]| {
        let mut all = vec!["--server", server.base.as_str(), "--key", &server.admin];
        all.extend_from_slice(args);
        weft(&dir, &all)
    };
    let out = client(&["inject", "--wait", QUESTION]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1042"),
        "the reply names the customer: {}",
        text(&out.stdout)
    );
    let progress = text(&out.stderr);
    assert!(progress.contains("frames committed"), "{progress}");
    let thread = progress
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    assert!(thread.starts_with("thread-"), "{progress}");

    let out = client(&["threads", "--json", "--node", "eras"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], thread.as_str());
    let out = client(&["threads", "--status", "completed"]);
    assert!(text(&out.stdout).contains(&thread), "{}", text(&out.stdout));

    let out = client(&["usage", "--json", "--threads"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let usage: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(usage["totals"]["calls"].as_u64().unwrap() >= 1, "{usage}");
    assert!(usage["byNode"]["eras"]["invocations"].as_u64().unwrap() >= 1);
    let out = client(&["usage"]);
    let table = text(&out.stdout);
    assert!(
        table.contains("node eras") && table.contains("total"),
        "{table}"
    );

    // Errors name the cause: a bad key, a bad thread, no server.
    let out = weft(
        &dir,
        &["--server", &server.base, "--key", "wk_forged", "usage"],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    let out = client(&["inject", "--thread", "no such/thread", "hi"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("400"), "{}", text(&out.stderr));
    let out = weft(&dir, &["--server", "http://127.0.0.1:9", "usage"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot reach weft"),
        "{}",
        text(&out.stderr)
    );
}

/// A thread the result route reports idle has its last run's final state:
/// polled as fast as a client can from the moment of the 202, over many
/// new threads, `busy: false` never comes with that run's row still
/// `running` (the race `weft inject --wait` used to lose).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_route_never_reports_an_idle_thread_with_a_running_run() {
    let dir = temp_dir("api-result-race-config");
    let config = dir.join("weft.yaml");
    std::fs::write(
        &config,
        "api: { rate_per_minute: 1000000, burst: 100000 }\n",
    )
    .unwrap();
    let server = Server::start(
        "api-result-race",
        &["--config", config.to_str().unwrap()],
        &["--script", SCRIPT],
    );
    let admin = Client::new(&server, Some(&server.admin));
    for round in 0..40 {
        let (status, accepted) = admin
            .post("/api/v1/inject", json!({"text": QUESTION}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        let thread = accepted["threadId"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, result) = admin.get(&format!("/api/v1/threads/{thread}/result")).await;
            assert_eq!(status, StatusCode::OK, "{result}");
            if result["busy"] == false && result["run"]["id"] == accepted["runId"] {
                assert_eq!(
                    result["run"]["status"], "completed",
                    "round {round}: idle thread with an unfinished run: {result}"
                );
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: {result}");
        }
    }
}

/// `weft inject --wait` on new threads, several at once: every one ends
/// with the completed run and its reply.
#[test]
fn inject_wait_follows_every_new_thread_to_its_end() {
    let server = Server::start("api-cli-wait", &[], &["--script", SCRIPT]);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..3)
            .map(|worker| {
                // One folder per worker: the client's output files are in it.
                let dir = temp_dir(&format!("api-cli-wait-client-{worker}"));
                let server = &server;
                scope.spawn(move || {
                    for _ in 0..6 {
                        let out = weft(
                            &dir,
                            &[
                                "--server",
                                &server.base,
                                "--key",
                                &server.admin,
                                "inject",
                                "--wait",
                                QUESTION,
                            ],
                        );
                        let progress = text(&out.stderr);
                        assert!(out.status.success(), "{progress}");
                        assert!(progress.contains("run completed after"), "{progress}");
                        assert!(text(&out.stdout).contains("1042"), "{}", text(&out.stdout));
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
    });
}

/// `POST /api/v1/tests`: a scenario suite runs on the serving host, its
/// progress streams as `test` events on the thread each step runs on, and
/// its result is kept; a broken suite is refused naming its line, a
/// read-only key may not start one, and another project's key sees none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_suite_runs_on_the_host_and_streams_its_progress() {
    let server = Server::start("api-tests", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let http = reqwest::Client::new();
    let live = http
        .get(server.url("/api/v1/events"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let suite = std::fs::read_to_string(root().join("graphs/tests/assistant-demo.md")).unwrap();
    let (status, started) = admin
        .post(
            "/api/v1/tests",
            json!({"suite": suite, "name": "assistant-demo.md"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["status"], "running");
    assert_eq!(started["steps"], 1);
    assert_eq!(started["suite"], "Assistant: the demo question");
    let id = started["id"].as_str().unwrap().to_owned();

    let events = read_sse(live, |events| {
        events
            .last()
            .is_some_and(|(_, kind, e)| kind == "test" && e["data"]["event"] == "suite_end")
    })
    .await;
    let progress: Vec<&Value> = events
        .iter()
        .filter(|(_, kind, _)| kind == "test")
        .map(|(_, _, e)| e)
        .collect();
    let order: Vec<&str> = progress
        .iter()
        .map(|e| e["data"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["suite_start", "step_start", "step_result", "suite_end"],
        "{progress:#?}"
    );
    assert!(progress.iter().all(|e| e["data"]["test"] == id.as_str()));
    let step = &progress[2]["data"]["result"];
    assert_eq!(step["ok"], true, "{step:#}");
    assert_eq!(step["name"], "A data question goes to the expert");
    // The step's run is on the thread the event came on.
    let thread = progress[2]["thread"].as_str().unwrap();
    assert!(step["run"].as_str().unwrap().starts_with(thread), "{step}");

    let (status, detail) = admin.get(&format!("/api/v1/tests/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&detail["status"], &detail["passed"], &detail["failed"]),
        (&json!("passed"), &json!(1), &json!(0)),
        "{detail:#}"
    );
    assert_eq!(detail["threadId"], thread);
    assert_eq!(detail["results"][0]["checks"].as_array().unwrap().len(), 4);
    let (_, listed) = admin.get("/api/v1/tests").await;
    assert_eq!(listed[0]["id"], id.as_str());

    // A broken suite: 400 naming the line, nothing runs.
    let (status, body) = admin
        .post(
            "/api/v1/tests",
            json!({"suite": "- send: hi\n- expect reply sings: x\n", "name": "bad.md"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_suite");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("bad.md:2: unknown line"),
        "{body}"
    );
    let (status, body) = admin
        .post("/api/v1/tests", json!({"suite": suite, "graph": "nope"}))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // A read-only key may not start one; another project's key sees none.
    let reader = Client::new(&server, Some(&key(&admin, "viewer", None).await));
    let (status, body) = reader.post("/api/v1/tests", json!({"suite": suite})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let other = Client::new(&server, Some(&key(&admin, "operator", Some("other")).await));
    let (_, listed) = other.get("/api/v1/tests").await;
    assert_eq!(listed, json!([]));
    let (status, body) = other.get(&format!("/api/v1/tests/{id}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}
