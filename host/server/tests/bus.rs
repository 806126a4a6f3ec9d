//! `weft serve --bus` over a real socket with a real nats-server: the
//! event stream's ids are JetStream sequence numbers, `Last-Event-ID`
//! resumes across a restart of the host, a second host streams the runs
//! of the first (and the first the second's) with the same ids, and a bus
//! that cannot be used is refused at start, naming it and its code.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::time::Duration;

use common::client::Client;
use common::*;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use weft_bus::{NatsBus, NatsConfig};
use weft_testkit::TempNats;

const QUESTION: &str = "How many devices does customer 1042 have?";
const SCRIPT: &str = "graphs/scripts/assistant-demo.json";

/// One server-sent event: id, type, data.
type Sse = (Option<u64>, String, Value);

/// Reads server-sent events from `resp` until `done` says so.
async fn read_until(resp: reqwest::Response, mut done: impl FnMut(&Sse) -> bool) -> Vec<Sse> {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no end in time; got {events:?}"))
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
                let event = (id, kind, serde_json::from_str(&data).unwrap_or(Value::Null));
                let end = done(&event);
                events.push(event);
                if end {
                    return events;
                }
            }
        }
    }
}

async fn sse(server: &Server, key: &str, last: Option<u64>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(server.url("/api/v1/events"))
        .bearer_auth(key);
    if let Some(last) = last {
        req = req.header("Last-Event-ID", last.to_string());
    }
    req.send().await.unwrap()
}

async fn inject(admin: &Client) -> String {
    let (_, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    accepted["threadId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_ids_are_jetstream_sequence_numbers_and_resume_after_a_restart() {
    let nats = TempNats::start().unwrap();
    let url = nats.url();
    let serve = ["--script", SCRIPT, "--bus", url.as_str()];
    let server = Server::start("bus-resume", &[], &serve);
    assert!(
        server.log().contains(&format!("bus {url}")),
        "{}",
        server.log()
    );
    let admin = Client::new(&server, Some(&server.admin));
    let live = sse(&server, &server.admin, None).await;
    let thread = inject(&admin).await;
    let first = read_until(live, |e| e.1 == "frame_trace").await;
    admin.answered(&thread).await;
    let ids: Vec<u64> = first
        .iter()
        .map(|e| e.0.expect("every event has an id"))
        .collect();
    // The stream's own numbers: from 1 on this fresh stream, one by one
    // (nothing else publishes on it), unlike a lone host's epoch-based ids.
    assert_eq!(ids[0], 1, "{first:?}");
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    assert_eq!(first[0].1, "run_started");
    // The last of them is the last message of the JetStream stream.
    let stream = NatsBus::connect(NatsConfig {
        url: url.clone(),
        ..NatsConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(stream.last_seq().await.unwrap(), *ids.last().unwrap());

    let data = server.data.clone();
    assert!(server.terminate().success());
    let server = Server::start_in(data, &[], &serve);
    let admin = Client::new(&server, Some(&server.admin));
    // Resuming after the second event of the last boot: the rest of that
    // run's events follow, with the same ids, then the new run's.
    let resumed = sse(&server, &server.admin, Some(ids[1])).await;
    let thread = inject(&admin).await;
    let mut traces = 0;
    let after = read_until(resumed, |e| {
        traces += usize::from(e.1 == "frame_trace");
        traces == 2
    })
    .await;
    admin.answered(&thread).await;
    assert!(after.iter().all(|e| e.1 != "reset"), "{after:?}");
    let resumed_ids: Vec<u64> = after.iter().map(|e| e.0.unwrap()).collect();
    assert_eq!(&resumed_ids[..ids.len() - 2], &ids[2..], "{after:?}");
    let started = &after[ids.len() - 2];
    assert_eq!(
        (started.1.as_str(), started.2["thread"].as_str()),
        ("run_started", Some(thread.as_str()))
    );
    assert_eq!(started.0, Some(ids.last().unwrap() + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_streams_the_runs_of_the_first_with_the_same_ids() {
    let nats = TempNats::start().unwrap();
    let url = nats.url();
    let serve = ["--script", SCRIPT, "--bus", url.as_str()];
    // Two hosts with a store each: they share the bus, not the work.
    let a = Server::start("bus-host-a", &[], &serve);
    let b = Server::start("bus-host-b", &[], &serve);
    let admin_a = Client::new(&a, Some(&a.admin));
    let admin_b = Client::new(&b, Some(&b.admin));
    let on_a = sse(&a, &a.admin, None).await;
    let on_b = sse(&b, &b.admin, None).await;
    let thread = inject(&admin_a).await;
    let seen_a = read_until(on_a, |e| e.1 == "frame_trace").await;
    let seen_b = read_until(on_b, |e| e.1 == "frame_trace").await;
    admin_a.answered(&thread).await;
    // B streams what A executed: the same events, ids and payloads.
    assert_eq!(seen_a, seen_b);
    assert_eq!(seen_b[0].1, "run_started");
    assert!(
        seen_b.iter().all(|e| e.2["thread"] == thread.as_str()),
        "{seen_b:?}"
    );
    let ids: Vec<u64> = seen_b.iter().map(|e| e.0.expect("an id")).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    // The run is A's: B's store does not have the thread.
    let (status, _) = admin_b.get(&format!("/api/v1/threads/{thread}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A run on B goes on in the same order, and A's clients see it; a
    // client resumes on A with an id it got from B.
    let last = *ids.last().unwrap();
    let resumed_on_a = sse(&a, &a.admin, Some(ids[ids.len() - 3])).await;
    let thread_b = inject(&admin_b).await;
    let mut traces = 0;
    let after = read_until(resumed_on_a, |e| {
        traces += usize::from(e.1 == "frame_trace");
        traces == 2
    })
    .await;
    admin_b.answered(&thread_b).await;
    assert_eq!(
        after[..2].iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![Some(last - 1), Some(last)],
        "{after:?}"
    );
    let started = &after[2];
    assert_eq!(
        (started.0, started.1.as_str(), started.2["thread"].as_str()),
        (Some(last + 1), "run_started", Some(thread_b.as_str()))
    );
    assert!(
        after[2..]
            .iter()
            .all(|e| e.2["thread"] == thread_b.as_str()),
        "{after:?}"
    );
}

/// `weft serve --bus URL` in a fresh data folder: it must exit at once.
fn refused(name: &str, url: &str) -> (std::process::ExitStatus, String) {
    let data = temp_dir(name);
    let out = weft(
        &data,
        &["serve", "--port", "0", "--script", SCRIPT, "--bus", url],
    );
    (out.status, text(&out.stderr))
}

#[test]
fn a_bus_that_cannot_be_used_is_refused_at_start_naming_it() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let (status, err) = refused("bus-unreachable", &url);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&url) && err.contains("bus_unreachable"),
        "{err}"
    );
    assert!(!err.contains("weft serving on"), "{err}");

    let plain = TempNats::start_without_jetstream().unwrap();
    let (status, err) = refused("bus-no-jetstream", &plain.url());
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&plain.url()) && err.contains("bus_no_jetstream"),
        "{err}"
    );
    assert!(err.contains("JetStream"), "{err}");

    let (status, err) = refused("bus-url-invalid", "http://x:1");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("bus_url_invalid"), "{err}");
}
