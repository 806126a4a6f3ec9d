//! `weft bench compare`: weft's side of the side-by-side benchmark with
//! LangGraph (`bench/`). The same workloads as `bench/langgraph_bench.py`,
//! measured the same way, printed in the same JSON Lines format, so that
//! `bench/table.py` can put the two systems in one table:
//!
//! - `chain3` (a → b → c) and `fanout5` (a → b, c, d → e, where e joins),
//!   every node a WebAssembly plugin in a fresh instance per invocation:
//!   `guest-relay` (a no-op) without an LLM, `guest-llm` (one model call,
//!   answered by a scripted model after 1 ms) with one;
//! - without an LLM at 1 thread; with the 1 ms LLM at 1, 100 and 1,000
//!   threads; durable (every frame committed to a fresh SQLite store, and
//!   with `--postgres URL` to PostgreSQL) at 1 and 100 threads;
//! - `waiting_threads`: how many threads waiting on a slow model call fit
//!   in memory.
//!
//! Each row runs in a fresh process (this command re-invoked with `--row`),
//! so its peak RSS is its own. A thread is a closed loop: it starts its
//! next run as soon as its last one ends, until the time budget is spent.
//! Per-node overhead of a run = (the run's wall time − the model time on its
//! critical path, as the simulated model measured its waits) ÷ nodes
//! invoked; percentiles are nearest-rank.
//!
//! Here: the command and the measuring loops; `rows` names the workloads
//! and rows, `simulated` is the model that answers after a delay, and
//! `report` turns measurements into `bench/`'s JSON lines.

mod report;
mod rows;
mod simulated;

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use serde_json::json;
use weft_engine::{Backends, Engine, EngineConfig, Inbound, LoadedGraph, RunStatus};
use weft_runtime::capabilities::db::InMemoryDb;

pub(crate) use report::{Line, micros, nearest_rank, percentiles, round};
use report::{pss_mib, rss_mib};
pub(crate) use rows::Workload;
use rows::{Row, Store, WAITING_ROW, rows};
use simulated::SimulatedLlm;

use crate::{Common, setup};

/// Arguments of `weft bench compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Measured time per row, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// 0.5 s per row (for tests).
    #[arg(long)]
    quick: bool,
    /// Sequential runs before measuring.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Cap on measured runs per row.
    #[arg(long, default_value_t = 200_000)]
    max_runs: usize,
    /// Threads waiting on a slow model call in the `waiting_threads` row.
    #[arg(long, default_value_t = 10_000)]
    waiting: usize,
    /// Print the row names and exit.
    #[arg(long)]
    list: bool,
    /// Run one row in this process.
    #[arg(long)]
    row: Option<String>,
    /// Folder with the `guest-relay` and `guest-llm` test guests.
    #[arg(long, default_value = "artifacts/guests")]
    guests: PathBuf,
    /// A PostgreSQL database for the `-durable-pg` rows (skipped without
    /// it); the rows' threads are pruned after each: give it a database of
    /// its own.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
}

