//! The engine on the store, with the real plugins, on both backends
//! (SQLite and PostgreSQL, `sqlite::` and `postgres::` tests): every frame
//! committed, all-or-nothing commits (faults injected between the parts),
//! retries, resume from the last committed frame, replay (exact, and with a
//! changed plugin), fork, and pruning.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::json;
use weft_engine::{
    Backends, Engine, EngineConfig, FrameTrace, Inbound, Ledger, LoadedGraph, NodePause,
    ReplayOptions, ReplayPlugins, RunStatus, Store,
};
use weft_runtime::capabilities::db::Database;
use weft_runtime::capabilities::llm::{LlmBackend, Scripted};
use weft_store::{FramePart, Options};

mod support;
use support::engine::{artifacts, finish, plugins, root, runtime};
use support::{
    AnyStore, Backend, Db, Place, bare_frame, count, db, place, run_start, temp_dir, text_message,
};

fn eras() -> Arc<dyn Database> {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    let path = DB.get_or_init(|| {
        let path = temp_dir("eras").join("eras.db");
        weft_db::eras::ensure(&path, &weft_db::eras::ErasSpec::default()).expect("eras db");
        path
    });
    Arc::new(weft_db::SqliteDb::open(path, weft_db::SqliteDbConfig::default()).expect("eras"))
}

fn script() -> Arc<Scripted> {
    let text = std::fs::read_to_string(root().join("graphs/scripts/assistant-demo.json"))
        .expect("assistant-demo.json");
    Arc::new(Scripted::from_json(&text).expect("script"))
}

const QUESTION: &str = "How many devices does customer 1042 have?";

struct Host {
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    handle: AnyStore,
}

async fn host(place: &Place, llm: Arc<dyn LlmBackend>, config: EngineConfig) -> Host {
    let handle = place.open().await;
    let store = handle.store();
    let rt = runtime();
    let plugins = plugins(&rt).await;
    let engine = Engine::open(
        rt,
        plugins,
        Backends {
            llm,
            db: eras(),
            tools: weft_engine::Backends::no_tools(),
        },
        config,
        store.clone(),
    )
    .await
    .expect("engine");
    Host {
        engine,
        store,
        handle,
    }
}

/// A fresh store in its own folder, a host on it with the demo script, and
/// a new thread on the assistant graph.
async fn assistant_thread(
    backend: Backend,
    name: &str,
    config: EngineConfig,
) -> (Place, Host, String) {
    let dir = place(backend, name);
    let h = host(&dir, script(), config).await;
    let graph = assistant(&h.engine).await;
    let thread = h.engine.open_thread(None, &graph);
    (dir, h, thread)
}

async fn assistant(engine: &Engine) -> Arc<LoadedGraph> {
    engine
        .load_graph(&root().join("graphs/assistant.yaml"))
        .await
        .expect("assistant graph")
}

async fn ask(engine: &Arc<Engine>, thread: &str, text: &str) -> FrameTrace {
    finish(
        engine
            .start_run(thread, Inbound::user_text(text))
            .await
            .expect("start"),
    )
    .await
}

/// Every message of the thread was delivered exactly once, in a frame
/// after the one it was sent in, and every inbox entry names a stored
/// message.
fn assert_delivered_exactly_once(conn: &Db, thread: &str) {
    let messages: Vec<(String, Option<i64>, Option<i64>)> = conn
        .rows(
            "SELECT id, sent_seq, delivered_seq FROM messages WHERE thread = ?1",
            thread,
        )
        .iter()
        .map(|r| (r[0].text(), r[1].int(), r[2].int()))
        .collect();
    assert!(!messages.is_empty());
    let inboxes: Vec<(i64, String)> = conn
        .rows(
            "SELECT seq, inbox FROM invocations WHERE thread = ?1",
            thread,
        )
        .iter()
        .map(|r| (r[0].int().unwrap(), r[1].text()))
        .collect();
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (seq, inbox) in inboxes {
        let inbox: Vec<serde_json::Value> = serde_json::from_str(&inbox).unwrap();
        for m in inbox {
            seen.entry(m["id"].as_str().unwrap().to_owned())
                .or_default()
                .push(seq);
        }
    }
    for (id, sent, delivered) in &messages {
        let delivered = delivered.unwrap_or_else(|| panic!("message {id} was never delivered"));
        if let Some(sent) = sent {
            assert!(
                delivered > *sent || id.contains("budget"),
                "{id} delivered in {delivered}, sent in {sent}"
            );
        }
        assert_eq!(
            seen.get(id).map(Vec::as_slice),
            Some(&[delivered][..]),
            "message {id} must be in exactly one inbox, the one of frame {delivered}"
        );
    }
    assert_eq!(
        seen.len(),
        messages.len(),
        "every inbox entry is a stored message"
    );
}

fn memory_rows(conn: &Db, thread: &str) -> BTreeMap<(String, String), String> {
    conn.rows(
        "SELECT node, key, value FROM memory WHERE thread = ?1",
        thread,
    )
    .iter()
    .map(|r| ((r[0].text(), r[1].text()), r[2].text()))
    .collect()
}

