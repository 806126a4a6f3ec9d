//! Webhooks through the real binary: a project's run events are delivered
//! to a local receiver, signed (checked with the verification snippet of
//! docs/webhooks.md, run by Python), retried after the receiver fails, not
//! lost across a `kill -9`, each attempt listed; bad subscriptions are
//! refused.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::client::{Client, assert_error, key};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SCRIPT: &str = "graphs/scripts/assistant-demo.json";

/// What the receiver got, and how many requests it still fails.
#[derive(Default)]
struct Received {
    requests: Vec<(HeaderMap, String)>,
    fail_next: usize,
}

type Shared = Arc<Mutex<Received>>;

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let mut r = shared.lock().unwrap();
    r.requests
        .push((headers, String::from_utf8_lossy(&body).into_owned()));
    if r.fail_next > 0 {
        r.fail_next -= 1;
        AxumStatus::INTERNAL_SERVER_ERROR
    } else {
        AxumStatus::NO_CONTENT
    }
}

/// A receiver on a loopback port: `http://127.0.0.1:PORT/hook`.
async fn receiver(shared: Shared) -> String {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

fn config(data: &std::path::Path) -> std::path::PathBuf {
    let path = data.join("config.yaml");
    std::fs::write(
        &path,
        "webhooks: { allow_private_addresses: true, backoff_ms: 200, max_backoff_ms: 400, timeout_ms: 2000 }\n",
    )
    .unwrap();
    path
}

fn start(data: &std::path::Path) -> Server {
    let config = config(data);
    Server::start_in(
        data.to_owned(),
        &["--config", config.to_str().unwrap()],
        &["--script", SCRIPT],
    )
}

/// Polls the webhook's deliveries until `done` says they are as expected.
async fn deliveries_until(client: &Client, hook: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, page) = client
            .get(&format!("/api/v1/webhooks/{hook}/deliveries"))
            .await;
        assert_eq!(code, StatusCode::OK, "{page}");
        if done(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "the deliveries did not get there: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks a delivery's signature with the snippet from the docs.
async fn verify_with_the_documented_snippet(secret: &str, header: &str, body: &str) -> bool {
    let snippet = fenced_block("docs/webhooks.md", "python");
    let program = format!(
        "{snippet}\nimport sys\nprint(verify(sys.argv[1], sys.argv[2], sys.argv[3].encode(), max_age=3600))\n"
    );
    let mut command = std::process::Command::new("python3");
    command.args(["-c", &program, secret, header, body]);
    let out = output_of(command).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim() == "True"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_events_are_delivered_signed_retried_and_survive_kill_9() {
    let shared: Shared = Arc::default();
    shared.lock().unwrap().fail_next = 2;
    let url = receiver(Arc::clone(&shared)).await;
    let data = temp_dir("webhooks");
    let server = start(&data);
    let client = Client::new(&server, Some(&server.admin));

    let (code, created) = client
        .post(
            "/api/v1/webhooks",
            json!({"url": url, "events": ["run_finished", "run_failed"]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let hook = created["webhook"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    // The secret is shown once.
    let (_, listed) = client.get("/api/v1/webhooks").await;
    assert_eq!(listed[0]["id"], hook.as_str());
    assert!(listed[0].get("secret").is_none(), "{listed}");

    // A run ends; the receiver fails twice, then takes it.
    let (code, accepted) = client
        .post(
            "/api/v1/inject",
            json!({"text": "How many devices does customer 1042 have?"}),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    client.answered(&thread).await;
    let page = deliveries_until(&client, &hook, |p| p["items"][0]["status"] == "delivered").await;
    let delivery = &page["items"][0];
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(delivery["event"], "run_finished");
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{delivery}");
    assert_eq!(
        attempts
            .iter()
            .map(|a| a["statusCode"].clone())
            .collect::<Vec<_>>(),
        vec![json!(500), json!(500), json!(204)]
    );
    assert!(attempts[0]["error"].as_str().unwrap().contains("500"));

    // The CLI shows the same.
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_weft"));
    cli.current_dir(root()).args([
        "--server",
        &server.base,
        "--key",
        &server.admin,
        "webhooks",
        "deliveries",
        &hook,
    ]);
    let out = output_of(cli).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("run_finished\tdelivered\t3 attempts"),
        "{shown}"
    );

    // The body, the headers and the signature.
    let (headers, body) = {
        let r = shared.lock().unwrap();
        assert_eq!(r.requests.len(), 3);
        r.requests[2].clone()
    };
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["type"], "run_finished");
    assert_eq!(sent["id"], delivery["id"]);
    assert_eq!(sent["data"]["threadId"], thread.as_str());
    assert_eq!(sent["data"]["runId"], accepted["runId"]);
    assert_eq!(sent["data"]["status"], "completed");
    assert_eq!(headers["weft-event"], "run_finished");
    assert_eq!(headers["weft-delivery"], delivery["id"].as_str().unwrap());
    let signature = headers["weft-signature"].to_str().unwrap().to_owned();
    assert!(verify_with_the_documented_snippet(&secret, &signature, &body).await);
    assert!(!verify_with_the_documented_snippet("whsec_wrong", &signature, &body).await);
    assert!(!verify_with_the_documented_snippet(&secret, &signature, &format!("{body} ")).await);

    // The receiver goes down; a run ends; the host is killed before it can
    // deliver, and a new one delivers it.
    shared.lock().unwrap().fail_next = usize::MAX;
    let (_, accepted) = client
        .post("/api/v1/inject", json!({"text": "And customer 1043?"}))
        .await;
    let second = accepted["threadId"].as_str().unwrap().to_owned();
    client.finished(&second).await;
    deliveries_until(&client, &hook, |p| {
        p["total"] == 2
            && p["items"][0]["attempts"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
    })
    .await;
    drop(server);
    shared.lock().unwrap().fail_next = 0;
    let server = start(&data);
    let client = Client::new(&server, Some(&server.admin));
    let page = deliveries_until(&client, &hook, |p| p["items"][0]["status"] == "delivered").await;
    let newest = &page["items"][0];
    let body: Value = serde_json::from_str(newest["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"]["threadId"], second.as_str());
    assert!(
        newest["attempts"].as_array().unwrap().len() >= 2,
        "{newest}"
    );
    // Exactly one delivery per run end.
    assert_eq!(page["total"], 2, "{page}");
    let delivered_ids: Vec<String> = {
        let r = shared.lock().unwrap();
        r.requests
            .iter()
            .map(|(h, _)| h["weft-delivery"].to_str().unwrap().to_owned())
            .collect()
    };
    assert!(delivered_ids.iter().all(|id| id.starts_with(&hook)));

    // Removing the webhook removes its deliveries.
    let (code, _) = client
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhooks/{hook}"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, body) = client
        .get(&format!("/api/v1/webhooks/{hook}/deliveries"))
        .await;
    assert_error(code, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscriptions_are_refused_and_change_nothing() {
    // Without the config's allowance, loopback receivers are refused.
    let server = Server::start("webhooks-bad", &[], &["--script", SCRIPT]);
    let client = Client::new(&server, Some(&server.admin));
    for (body, code, field) in [
        (
            json!({"url": "ftp://example.com/x", "events": ["run_finished"]}),
            "invalid_request",
            "url",
        ),
        (
            json!({"url": "not a url", "events": ["run_finished"]}),
            "invalid_request",
            "url",
        ),
        (
            json!({"url": "http://127.0.0.1:9/x", "events": ["run_finished"]}),
            "private_address",
            "url",
        ),
        (
            json!({"url": "http://[::1]:9/x", "events": ["run_finished"]}),
            "private_address",
            "url",
        ),
        (
            json!({"url": "http://169.254.169.254/x", "events": ["run_finished"]}),
            "private_address",
            "url",
        ),
        (
            json!({"url": "https://example.com/x", "events": []}),
            "invalid_request",
            "events",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["run_exploded"]}),
            "invalid_request",
            "events",
        ),
    ] {
        let (status, answer) = client.post("/api/v1/webhooks", body.clone()).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, code);
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    let (_, listed) = client.get("/api/v1/webhooks").await;
    assert_eq!(listed, json!([]));

    // An operator may list but not add; a project's key sees its own only.
    let operator = key(&client, "operator", Some("p1")).await;
    let as_operator = Client::new(&server, Some(&operator));
    let (status, answer) = as_operator
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com/x", "events": ["run_finished"]}),
        )
        .await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, answer) = as_operator.get("/api/v1/webhooks/wh_nope/deliveries").await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
}
