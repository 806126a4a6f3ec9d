//! Hardening of `weft serve` over real sockets: the key and the route's
//! role are checked before a body is read; plugin uploads stream to files
//! of their own with their own limit and a failed rename is an error;
//! header-read, body-read and idle timeouts and the connection cap; an
//! operator's pause answered is stored (SIGKILL and a restart keep it);
//! after `store_failed` a thread takes no new run ahead of the failed one.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::client::{Client, assert_error, key};
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SCRIPT: &str = "graphs/scripts/assistant-demo.json";
const QUESTION: &str = "How many devices does customer 1042 have?";
const OUTPUT_FILE: &str = "weft-plugin-output.wasm";
/// A bound on waits that only a broken server reaches (not a timing
/// assertion: a slow machine answers well within it).
const GUARD: Duration = Duration::from_secs(30);

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

fn config(data: &Path, text: &str) -> String {
    let path = data.join("weft.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Reads until the end of a response head; what was read (empty at EOF).
async fn read_head(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match tokio::time::timeout(GUARD, stream.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0, // reset: closed
            Err(_) => panic!(
                "no answer and no close within {GUARD:?}; read so far: {}",
                String::from_utf8_lossy(&head)
            ),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Sends `head` declaring a 50 MiB body, then (in the background) only
/// `sent` bytes of it, and returns the status line of the answer.
async fn huge_body(server: &Server, head: &str, sent: usize) -> String {
    let stream = TcpStream::connect(addr(server)).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "{head}Host: weft\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        50 << 20
    );
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 64 << 10];
        let mut left = sent;
        while left > 0 {
            let n = left.min(chunk.len());
            write.write_all(&chunk[..n]).await?;
            left -= n;
        }
        // Keep the connection open (the rest of the body never comes).
        tokio::time::sleep(GUARD * 2).await;
        std::io::Result::Ok(())
    });
    let answer = read_head(&mut read).await;
    writer.abort();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_and_role_are_checked_before_a_body_is_read() {
    let server = Server::start("hard-auth", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let viewer = key(&admin, "viewer", None).await;
    let operator = key(&admin, "operator", None).await;

    // No key: 401 with a fraction of the declared body sent.
    let status = huge_body(&server, "POST /api/v1/inject HTTP/1.1\r\n", 64 << 10).await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");

    // A key without the route's role: 403, not a body read up to the
    // limit (413) or a wait for the whole body.
    for (key, head) in [
        (&viewer, "POST /api/v1/inject HTTP/1.1\r\n"),
        (
            &viewer,
            "POST /api/v1/threads/thread-0123456789abcdef/fork HTTP/1.1\r\n",
        ),
        (&viewer, "PUT /api/v1/usage/threads/t/budget HTTP/1.1\r\n"),
        (&operator, "POST /api/v1/keys HTTP/1.1\r\n"),
        (&operator, "PUT /api/v1/plugins/output HTTP/1.1\r\n"),
        (&viewer, "PUT /api/v1/plugins/output HTTP/1.1\r\n"),
    ] {
        let head = format!("{head}Authorization: Bearer {key}\r\n");
        let status = huge_body(&server, &head, 2 << 20).await;
        assert!(status.starts_with("HTTP/1.1 403"), "{head}: {status}");
    }

    // The right role still gets its body read.
    let (status, body) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

fn plugin_copy(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for entry in std::fs::read_dir(root().join("artifacts/plugins")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wasm") {
            std::fs::copy(&path, plugins.join(path.file_name().unwrap())).unwrap();
        }
    }
    plugins
}

/// The component with a custom section appended: the same plugin, another
/// hash.
fn with_section(component: &[u8], payload: &[u8]) -> Vec<u8> {
    fn leb(out: &mut Vec<u8>, mut n: u32) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"weft-test-variant";
    let mut section = Vec::new();
    leb(&mut section, name.len() as u32);
    section.extend_from_slice(name);
    section.extend_from_slice(payload);
    let mut out = component.to_vec();
    out.push(0);
    leb(&mut out, section.len() as u32);
    out.extend_from_slice(&section);
    out
}

async fn served_hash(client: &Client, name: &str) -> String {
    let (_, plugins) = client.get("/api/v1/plugins").await;
    plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_uploads_stream_to_files_of_their_own_and_a_failed_rename_is_an_error() {
    let data = temp_dir("hard-upload");
    let plugins = plugin_copy(&data);
    let output = std::fs::read(plugins.join(OUTPUT_FILE)).unwrap();
    let limit_kb = output.len() / 1024 + 64;
    let config = config(&data, &format!("api: {{ upload_limit_kb: {limit_kb} }}\n"));
    let server = Server::start_in(
        data,
        &["--config", &config, "--plugins", plugins.to_str().unwrap()],
        &["--script", SCRIPT],
    );
    let admin = Client::new(&server, Some(&server.admin));

    // Two uploads at once: both swap in, one after the other, and the file
    // left is the version that serves; no staged file is left behind.
    let one = with_section(&output, b"one");
    let two = with_section(&output, b"two");
    let (a, b) = tokio::join!(
        admin.put_bytes("/api/v1/plugins/output", one.clone()),
        admin.put_bytes("/api/v1/plugins/output", two.clone()),
    );
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    assert_eq!(b.0, StatusCode::OK, "{}", b.1);
    let on_disk = std::fs::read(plugins.join(OUTPUT_FILE)).unwrap();
    assert!(on_disk == one || on_disk == two);
    assert_eq!(
        served_hash(&admin, "output").await,
        weft_runtime::ContentHash::of(&on_disk).to_hex()
    );
    let leftovers: Vec<_> = std::fs::read_dir(&plugins)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("upload"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Over the upload limit: 413, and nothing changes.
    let big = with_section(&output, &vec![7; 128 << 10]);
    let (status, body) = admin.put_bytes("/api/v1/plugins/output", big).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
    );

    // The plugin's file cannot be replaced (a folder in its place): the
    // upload is an error, not a 200.
    let before = served_hash(&admin, "output").await;
    std::fs::remove_file(plugins.join(OUTPUT_FILE)).unwrap();
    std::fs::create_dir(plugins.join(OUTPUT_FILE)).unwrap();
    let three = with_section(&output, b"three");
    let (status, body) = admin.put_bytes("/api/v1/plugins/output", three).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "plugin_unwritable",
    );
    let _ = before;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_by_the_timeouts() {
    let data = temp_dir("hard-timeouts");
    let config = config(
        &data,
        "api: { header_read_timeout_ms: 300, body_read_timeout_ms: 300 }\n",
    );
    let server = Server::start_in(data, &["--config", &config], &["--script", SCRIPT]);

    // A head that never completes: the connection is closed.
    let mut slow = TcpStream::connect(addr(&server)).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: weft\r\n")
        .await
        .unwrap();
    assert_eq!(read_head(&mut slow).await, "", "closed without an answer");

    // A body that stops: the request fails (4xx) instead of waiting.
    let mut stalled = TcpStream::connect(addr(&server)).await.unwrap();
    let head = format!(
        "POST /api/v1/inject HTTP/1.1\r\nHost: weft\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"text\":",
        server.admin
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let answer = read_head(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");

    // An idle keep-alive connection: answered, then closed.
    let mut idle = TcpStream::connect(addr(&server)).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: weft\r\n\r\n")
        .await
        .unwrap();
    let answer = read_head(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(GUARD, idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle connection stayed open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let data = temp_dir("hard-cap");
    let config = config(&data, "api: { max_connections: 1 }\n");
    let server = Server::start_in(data, &["--config", &config], &["--script", SCRIPT]);
    let get = b"GET /health HTTP/1.1\r\nHost: weft\r\n\r\n";

    let mut first = TcpStream::connect(addr(&server)).await.unwrap();
    first.write_all(get).await.unwrap();
    assert!(read_head(&mut first).await.starts_with("HTTP/1.1 200"));

    // The second connection is not served while the first is open …
    let mut second = TcpStream::connect(addr(&server)).await.unwrap();
    second.write_all(get).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_secs(1), second.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the second connection was served beyond the cap"
    );

    // … which keeps working …
    first.write_all(get).await.unwrap();
    assert!(read_head(&mut first).await.starts_with("HTTP/1.1 200"));

    // … and once it closes, the second is served.
    drop(first);
    let answer = read_head(&mut second).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

async fn agent_states(client: &Client) -> Vec<(String, String)> {
    let (status, agents) = client.get("/api/v1/agents").await;
    assert_eq!(status, StatusCode::OK, "{agents}");
    agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn sigkill(mut server: Server) -> PathBuf {
    server.signal("KILL");
    server.wait();
    server.data.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_or_resume_answered_survives_sigkill() {
    let server = Server::start("hard-pause", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let names: Vec<String> = agent_states(&admin)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(!names.is_empty());
    for name in &names {
        let (status, body) = admin
            .post(&format!("/api/v1/agents/{name}/pause"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Killed the moment the last answer arrives.
    let data = sigkill(server);

    let server = Server::start_in(data, &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    for (name, state) in agent_states(&admin).await {
        assert_eq!(state, "paused", "{name} lost its pause");
    }
    for name in &names {
        let (status, body) = admin
            .post(&format!("/api/v1/agents/{name}/resume"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let data = sigkill(server);

    let server = Server::start_in(data, &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    for (name, state) in agent_states(&admin).await {
        assert_ne!(state, "paused", "{name} lost its resume");
    }
}

/// The demo script with every answer delayed.
fn slow_script(dir: &Path, delay_ms: u64) -> String {
    let text = std::fs::read_to_string(root().join(SCRIPT)).unwrap();
    let mut rules: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    for rule in &mut rules {
        rule["delay_ms"] = delay_ms.into();
    }
    let path = dir.join(format!("slow-{delay_ms}.json"));
    std::fs::write(&path, serde_json::to_string(&rules).unwrap()).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_store_failed_the_thread_takes_no_run_ahead_of_the_failed_one() {
    let data = temp_dir("hard-store-failed");
    let slow = slow_script(&data, 1500);
    let server = Server::start_in(data.clone(), &[], &["--script", &slow]);
    let admin = Client::new(&server, Some(&server.admin));
    let (status, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let thread = accepted["threadId"].as_str().unwrap().to_owned();

    // Another writer holds the store's write lock: every commit of the
    // run's next frame fails, and the run stops with store_failed.
    let lock = rusqlite::Connection::open(data.join("weft.db")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !server.log().contains("run stopped with store_failed") {
        assert!(
            Instant::now() < deadline,
            "no store_failed:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);

    // The failed run's message comes first: no new run on the thread.
    let (status, body) = admin
        .post(
            &format!("/api/v1/threads/{thread}/messages"),
            json!({"text": "and customer 1043?"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "thread_busy");

    // The next start resumes it; then the thread takes new messages.
    let data = sigkill(server);
    let server = Server::start_in(data, &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let result = admin.finished(&thread).await;
    assert_eq!(result["run"]["status"], "completed", "{result}");
    assert!(
        result["run"]["id"].as_str().unwrap().ends_with(".run-1"),
        "{result}"
    );
    let (status, body) = admin
        .post(
            &format!("/api/v1/threads/{thread}/messages"),
            json!({"text": "and customer 1043?"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}