async fn every_frame_commits_and_the_store_matches_the_trace(backend: Backend) {
    let (dir, h, thread) = assistant_thread(backend, "commits", EngineConfig::default()).await;
    let first = ask(&h.engine, &thread, QUESTION).await;
    let second = ask(&h.engine, &thread, "And customer 1043?").await;
    assert_eq!(first.status, RunStatus::Completed, "{}", first.render());
    assert_eq!(second.status, RunStatus::Completed, "{}", second.render());
    let conn = db(&dir);
    let frames = i64::from(first.frames + second.frames);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM frames WHERE thread = ?1",
            &thread
        ),
        frames
    );
    assert_eq!(
        count(
            &conn,
            "SELECT max(seq) + 1 FROM frames WHERE thread = ?1",
            &thread
        ),
        frames,
        "frames are numbered over the thread's runs without gaps"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM invocations WHERE thread = ?1",
            &thread
        ) as usize,
        first.records.len() + second.records.len()
    );
    let journal: usize = first
        .records
        .iter()
        .chain(&second.records)
        .map(|r| r.journal.len())
        .sum();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM journal WHERE thread = ?1",
            &thread
        ) as usize,
        journal
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM usage_events WHERE thread = ?1",
            &thread
        ) as u64,
        u64::from(first.tokens().calls + second.tokens().calls)
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM runs WHERE thread = ?1 AND status = 'completed'",
            &thread
        ),
        2
    );
    assert_delivered_exactly_once(&conn, &thread);
    // The memorizer's state is durable, and equal to what the engine holds.
    let memory = memory_rows(&conn, &thread);
    assert!(
        memory.contains_key(&(String::new(), "memorizer.state".into())),
        "{memory:?}"
    );
    let stored = h.store.thread(&thread).await.unwrap().unwrap();
    assert_eq!(
        (stored.runs, stored.frames, stored.status.as_str()),
        (2, frames as u64, "completed")
    );
    // A new engine on the same store continues the thread: run ids and
    // frame numbers go on, and memory is read back.
    drop(h);
    let h = host(&dir, script(), EngineConfig::default()).await;
    let graph = assistant(&h.engine).await;
    h.engine.open_thread(Some(&thread), &graph);
    let third = ask(&h.engine, &thread, QUESTION).await;
    assert_eq!(third.run, format!("{thread}.run-3"));
    assert_eq!(third.status, RunStatus::Completed);
    let conn = db(&dir);
    assert_eq!(
        count(
            &conn,
            "SELECT min(seq) FROM frames WHERE run = ?1",
            &third.run
        ),
        frames
    );
    // Usage is restored from the store, then grows.
    assert_eq!(
        h.engine.usage().calls,
        u64::from(first.tokens().calls + second.tokens().calls + third.tokens().calls)
    );
}

async fn a_frames_writes_are_all_or_nothing(backend: Backend) {
    for part in [
        FramePart::Frame,
        FramePart::Invocations,
        FramePart::Messages,
        FramePart::Memory,
        FramePart::Usage,
        FramePart::Run,
    ] {
        let dir = place(backend, &format!("fault-{part:?}"));
        let config = EngineConfig {
            commit_attempts: 1,
            ..EngineConfig::default()
        };
        let h = host(&dir, script(), config).await;
        let graph = assistant(&h.engine).await;
        // Frame 0 (input) commits; frame 1 (pa: messages, llm usage)
        // fails after `part`.
        h.handle.fail_frame_commits(part, 1, 1);
        let thread = h.engine.open_thread(None, &graph);
        let trace = ask(&h.engine, &thread, QUESTION).await;
        assert_eq!(trace.status, RunStatus::StoreFailed, "{part:?}");
        let conn = db(&dir);
        let q = |sql: &str| count(&conn, sql, &thread);
        assert_eq!(
            q("SELECT count(*) FROM frames WHERE thread = ?1"),
            1,
            "{part:?}"
        );
        assert_eq!(
            q("SELECT count(*) FROM invocations WHERE thread = ?1 AND seq > 0"),
            0,
            "{part:?}"
        );
        assert_eq!(
            q("SELECT count(*) FROM journal WHERE thread = ?1 AND seq > 0"),
            0,
            "{part:?}"
        );
        assert_eq!(
            q(
                "SELECT count(*) FROM messages WHERE thread = ?1 AND (sent_seq > 0 OR delivered_seq > 0)"
            ),
            0,
            "{part:?}"
        );
        assert_eq!(
            q("SELECT count(*) FROM messages WHERE thread = ?1 AND delivered_seq IS NULL"),
            2,
            "{part:?}: frame 0's messages to pa and memorizer are still pending"
        );
        assert_eq!(
            q("SELECT count(*) FROM memory WHERE thread = ?1 AND key = 'memorizer.state'"),
            0,
            "{part:?}"
        );
        assert_eq!(
            q("SELECT count(*) FROM usage_events WHERE thread = ?1 AND frame > 0"),
            0,
            "{part:?}"
        );
        assert_eq!(
            q("SELECT frames FROM runs WHERE thread = ?1"),
            1,
            "{part:?}"
        );
        assert_eq!(
            q("SELECT count(*) FROM runs WHERE thread = ?1 AND status = 'running'"),
            1,
            "{part:?}"
        );
        assert_eq!(q("SELECT frames FROM threads WHERE id = ?1"), 1, "{part:?}");
        // A new host resumes the run from frame 1 and finishes it.
        drop(h);
        let h = host(&dir, script(), EngineConfig::default()).await;
        let (resumed, failed) = h.engine.resume_runs().await.expect("resume");
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(resumed.len(), 1);
        let trace = finish(resumed.into_iter().next().unwrap()).await;
        assert_eq!(
            trace.status,
            RunStatus::Completed,
            "{part:?}: {}",
            trace.render()
        );
        // The trace lists the frames run now: frame 1 again, then 2 to 4
        // (the deferred memorizer last).
        assert_eq!(trace.records[0].frame, 1);
        assert_eq!(trace.frames, 5);
        assert!(
            trace.reply.as_deref().unwrap_or("").contains('3'),
            "{:?}",
            trace.reply
        );
        let conn = db(&dir);
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM frames WHERE thread = ?1",
                &thread
            ),
            5
        );
        assert_delivered_exactly_once(&conn, &thread);
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM runs WHERE thread = ?1 AND status = 'completed'",
                &thread
            ),
            1
        );
        drop(h);
    }
}

