//! The real `weft` binary: `run` on the shipped graph with a script,
//! `graph validate` on good and broken files, and `bench frames`.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use common::{root, temp_dir, text, weft};

#[test]
fn run_answers_the_demo_question_from_the_generated_database() {
    let data = temp_dir("run");
    let out = weft(
        &data,
        &[
            "run",
            "--graph",
            "graphs/assistant.yaml",
            "--script",
            "graphs/scripts/assistant-demo.json",
            "how many devices does customer 1042 have?",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("Customer 1042 has 3 metering devices"),
        "{stdout}"
    );
    assert!(stdout.contains("completed after 5 frames"), "{stdout}");
    for node in ["input", "memorizer", "pa", "eras", "output", "ui"] {
        assert!(
            stdout.contains(&format!(" {node} ")),
            "{node} missing:\n{stdout}"
        );
    }
    // Live progress on stderr, including the streamed reply.
    assert!(stderr.contains("[eras] Querying the database"), "{stderr}");
    assert!(data.join("eras.db").exists());

    // --json prints the whole trace; the journal shows the real query result
    // (the answer's query is the last: the first ones index the values).
    let out = weft(
        &data,
        &[
            "run",
            "--json",
            "--quiet",
            "--script",
            "graphs/scripts/assistant-demo.json",
            "how many devices does customer 1042 have?",
        ],
    );
    let trace: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON trace");
    assert_eq!(trace["status"], "completed");
    let eras = trace["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"] == "eras")
        .unwrap();
    let query = eras["journal"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|j| j["op"] == "query")
        .unwrap();
    assert_eq!(query["response"]["ok"]["rows"][0][0]["value"], 3);
}

