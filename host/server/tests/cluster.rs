//! Several `weft serve` processes as one system, over real sockets, on one
//! real PostgreSQL store and one real NATS bus: a message injected on one
//! host is followed to its reply over SSE on another and read on a third;
//! the hosts list each other; a project budget set on one is in force on
//! the others; a host killed with `kill -9` under load loses and doubles
//! nothing (its runs are taken over); a host stopped past its leases
//! commits nothing for the runs taken over from it, and rejoins.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::time::{Duration, Instant};

use common::client::Client;
use common::plugins::{graph_copy, hashes_in, plugin_copy, plugin_hash, variant};
use common::*;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use weft_testkit::{TempNats, TempPostgres};

const QUESTION: &str = "How many devices does customer 1042 have?";
const SCRIPT: &str = "graphs/scripts/assistant-demo.json";

/// The demo script with every answer `delay_ms` late, in `dir`: runs that
/// take a while, so that some are in flight when a host goes away.
fn slow_script(dir: &std::path::Path, delay_ms: u64) -> String {
    let text = std::fs::read_to_string(root().join(SCRIPT)).unwrap();
    let mut rules: Vec<Value> = serde_json::from_str(&text).unwrap();
    for rule in &mut rules {
        rule["delay_ms"] = json!(delay_ms);
    }
    let path = dir.join("slow-script.json");
    std::fs::write(&path, serde_json::to_string(&rules).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `n` hosts named `{name}-0`… on the database `db` of `pg` and on `nats`.
fn hosts(name: &str, pg: &TempPostgres, nats: &TempNats, n: usize, script: &str) -> Vec<Server> {
    let db = name.replace('-', "_");
    let url = pg.create_database(&db).unwrap();
    let bus = nats.url();
    (0..n)
        .map(|i| {
            let id = format!("{name}-{i}");
            Server::start(
                &id,
                &["--store", &url, "--host-id", &id],
                &["--script", script, "--bus", &bus],
            )
        })
        .collect()
}

/// `n` hosts like [`hosts`], each with a plugin folder of its own (a
/// swapped plugin's file is replaced there) and the same two graphs.
fn hosts_with_files(name: &str, pg: &TempPostgres, nats: &TempNats, n: usize) -> Vec<Server> {
    let db = name.replace('-', "_");
    let url = pg.create_database(&db).unwrap();
    let bus = nats.url();
    (0..n)
        .map(|i| {
            let id = format!("{name}-{i}");
            let data = temp_dir(&id);
            let plugins = plugin_copy(&data);
            let graphs = graph_copy(&data, true);
            Server::start_in(
                data,
                &[
                    "--store",
                    &url,
                    "--host-id",
                    &id,
                    "--plugins",
                    plugins.to_str().unwrap(),
                ],
                &[
                    "--script",
                    SCRIPT,
                    "--bus",
                    &bus,
                    "--graphs",
                    graphs.to_str().unwrap(),
                ],
            )
        })
        .collect()
}

/// What the hosts of a [`cluster`] run on.
enum Setup {
    /// The demo script, answered at once.
    Demo,
    /// The demo script, every answer this many milliseconds late.
    SlowDemo(u64),
    /// The demo script, with a plugin folder of each host's own and two
    /// graphs (see [`hosts_with_files`]).
    OwnFiles,
}

/// A throwaway PostgreSQL and NATS, `n` hosts named `{name}-0`… on them,
/// and an admin client of each host.
fn cluster(
    name: &str,
    n: usize,
    setup: Setup,
) -> (TempPostgres, TempNats, Vec<Server>, Vec<Client>) {
    tokio::task::block_in_place(|| {
        let pg = TempPostgres::start().unwrap();
        let nats = TempNats::start().unwrap();
        let hosts = match setup {
            Setup::Demo => hosts(name, &pg, &nats, n, SCRIPT),
            Setup::SlowDemo(ms) => {
                let dir = temp_dir(&format!("{name}-script"));
                hosts(name, &pg, &nats, n, &slow_script(&dir, ms))
            }
            Setup::OwnFiles => hosts_with_files(name, &pg, &nats, n),
        };
        let admin = hosts
            .iter()
            .map(|h| Client::new(h, Some(&h.admin)))
            .collect();
        (pg, nats, hosts, admin)
    })
}

/// One row of `sql`'s answer in `db`, split on `|`.
fn row(pg: &TempPostgres, db: &str, sql: &str) -> Vec<String> {
    pg.psql(db, sql)
        .unwrap()
        .trim()
        .split('|')
        .map(str::to_owned)
        .collect()
}

/// Reads server-sent events from `resp` until one satisfies `done`.
async fn sse_until(resp: reqwest::Response, done: impl Fn(&str, &Value) -> bool) -> Vec<String> {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut kinds = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no end in time; got {kinds:?}"))
            .expect("stream open")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let kind = block
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default()
                .to_owned();
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            let data = serde_json::from_str(&data).unwrap_or(Value::Null);
            let end = done(&kind, &data);
            kinds.push(kind);
            if end {
                return kinds;
            }
        }
    }
}