pub async fn run(common: &Common, args: CompareArgs) -> Result<ExitCode> {
    let names: Vec<String> = rows()
        .iter()
        .map(Row::name)
        .chain([WAITING_ROW.to_owned()])
        .collect();
    if args.list {
        for name in names {
            println!("{name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(name) = &args.row else {
        let names: Vec<String> = rows()
            .iter()
            .filter(|r| r.store != Store::Postgres || args.postgres.is_some())
            .map(Row::name)
            .chain([WAITING_ROW.to_owned()])
            .collect();
        if args.postgres.is_none() {
            eprintln!(
                "weft bench compare: no --postgres URL: the PostgreSQL rows (-durable-pg) are skipped"
            );
        }
        return run_all(common, &args, &names);
    };
    if name == WAITING_ROW {
        return waiting_threads(common, &args).await;
    }
    let row = rows()
        .into_iter()
        .find(|r| r.name() == *name)
        .with_context(|| format!("no row `{name}`; `--list` prints them"))?;
    measure_row(common, &args, row).await
}

/// Runs every row in a child process and relays its line.
fn run_all(common: &Common, args: &CompareArgs, names: &[String]) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the weft binary")?;
    for name in names {
        eprintln!("weft bench compare: {name} …");
        let mut command = std::process::Command::new(&exe);
        command
            .arg("--plugins")
            .arg(&common.plugins)
            .arg("--data-dir")
            .arg(&common.data_dir)
            .args(["bench", "compare", "--row", name])
            .arg("--seconds")
            .arg(args.seconds.to_string())
            .arg("--warmup")
            .arg(args.warmup.to_string())
            .arg("--max-runs")
            .arg(args.max_runs.to_string())
            .arg("--waiting")
            .arg(args.waiting.to_string())
            .arg("--guests")
            .arg(&args.guests)
            .stderr(Stdio::inherit());
        if let Some(cache) = &common.cache_dir {
            command.arg("--cache-dir").arg(cache);
        }
        if args.quick {
            command.arg("--quick");
        }
        if let Some(url) = &args.postgres {
            command.arg("--postgres").arg(url);
        }
        let out = command.output().context("running a benchmark row")?;
        if !out.status.success() {
            bail!("the row {name} failed ({})", out.status);
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a durable row commits.
enum Durable<'a> {
    Sqlite(&'a std::path::Path),
    Postgres(&'a str),
}

/// An engine over the two guests, with a model that answers every call
/// after `delay`, and a store when `durable`.
async fn engine(
    common: &Common,
    args: &CompareArgs,
    delay: Duration,
    durable: Option<Durable<'_>>,
) -> Result<(Arc<Engine>, Arc<weft_runtime::Runtime>, Arc<SimulatedLlm>)> {
    let config = setup::config(common)?;
    let runtime = setup::runtime(common, &config.runtime)?;
    let plugins = Arc::new(weft_engine::PluginSet::new());
    for guest in ["guest-relay", "guest-llm"] {
        plugins
            .load_file(&runtime, &args.guests.join(format!("{guest}.wasm")))
            .await
            .with_context(|| format!("loading {guest}: run `cargo xtask build-plugins`"))?;
    }
    let llm = Arc::new(SimulatedLlm::new(delay)?);
    let backends = Backends {
        llm: llm.clone(),
        db: Arc::new(InMemoryDb::default()),
        tools: weft_engine::Backends::no_tools(),
    };
    let engine = match durable {
        None => Engine::new(runtime.clone(), plugins, backends, EngineConfig::default()),
        Some(durable) => {
            let store: Arc<dyn weft_engine::Store> = match durable {
                Durable::Sqlite(path) => Arc::new(
                    weft_store::SqliteStore::open(path, setup::store_options(&config))
                        .with_context(|| format!("opening {}", path.display()))?,
                ),
                Durable::Postgres(url) => Arc::new(
                    weft_store::PostgresStore::open(url, weft_store::PgOptions::default()).await?,
                ),
            };
            Engine::open(
                runtime.clone(),
                plugins,
                backends,
                EngineConfig::default(),
                store,
            )
            .await?
        }
    };
    Ok((engine, runtime, llm))
}

async fn measure_row(common: &Common, args: &CompareArgs, row: Row) -> Result<ExitCode> {
    let seconds = if args.quick { 0.5 } else { args.seconds };
    ensure!(seconds > 0.0, "--seconds must be positive");
    // A fresh store folder for a SQLite row, removed afterwards.
    let store_dir = (row.store == Store::Sqlite)
        .then(|| fresh_store_dir(common))
        .transpose()?;
    let store_path = store_dir.as_ref().map(|dir| dir.join("bench.db"));
    let durable = match row.store {
        Store::Memory => None,
        Store::Sqlite => store_path.as_deref().map(Durable::Sqlite),
        Store::Postgres => Some(Durable::Postgres(args.postgres.as_deref().context(
            "the -durable-pg rows need --postgres URL (a database of their own)",
        )?)),
    };
    let (engine, runtime, llm) =
        engine(common, args, Duration::from_millis(row.llm_ms), durable).await?;
    let with_llm = row.llm_ms > 0;
    let plugin = if with_llm { "guest-llm" } else { "guest-relay" };
    let yaml = row.workload.graph(plugin, with_llm, row.reuse);
    let graph = Arc::new(
        LoadedGraph::from_yaml(
            &yaml,
            &common
                .plugins
                .join(format!("bench-{}.yaml", row.workload.name())),
            engine.plugins(),
            &runtime,
        )
        .await
        .context("the benchmark graph")?,
    );
    let inbound = || Inbound::to("a", "relay", &json!({ "n": 0 }));
    let nodes = row.workload.nodes();

    // Warm-up: one thread, runs one after another.
    let thread = engine.open_thread(None, &graph);
    for _ in 0..args.warmup {
        let trace = engine.start_run(&thread, inbound()).await?.finish().await?;
        llm.critical_wait(&thread, row.workload.steps());
        ensure!(
            trace.status == RunStatus::Completed && trace.records.len() == nodes,
            "a benchmark run went wrong:\n{}",
            trace.render()
        );
    }

    let budget = Duration::from_secs_f64(seconds);
    let per_thread_cap = args.max_runs.div_ceil(row.threads).max(1);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..row.threads {
        let engine = engine.clone();
        let graph = graph.clone();
        let llm = llm.clone();
        tasks.spawn(async move {
            let thread = engine.open_thread(None, &graph);
            let mut overheads = Vec::new();
            while started.elapsed() < budget && overheads.len() < per_thread_cap {
                let t = Instant::now();
                let trace = engine.start_run(&thread, inbound()).await?.finish().await?;
                let wall = t.elapsed();
                ensure!(
                    trace.status == RunStatus::Completed && trace.records.len() == nodes,
                    "a benchmark run went wrong:\n{}",
                    trace.render()
                );
                let critical = llm.critical_wait(&thread, row.workload.steps());
                overheads.push(wall.saturating_sub(critical) / nodes as u32);
            }
            Ok::<_, anyhow::Error>(overheads)
        });
    }
    let mut overheads = Vec::new();
    while let Some(done) = tasks.join_next().await {
        overheads.extend(done??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(graph);
    if row.store == Store::Postgres
        && let Err(e) = engine.prune(Duration::ZERO).await
    {
        eprintln!("warning: the benchmark's threads were not pruned: {e}");
    }
    drop(engine);
    if let Some(dir) = store_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let line = Line {
        workload: row.workload,
        llm_ms: row.llm_ms,
        threads: row.threads,
        store: row.store.name(),
        reuse: row.reuse,
    }
    .json(overheads, elapsed)?;
    println!("{}", serde_json::Value::Object(line));
    Ok(ExitCode::SUCCESS)
}

/// `args.waiting` threads, each in a run whose node waits on a model call
/// that takes minutes: the resident memory they take.
async fn waiting_threads(common: &Common, args: &CompareArgs) -> Result<ExitCode> {
    ensure!(args.waiting > 0, "--waiting must be at least 1");
    let (engine, runtime, llm) = engine(common, args, Duration::from_secs(3600), None).await?;
    let yaml = "name: bench-waiting\nentry: a\nnodes:\n  a: { plugin: guest-llm, grants: [llm] }\n";
    let graph = Arc::new(
        LoadedGraph::from_yaml(
            yaml,
            &common.plugins.join("bench-waiting.yaml"),
            engine.plugins(),
            &runtime,
        )
        .await?,
    );
    let before = rss_mib("VmRSS")?;
    let pss_before = pss_mib()?;
    let mut threads = Vec::with_capacity(args.waiting);
    for _ in 0..args.waiting {
        let thread = engine.open_thread(None, &graph);
        engine
            .start_run(&thread, Inbound::to("a", "relay", &json!({})))
            .await?;
        threads.push(thread);
    }
    // Wait until every run is inside its model call, or queued for an
    // instance slot when the runtime has fewer slots than threads.
    let deadline = Instant::now() + Duration::from_secs(600);
    let (waiting, queued) = loop {
        let waiting = llm.in_flight();
        let queued = runtime.ticks_queued();
        if waiting + queued >= args.waiting || Instant::now() > deadline {
            break (waiting, queued);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let after = rss_mib("VmRSS")?;
    let pss_after = pss_mib()?;
    let per_thread_kib = (after - before) * 1024.0 / args.waiting as f64;
    let line = json!({
        "system": "weft",
        "version": env!("CARGO_PKG_VERSION"),
        "workload": WAITING_ROW,
        "threads": args.waiting,
        "waiting": waiting,
        "queued_for_a_slot": queued,
        "rss_mb": round(after, 1),
        "rss_before_mb": round(before, 1),
        "per_thread_kib": round(per_thread_kib, 1),
        "threads_per_gib": round(args.waiting as f64 * 1024.0 / after, 0),
        "pss_mb": round(pss_after, 1),
        "per_thread_pss_kib": round((pss_after - pss_before) * 1024.0 / args.waiting as f64, 1),
        "threads_per_gib_pss": round(args.waiting as f64 * 1024.0 / pss_after, 0),
    });
    println!("{line}");
    for thread in threads {
        let _ = engine.kill(&thread);
    }
    Ok(ExitCode::SUCCESS)
}

fn fresh_store_dir(common: &Common) -> Result<PathBuf> {
    let dir = common
        .data_dir
        .join(format!("bench-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
