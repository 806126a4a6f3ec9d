//! Schedules through the real binary: a schedule fires on the clock and
//! its run answers with the scripted model; a paused schedule stops
//! firing; bad expressions, time zones and moments are refused naming the
//! field; `weft schedules` adds, lists and removes.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::time::{Duration, Instant};

use common::client::{Client, assert_error};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SCRIPT: &str = "graphs/scripts/assistant-demo.json";

async fn detail(client: &Client, id: &str) -> Value {
    let (code, s) = client.get(&format!("/api/v1/schedules/{id}")).await;
    assert_eq!(code, StatusCode::OK, "{s}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_on_the_clock_and_stops_when_paused() {
    let server = Server::start("schedules", &[], &["--script", SCRIPT]);
    let client = Client::new(&server, Some(&server.admin));

    // Every two seconds, in Berlin time.
    let (code, created) = client
        .post(
            "/api/v1/schedules",
            json!({
                "cron": "*/2 * * * * *",
                "timezone": "Europe/Berlin",
                "message": "How many devices does customer 1042 have?",
            }),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["catchUp"], "skip");
    assert!(created["nextMs"].as_u64().is_some(), "{created}");

    // It fires; its run answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let fire = loop {
        let s = detail(&client, &id).await;
        if let Some(f) = s["recent"]
            .as_array()
            .and_then(|r| r.iter().find(|f| f["runId"].is_string()))
        {
            break f.clone();
        }
        assert!(Instant::now() < deadline, "no fire: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let thread = fire["threadId"].as_str().unwrap();
    client.answered(thread).await;

    // Paused: no more fires.
    let (code, paused) = client
        .post(&format!("/api/v1/schedules/{id}/pause"), json!({}))
        .await;
    assert_eq!(code, StatusCode::OK, "{paused}");
    let before = detail(&client, &id).await["fires"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = detail(&client, &id).await;
    assert_eq!(after["fires"].as_u64().unwrap(), before, "{after}");
    assert_eq!(after["paused"], true);
    // Each fire had a tick of its own.
    let ticks: Vec<u64> = after["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["tickMs"].as_u64().unwrap())
        .collect();
    let mut unique = ticks.clone();
    unique.dedup();
    assert_eq!(ticks, unique);
    assert!(ticks.iter().all(|t| t % 2000 == 0), "{ticks:?}");

    let (code, _) = client
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/schedules/{id}"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, body) = client.get(&format!("/api/v1/schedules/{id}")).await;
    assert_error(code, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_are_refused_naming_the_field_and_the_cli_manages_them() {
    let server = Server::start("schedules-bad", &[], &["--script", SCRIPT]);
    let client = Client::new(&server, Some(&server.admin));
    for (body, field, names) in [
        (
            json!({"cron": "61 * * * *", "message": "x"}),
            "cron",
            "61 * * * *",
        ),
        (
            json!({"cron": "every day", "message": "x"}),
            "cron",
            "every day",
        ),
        (
            json!({"cron": "0 9 * * *", "timezone": "Mars/Olympus", "message": "x"}),
            "timezone",
            "Mars/Olympus",
        ),
        (
            json!({"at": "2020-01-01T00:00:00Z", "message": "x"}),
            "at",
            "in the past",
        ),
        (json!({"at": "tomorrow", "message": "x"}), "at", "tomorrow"),
        (
            json!({"cron": "0 9 * * *", "at": "2030-01-01T00:00:00Z", "message": "x"}),
            "cron",
            "exactly one",
        ),
        (json!({"cron": "0 9 * * *"}), "message", "exactly one"),
        (
            json!({"cron": "0 9 * * *", "message": "x", "graph": "nope"}),
            "graph",
            "nope",
        ),
        (
            json!({"cron": "0 9 * * *", "message": "x", "thread": "a/b"}),
            "thread",
            "thread id",
        ),
    ] {
        let (code, answer) = client.post("/api/v1/schedules", body.clone()).await;
        assert_error(code, &answer, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{body}: {message}");
    }
    let (_, listed) = client.get("/api/v1/schedules").await;
    assert_eq!(listed, json!([]));

    // The CLI adds, lists and removes.
    let cli = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_weft"));
        c.current_dir(root())
            .args(["--server", &server.base, "--key", &server.admin])
            .args(args);
        c
    };
    let out = output_of(cli(&[
        "schedules",
        "add",
        "--cron",
        "0 9 * * 1-5",
        "--timezone",
        "Europe/Berlin",
        "--message",
        "Good morning",
        "--json",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = added["id"].as_str().unwrap().to_owned();
    let out = output_of(cli(&["schedules"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(
        listing.contains(&id) && listing.contains("0 9 * * 1-5 (Europe/Berlin)"),
        "{listing}"
    );
    let out = output_of(cli(&[
        "schedules",
        "add",
        "--cron",
        "61 * * * *",
        "--message",
        "x",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid_request"),
        "{}",
        text(&out.stderr)
    );
    let out = output_of(cli(&["schedules", "delete", &id])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, listed) = client.get("/api/v1/schedules").await;
    assert_eq!(listed, json!([]));
}