async fn a_failed_commit_is_retried_and_nothing_is_doubled(backend: Backend) {
    let dir = place(backend, "retry");
    let config = EngineConfig {
        commit_backoff: Duration::from_millis(5),
        ..EngineConfig::default()
    };
    let h = host(&dir, script(), config).await;
    let graph = assistant(&h.engine).await;
    let mut events = h.engine.subscribe();
    h.handle.fail_frame_commits(FramePart::Usage, 1, 2);
    let thread = h.engine.open_thread(None, &graph);
    let trace = ask(&h.engine, &thread, QUESTION).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    let mut failures = 0;
    while let Ok(e) = events.try_recv() {
        if let weft_engine::EventBody::Error(err) = &e.body
            && err.code == "store_error"
        {
            failures += 1;
        }
    }
    assert_eq!(failures, 2, "each failed attempt is an error event");
    let conn = db(&dir);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM frames WHERE thread = ?1",
            &thread
        ),
        5
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM usage_events WHERE thread = ?1",
            &thread
        ) as u64,
        u64::from(trace.tokens().calls)
    );
    assert_delivered_exactly_once(&conn, &thread);
}

async fn replay_reproduces_every_frame(backend: Backend) {
    let (dir, h, thread) = assistant_thread(backend, "replay", EngineConfig::default()).await;
    let a = ask(&h.engine, &thread, QUESTION).await;
    let b = ask(&h.engine, &thread, "Thanks! And customer 1043?").await;
    drop(h);
    // A new host, without the model or the database the frames used: every
    // answer comes from the journal.
    let h = host(&dir, Arc::new(Scripted::default()), EngineConfig::default()).await;
    let report = h
        .engine
        .replay(&thread, ReplayOptions::default())
        .await
        .expect("replay");
    assert!(report.reproduced(), "{:#?}", report.divergences);
    assert_eq!(report.frames, u64::from(a.frames + b.frames));
    assert_eq!(
        report.invocations as usize,
        a.records.len() + b.records.len()
    );
    assert!(report.journal_entries > 10, "{report:?}");
    assert!(report.changed_plugins.is_empty());
    let one = h
        .engine
        .replay(
            &thread,
            ReplayOptions {
                frame: Some(5),
                ..ReplayOptions::default()
            },
        )
        .await
        .expect("replay one frame");
    assert_eq!((one.frames, one.reproduced()), (1, true));
    let missing = h
        .engine
        .replay(
            &thread,
            ReplayOptions {
                frame: Some(99),
                ..ReplayOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("no committed frame 99"),
        "{missing}"
    );
}

async fn replay_with_a_changed_plugin_reports_the_divergence(backend: Backend) {
    let dir = place(backend, "replay-changed");
    let guests = artifacts().join("../guests");
    let plugin = dir.join("last.wasm");
    std::fs::copy(guests.join("guest-relay.wasm"), &plugin).unwrap();
    let yaml = r#"
name: chain
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b }] } }
  b: { plugin: last.wasm, config: { reply: true } }
edges:
  - { from: a, to: b }
"#;
    let graph_file = dir.join("chain.yaml");
    std::fs::write(&graph_file, yaml).unwrap();
    let h = host(&dir, Arc::new(Scripted::default()), EngineConfig::default()).await;
    let graph = h.engine.load_graph(&graph_file).await.expect("graph");
    let thread = h.engine.open_thread(None, &graph);
    let trace = finish(
        h.engine
            .start_run(&thread, Inbound::to("a", "relay", &json!({"n": 1})))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(trace.status, RunStatus::Completed);
    drop(h);
    // The plugin file is replaced by a component that behaves differently.
    std::fs::copy(guests.join("guest-echo.wasm"), &plugin).unwrap();
    let h = host(&dir, Arc::new(Scripted::default()), EngineConfig::default()).await;
    // The recorded versions (kept in the store) still reproduce.
    let recorded = h
        .engine
        .replay(&thread, ReplayOptions::default())
        .await
        .unwrap();
    assert!(recorded.reproduced(), "{:#?}", recorded.divergences);
    // The installed version does not, and the report says where.
    let current = h
        .engine
        .replay(
            &thread,
            ReplayOptions {
                frame: None,
                plugins: ReplayPlugins::Current,
            },
        )
        .await
        .unwrap();
    assert_eq!(current.changed_plugins.len(), 1);
    assert_eq!(current.changed_plugins[0].node, "b");
    assert_eq!(current.divergences.len(), 1, "{:#?}", current.divergences);
    let d = &current.divergences[0];
    assert_eq!(
        (d.seq, d.frame, d.node.as_str(), d.what.as_str()),
        (1, 1, "b", "reply")
    );
    assert!(
        d.recorded.contains("\\\"node\\\":\\\"b\\\""),
        "{}",
        d.recorded
    );
    assert!(d.replayed.contains("count"), "{}", d.replayed);
}