/// Injects the demo question on `client`'s host; the 202's body.
async fn inject(client: &Client) -> Value {
    let (status, accepted) = client
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    accepted
}

/// Polls `path` on `client` until `ready` holds (a minute at most).
async fn poll(client: &Client, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = client.get(path).await;
        if status == StatusCode::OK && ready(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_are_one_system() {
    let pg = TempPostgres::start().unwrap();
    let nats = TempNats::start().unwrap();
    let hosts = tokio::task::block_in_place(|| hosts("cluster-one", &pg, &nats, 3, SCRIPT));
    let (a, b) = (&hosts[0], &hosts[1]);
    let admin: Vec<Client> = hosts
        .iter()
        .map(|h| Client::new(h, Some(&h.admin)))
        .collect();

    // Each host says which it is, and each lists the three.
    for (i, host) in hosts.iter().enumerate() {
        let (status, health) = Client::new(host, None).get("/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(health["host"], format!("cluster-one-{i}"), "{health}");
    }
    let listed = poll(&admin[2], "/api/v1/hosts", |body| {
        let hosts = body["hosts"].as_array().unwrap();
        hosts.len() == 3 && hosts.iter().all(|h| h["address"] != "")
    })
    .await;
    let listed = listed["hosts"].as_array().unwrap();
    for (i, host) in hosts.iter().enumerate() {
        let entry = &listed[i];
        assert_eq!(entry["id"], format!("cluster-one-{i}"), "{listed:?}");
        assert_eq!(entry["address"], host.base.as_str(), "{listed:?}");
        assert_eq!(entry["this"], i == 2, "{listed:?}");
        assert_eq!(entry["version"], env!("CARGO_PKG_VERSION"));
    }
    let metrics = reqwest::get(a.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("weft_host_info{host=\"cluster-one-0\""),
        "{metrics}"
    );

    // Injected on A, followed over SSE on B to its reply, read on C.
    let live = reqwest::Client::new()
        .get(b.url("/api/v1/events"))
        .bearer_auth(&b.admin)
        .send()
        .await
        .unwrap();
    let accepted = inject(&admin[0]).await;
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    let on_b = sse_until(live, |kind, data| {
        kind == "frame_trace" && data["thread"] == thread.as_str()
    })
    .await;
    assert!(on_b.contains(&"run_started".to_owned()), "{on_b:?}");
    let result = admin[2].answered(&thread).await;
    assert_eq!(result["run"]["status"], "completed");

    // A project budget set on A is in force on B; raised on C, on A.
    let (status, set) = admin[0]
        .put(
            "/api/v1/usage/projects/acme/budget",
            json!({"limit": 5.0, "window": "daily"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    poll(&admin[1], "/api/v1/usage/projects/acme/budget", |b| {
        b["limit"] == 5.0 && b["window"] == "daily"
    })
    .await;
    let (status, raised) = admin[2]
        .put("/api/v1/usage/projects/acme/budget", json!({"raise": 2.0}))
        .await;
    assert_eq!(status, StatusCode::OK, "{raised}");
    assert_eq!(raised["limit"], 7.0, "{raised}");
    poll(&admin[0], "/api/v1/usage/projects/acme/budget", |b| {
        b["limit"] == 7.0
    })
    .await;
}

/// Checks every run of the database `db` completed once: one inbound
/// message each, every message delivered once, and as many frames stored
/// as the run says it committed.
fn assert_exactly_once(pg: &TempPostgres, db: &str, runs: usize) {
    let counts = row(
        pg,
        db,
        "SELECT (SELECT count(*) FROM runs),
                (SELECT count(*) FROM runs WHERE status = 'completed'),
                (SELECT count(*) FROM messages WHERE id LIKE '%/in'),
                (SELECT count(*) FROM messages WHERE delivered_seq IS NULL),
                (SELECT count(*) FROM runs r
                  WHERE r.frames <> (SELECT count(*) FROM frames f WHERE f.run = r.id)),
                (SELECT count(*) FROM (SELECT run, frame FROM frames
                  GROUP BY run, frame HAVING count(*) > 1) d)",
    );
    let n = runs.to_string();
    assert_eq!(
        counts,
        [n.as_str(), n.as_str(), n.as_str(), "0", "0", "0"],
        "runs, completed, inbound, undelivered, runs whose frames differ, frames twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_under_load_loses_and_doubles_nothing() {
    let (pg, _nats, hosts, admin) = cluster("cluster-kill", 3, Setup::SlowDemo(150));
    // Ten conversations started on each host; every 202 means durable.
    let mut threads = Vec::new();
    for _ in 0..10 {
        for (h, client) in admin.iter().enumerate() {
            let accepted = inject(client).await;
            threads.push((h, accepted["threadId"].as_str().unwrap().to_owned()));
        }
    }
    // Host 1 dies with its runs in flight.
    hosts[1].signal("KILL");
    // Every conversation is answered, those of the dead host by the others
    // once its leases expire.
    for (_, thread) in &threads {
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            let (status, result) = admin[0]
                .get(&format!("/api/v1/threads/{thread}/result"))
                .await;
            assert_eq!(status, StatusCode::OK, "{result}");
            if result["run"]["status"] == "completed" && result["busy"] == false {
                let reply = result["run"]["reply"].as_str().unwrap_or_default();
                assert!(reply.contains("3 metering devices"), "{result}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{thread} never completed: {result}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let db = "cluster_kill";
    assert_exactly_once(&pg, db, threads.len());
    // Some of the dead host's runs finished on another host.
    let on_dead: Vec<String> = threads
        .iter()
        .filter(|(h, _)| *h == 1)
        .map(|(_, t)| format!("'{t}'"))
        .collect();
    let taken = row(
        &pg,
        db,
        &format!(
            "SELECT count(*) FROM leases l JOIN runs r ON r.id = l.run
             WHERE l.host <> 'cluster-kill-1' AND r.thread IN ({})",
            on_dead.join(", ")
        ),
    );
    assert_ne!(taken, ["0"], "no run of the dead host was taken over");
    let took_over: usize = hosts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, h)| {
            h.log()
                .matches("took over runs whose lease expired")
                .count()
        })
        .sum();
    assert!(took_over > 0, "no host took over the dead host's runs");
    // The dead host is no longer listed once its heartbeat is older than
    // a lease.
    poll(&admin[0], "/api/v1/hosts", |body| {
        let ids: Vec<&str> = body["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap())
            .collect();
        ids == ["cluster-kill-0", "cluster-kill-2"]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_stopped_past_its_leases_commits_nothing_for_runs_taken_over() {
    let (pg, _nats, hosts, admin) = cluster("cluster-stop", 2, Setup::SlowDemo(400));
    let mut threads = Vec::new();
    for _ in 0..4 {
        let accepted = inject(&admin[0]).await;
        threads.push(accepted["threadId"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    hosts[0].signal("STOP");
    // Host 1 takes the runs over once their leases expire, and ends them.
    for thread in &threads {
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            let (_, result) = admin[1]
                .get(&format!("/api/v1/threads/{thread}/result"))
                .await;
            if result["run"]["status"] == "completed" {
                break;
            }
            assert!(Instant::now() < deadline, "{thread}: {result}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // Host 0 wakes up with frames in flight for runs it no longer holds:
    // they are fenced, and it commits nothing more for them.
    hosts[0].signal("CONT");
    // Its renewals are refused, and so is any frame it still commits.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hosts[0].log().contains("taken over by another host") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        hosts[0].log().contains("taken over by another host"),
        "the stopped host never learnt its runs were taken over:\n{}",
        hosts[0].log()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_exactly_once(&pg, "cluster_stop", threads.len());
    let held = row(
        &pg,
        "cluster_stop",
        "SELECT count(*) FROM leases WHERE host = 'cluster-stop-0' AND expires_ms > 0",
    );
    assert_eq!(held, ["0"], "the stopped host still holds leases");
    // It rejoins: it answers, beats again and takes new work.
    let (status, health) = Client::new(&hosts[0], None).get("/health").await;
    assert_eq!(
        (status, health["host"].as_str()),
        (StatusCode::OK, Some("cluster-stop-0"))
    );
    poll(&admin[1], "/api/v1/hosts", |body| {
        body["hosts"].as_array().unwrap().len() == 2
    })
    .await;
    let (thread, reply) = admin[0].inject_and_wait(json!({"text": QUESTION})).await;
    assert!(reply.contains("3 metering devices"), "{thread}: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_uploaded_and_a_graph_switched_on_one_host_are_used_by_the_others() {
    let (_pg, _nats, _hosts, admin) = cluster("cluster-swap", 3, Setup::OwnFiles);
    // A new version of the output plugin, uploaded on B.
    let output = std::fs::read(root().join("artifacts/plugins/weft-plugin-output.wasm")).unwrap();
    let bytes = variant(&output, 42);
    let before = plugin_hash(&admin[0], "output").await;
    let (status, swap) = admin[1].put_bytes("/api/v1/plugins/output", bytes).await;
    assert_eq!(status, StatusCode::OK, "{swap}");
    let to = plugin_hash(&admin[1], "output").await;
    assert_ne!(to, before);
    // A and C take it up, and their next runs' output node runs it.
    for h in [0, 2] {
        let deadline = Instant::now() + Duration::from_secs(60);
        while plugin_hash(&admin[h], "output").await != to {
            assert!(
                Instant::now() < deadline,
                "host {h} never swapped the plugin in"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let accepted = inject(&admin[h]).await;
        let thread = accepted["threadId"].as_str().unwrap().to_owned();
        admin[h].answered(&thread).await;
        let ran = hashes_in(&admin[h], &thread, "output").await;
        assert!(
            !ran.is_empty() && ran.iter().all(|r| *r == to),
            "host {h}: {ran:?}"
        );
    }
    // A graph switch on C: A and B start their new runs on it.
    let (status, switched) = admin[2]
        .put("/api/v1/graphs/active", json!({"name": "assistant-b"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{switched}");
    for h in [0, 1] {
        let active = poll(&admin[h], "/api/v1/graphs/active", |g| {
            g["name"] == "assistant-b"
        })
        .await;
        let accepted = inject(&admin[h]).await;
        let thread = accepted["threadId"].as_str().unwrap().to_owned();
        admin[h].answered(&thread).await;
        let (_, runs) = admin[h]
            .get(&format!("/api/v1/threads/{thread}/runs"))
            .await;
        assert_eq!(
            runs[0]["graphVersion"], active["versionId"],
            "host {h}: {runs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_stops_hands_its_runs_to_another_over_the_bus() {
    let pg = TempPostgres::start().unwrap();
    let nats = TempNats::start().unwrap();
    let dir = temp_dir("cluster-handover-script");
    let script = slow_script(&dir, 300);
    let mut hosts =
        tokio::task::block_in_place(|| hosts("cluster-handover", &pg, &nats, 2, &script));
    let admin = Client::new(&hosts[1], Some(&hosts[1].admin));
    let first = Client::new(&hosts[0], Some(&hosts[0].admin));
    let mut threads = Vec::new();
    for _ in 0..4 {
        let accepted = inject(&first).await;
        threads.push(accepted["threadId"].as_str().unwrap().to_owned());
    }
    // Host 0 stops gracefully: its runs stop after their current frame,
    // give their leases up and say so on the bus.
    let stopping = hosts.remove(0);
    assert!(stopping.terminate().success());
    for thread in &threads {
        admin.answered(thread).await;
    }
    assert_exactly_once(&pg, "cluster_handover", threads.len());
    // Host 1 was woken by the bus (it would otherwise have found them at
    // its next look).
    assert!(
        hosts[0].log().contains("work arrived from another host"),
        "{}",
        hosts[0].log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_goes_on_at_whichever_host_gets_its_next_message() {
    let (pg, _nats, _hosts, admin) = cluster("cluster-turns", 2, Setup::Demo);
    let accepted = inject(&admin[0]).await;
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    admin[0].answered(&thread).await;
    // Turns alternate between the hosts, each on the thread as the other
    // left it.
    for turn in 1..=4 {
        let client = &admin[turn % 2];
        let (status, sent) = client
            .post(
                &format!("/api/v1/threads/{thread}/messages"),
                json!({"text": QUESTION}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "turn {turn}: {sent}");
        assert_eq!(
            sent["runId"],
            format!("{thread}.run-{}", turn + 1),
            "{sent}"
        );
        let result = client.answered(&thread).await;
        assert_eq!(result["run"]["id"], sent["runId"], "turn {turn}: {result}");
    }
    assert_exactly_once(&pg, "cluster_turns", 5);
    let seqs = row(
        &pg,
        "cluster_turns",
        "SELECT count(*), min(seq), max(seq) FROM frames",
    );
    let frames: u64 = seqs[0].parse().unwrap();
    assert_eq!(seqs[1], "0");
    assert_eq!(
        seqs[2],
        (frames - 1).to_string(),
        "the thread's frames have gaps"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_for_a_thread_busy_on_another_host_is_refused_or_waits_behind_its_run() {
    let (pg, _nats, _hosts, admin) = cluster("cluster-busy", 2, Setup::SlowDemo(300));
    let accepted = inject(&admin[0]).await;
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    let first = accepted["runId"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/threads/{thread}/messages");
    // While host 0 runs it, host 1 refuses a message by default …
    let (status, refused) = admin[1].post(&path, json!({"text": QUESTION})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "thread_busy", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&first),
        "{refused}"
    );
    // … cannot stop another host's run …
    let (status, refused) = admin[1]
        .post(&path, json!({"text": QUESTION, "multitask": "interrupt"}))
        .await;
    assert_eq!(status.as_u16() / 100, 4, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another host"),
        "{refused}"
    );
    // … and queues one behind it, which starts when it ends.
    let (status, queued) = admin[1]
        .post(&path, json!({"text": QUESTION, "multitask": "enqueue"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["status"], "queued", "{queued}");
    let second = queued["runId"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, runs) = admin[1]
            .get(&format!("/api/v1/threads/{thread}/runs"))
            .await;
        let done = runs
            .as_array()
            .map(|r| r.iter().filter(|r| r["status"] == "completed").count());
        if done == Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "{runs}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_exactly_once(&pg, "cluster_busy", 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_catches_up_on_a_plugin_swap_and_a_graph_switch_made_while_nats_was_down() {
    let (pg, mut nats, _hosts, admin) = cluster("cluster-catchup", 2, Setup::OwnFiles);
    tokio::task::block_in_place(|| nats.stop()).unwrap();
    // Made on host 0 while no broadcast can reach host 1.
    let output = std::fs::read(root().join("artifacts/plugins/weft-plugin-output.wasm")).unwrap();
    let (status, swap) = admin[0]
        .put_bytes("/api/v1/plugins/output", variant(&output, 7))
        .await;
    assert_eq!(status, StatusCode::OK, "{swap}");
    let to = plugin_hash(&admin[0], "output").await;
    let (status, switched) = admin[0]
        .put("/api/v1/graphs/active", json!({"name": "assistant-b"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{switched}");
    assert_ne!(plugin_hash(&admin[1], "output").await, to);
    // NATS is back: host 1 reconnects and catches up from the store.
    tokio::task::block_in_place(|| nats.start_again()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while plugin_hash(&admin[1], "output").await != to {
        assert!(
            Instant::now() < deadline,
            "host 1 never caught up on the plugin"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    poll(&admin[1], "/api/v1/graphs/active", |g| {
        g["name"] == "assistant-b"
    })
    .await;
    // A host started afterwards catches up at its start.
    let late = tokio::task::block_in_place(|| {
        let id = "cluster-catchup-2";
        let data = temp_dir(id);
        let plugins = plugin_copy(&data);
        let graphs = graph_copy(&data, true);
        Server::start_in(
            data,
            &[
                "--store",
                &pg.database_url("cluster_catchup"),
                "--host-id",
                id,
                "--plugins",
                plugins.to_str().unwrap(),
            ],
            &[
                "--script",
                SCRIPT,
                "--bus",
                &nats.url(),
                "--graphs",
                graphs.to_str().unwrap(),
            ],
        )
    });
    let late = Client::new(&late, Some(&late.admin));
    let deadline = Instant::now() + Duration::from_secs(60);
    while plugin_hash(&late, "output").await != to {
        assert!(
            Instant::now() < deadline,
            "the new host never caught up on the plugin"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    poll(&late, "/api/v1/graphs/active", |g| {
        g["name"] == "assistant-b"
    })
    .await;
}
