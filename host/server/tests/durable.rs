//! Durability through the real `weft` binary: SIGKILL with 100 runs in
//! flight and a restart that finishes every run with each message
//! delivered exactly once; replay, fork, prune and threads from the CLI;
//! a foreign store file refused.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rusqlite::{Connection, OpenFlags};

const QUESTION: &str = "How many devices does customer 1042 have?";

/// The demo script with every answer delayed, so that runs are in flight
/// long enough to be killed.
fn slow_script(dir: &Path, delay_ms: u64) -> String {
    let text = std::fs::read_to_string(root().join("graphs/scripts/assistant-demo.json")).unwrap();
    let mut rules: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    for rule in &mut rules {
        rule["delay_ms"] = delay_ms.into();
    }
    let path = dir.join(format!("slow-{delay_ms}.json"));
    std::fs::write(&path, serde_json::to_string(&rules).unwrap()).unwrap();
    path.display().to_string()
}

fn read_store(data: &Path) -> Connection {
    let conn = Connection::open_with_flags(
        data.join("weft.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("the store exists");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

fn scalar(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn sigkill_with_100_runs_in_flight_loses_nothing_and_a_restart_finishes_every_run() {
    let data = temp_dir("sigkill");
    let script = slow_script(&data, 400);
    let plugins = root().join("artifacts/plugins");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(root())
        .env("WEFT_PLUGIN_DIR", &plugins)
        .env("WEFT_DATA_DIR", &data)
        .env("WEFT_CACHE_DIR", shared_cache())
        .args(["run", "--runs", "100", "--script", &script, QUESTION])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(data.join("killed.stderr")).unwrap())
        .spawn()
        .expect("weft run");
    // Kill once every run is accepted and some frames are committed, while
    // most runs are still in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "the runs never got going: {}",
            std::fs::read_to_string(data.join("killed.stderr")).unwrap_or_default()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "weft exited before it was killed: {}",
            std::fs::read_to_string(data.join("killed.stderr")).unwrap_or_default()
        );
        if data.join("weft.db").exists() {
            let conn = read_store(&data);
            let ready = conn
                .query_row(
                    "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM frames), \
                     (SELECT count(*) FROM runs WHERE status = 'running')",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .ok();
            if let Some((runs, frames, running)) = ready
                && runs == 100
                && frames >= 100
                && running >= 50
            {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The store can be read while the running weft holds it.
    let out = weft(&data, &["threads", "--json", "--limit", "500"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 100);
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    let conn = read_store(&data);
    let unfinished = scalar(&conn, "SELECT count(*) FROM runs WHERE status = 'running'");
    let frames_before = scalar(&conn, "SELECT count(*) FROM frames");
    assert!(unfinished >= 50, "{unfinished} runs were in flight");
    assert_eq!(scalar(&conn, "SELECT count(*) FROM runs"), 100);
    drop(conn);

    // Restart: every unfinished run continues from its last committed frame.
    let fast = slow_script(&data, 0);
    let out = weft(&data, &["resume", "--script", &fast]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("resuming {unfinished} unfinished run(s)")),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains(" completed ok "))
            .count() as i64,
        unfinished,
        "{stdout}"
    );

    let conn = read_store(&data);
    assert_eq!(
        scalar(
            &conn,
            "SELECT count(*) FROM runs WHERE status = 'completed'"
        ),
        100
    );
    assert!(scalar(&conn, "SELECT count(*) FROM frames") > frames_before);
    // Every run has its 5 frames, numbered 0..4 without gaps or repeats,
    // and its answer.
    assert_eq!(
        scalar(
            &conn,
            "SELECT count(*) FROM (SELECT thread FROM frames GROUP BY thread \
             HAVING count(*) = 5 AND min(seq) = 0 AND max(seq) = 4)"
        ),
        100
    );
    assert_eq!(
        scalar(
            &conn,
            "SELECT count(*) FROM runs WHERE reply LIKE '%3 metering devices%'"
        ),
        100
    );
    // Each message delivered exactly once: none pending, and each in the
    // inbox of exactly one committed invocation, the one its row names.
    assert_eq!(
        scalar(
            &conn,
            "SELECT count(*) FROM messages WHERE delivered_seq IS NULL"
        ),
        0
    );
    let mut inboxes: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    let mut s = conn
        .prepare("SELECT thread, seq, inbox FROM invocations")
        .unwrap();
    let rows = s
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (thread, seq, inbox) = row.unwrap();
        let inbox: Vec<serde_json::Value> = serde_json::from_str(&inbox).unwrap();
        for m in inbox {
            inboxes
                .entry(m["id"].as_str().unwrap().to_owned())
                .or_default()
                .push((thread.clone(), seq));
        }
    }
    let mut s = conn
        .prepare("SELECT id, thread, delivered_seq FROM messages")
        .unwrap();
    let messages: Vec<(String, String, i64)> = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(messages.len() >= 100 * 6, "{} messages", messages.len());
    for (id, thread, seq) in &messages {
        assert_eq!(
            inboxes.get(id),
            Some(&vec![(thread.clone(), *seq)]),
            "message {id} must be delivered exactly once"
        );
    }
    assert_eq!(inboxes.len(), messages.len());
    // The memorizer's memory is there for every thread, once.
    assert_eq!(
        scalar(
            &conn,
            "SELECT count(*) FROM memory WHERE key = 'memorizer.state'"
        ),
        100
    );
}

#[test]
fn replay_fork_prune_and_threads_from_the_cli() {
    let data = temp_dir("replay-fork");
    let script = "graphs/scripts/assistant-demo.json";
    let out = weft(&data, &["run", "--script", script, QUESTION]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = weft(&data, &["threads", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let threads: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(threads.len(), 1);
    let thread = threads[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(threads[0]["frames"], 5);
    assert_eq!(threads[0]["status"], "completed");

    // Replay answers every call from the journal: no model, no database.
    let out = weft(&data, &["replay", &thread]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("reproduced: 5 frames, 6 invocations"),
        "{stdout}"
    );
    let out = weft(&data, &["replay", &thread, "--frame", "2", "--json"]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["frames"], 1);
    assert_eq!(report["divergences"], serde_json::json!([]));
    let out = weft(&data, &["replay", "thread-nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no thread `thread-nope`"),
        "{}",
        text(&out.stderr)
    );

    // Fork after frame 1: the new thread runs frames 2 to 4 again.
    let out = weft(
        &data,
        &["fork", &thread, "--after", "1", "--script", script],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("forked {thread} after frame 1 as thread-")),
        "{stdout}"
    );
    assert!(stdout.contains("3 metering devices"), "{stdout}");
    let out = weft(&data, &["threads"]);
    let listing = text(&out.stdout);
    assert!(listing.contains(&format!("{thread} @ 1")), "{listing}");

    // Prune everything finished: the fork goes first (its parent is kept
    // while a fork needs it), then the parent.
    let out = weft(&data, &["prune", "--older-than", "0s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("pruned 1 threads"),
        "{}",
        text(&out.stdout)
    );
    let out = weft(&data, &["prune", "--older-than", "0s"]);
    assert!(
        text(&out.stdout).starts_with("pruned 1 threads"),
        "{}",
        text(&out.stdout)
    );
    let out = weft(&data, &["threads", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");
    let out = weft(&data, &["prune", "--older-than", "soon"]);
    assert!(!out.status.success());
}

#[test]
fn a_foreign_store_file_is_refused_and_left_alone() {
    let data = temp_dir("foreign-store");
    let foreign = data.join("notes.txt");
    std::fs::write(&foreign, "shopping list\n").unwrap();
    let run = |extra: &[&str]| {
        let store = foreign.to_str().unwrap();
        let mut args = extra.to_vec();
        args.extend([
            "--store",
            store,
            "run",
            "--script",
            "graphs/scripts/assistant-demo.json",
            QUESTION,
        ]);
        weft(&data, &args)
    };
    let out = run(&[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("is not a SQLite database"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        "shopping list\n"
    );
    // --ephemeral runs without any store.
    let out = run(&["--ephemeral"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