#[test]
fn a_missing_or_foreign_model_file_is_refused_with_the_fetch_command() {
    let data = temp_dir("nomodel");
    let foreign = data.join("foreign.gguf");
    std::fs::write(&foreign, b"<html>not a model</html>").unwrap();
    let cases = [
        (
            data.join("absent.gguf"),
            &["does not exist", "cargo xtask fetch-model"][..],
        ),
        (foreign, &["not a GGUF model"][..]),
    ];
    for (model, expected) in cases {
        let out = weft(
            &data,
            &[
                "--model",
                model.to_str().unwrap(),
                "run",
                "--quiet",
                "hello",
            ],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        for phrase in expected {
            assert!(stderr.contains(phrase), "{stderr}");
        }
    }
}

/// `weft run` loads the model only for a graph that grants `llm`: a graph
/// of plugins without model calls runs with no model file, and `--thread`
/// continues one of the store's threads.
#[test]
fn run_without_llm_nodes_needs_no_model_and_continues_a_thread() {
    let data = temp_dir("run-nomodel");
    let echo = root().join("artifacts/guests/guest-echo.wasm");
    let graph = data.join("echo.yaml");
    std::fs::write(
        &graph,
        format!(
            "name: echo\nentry: e\nnodes:\n  e:\n    plugin: {}\n",
            echo.display()
        ),
    )
    .unwrap();
    let absent = data.join("absent.gguf");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--model",
            absent.to_str().unwrap(),
            "run",
            "--json",
            "--quiet",
            "--graph",
            graph.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        weft(&data, &args)
    };
    let out = run(&["hi"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON trace");
    assert_eq!(first["status"], "completed");
    let thread = first["thread"].as_str().unwrap().to_owned();
    assert_eq!(first["run"], format!("{thread}.run-1"));

    let out = run(&["--thread", &thread, "again"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON trace");
    assert_eq!(second["thread"], thread.as_str());
    assert_eq!(
        second["run"],
        format!("{thread}.run-2"),
        "the same thread, its next run"
    );

    let out = run(&["--thread", "thread-0000000000000000", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the store has no thread `thread-0000000000000000`"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["--thread", "no such/thread", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--thread"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn graph_validate_accepts_the_shipped_graphs() {
    let data = temp_dir("validate-ok");
    for graph in ["graphs/assistant.yaml", "graphs/framed.yaml"] {
        let out = weft(&data, &["graph", "validate", graph]);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{graph}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(stdout.contains("is valid"), "{stdout}");
    }
}

#[test]
fn graph_validate_lists_every_problem_with_its_location() {
    let data = temp_dir("validate-bad");
    let file = data.join("broken.yaml");
    std::fs::write(
        &file,
        r#"name: broken
entry: input
defaults:
  limits: { deadline_ms: 0 }
nodes:
  input: { plugin: input, grants: [llm, db] }
  lost: { plugin: output }
  ghost: { plugin: no-such-plugin }
edges:
  - { from: input, to: nowhere }
"#,
    )
    .unwrap();
    let out = weft(&data, &["graph", "validate", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for needle in ["no-such-plugin", "nowhere", "`db`", "lost", "deadline_ms"] {
        assert!(stdout.contains(needle), "{needle} not reported:\n{stdout}");
    }
    assert!(
        stdout.contains("broken.yaml:"),
        "locations missing:\n{stdout}"
    );
    let missing = weft(&data, &["graph", "validate", "no/such/file.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn bench_frames_prints_its_figures() {
    let data = temp_dir("bench");
    let out = weft(
        &data,
        &[
            "bench",
            "frames",
            "--runs",
            "50",
            "--concurrency",
            "4",
            "--guests",
            root().join("artifacts/guests").to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for row in ["host overhead per node invocation", "frames/s", "runs/s"] {
        assert!(stdout.contains(row), "{row} missing:\n{stdout}");
    }
    // 50 runs: a warm-up of 10, a latency and a throughput pass, 5 nodes.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("node invocations in all") && l.contains(" 550 ")),
        "{stdout}"
    );

    // The same figures in bench/'s JSON Lines format, durable too: a row
    // for the latency pass (1 thread) and one for the throughput pass.
    let guests = root().join("artifacts/guests");
    let out = weft(
        &data,
        &[
            "bench",
            "frames",
            "--runs",
            "20",
            "--concurrency",
            "4",
            "--durable",
            "--json",
            "--guests",
            guests.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let shape: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["workload"].clone(),
                r["threads"].clone(),
                r["durable"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [(1, false), (4, false), (1, true), (4, true)]
            .map(|(t, d)| ("fanout5".into(), t.into(), d.into()))
            .to_vec(),
        "{rows:?}"
    );
    for row in &rows {
        assert_eq!(row["runs"], 20, "{row}");
        assert!(row["node_overhead_us"]["median"].as_f64().unwrap() > 0.0);
        assert!(row["frames_per_s"].as_f64().unwrap() > 0.0, "{row}");
    }
    assert!(rows[0]["instantiate_us"]["p99"].as_f64().unwrap() > 0.0);
    assert!(rows[2]["commit_us"]["median"].as_f64().unwrap() > 0.0);
    assert!(rows[2..].iter().all(|r| r["store"] == "sqlite"), "{rows:?}");
    assert!(rows.iter().all(|r| r["instance"] == "fresh"), "{rows:?}");

    // With kept instances (`--reuse`): after the first ticks, none
    // instantiates.
    let out = weft(
        &data,
        &[
            "bench",
            "frames",
            "--runs",
            "40",
            "--concurrency",
            "2",
            "--reuse",
            "--json",
            "--guests",
            guests.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["instance"] == "reuse"), "{rows:?}");
    // The latency pass (one run at a time) carries the instantiation times.
    assert_eq!(rows[0]["instantiate_us"]["median"], 0.0, "{}", rows[0]);
    let _ = std::fs::remove_dir_all(&data);
}

/// The durable pass on PostgreSQL: `--store postgres://…` names the
/// database; its benchmark threads are pruned afterwards.
#[test]
fn bench_frames_measures_postgresql_too() {
    let pg =
        weft_testkit::TempPostgres::start().expect("PostgreSQL (cargo xtask test installs it)");
    let url = pg.create_database("bench").unwrap();
    let data = temp_dir("bench-pg");
    let guests = root().join("artifacts/guests");
    let out = weft(
        &data,
        &[
            "--store",
            &url,
            "bench",
            "frames",
            "--runs",
            "20",
            "--concurrency",
            "4",
            "--durable",
            "--guests",
            guests.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("durable: every frame committed to PostgreSQL"),
        "{stdout}"
    );
    assert!(
        stdout.contains("durable commit latency per frame"),
        "{stdout}"
    );
    // The frames were committed, and the benchmark's threads pruned.
    let threads = pg.psql("bench", "SELECT count(*) FROM threads").unwrap();
    assert_eq!(threads.trim(), "0", "{threads}");
    let frames = pg
        .psql("bench", "SELECT count(*) FROM invocations")
        .unwrap();
    assert_eq!(frames.trim(), "0", "{frames}");

    // Three hosts on the one database, the runs in flight spread over
    // them: each host's commits go through its own writer.
    let writers = || {
        pg.psql("bench", "SELECT count(DISTINCT writer) FROM writer_batches")
            .unwrap()
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let before = writers();
    let out = weft(
        &data,
        &[
            "--store",
            &url,
            "bench",
            "frames",
            "--runs",
            "30",
            "--concurrency",
            "6",
            "--durable",
            "--hosts",
            "3",
            "--json",
            "--guests",
            guests.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let durable: Vec<_> = lines.iter().filter(|l| l["durable"] == true).collect();
    assert_eq!(durable.len(), 2, "{stdout}");
    for line in durable {
        assert_eq!(
            (&line["store"], &line["hosts"]),
            (&"postgres".into(), &3.into()),
            "{line}"
        );
    }
    assert_eq!(
        writers(),
        before + 3,
        "every host committed through its own writer"
    );
    // One host only on SQLite.
    let out = weft(&data, &["bench", "frames", "--durable", "--hosts", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--hosts needs a PostgreSQL store"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&data);
}

/// A minimal OpenAI-compatible server on a free loopback port: schema
/// requests get a reflex analysis, streaming requests a two-chunk answer
/// with usage in the last chunk. Returns its base URL.
fn fake_openai() -> String {
    use axum::Json;
    use axum::response::{IntoResponse, Response};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            async fn chat(Json(body): Json<serde_json::Value>) -> Response {
                if body["stream"] == true {
                    let chunk = |text: &str| {
                        serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]})
                    };
                    let usage = serde_json::json!({"choices": [],
                        "usage": {"prompt_tokens": 42, "completion_tokens": 4}});
                    let sse = format!(
                        "data: {}\n\ndata: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
                        chunk("Hello from "),
                        chunk("the fake provider!"),
                        usage
                    );
                    ([("content-type", "text/event-stream")], sse).into_response()
                } else {
                    let analysis = serde_json::json!({"intent": "social", "topic": "greeting",
                        "language": "en", "tone": "friendly", "complexity": "simple", "reflex": true});
                    Json(serde_json::json!({
                        "model": body["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant",
                            "content": analysis.to_string()}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 20}
                    }))
                    .into_response()
                }
            }
            let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    url
}

#[test]
fn run_talks_to_an_openai_compatible_provider_from_the_config_file() {
    let data = temp_dir("openai");
    let url = fake_openai();
    let config = data.join("weft.yaml");
    std::fs::write(
        &config,
        format!(
            "llm:\n  providers:\n    - {{ kind: openai, name: fake, base_url: \"{url}\", model_map: {{ small: fake-135m }} }}\n\
             prices:\n  - {{ prefix: fake, prompt_per_million: 1000000, completion_per_million: 2000000 }}\n"
        ),
    )
    .unwrap();
    let out = weft(
        &data,
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--graph",
            "graphs/framed.yaml",
            "hi!",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("Hello from the fake provider!"),
        "{stdout}"
    );
    assert!(stdout.contains("completed after 2 frames"), "{stdout}");
    // input: 100 + 20 tokens, output: 42 + 4; priced at 1 and 2 per token.
    assert!(
        stdout.contains("usage: 2 llm calls, 142 prompt + 24 completion tokens, cost 190.000000"),
        "{stdout}"
    );
    // The streamed deltas reached the live progress.
    assert!(stderr.contains("Hello from the fake provider!"), "{stderr}");

    // A config mistake is named, and nothing runs.
    std::fs::write(&config, "llm: { providers: [{ kind: openai, name: a }] }\n").unwrap();
    let out = weft(&data, &["run", "--config", config.to_str().unwrap(), "hi"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("base_url"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plugin_inspect_describes_components_of_both_contracts_and_explains_other_files() {
    let data = temp_dir("plugin-inspect");
    let plugin = root().join("artifacts/plugins/weft-plugin-pa.wasm");
    let out = weft(&data, &["plugin", "inspect", plugin.to_str().unwrap()]);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    for line in [
        "contract    weft:node@0.4.0",
        "exports     weft:node/plugin@0.4.0",
        "describe    pa ",
        "asks for    llm, memory, hud, log",
        "wasi interfaces",
    ] {
        assert!(shown.contains(line), "no `{line}` in:\n{shown}");
    }
    let out = weft(
        &data,
        &["plugin", "inspect", "--json", plugin.to_str().unwrap()],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["describe"]["name"], "pa");
    assert_eq!(
        report["supported"],
        serde_json::json!(["0.4.0", "0.3.0", "0.2.0", "0.1.0"])
    );
    assert_eq!(
        report["size"].as_u64().unwrap(),
        std::fs::metadata(&plugin).unwrap().len()
    );

    let guests = root().join("artifacts/guests");
    let out = weft(
        &data,
        &[
            "plugin",
            "inspect",
            guests.join("guest-v0-1.wasm").to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("contract    weft:node@0.1.0"));

    // Not loadable: described, then the reason, exit 1.
    let out = weft(
        &data,
        &[
            "plugin",
            "inspect",
            guests.join("guest-wrong-world.wasm").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("contract    none: not a weft node"));
    assert!(text(&out.stderr).contains("does not export `weft:node/plugin`"));
    let out = weft(
        &data,
        &[
            "plugin",
            "inspect",
            guests.join("guest-future-contract.wasm").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("contract    weft:node@9.0.0"));
    assert!(
        text(&out.stderr)
            .contains("weft:node@0.4.0, weft:node@0.3.0, weft:node@0.2.0, weft:node@0.1.0")
    );
    // Not a component at all: what it is instead.
    let readme = root().join("README.md");
    let out = weft(&data, &["plugin", "inspect", readme.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a WebAssembly file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bench_compare_prints_rows_in_the_shared_format_and_measures_waiting_threads() {
    let data = temp_dir("bench-compare");
    // The comparison needs only its two guests.
    let guests = data.join("guests");
    std::fs::create_dir_all(&guests).unwrap();
    for guest in ["guest-relay", "guest-llm"] {
        let file = format!("{guest}.wasm");
        std::fs::copy(
            root().join("artifacts/guests").join(&file),
            guests.join(&file),
        )
        .unwrap();
    }
    let guests_arg = guests.to_str().unwrap();
    let row = |name: &str, extra: &[&str]| {
        let mut args = vec!["bench", "compare", "--row", name, "--guests", guests_arg];
        args.extend_from_slice(extra);
        let out = weft(&data, &args);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        serde_json::from_str::<serde_json::Value>(text(&out.stdout).trim()).unwrap()
    };
    let quick = ["--seconds", "0.2", "--warmup", "3"];

    let fanout = row("fanout5-llm1-t1", &quick);
    assert_eq!(
        (
            &fanout["system"],
            &fanout["workload"],
            &fanout["nodes"],
            &fanout["llm_ms"]
        ),
        (&"weft".into(), &"fanout5".into(), &5.into(), &1.into())
    );
    assert!(fanout["runs"].as_u64().unwrap() > 0, "{fanout}");
    for key in ["median", "p99"] {
        assert!(
            fanout["node_overhead_us"][key].as_f64().unwrap() > 0.0,
            "{fanout}"
        );
    }
    assert!(fanout["peak_rss_mb"].as_f64().unwrap() > 1.0, "{fanout}");
    // A run of fan-out takes at least its three model calls in a row.
    let runs_per_s = fanout["runs_per_s"].as_f64().unwrap();
    assert!(runs_per_s > 0.0 && runs_per_s < 1000.0 / 3.0, "{fanout}");

    let durable = row("chain3-llm0-t1-durable", &quick);
    assert_eq!(
        (&durable["durable"], &durable["store"], &durable["nodes"]),
        (&true.into(), &"sqlite".into(), &3.into())
    );
    assert!(durable["runs"].as_u64().unwrap() > 0, "{durable}");

    // The PostgreSQL rows, on a database of their own.
    let pg =
        weft_testkit::TempPostgres::start().expect("PostgreSQL (cargo xtask test installs it)");
    let url = pg.create_database("bench").unwrap();
    let on_pg = row(
        "fanout5-llm0-t100-durable-pg",
        &[&quick[..], &["--postgres", &url]].concat(),
    );
    assert_eq!(
        (&on_pg["store"], &on_pg["threads"], &on_pg["nodes"]),
        (&"postgres".into(), &100.into(), &5.into()),
        "{on_pg}"
    );
    assert!(on_pg["runs"].as_u64().unwrap() >= 100, "{on_pg}");
    // Its threads are pruned afterwards.
    assert_eq!(
        pg.psql("bench", "SELECT count(*) FROM threads").unwrap(),
        "0"
    );
    let out = weft(
        &data,
        &["bench", "compare", "--row", "chain3-llm0-t1-durable-pg"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("need --postgres URL"),
        "{}",
        text(&out.stderr)
    );

    let waiting = row("waiting_threads", &["--waiting", "200"]);
    assert_eq!(
        (
            &waiting["threads"],
            &waiting["waiting"],
            &waiting["queued_for_a_slot"]
        ),
        (&200.into(), &200.into(), &0.into()),
        "{waiting}"
    );
    assert!(waiting["rss_mb"].as_f64().unwrap() >= waiting["rss_before_mb"].as_f64().unwrap());
    assert!(waiting["threads_per_gib"].as_f64().unwrap() > 0.0);
    // PSS beside RSS (its figure depends on what other processes share
    // the binary's pages while the tests run, so only its presence is
    // checked here).
    assert!(waiting["per_thread_pss_kib"].is_f64(), "{waiting}");
    assert!(waiting["threads_per_gib_pss"].as_f64().unwrap() > 0.0);

    let out = weft(&data, &["bench", "compare", "--row", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--list"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&data);
}

/// `weft test`: the shipped scripted suites pass step by step (a state
/// machine built by the director and moved by its buttons; the demo data
/// question); a failing check is reported with what was found, in the
/// report and in JUnit XML, with exit 2; a broken suite is refused with
/// its line before anything runs, with exit 1.
#[test]
fn test_runs_scenario_suites_and_reports_every_step() {
    let data = temp_dir("scenarios");
    let junit = data.join("results.xml");
    let out = weft(
        &data,
        &[
            "test",
            "graphs/tests/framed-ui.md",
            "--graph",
            "graphs/framed.yaml",
            "--script",
            "graphs/scripts/framed-ui.json",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for step in [
        "A greeting takes the reflex path",
        "The director builds a traffic light",
        "Go turns it green without the model",
        "Stop turns it red again",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("ok ") && l.ends_with(step)),
            "no passed step `{step}` in:\n{stderr}"
        );
    }
    assert!(stdout.contains("5 passed    0 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"5\" failures=\"0\""), "{xml}");
    assert!(
        xml.contains("name=\"003 The director builds a traffic light\""),
        "{xml}"
    );

    let out = weft(
        &data,
        &[
            "test",
            "graphs/tests/assistant-demo.md",
            "--graph",
            "graphs/assistant.yaml",
            "--script",
            "graphs/scripts/assistant-demo.json",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let step = &results[0]["steps"][0];
    assert_eq!(step["ok"], true, "{results:#}");
    assert_eq!(step["status"], "completed");
    assert_eq!(step["checks"].as_array().unwrap().len(), 4);

    // A suite whose checks do not hold.
    let failing = data.join("failing.md");
    std::fs::write(
        &failing,
        "# Failing\n\n- send: hi!\n- expect reply not empty\n- expect trace has: director\n\
         - expect reply contains: goodbye\n- expect frames: 99\n\n- press: go:nowhere\n- expect actions: go:*\n",
    )
    .unwrap();
    let out = weft(
        &data,
        &[
            "test",
            failing.to_str().unwrap(),
            "--graph",
            "graphs/framed.yaml",
            "--script",
            "graphs/scripts/framed-ui.json",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    for shown in [
        "FAIL",
        "trace has: director — ran: input",
        "reply contains: goodbye — reply: \"Hello! What can I do for you?\"",
        "frames: 99 — frames: 2",
        "actions: go:* — ",
    ] {
        assert!(stderr.contains(shown), "no `{shown}` in:\n{stderr}");
    }
    assert!(!stderr.contains("reply not empty —"), "{stderr}");
    assert!(stdout.contains("0 passed    2 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"2\""), "{xml}");
    assert!(
        xml.contains("<failure message=\"trace has: director: ran: input"),
        "{xml}"
    );

    // A suite with a mistake: nothing runs.
    std::fs::write(&failing, "- send: hi\n- expect reply sings: x\n").unwrap();
    let out = weft(&data, &["test", failing.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failing.md:2: unknown line `reply sings`"),
        "{stderr}"
    );
}
