//! Changing a serving host: plugin swaps (upload, reload, `--watch`),
//! refused components that leave the old version serving, graph edits and
//! switches, and a bounded load test that swaps and switches under
//! sustained runs and then checks the store for lost and duplicated
//! messages.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::client::{Client, assert_error, key};
use common::plugins::{
    graph_copy, hashes_in, hex_hash, plugin_copy, plugin_hash, variant, with_section,
};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const QUESTION: &str = "How many devices does customer 1042 have?";
const SCRIPT: &str = "graphs/scripts/assistant-demo.json";
const OUTPUT_FILE: &str = "weft-plugin-output.wasm";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn ask(client: &Client) -> String {
    let (status, accepted) = client
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    client.answered(&thread).await;
    thread
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_components_leave_the_old_version_serving_and_good_ones_swap_in() {
    let data = temp_dir("swap-refused");
    let plugins = plugin_copy(&data);
    let server = Server::start_in(
        data,
        &["--plugins", plugins.to_str().unwrap()],
        &["--script", SCRIPT],
    );
    let admin = Client::new(&server, Some(&server.admin));
    let original = plugin_hash(&admin, "output").await;
    let guest = |name: &str| std::fs::read(root().join("artifacts/guests").join(name)).unwrap();
    let output = std::fs::read(plugins.join(OUTPUT_FILE)).unwrap();
    let refusals: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "corrupt bytes",
            b"\0asm\x0d\0\x01\0garbage".to_vec(),
            "invalid_component",
            "",
        ),
        (
            "not wasm",
            b"#!/bin/sh\necho hi\n".to_vec(),
            "invalid_component",
            "not a WebAssembly file",
        ),
        (
            "wrong world",
            guest("guest-wrong-world.wasm"),
            "wrong_world",
            "weft:node/plugin",
        ),
        (
            "incompatible contract",
            guest("guest-future-contract.wasm"),
            "incompatible_contract",
            "0.1.0",
        ),
        (
            "ungranted capability",
            guest("guest-greedy-output.wasm"),
            "plugin_rejected",
            "asks for `db`, which graph `assistant` does not grant node `output`",
        ),
        (
            "another plugin",
            guest("guest-echo.wasm"),
            "plugin_rejected",
            "describes itself as `guest-echo`",
        ),
    ];
    for (what, bytes, code, needle) in refusals {
        let (status, body) = admin.put_bytes("/api/v1/plugins/output", bytes).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, code);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{what}: {message}");
        assert_eq!(plugin_hash(&admin, "output").await, original, "{what}");
    }
    assert_eq!(
        std::fs::read(plugins.join(OUTPUT_FILE)).unwrap(),
        output,
        "a refused upload leaves the file alone"
    );
    // The old version still serves.
    let thread = ask(&admin).await;
    assert_eq!(
        hashes_in(&admin, &thread, "output").await,
        std::slice::from_ref(&original)
    );
    let first = thread;

    // Only admins swap plugins; unknown plugins are 404.
    let operator = Client::new(&server, Some(&key(&admin, "operator", None).await));
    let (status, body) = operator
        .put_bytes("/api/v1/plugins/output", variant(&output, 9))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = operator
        .post("/api/v1/plugins/output/reload", json!({}))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = admin.post("/api/v1/plugins/nobody/reload", json!({})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // An upload swaps in and replaces the file.
    let one = variant(&output, 1);
    let (status, swap) = admin.put_bytes("/api/v1/plugins/output", one.clone()).await;
    assert_eq!(status, StatusCode::OK, "{swap}");
    assert_eq!(swap["from"], original.as_str());
    assert_eq!(swap["to"], hex_hash(&one).as_str());
    assert!(
        swap["graphs"]
            .as_array()
            .unwrap()
            .contains(&json!("assistant")),
        "{swap}"
    );
    assert_eq!(std::fs::read(plugins.join(OUTPUT_FILE)).unwrap(), one);
    let thread = ask(&admin).await;
    assert_eq!(hashes_in(&admin, &thread, "output").await, [hex_hash(&one)]);

    // A reload reads the file again: unchanged, then a new version.
    let (status, swap) = admin.post("/api/v1/plugins/output/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{swap}");
    assert_eq!(swap["unchanged"], true);
    let two = variant(&output, 2);
    std::fs::write(plugins.join(OUTPUT_FILE), &two).unwrap();
    let (_, swap) = admin.post("/api/v1/plugins/output/reload", json!({})).await;
    assert_eq!(swap["to"], hex_hash(&two).as_str(), "{swap}");
    let thread = ask(&admin).await;
    assert_eq!(hashes_in(&admin, &thread, "output").await, [hex_hash(&two)]);

    // A component over the API's 1 MiB body limit uploads too (plugin
    // uploads may have up to 64 MiB).
    let big = with_section(&output, &vec![7; 2 << 20]);
    let (status, swap) = admin.put_bytes("/api/v1/plugins/output", big.clone()).await;
    assert_eq!(status, StatusCode::OK, "{swap}");
    assert_eq!(swap["to"], hex_hash(&big).as_str());

    // Threads from before and after the swaps replay exactly, each on the
    // versions that ran (the swapped ones from the store), while serving.
    for thread in [&first, &thread] {
        let out = weft(&server.data, &["replay", thread]);
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_swaps_changed_plugin_files_and_reloads_edited_graphs() {
    let data = temp_dir("swap-watch");
    let plugins = plugin_copy(&data);
    let graphs = graph_copy(&data, false);
    let graph = graphs.join("assistant.yaml");
    let config = data.join("weft.yaml");
    std::fs::write(&config, "budget:\n  thread_tokens: 100000\n").unwrap();
    let server = Server::start_in(
        data.clone(),
        &[
            "--plugins",
            plugins.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[
            "--script",
            SCRIPT,
            "--watch",
            "--graph",
            graph.to_str().unwrap(),
            "--graphs",
            graphs.to_str().unwrap(),
        ],
    );
    let admin = Client::new(&server, Some(&server.admin));
    let output = std::fs::read(plugins.join(OUTPUT_FILE)).unwrap();
    let wait_for = |what: &'static str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        move || {
            assert!(Instant::now() < deadline, "--watch did not pick up {what}");
        }
    };

    let one = variant(&output, 1);
    std::fs::write(plugins.join(OUTPUT_FILE), &one).unwrap();
    let check = wait_for("the changed plugin");
    while plugin_hash(&admin, "output").await != hex_hash(&one) {
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let thread = ask(&admin).await;
    assert_eq!(hashes_in(&admin, &thread, "output").await, [hex_hash(&one)]);

    // A broken file is refused (the host says so); the version before
    // keeps serving.
    std::fs::write(plugins.join(OUTPUT_FILE), b"\0asm\x0d\0\x01\0broken").unwrap();
    let check = wait_for("the broken plugin file");
    while !server.log().contains("the new component was refused") {
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(plugin_hash(&admin, "output").await, hex_hash(&one));
    ask(&admin).await;

    // An edited config file is reloaded: the thread's limit follows.
    std::fs::write(&config, "budget:\n  thread_tokens: 54321\n").unwrap();
    let check = wait_for("the edited config");
    loop {
        let (_, budgets) = admin.get("/api/v1/usage/threads").await;
        let limit = budgets
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["threadId"] == thread.as_str())
            .map(|b| b["limit"].clone());
        if limit == Some(json!(54321)) {
            break;
        }
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An edited graph file: new runs use the new version.
    let (_, before) = admin.get("/api/v1/graphs/active").await;
    let text = std::fs::read_to_string(&graph).unwrap();
    std::fs::write(&graph, format!("{text}\n# edited while serving\n")).unwrap();
    let check = wait_for("the edited graph");
    loop {
        let (_, now) = admin.get("/api/v1/graphs/active").await;
        if now["versionId"] != before["versionId"] {
            break;
        }
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, now) = admin.get("/api/v1/graphs/active").await;
    let thread = ask(&admin).await;
    let (_, runs) = admin.get(&format!("/api/v1/threads/{thread}/runs")).await;
    assert_eq!(runs[0]["graphVersion"], now["versionId"], "{runs}");

    // A new graph file is served; switching to it works.
    let text = std::fs::read_to_string(&graph).unwrap();
    std::fs::write(
        graphs.join("assistant-c.yaml"),
        text.replacen("name: assistant", "name: assistant-c", 1),
    )
    .unwrap();
    let check = wait_for("the new graph file");
    loop {
        let (status, _) = admin.get("/api/v1/graphs/assistant-c").await;
        if status == StatusCode::OK {
            break;
        }
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = admin
        .put("/api/v1/graphs/active", json!({"name": "assistant-c"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ask(&admin).await;
}

/// The load test: sustained runs through the assistant graph (scripted
/// provider) while the `output` plugin is swapped 10 times and the active
/// graph switched 3 times; then the store must show every message
/// delivered exactly once and every frame on the plugin version active
/// when it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_and_switches_under_load_lose_and_duplicate_nothing() {
    const WORKERS: usize = 6;
    const SWAPS: u32 = 10;
    let data = temp_dir("swap-load");
    let plugins = plugin_copy(&data);
    let graphs = graph_copy(&data, true);
    // Six clients polling results go past the default per-key rate.
    let config = data.join("weft.yaml");
    std::fs::write(
        &config,
        "api:\n  rate_per_minute: 1000000\n  burst: 100000\n",
    )
    .unwrap();
    let server = Server::start_in(
        data.clone(),
        &[
            "--plugins",
            plugins.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[
            "--script",
            SCRIPT,
            "--graph",
            graphs.join("assistant.yaml").to_str().unwrap(),
            "--graphs",
            graphs.to_str().unwrap(),
        ],
    );
    let admin = Arc::new(Client::new(&server, Some(&server.admin)));
    let output = std::fs::read(plugins.join(OUTPUT_FILE)).unwrap();
    let original = plugin_hash(&admin, "output").await;

    let stop = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (admin, stop, completed) = (admin.clone(), stop.clone(), completed.clone());
            tokio::spawn(async move {
                let mut threads = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let (status, accepted) = admin
                        .post("/api/v1/inject", json!({"text": QUESTION}))
                        .await;
                    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
                    let thread = accepted["threadId"].as_str().unwrap().to_owned();
                    admin.answered(&thread).await;
                    completed.fetch_add(1, Ordering::Relaxed);
                    threads.push(thread);
                }
                threads
            })
        })
        .collect();

    // (requested at, answered at, hash) of every swap.
    let mut swaps: Vec<(u64, u64, String)> = Vec::new();
    let mut switches = 0;
    for n in 1..=SWAPS {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let bytes = variant(&output, n);
        let before = now_ms();
        let (status, swap) = admin
            .put_bytes("/api/v1/plugins/output", bytes.clone())
            .await;
        let after = now_ms();
        assert_eq!(status, StatusCode::OK, "swap {n}: {swap}");
        assert_eq!(swap["to"], hex_hash(&bytes).as_str());
        swaps.push((before, after, hex_hash(&bytes)));
        if n % 3 == 0 {
            let name = if switches % 2 == 0 {
                "assistant-b"
            } else {
                "assistant"
            };
            let (status, body) = admin
                .put("/api/v1/graphs/active", json!({"name": name}))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            switches += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::Relaxed);
    let mut threads = Vec::new();
    for w in workers {
        threads.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    let runs = completed.load(Ordering::Relaxed);
    let (status, _) = admin.post("/api/v1/organism/stop", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut server = server;
    assert!(server.wait().success());

    let conn = rusqlite::Connection::open_with_flags(
        data.join("weft.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let scalar = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(scalar("SELECT count(*) FROM runs"), threads.len() as i64);
    assert_eq!(
        scalar("SELECT count(*) FROM runs WHERE status != 'completed'"),
        0
    );
    let lost = scalar("SELECT count(*) FROM messages WHERE delivered_seq IS NULL");
    // Every message id in exactly one committed inbox.
    let mut deliveries: BTreeMap<String, u32> = BTreeMap::new();
    let mut s = conn.prepare("SELECT inbox FROM invocations").unwrap();
    for inbox in s.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        let inbox: Vec<Value> = serde_json::from_str(&inbox.unwrap()).unwrap();
        for m in inbox {
            *deliveries
                .entry(m["id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    let messages = scalar("SELECT count(*) FROM messages");
    let duplicated = deliveries.values().filter(|&&n| n > 1).count();
    let undelivered = messages - deliveries.len() as i64;
    assert_eq!((lost, duplicated, undelivered), (0, 0, 0));

    // Each frame of `output` ran the version active when it started: the
    // last swap answered before the frame's time, or one in flight then.
    let mut s = conn
        .prepare(
            "SELECT i.plugin_hash, f.wall_time_ms FROM invocations i
             JOIN frames f ON f.thread = i.thread AND f.seq = i.seq
             WHERE i.node = 'output'",
        )
        .unwrap();
    let frames: Vec<(String, u64)> = s
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut per_version: BTreeMap<&str, u32> = BTreeMap::new();
    for (hash, at) in &frames {
        let settled = swaps
            .iter()
            .rev()
            .find(|(_, answered, _)| *answered < *at)
            .map_or(original.as_str(), |(_, _, h)| h.as_str());
        let in_flight = swaps
            .iter()
            .filter(|(asked, answered, _)| *asked <= at + 1 && at <= &(answered + 1));
        let ok = hash == settled
            || in_flight.clone().any(|(_, _, h)| h == hash)
            || (hash == &original && swaps.first().is_some_and(|(asked, _, _)| *at <= asked + 1));
        assert!(
            ok,
            "an output frame at {at} ran {hash}, but {settled} was active"
        );
        *per_version.entry(hash.as_str()).or_default() += 1;
    }
    // A run never changes graphs: a switch waits for the next run.
    assert_eq!(
        scalar(
            "SELECT count(*) FROM (SELECT f.run FROM frames f
             JOIN graph_versions g ON g.id = f.graph_version
             GROUP BY f.run HAVING count(DISTINCT g.name) > 1)"
        ),
        0
    );
    let graphs_used = scalar(
        "SELECT count(DISTINCT g.name) FROM runs r JOIN graph_versions g ON g.id = r.graph_version",
    );
    assert_eq!(graphs_used, 2, "runs ran both graphs");
    let mut swap_ms: Vec<u64> = swaps.iter().map(|(a, b, _)| b - a).collect();
    swap_ms.sort_unstable();
    println!(
        "load test: {runs} runs in {:.1} s ({:.1} runs/s, {WORKERS} clients), {} swaps (upload to serving: median {} ms, max {} ms), {switches} graph switches, {} output frames over {} versions, {messages} messages: {lost} lost, {duplicated} duplicated",
        elapsed.as_secs_f64(),
        runs as f64 / elapsed.as_secs_f64(),
        swaps.len(),
        swap_ms[swap_ms.len() / 2],
        swap_ms[swap_ms.len() - 1],
        frames.len(),
        per_version.len(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_applies_budgets_and_prices_and_reports_what_changed() {
    let data = temp_dir("swap-config");
    let config = data.join("weft.yaml");
    let write = |text: &str| std::fs::write(&config, text).unwrap();
    write("budget:\n  thread_tokens: 100000\n");
    let server = Server::start_in(
        data.clone(),
        &["--config", config.to_str().unwrap()],
        &["--script", SCRIPT],
    );
    let admin = Client::new(&server, Some(&server.admin));
    let thread = ask(&admin).await;
    let (_, usage) = admin.get("/api/v1/usage").await;
    assert_eq!(usage["totals"]["cost"], 0.0, "no prices yet: {usage}");
    let limit_of = |budgets: &Value, thread: &str| {
        budgets
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["threadId"] == thread)
            .map(|b| b["limit"].clone())
    };

    // Prices and budgets apply at once; what changed is reported.
    write(
        "budget:\n  thread_tokens: 77777\nprices:\n  - { prefix: \"\", prompt_per_million: 1000, completion_per_million: 2000 }\n",
    );
    let (status, report) = admin
        .post("/api/v1/organism/config/reload", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["changed"], json!(["budget", "prices"]), "{report}");
    assert_eq!(
        report["unchanged"],
        json!(["llm", "store", "api", "runtime", "bus", "tools"])
    );
    assert_eq!(report["restartNeeded"], json!([]));
    let (_, budgets) = admin.get("/api/v1/usage/threads").await;
    assert_eq!(limit_of(&budgets, &thread), Some(json!(77777)), "{budgets}");
    ask(&admin).await;
    let (_, usage) = admin.get("/api/v1/usage").await;
    assert!(
        usage["totals"]["cost"].as_f64().unwrap() > 0.0,
        "the new prices price new calls: {usage}"
    );

    // A bad file changes nothing.
    write("budget:\n  thread_tokens: 5\n  unknown_key: 1\n");
    let (status, body) = admin
        .post("/api/v1/organism/config/reload", json!({}))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "config_invalid",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown_key"),
        "{body}"
    );
    let (_, budgets) = admin.get("/api/v1/usage/threads").await;
    assert_eq!(limit_of(&budgets, &thread), Some(json!(77777)));

    // Settings read at start-up only are reported as such; `--script`
    // answers instead of configured providers, and says so.
    write(
        "budget:\n  thread_tokens: 77777\nprices:\n  - { prefix: \"\", prompt_per_million: 1000, completion_per_million: 2000 }\napi:\n  rate_per_minute: 1200\nruntime:\n  instances: 64\nbus:\n  url: nats://127.0.0.1:4222\nllm:\n  providers:\n    - { kind: openai, name: other, base_url: \"http://127.0.0.1:9/v1\", default_model: m }\n  default: [other]\n",
    );
    let (_, report) = admin
        .post("/api/v1/organism/config/reload", json!({}))
        .await;
    assert_eq!(report["changed"], json!(["llm"]), "{report}");
    assert_eq!(report["restartNeeded"], json!(["api", "runtime", "bus"]));
    assert!(report["notes"][0].as_str().unwrap().contains("--script"));
    let (_, public) = admin.get("/api/v1/organism/config").await;
    assert!(public.to_string().contains("127.0.0.1:9"), "{public}");

    // SIGHUP reloads too.
    write("budget:\n  thread_tokens: 4242\n");
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, budgets) = admin.get("/api/v1/usage/threads").await;
        if limit_of(&budgets, &thread) == Some(json!(4242)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload: {budgets}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Without a config file there is nothing to reload.
    let plain = Server::start("swap-config-none", &[], &["--script", SCRIPT]);
    let admin = Client::new(&plain, Some(&plain.admin));
    let (status, body) = admin
        .post("/api/v1/organism/config/reload", json!({}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "no_config_file");
}