/// A node with `instance: reuse` keeps its guest state between ticks (the
/// echo guest's counter goes on), the record says so, and replay, always
/// in fresh instances, reports the frame whose output came from kept state.
async fn kept_instances_carry_guest_state_and_replay_shows_where(backend: Backend) {
    let dir = place(backend, "kept-instances");
    let yaml = r#"
name: kept
entry: counter
nodes:
  counter: { plugin: guest-echo, instance: reuse }
"#;
    let graph_file = dir.join("kept.yaml");
    std::fs::write(&graph_file, yaml).unwrap();
    let h = host(&dir, Arc::new(Scripted::default()), EngineConfig::default()).await;
    let graph = h.engine.load_graph(&graph_file).await.expect("graph");
    let thread = h.engine.open_thread(None, &graph);
    let mut seen = Vec::new();
    for n in 0..3 {
        let trace = finish(
            h.engine
                .start_run(&thread, Inbound::to("counter", "user", &json!({"n": n})))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(trace.status, RunStatus::Completed);
        let record = &trace.records[0];
        let reply: serde_json::Value =
            serde_json::from_str(record.reply.as_deref().expect("a reply")).unwrap();
        seen.push((reply["count"].as_u64().unwrap(), record.reused_instance));
    }
    assert_eq!(seen, [(1, false), (2, true), (3, true)]);
    // The kept instance is the runtime's, not the thread's: another thread
    // of the same project and node goes on counting.
    let other = h.engine.open_thread(None, &graph);
    let trace = finish(
        h.engine
            .start_run(&other, Inbound::to("counter", "user", &json!({})))
            .await
            .unwrap(),
    )
    .await;
    assert!(trace.records[0].reused_instance);
    assert!(
        trace.records[0]
            .reply
            .as_deref()
            .unwrap()
            .contains("\"count\":4")
    );
    let report = h
        .engine
        .replay(&thread, ReplayOptions::default())
        .await
        .unwrap();
    assert_eq!(report.frames, 3);
    // Frame 0 ran in a fresh instance and reproduces; the two that ran in
    // the kept one counted on and do not.
    let diverged: Vec<(u64, &str, &str)> = report
        .divergences
        .iter()
        .map(|d| (d.seq, d.node.as_str(), d.what.as_str()))
        .collect();
    assert_eq!(diverged, [(1, "counter", "reply"), (2, "counter", "reply")]);
    assert!(
        report.divergences[0].recorded.contains("count\\\":2"),
        "{}",
        report.divergences[0].recorded
    );
    assert!(
        report.divergences[0].replayed.contains("count\\\":1"),
        "{}",
        report.divergences[0].replayed
    );
}

async fn a_fork_continues_from_frame_n_with_the_same_memory(backend: Backend) {
    let (dir, h, thread) = assistant_thread(backend, "fork", EngineConfig::default()).await;
    let original = ask(&h.engine, &thread, QUESTION).await;
    assert_eq!(original.frames, 5, "{}", original.render());
    // Memory after frame 1, from the committed frames' writes.
    let frames = h.store.frames(&thread, 0, 2).await.unwrap();
    let mut expected = BTreeMap::new();
    for f in &frames {
        for i in &f.invocations {
            for w in &i.output.memory_writes {
                expected.insert(
                    (w.node.clone().unwrap_or_default(), w.key.clone()),
                    w.value.clone().unwrap(),
                );
            }
        }
    }
    assert!(!expected.is_empty(), "the input node wrote in frame 0");
    // Every node paused, so that the fork's run waits at its first frame
    // boundary while its memory is read (it would write on otherwise).
    let graph = assistant(&h.engine).await;
    let nodes: Vec<String> = graph
        .graph()
        .nodes()
        .iter()
        .map(|n| n.name.clone())
        .collect();
    for node in &nodes {
        h.engine.pause(None, node);
    }
    let (fork, run) = h.engine.fork(&thread, 1).await.expect("fork");
    let conn = db(&dir);
    assert_eq!(
        memory_rows(&conn, &fork),
        expected,
        "the fork starts with the memory after frame 1"
    );
    // The deferred memorizer last: while a paused node holds the rest of
    // the run, a deferred node is not held back by it.
    let deferred = |name: &String| graph.graph().node(name).is_some_and(|n| n.defer);
    for node in nodes
        .iter()
        .filter(|n| !deferred(n))
        .chain(nodes.iter().filter(|n| deferred(n)))
    {
        h.engine.resume(None, node);
    }
    let trace = finish(run.expect("frame 1 left messages pending")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(
        trace.path(),
        original.path()[2..].to_vec(),
        "the fork runs what frames 2 to 4 ran"
    );
    assert_eq!(trace.reply, original.reply);
    let stored = h.store.thread(&fork).await.unwrap().unwrap();
    assert_eq!(stored.forked_from, Some((thread.clone(), 1)));
    assert_eq!(
        stored.frames, 5,
        "the fork's frames are numbered on from the fork point"
    );
    assert_delivered_exactly_once(&db(&dir), &fork);
    // Forking after the last frame copies the memory and starts nothing.
    let (idle, none) = h.engine.fork(&thread, 4).await.expect("fork at the end");
    assert!(none.is_none());
    assert_eq!(
        memory_rows(&db(&dir), &idle),
        memory_rows(&db(&dir), &thread)
    );
    let err = h.engine.fork(&thread, 5).await.unwrap_err();
    assert!(err.to_string().contains("no committed frame 5"), "{err}");
}

async fn pruning_removes_finished_threads_and_keeps_usage_totals(backend: Backend) {
    let dir = place(backend, "prune");
    let clock = Arc::new(weft_engine::ManualClock::new(
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let config = EngineConfig {
        clock: clock.clone(),
        ..EngineConfig::default()
    };
    let h = host(&dir, script(), config.clone()).await;
    let graph = assistant(&h.engine).await;
    let old = h.engine.open_thread(None, &graph);
    ask(&h.engine, &old, QUESTION).await;
    let parent = h.engine.open_thread(None, &graph);
    ask(&h.engine, &parent, QUESTION).await;
    let (child, run) = h.engine.fork(&parent, 1).await.unwrap();
    finish(run.unwrap()).await;
    clock.advance(Duration::from_secs(3 * 86_400));
    let recent = h.engine.open_thread(None, &graph);
    ask(&h.engine, &recent, QUESTION).await;
    let before = h.engine.usage();
    // Nothing is older than a week.
    let none = h
        .engine
        .prune(Duration::from_secs(7 * 86_400))
        .await
        .unwrap();
    assert_eq!(none.threads, 0);
    // Older than a day: `old` and the fork go, `parent` stays while its
    // fork exists (a fork's past lives in its parent), `recent` stays.
    let report = h.engine.prune(Duration::from_secs(86_400)).await.unwrap();
    assert_eq!(report.threads, 2, "{report:?}");
    assert!(
        report.frames >= 6 && report.messages > 0 && report.journal > 0,
        "{report:?}"
    );
    let conn = db(&dir);
    for gone in [&old, &child] {
        for table in [
            "frames",
            "invocations",
            "journal",
            "messages",
            "memory",
            "runs",
        ] {
            assert_eq!(
                count(
                    &conn,
                    &format!("SELECT count(*) FROM {table} WHERE thread = ?1"),
                    gone
                ),
                0,
                "{table}"
            );
        }
        assert_eq!(
            count(&conn, "SELECT count(*) FROM threads WHERE id = ?1", gone),
            0
        );
        assert!(
            count(
                &conn,
                "SELECT count(*) FROM usage_events WHERE thread = ?1",
                gone
            ) > 0,
            "usage events stay"
        );
    }
    for kept in [&parent, &recent] {
        assert!(count(&conn, "SELECT count(*) FROM frames WHERE thread = ?1", kept) > 0);
    }
    // The next prune takes the parent, whose fork is gone now.
    assert_eq!(
        h.engine
            .prune(Duration::from_secs(86_400))
            .await
            .unwrap()
            .threads,
        1
    );
    drop(h);
    // Totals survive pruning and a restart.
    let h = host(&dir, script(), config).await;
    let after = h.engine.usage();
    assert_eq!(after.calls, before.calls);
    assert_eq!(after.prompt_tokens, before.prompt_tokens);
    assert_eq!(after.invocations, before.invocations);
    assert_eq!(after.fuel, before.fuel);
    let breakdown = h.engine.ledger().breakdown();
    assert!(
        breakdown.by_node["eras"].invocations >= 4,
        "{:?}",
        breakdown.by_node["eras"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// SQLite only: its size limit is the store's own setting.
async fn a_full_store_fails_the_run_with_a_typed_error_and_loses_nothing() {
    let dir = place(Backend::Sqlite, "full");
    // Room for the schema, the plugins and a little more: the graph's
    // plugins are stored at the run's start, then frames run out of space.
    let mut size = 0;
    for entry in std::fs::read_dir(artifacts()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wasm") {
            size += std::fs::metadata(&path).unwrap().len();
        }
    }
    let options = Options {
        max_bytes: Some(size + 512 * 1024),
        ..Options::default()
    };
    let store = dir.open_with(options).await.store();
    let rt = runtime();
    let plugins = plugins(&rt).await;
    let config = EngineConfig {
        commit_attempts: 2,
        commit_backoff: Duration::from_millis(5),
        ..EngineConfig::default()
    };
    let engine = Engine::open(
        rt,
        plugins,
        Backends {
            llm: script(),
            db: eras(),
            tools: weft_engine::Backends::no_tools(),
        },
        config,
        store.clone(),
    )
    .await
    .unwrap();
    let graph = assistant(&engine).await;
    let mut failed = None;
    // Each run adds frames; sooner or later one does not fit. Events are
    // taken per run, so the failing run's are not lost to a lagging
    // receiver (the stream is bounded).
    for _ in 0..200 {
        let events = engine.subscribe();
        let thread = engine.open_thread(None, &graph);
        match engine
            .start_run(&thread, Inbound::user_text(QUESTION))
            .await
        {
            Err(e) => {
                assert_eq!(e.code(), "store_full", "{e}");
                failed = Some((thread, None, events));
                break;
            }
            Ok(handle) => {
                let trace = finish(handle).await;
                if trace.status == RunStatus::StoreFailed {
                    failed = Some((thread, Some(trace), events));
                    break;
                }
                assert_eq!(trace.status, RunStatus::Completed);
            }
        }
    }
    let (thread, trace, mut events) = failed.expect("the store filled up");
    if let Some(trace) = trace {
        let mut codes = Vec::new();
        while let Ok(e) = events.try_recv() {
            if let weft_engine::EventBody::Error(err) = &e.body {
                codes.push(format!("{}: {}", err.code, err.message));
            }
        }
        assert!(
            codes.iter().any(|c| c.starts_with("store_full")),
            "{codes:?}"
        );
        // What was committed is consistent: the run is unfinished at its
        // last committed frame, its messages pending, none delivered twice.
        let stored = store.thread(&thread).await.unwrap().unwrap();
        assert_eq!(stored.status, "running");
        assert!(stored.frames < u64::from(trace.frames) + 1);
        let conn = db(&dir);
        let pending = count(
            &conn,
            "SELECT count(*) FROM messages WHERE thread = ?1 AND delivered_seq IS NULL",
            &thread,
        );
        assert!(
            pending > 0,
            "the uncommitted frame's inbox is still pending"
        );
    }
}

async fn operator_budgets_survive_a_restart(backend: Backend) {
    let dir = place(backend, "budgets");
    let config = || EngineConfig {
        budget: weft_engine::BudgetConfig {
            thread_tokens: Some(100_000),
            ..weft_engine::BudgetConfig::default()
        },
        ..EngineConfig::default()
    };
    let h = host(&dir, script(), config()).await;
    let graph = assistant(&h.engine).await;
    let thread = h.engine.open_thread(None, &graph);
    h.engine.set_budget(&thread, 5_000).await.expect("set");
    let trace = ask(&h.engine, &thread, QUESTION).await;
    let used = trace.tokens().total();
    assert!(used > 0);
    h.engine.raise_budget(&thread, 1_000).await.expect("raise");
    let budget = weft_engine::MoneyBudget::new(2.5, weft_engine::Window::Monthly).unwrap();
    h.engine
        .set_project_budget("acme", Some(budget))
        .await
        .expect("project budget");
    // The writes are in the background: wait until they are stored.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.store.thread(&thread).await.unwrap().unwrap().budget_limit != Some(6_000)
        || h.store.project_budgets().await.unwrap().get("acme") != Some(&Some(budget))
    {
        assert!(std::time::Instant::now() < deadline, "budgets not stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(h);
    let h = host(&dir, script(), config()).await;
    let graph = assistant(&h.engine).await;
    h.engine.open_thread(Some(&thread), &graph);
    ask(&h.engine, &thread, QUESTION).await;
    let status = h.engine.budget(&thread).expect("budget");
    assert_eq!(status.limit, 6_000);
    assert!(
        status.used > used,
        "used before the restart counts: {status:?}"
    );
    let project = h.engine.project_budget("acme");
    assert_eq!(project.limit, Some(2.5));
    assert_eq!(project.window, weft_engine::Window::Monthly);
}

async fn the_retention_job_prunes_in_the_background(backend: Backend) {
    let dir = place(backend, "retention");
    let clock = Arc::new(weft_engine::ManualClock::new(
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let config = EngineConfig {
        clock: clock.clone(),
        retention: Some(weft_engine::Retention {
            max_age: Duration::from_secs(86_400),
            every: Duration::from_millis(20),
        }),
        ..EngineConfig::default()
    };
    let h = host(&dir, script(), config).await;
    let graph = assistant(&h.engine).await;
    let thread = h.engine.open_thread(None, &graph);
    ask(&h.engine, &thread, QUESTION).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        h.store.thread(&thread).await.unwrap().is_some(),
        "young threads stay"
    );
    clock.advance(Duration::from_secs(2 * 86_400));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.store.thread(&thread).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "not pruned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_paused_node_stays_paused_across_a_restart(backend: Backend) {
    let dir = place(backend, "paused");
    let h = host(&dir, script(), EngineConfig::default()).await;
    assert!(h.engine.pause(None, "output"));
    assert!(h.engine.pause(Some("acme"), "ui"));
    assert!(h.engine.pause(Some("beta"), "ui"));
    // The writer stores operators' changes in order: once this resume is
    // stored, so are the pauses before it (polling the store alone could
    // see the first two before the third pause landed).
    assert!(h.engine.resume_stored(Some("beta"), "ui").await.unwrap());
    let expected = vec![
        NodePause::new(None, "output"),
        NodePause::new(Some("acme"), "ui"),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.store.paused_nodes().await.unwrap() != expected {
        assert!(std::time::Instant::now() < deadline, "pause not stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(h);
    let h = host(&dir, script(), EngineConfig::default()).await;
    assert_eq!(h.engine.pauses(), expected);
    assert!(h.engine.pause_of(Some("beta"), "output").is_some());
    assert!(h.engine.pause_of(Some("acme"), "ui").is_some());
    assert!(h.engine.pause_of(Some("beta"), "ui").is_none());
}

async fn a_usage_reset_survives_a_restart_and_leaves_budgets_alone(backend: Backend) {
    let config = || EngineConfig {
        budget: weft_engine::BudgetConfig {
            thread_tokens: Some(100_000),
            ..weft_engine::BudgetConfig::default()
        },
        ..EngineConfig::default()
    };
    let (dir, h, thread) = assistant_thread(backend, "reset", config()).await;
    let before = ask(&h.engine, &thread, QUESTION).await;
    let used = before.tokens().total();
    h.engine.reset_usage().await.expect("reset");
    assert_eq!(h.engine.usage().calls, 0);
    drop(h);
    let h = host(&dir, script(), config()).await;
    assert_eq!(h.engine.usage().calls, 0, "the reset is kept");
    assert_eq!(h.engine.usage().invocations, 0);
    let graph = assistant(&h.engine).await;
    h.engine.open_thread(Some(&thread), &graph);
    let after = ask(&h.engine, &thread, QUESTION).await;
    assert_eq!(h.engine.usage().calls, u64::from(after.tokens().calls));
    // The thread's budget still counts what it used before the reset.
    let budget = h.engine.budget(&thread).unwrap();
    assert_eq!(budget.used, used + after.tokens().total());
}

async fn graph_versions_are_listed_newest_first_with_their_predecessors(backend: Backend) {
    let dir = place(backend, "graph-versions");
    let handle = dir.open().await;
    let store = handle.store();
    let version = |id: &str, name: &str| weft_engine::store::GraphVersion {
        id: id.to_owned(),
        name: name.to_owned(),
        graph_hash: format!("hash-{id}"),
        file: format!("/graphs/{name}.yaml"),
        source: format!("name: {name}\nentry: a\n# {id}\n"),
        plugins: BTreeMap::new(),
    };
    for (id, name) in [("v1", "g"), ("o1", "other"), ("v2", "g"), ("v3", "g")] {
        store.put_graph(version(id, name)).await.unwrap();
        // Distinct times, so that the order is the order kept.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    // Keeping a version again changes neither the list nor its time.
    let first = store.graph_versions("g", 10, 0).await.unwrap();
    store.put_graph(version("v1", "g")).await.unwrap();
    let page = store.graph_versions("g", 2, 0).await.unwrap();
    assert_eq!(page.total, 3);
    let ids: Vec<&str> = page.items.iter().map(|v| v.version.id.as_str()).collect();
    assert_eq!(ids, ["v3", "v2"]);
    assert_eq!(page.items[0].version, version("v3", "g"));
    assert!(page.items[0].created_ms >= page.items[1].created_ms);
    let rest = store.graph_versions("g", 2, 2).await.unwrap();
    assert_eq!(rest.total, 3);
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].version.id, "v1");
    assert_eq!(rest.items[0].created_ms, first.items[2].created_ms);
    assert_eq!(store.graph_versions("none", 10, 0).await.unwrap().total, 0);
    // Each version's predecessor is the one of the same graph kept before.
    let before = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .graph_version_before(id)
                .await
                .unwrap()
                .map(|v| v.version.id)
        }
    };
    assert_eq!(before("v3").await.as_deref(), Some("v2"));
    assert_eq!(before("v2").await.as_deref(), Some("v1"));
    assert_eq!(before("v1").await, None);
    assert_eq!(before("o1").await, None);
    assert_eq!(before("unknown").await, None);
    let one = store.graph_version("v2").await.unwrap().unwrap();
    assert_eq!(one.version, version("v2", "g"));
    assert_eq!(one.created_ms, page.items[1].created_ms);
    assert!(store.graph_version("unknown").await.unwrap().is_none());
}

async fn usage_over_time_is_totalled_per_bucket_and_key(backend: Backend) {
    use weft_engine::store::{SeriesKey, SeriesQuery};
    let (_dir, h, thread) = assistant_thread(backend, "series", EngineConfig::default()).await;
    let trace = ask(&h.engine, &thread, QUESTION).await;
    let calls = u64::from(trace.tokens().calls);
    assert!(calls > 0);
    let now = h.engine.now_ms();
    let query = |by, project: Option<&str>| SeriesQuery {
        by,
        bucket_ms: 3_600_000,
        since_ms: now - 86_400_000,
        until_ms: now + 1,
        project: project.map(str::to_owned),
    };
    let by_model = h
        .store
        .usage_series(query(SeriesKey::Model, None))
        .await
        .unwrap();
    assert_eq!(
        by_model.iter().map(|p| p.calls).sum::<u64>(),
        calls,
        "{by_model:?}"
    );
    assert!(
        by_model
            .iter()
            .all(|p| p.key == "small" && p.start_ms % 3_600_000 == 0)
    );
    assert_eq!(
        by_model
            .iter()
            .map(|p| p.prompt_tokens + p.completion_tokens)
            .sum::<u64>(),
        trace.tokens().total()
    );
    let by_node = h
        .store
        .usage_series(query(SeriesKey::Node, Some("default")))
        .await
        .unwrap();
    assert!(by_node.iter().any(|p| p.key == "input"), "{by_node:?}");
    // Other projects and other times have none.
    let none = h
        .store
        .usage_series(query(SeriesKey::Project, Some("elsewhere")))
        .await
        .unwrap();
    assert!(none.is_empty());
    let before = SeriesQuery {
        until_ms: now - 86_400_000,
        since_ms: 0,
        ..query(SeriesKey::Project, None)
    };
    assert!(h.store.usage_series(before).await.unwrap().is_empty());
}

/// A frame for a run the store does not have, a frame other than the one
/// the run expects, and a frame of a run that has ended are refused with
/// a conflict naming why, and write nothing.
async fn a_frame_the_run_does_not_expect_is_refused_and_writes_nothing(backend: Backend) {
    let place = place(backend, "unexpected-frames");
    let store = place.open().await.store();
    let thread = "thread-0000000000000001";
    let run = format!("{thread}.run-0");
    store
        .begin_run(run_start(thread, &run, &format!("{run}/in"), 1))
        .await
        .unwrap();
    let frame = |run: &str, frame: u32, status: RunStatus| {
        Arc::new(bare_frame(thread, run, frame, status, Vec::new()))
    };
    let refused = |result: Result<(), weft_engine::StoreError>, why: &str| {
        let err = result.unwrap_err();
        assert_eq!(err.code(), "store_conflict", "{err}");
        assert!(err.to_string().contains(why), "{err}");
    };
    store
        .commit_frame(frame(&run, 0, RunStatus::Running))
        .await
        .unwrap();
    refused(
        store.commit_frame(frame(&run, 0, RunStatus::Running)).await,
        &format!("run `{run}` is running at frame 1; frame 0 cannot be committed"),
    );
    refused(
        store.commit_frame(frame(&run, 2, RunStatus::Running)).await,
        &format!("run `{run}` is running at frame 1; frame 2 cannot be committed"),
    );
    refused(
        store
            .commit_frame(frame("nowhere", 1, RunStatus::Running))
            .await,
        "no run `nowhere`",
    );
    store
        .commit_frame(frame(&run, 1, RunStatus::Completed))
        .await
        .unwrap();
    refused(
        store.commit_frame(frame(&run, 2, RunStatus::Running)).await,
        &format!("run `{run}` is completed at frame 2; frame 2 cannot be committed"),
    );
    let conn = db(&place);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM frames WHERE thread = ?1",
            thread
        ),
        2
    );
    let state = conn.rows("SELECT status, frames FROM runs WHERE id = ?1", &run);
    assert_eq!(
        state,
        vec![vec![
            support::Value::Text("completed".into()),
            support::Value::Int(2)
        ]]
    );
}

/// A thread's messages are listed, found pending after a restart, and
/// pruned whether or not their ids start with the thread's id (as the
/// engine names them), and never another thread's whose id shares that
/// prefix.
async fn a_threads_messages_are_found_however_they_are_named(backend: Backend) {
    let place = place(backend, "message-names");
    let store = place.open().await.store();
    // (thread, run, message id)
    let threads = [
        ("thread-a", "thread-a.run-0", "thread-a.run-0/in"),
        ("b", "r-b", "r-b/in"),
        (
            "thread-a.run-0x",
            "thread-a.run-0x.run-0",
            "thread-a.run-0x.run-0/in",
        ),
        ("c", "c.run-0", "elsewhere/in"),
    ];
    for (thread, run, id) in threads {
        store
            .begin_run(run_start(thread, run, id, 1))
            .await
            .unwrap();
    }
    for (thread, _, id) in threads {
        let ids: Vec<String> = store
            .messages(thread)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, [id], "the messages of {thread}");
    }
    let pending: BTreeMap<String, Vec<String>> = store
        .unfinished_runs()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.run, r.pending.into_iter().map(|(_, m)| m.id).collect()))
        .collect();
    let expected: BTreeMap<String, Vec<String>> = threads
        .iter()
        .map(|(_, run, id)| ((*run).to_owned(), vec![(*id).to_owned()]))
        .collect();
    assert_eq!(pending, expected);
    for (thread, run, id) in threads {
        let delivered = vec![("a".to_owned(), text_message(id))];
        store
            .commit_frame(Arc::new(bare_frame(
                thread,
                run,
                0,
                RunStatus::Completed,
                delivered,
            )))
            .await
            .unwrap();
    }
    let report = store.prune(u64::MAX / 2).await.unwrap();
    assert_eq!((report.threads, report.messages), (4, 4), "{report:?}");
    let conn = db(&place);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM messages WHERE ?1 = ?1", ""),
        0
    );
}

crate::on_both_backends!(
    a_frame_the_run_does_not_expect_is_refused_and_writes_nothing,
    a_threads_messages_are_found_however_they_are_named,
    usage_over_time_is_totalled_per_bucket_and_key,
    graph_versions_are_listed_newest_first_with_their_predecessors,
    every_frame_commits_and_the_store_matches_the_trace,
    a_frames_writes_are_all_or_nothing,
    a_failed_commit_is_retried_and_nothing_is_doubled,
    replay_reproduces_every_frame,
    replay_with_a_changed_plugin_reports_the_divergence,
    kept_instances_carry_guest_state_and_replay_shows_where,
    a_fork_continues_from_frame_n_with_the_same_memory,
    pruning_removes_finished_threads_and_keeps_usage_totals,
    operator_budgets_survive_a_restart,
    the_retention_job_prunes_in_the_background,
    a_paused_node_stays_paused_across_a_restart,
    a_usage_reset_survives_a_restart_and_leaves_budgets_alone,
);
