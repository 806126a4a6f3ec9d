//! `weft bench soak`: many runs on a durable store with a scripted model,
//! each on a thread of its own, printing the process's resident memory as
//! it goes. What the host keeps per call, per run or per thread must not
//! make it grow: the verdict line compares the resident memory after the
//! first quarter of the runs with the end.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use weft_engine::{Backends, Engine, EngineConfig, Inbound, LoadedGraph, RunStatus};
use weft_runtime::capabilities::db::InMemoryDb;
use weft_runtime::capabilities::llm::{ScriptRule, Scripted};

use crate::bench::remove_store_files;
use crate::{Common, setup};

/// Arguments of `weft bench soak`.
#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Runs, each on a new thread (3 frames and 3 model calls per run).
    #[arg(long, default_value_t = 20_000)]
    runs: usize,
    /// Runs in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Print the resident memory every this many runs (default: a tenth
    /// of `--runs`).
    #[arg(long)]
    every: Option<usize>,
    /// Growth of the resident memory from the first quarter to the end, in
    /// MiB, beyond the store's page cache (4 MiB, which fills as the store
    /// grows and then stays), above which the verdict is `GROWS` (and the
    /// exit code 1).
    #[arg(long, default_value_t = 16)]
    max_growth_mib: u64,
    /// Folder with the `guest-llm` test guest (a node that calls the model
    /// once per tick).
    #[arg(long, default_value = "artifacts/guests")]
    guests: std::path::PathBuf,
}

/// The resident memory of this process in KiB (`VmRSS` in
/// `/proc/self/status`; 0 where there is none).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

const GRAPH: &str = "name: bench-soak
entry: a
defaults:
  max_frames: 8
nodes:
  a: { plugin: guest-llm, grants: [llm], config: { send: [b] } }
  b: { plugin: guest-llm, grants: [llm], config: { send: [c] } }
  c: { plugin: guest-llm, grants: [llm], config: { send: [] } }
edges:
  - { from: a, to: b }
  - { from: b, to: c }
";

pub async fn run(common: &Common, args: SoakArgs) -> Result<ExitCode> {
    if args.runs < 4 || args.concurrency == 0 {
        bail!("--runs must be at least 4 and --concurrency at least 1");
    }
    let every = args.every.unwrap_or(args.runs / 10).max(1);
    let config = setup::config(common)?;
    let runtime = setup::runtime(common, &config.runtime)?;
    let plugins = Arc::new(weft_engine::PluginSet::new());
    plugins
        .load_file(&runtime, &args.guests.join("guest-llm.wasm"))
        .await
        .context("loading the `guest-llm` test guest: run `cargo xtask build-plugins`")?;
    std::fs::create_dir_all(&common.data_dir)
        .with_context(|| format!("creating {}", common.data_dir.display()))?;
    let path = common
        .data_dir
        .join(format!("bench-soak-{}.db", std::process::id()));
    remove_store_files(&path);
    let store = Arc::new(
        weft_store::SqliteStore::open(&path, setup::store_options(&config))
            .with_context(|| format!("opening {}", path.display()))?,
    );
    let backends = Backends {
        llm: Arc::new(Scripted::from_rules([ScriptRule::answer("ok").repeat()])),
        db: Arc::new(InMemoryDb::default()),
        tools: weft_engine::Backends::no_tools(),
    };
    let engine = Engine::open(
        runtime.clone(),
        plugins.clone(),
        backends,
        EngineConfig::default(),
        store.clone(),
    )
    .await?;
    let graph = Arc::new(
        LoadedGraph::from_yaml(
            GRAPH,
            &common.plugins.join("bench-soak.yaml"),
            &plugins,
            &runtime,
        )
        .await
        .context("the soak graph needs the `guest-llm` test guest")?,
    );
    let result = soak(&engine, &graph, &args, every).await;
    drop(engine);
    drop(store);
    remove_store_files(&path);
    result
}

async fn soak(
    engine: &Arc<Engine>,
    graph: &Arc<LoadedGraph>,
    args: &SoakArgs,
    every: usize,
) -> Result<ExitCode> {
    println!(
        "weft bench soak: {} runs (3 nodes, 3 model calls each, a new thread per run), {} in flight, durable store, scripted model",
        args.runs, args.concurrency
    );
    let start_kib = rss_kib();
    println!("rss at start: {:.1} MiB", mib(start_kib));
    let started = Instant::now();
    let quarter = args.runs / 4;
    let mut quarter_kib = 0;
    let mut half_kib = 0;
    let mut done = 0;
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    while done < args.runs {
        while next < args.runs && tasks.len() < args.concurrency {
            next += 1;
            let engine = engine.clone();
            let graph = graph.clone();
            tasks.spawn(async move {
                let thread = engine.open_thread(None, &graph);
                let inbound = Inbound::to("a", "relay", &serde_json::json!({ "n": 0 }));
                let trace = engine.start_run(&thread, inbound).await?.finish().await?;
                anyhow::ensure!(
                    trace.status == RunStatus::Completed,
                    "a soak run went wrong:\n{}",
                    trace.render()
                );
                Ok::<_, anyhow::Error>(())
            });
        }
        let Some(finished) = tasks.join_next().await else {
            break;
        };
        finished??;
        done += 1;
        if done == quarter {
            quarter_kib = rss_kib();
        }
        if done == args.runs / 2 {
            half_kib = rss_kib();
        }
        if done % every == 0 {
            println!(
                "runs {done:>8}  rss {:>8.1} MiB  ({:.0} runs/s)",
                mib(rss_kib()),
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let end_kib = rss_kib();
    let usage = engine.usage();
    println!(
        "usage: {} model calls, {} invocations; threads in memory: {}, thread budgets in memory: {}, threads with memory keys: {}",
        usage.calls,
        usage.invocations,
        engine.threads_in_memory(),
        engine.budgets().len(),
        engine.memory().threads()
    );
    // Prune takes threads idle since strictly before now: let the last
    // run's millisecond pass so that every thread of the soak goes.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let pruned = engine.prune(std::time::Duration::ZERO).await?;
    engine.reset_usage().await?;
    let after_kib = rss_kib();
    println!(
        "pruned {} threads, usage reset; rss after: {:.1} MiB",
        pruned.threads,
        mib(after_kib)
    );
    println!(
        "rss: start {:.1} MiB, first quarter ({quarter} runs) {:.1} MiB, end {:.1} MiB, after prune and reset {:.1} MiB",
        mib(start_kib),
        mib(quarter_kib),
        mib(end_kib),
        mib(after_kib)
    );
    let growth = end_kib.saturating_sub(quarter_kib);
    let cache_kib = weft_store::PAGE_CACHE_BYTES >> 10;
    let limit_kib = cache_kib + args.max_growth_mib * 1024;
    let bounded = growth <= limit_kib;
    println!(
        "rss growth: first quarter to end {:.1} MiB, second half {:.1} MiB",
        mib(growth),
        mib(end_kib.saturating_sub(half_kib))
    );
    println!(
        "verdict: {} (rss grew {:.1} MiB from the first quarter to the end; limit {:.0} MiB: the store's {:.0} MiB page cache + {} MiB)",
        if bounded { "BOUNDED" } else { "GROWS" },
        mib(growth),
        mib(limit_kib),
        mib(cache_kib),
        args.max_growth_mib
    );
    Ok(if bounded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
