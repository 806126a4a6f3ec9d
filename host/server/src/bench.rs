//! `weft bench …`: benchmarks that print figures.
//!
//! Every benchmark prints a human-readable table, or with `--json` (always,
//! for `compare`) JSON Lines in the format of `bench/` (see
//! `bench/README.md`): a row per workload with the per-node overhead
//! (median, p99, nearest rank), runs/s and peak RSS, plus figures of its
//! own; `bench/table.py` reads any of them.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use weft_engine::{Backends, Engine, EngineConfig, Inbound, LoadedGraph, RunStatus};
use weft_runtime::capabilities::db::InMemoryDb;
use weft_runtime::capabilities::llm::Unavailable;

use crate::bench_compare::{Line, Workload, micros, nearest_rank, percentiles, round};
use crate::{Common, setup};

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Runs the 5-node graph (a → b, c, d → e) of no-op plugins and prints
    /// the host overhead per node invocation and frames per second.
    Frames {
        /// Measured runs (after a warm-up of a tenth as many).
        #[arg(long, default_value_t = 2000)]
        runs: usize,
        /// Runs in flight at once for the throughput pass.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Folder with the `guest-relay` test guest (the no-op node).
        #[arg(long, default_value = "artifacts/guests")]
        guests: std::path::PathBuf,
        /// Also run the workload with every frame committed to a store and
        /// print durable frames/s and commit latency next to the in-memory
        /// figures: a fresh SQLite file in the data folder (removed
        /// afterwards), or the PostgreSQL database `--store postgres://…`
        /// names (its benchmark threads are pruned afterwards: give it a
        /// database of its own).
        #[arg(long)]
        durable: bool,
        /// With `--durable` on PostgreSQL: this many hosts share the
        /// database (an engine and a store each, with its own writer
        /// connection, in this process), the runs in flight spread over
        /// them.
        #[arg(long, default_value_t = 1)]
        hosts: usize,
        /// Print JSON Lines in `bench/`'s format instead of a table.
        #[arg(long)]
        json: bool,
        /// Run every node with `instance: reuse` (kept instances) instead
        /// of a fresh instance per tick.
        #[arg(long)]
        reuse: bool,
    },
    /// Loads the local model and prints its load time, prompt and
    /// generation speed (free and JSON-Schema-constrained) and the gain of
    /// the prompt-prefix cache.
    Llm(crate::bench_llm::LlmBenchArgs),
    /// The workloads of the side-by-side comparison with LangGraph
    /// (`bench/`), one JSON line per row: chain3 and fanout5, with and
    /// without a simulated 1 ms LLM, at 1–1,000 threads, durable; and the
    /// memory of threads waiting on a slow model call.
    Compare(crate::bench_compare::CompareArgs),
    /// Compares plugins side by side (any language): size, cold compile
    /// time, instantiation and whole-invocation time.
    Plugins(crate::bench_plugins::PluginBenchArgs),
    /// Runs many runs (default 20,000), each on a new thread, on a durable
    /// store with a scripted model, then prunes and resets the usage,
    /// printing the resident memory as it goes and a verdict on its growth.
    Soak(crate::bench_soak::SoakArgs),
}

/// The benchmark graph: `fanout5` of the LangGraph comparison, every node
/// `guest-relay`, which forwards one small message. 3 frames and 5
/// invocations per run.
const WORKLOAD: Workload = Workload::Fanout5;
const FRAMES_PER_RUN: usize = 3;

pub async fn run(common: &Common, cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Frames {
            runs,
            concurrency,
            guests,
            durable,
            hosts,
            json,
            reuse,
        } => {
            let pass = Pass {
                runs,
                concurrency,
                durable,
                hosts,
                json,
                reuse,
            };
            frames(common, &guests, pass).await
        }
        BenchCommand::Llm(args) => crate::bench_llm::run(common, args).await,
        BenchCommand::Compare(args) => crate::bench_compare::run(common, args).await,
        BenchCommand::Plugins(args) => crate::bench_plugins::run(args).await,
        BenchCommand::Soak(args) => crate::bench_soak::run(common, args).await,
    }
}

/// What `weft bench frames` measures.
struct Pass {
    runs: usize,
    concurrency: usize,
    durable: bool,
    hosts: usize,
    json: bool,
    reuse: bool,
}

async fn frames(common: &Common, guests: &std::path::Path, pass: Pass) -> Result<ExitCode> {
    let Pass {
        runs,
        concurrency,
        durable,
        hosts,
        json,
        reuse,
    } = pass;
    if runs == 0 || concurrency == 0 || hosts == 0 {
        bail!("--runs, --concurrency and --hosts must be at least 1");
    }
    let config = setup::config(common)?;
    let runtime = setup::runtime(common, &config.runtime)?;
    // Only the no-op node: the plugin folder is not needed.
    let plugins = Arc::new(weft_engine::PluginSet::new());
    plugins
        .load_file(&runtime, &guests.join("guest-relay.wasm"))
        .await
        .context("loading the no-op node: run `cargo xtask build-plugins`")?;
    let backends = || Backends {
        llm: Arc::new(Unavailable),
        db: Arc::new(InMemoryDb::default()),
        tools: weft_engine::Backends::no_tools(),
    };
    let engine = Engine::new(
        runtime.clone(),
        plugins.clone(),
        backends(),
        EngineConfig::default(),
    );
    let graph = Arc::new(
        LoadedGraph::from_yaml(
            &WORKLOAD.graph("guest-relay", false, reuse),
            &common.plugins.join("bench-frames.yaml"),
            &plugins,
            &runtime,
        )
        .await
        .context(
            "the benchmark graph needs the `guest-relay` test guest (cargo xtask build-plugins)",
        )?,
    );
    let memory = measure(std::slice::from_ref(&engine), &graph, runs, concurrency).await?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if json {
        memory.print_json(false, concurrency, None, None, 1, reuse)?;
    } else {
        println!(
            "weft bench frames: 5-node graph (a → b, c, d → e), no-op WASM plugins, {} per invocation, {runs} runs, {cores} cores",
            if reuse {
                "kept instance (instance: reuse)"
            } else {
                "fresh instance"
            }
        );
        println!("{:<44} {:>12} {:>12}", "metric", "median", "p99");
        memory.print("", concurrency);
    }
    if !durable {
        return Ok(ExitCode::SUCCESS);
    }
    // PostgreSQL when `--store` (or the config's `store.url`) names one;
    // otherwise a fresh SQLite file with the config's settings.
    let location = setup::store_location(common, &config);
    let store_kind = match &location {
        setup::StoreLocation::Postgres(_) => "postgres",
        setup::StoreLocation::File(_) => "sqlite",
    };
    if hosts > 1 && store_kind != "postgres" {
        bail!("--hosts needs a PostgreSQL store (--store postgres://…): SQLite has one host");
    }
    let (store, label): (BenchStore, String) = match location {
        setup::StoreLocation::Postgres(url) => {
            let mut stores = Vec::with_capacity(hosts);
            for _ in 0..hosts {
                let store = weft_store::PostgresStore::open(&url, weft_store::PgOptions::default())
                    .await
                    .with_context(|| format!("opening {}", weft_store::redact_url(&url)))?;
                stores.push(Arc::new(store));
            }
            let shared = if hosts > 1 {
                format!("; {hosts} hosts, a writer connection each")
            } else {
                String::new()
            };
            (
                BenchStore::Postgres(stores),
                format!(
                    "PostgreSQL ({}{shared}; group commit, pipelined)",
                    weft_store::redact_url(&url)
                ),
            )
        }
        setup::StoreLocation::File(_) => {
            std::fs::create_dir_all(&common.data_dir)
                .with_context(|| format!("creating {}", common.data_dir.display()))?;
            let path = common
                .data_dir
                .join(format!("bench-frames-{}.db", std::process::id()));
            remove_store_files(&path);
            // The config's store settings (sync, size cap), on a fresh file.
            let store = weft_store::SqliteStore::open(&path, setup::store_options(&config))
                .with_context(|| format!("opening {}", path.display()))?;
            let sync = match config.store.sync {
                crate::config::SyncSetting::Full => "FULL",
                crate::config::SyncSetting::Normal => "NORMAL",
            };
            (
                BenchStore::Sqlite(Arc::new(store), path),
                format!("SQLite (WAL, synchronous={sync}, group commit)"),
            )
        }
    };
    let mut engines = Vec::with_capacity(hosts);
    for (n, host_store) in store.stores().into_iter().enumerate() {
        let config = EngineConfig {
            host_id: format!("bench-{}-host-{}", std::process::id(), n + 1),
            ..EngineConfig::default()
        };
        engines.push(
            Engine::open(
                runtime.clone(),
                plugins.clone(),
                backends(),
                config,
                host_store,
            )
            .await?,
        );
    }
    let result = measure(&engines, &graph, runs, concurrency).await;
    let mut commits = store.take_latencies();
    let size = store.finish(engines).await;
    let durable = result?;
    commits.sort_unstable();
    if json {
        durable.print_json(
            true,
            concurrency,
            Some(&commits),
            Some(store_kind),
            hosts,
            reuse,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    println!("durable: every frame committed to {label}, same workload");
    durable.print("durable ", concurrency);
    row("durable commit latency per frame (µs)", &commits);
    println!(
        "{:<44} {:>12.2}   (durable / in-memory, one run at a time)",
        "ratio frames/s",
        durable.serial_fps() / memory.serial_fps()
    );
    println!(
        "{:<44} {:>12.2}   (durable / in-memory, {concurrency} runs in flight)",
        "ratio frames/s",
        durable.parallel_fps() / memory.parallel_fps()
    );
    if let Some(size) = size {
        println!(
            "{:<44} {:>12.0}   ({} frames)",
            "store size per frame (bytes)",
            size as f64 / durable.frames_total() as f64,
            durable.frames_total()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The store a durable pass commits to.
enum BenchStore {
    /// A fresh file, removed afterwards.
    Sqlite(Arc<weft_store::SqliteStore>, std::path::PathBuf),
    /// The database `--store` names: the pass's threads are pruned
    /// afterwards (the usage totals stay). One store (and host) each.
    Postgres(Vec<Arc<weft_store::PostgresStore>>),
}

impl BenchStore {
    /// The store of each host.
    fn stores(&self) -> Vec<Arc<dyn weft_engine::Store>> {
        match self {
            Self::Sqlite(s, _) => vec![s.clone()],
            Self::Postgres(stores) => stores
                .iter()
                .map(|s| s.clone() as Arc<dyn weft_engine::Store>)
                .collect(),
        }
    }

    fn take_latencies(&self) -> Vec<Duration> {
        match self {
            Self::Sqlite(s, _) => s.take_frame_commit_latencies(),
            Self::Postgres(stores) => stores
                .iter()
                .flat_map(|s| s.take_frame_commit_latencies())
                .collect(),
        }
    }

    /// Cleans up after the pass (the engines go first); the file's size
    /// for SQLite.
    async fn finish(self, mut engines: Vec<Arc<Engine>>) -> Option<u64> {
        let engine = engines.swap_remove(0);
        drop(engines);
        match self {
            Self::Sqlite(store, path) => {
                drop(engine);
                let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                drop(store);
                remove_store_files(&path);
                Some(size)
            }
            Self::Postgres(_) => {
                if let Err(e) = engine.prune(Duration::ZERO).await {
                    eprintln!("warning: the benchmark's threads were not pruned: {e}");
                }
                None
            }
        }
    }
}

/// What one pass over the workload measured; every sample list is sorted.
struct Figures {
    runs: usize,
    /// Per-node overhead of each run of the latency pass (one at a time).
    per_node: Vec<Duration>,
    /// The same, of each run of the throughput pass (all threads at once).
    per_node_parallel: Vec<Duration>,
    invoke: Vec<Duration>,
    instantiate: Vec<Duration>,
    latency_wall: Duration,
    throughput_wall: Duration,
    warmup_runs: usize,
}

impl Figures {
    fn frames(&self) -> f64 {
        (self.runs * FRAMES_PER_RUN) as f64
    }

    /// Frames committed in all passes (warm-up, latency, throughput).
    fn frames_total(&self) -> usize {
        (self.warmup_runs + 2 * self.runs) * FRAMES_PER_RUN
    }

    fn serial_fps(&self) -> f64 {
        self.frames() / self.latency_wall.as_secs_f64()
    }

    fn parallel_fps(&self) -> f64 {
        self.frames() / self.throughput_wall.as_secs_f64()
    }

    fn print(&self, prefix: &str, concurrency: usize) {
        row(
            &format!("{prefix}host overhead per node invocation (µs)"),
            &self.per_node,
        );
        if prefix.is_empty() {
            row("  of which invoke: instantiate+call (µs)", &self.invoke);
            row("  of which instantiate (µs)", &self.instantiate);
        }
        println!(
            "{:<44} {:>12.0}   (one run at a time)",
            format!("{prefix}frames/s"),
            self.serial_fps()
        );
        println!(
            "{:<44} {:>12.0}   ({concurrency} runs in flight)",
            format!("{prefix}frames/s"),
            self.parallel_fps()
        );
        println!(
            "{:<44} {:>12.0}   ({concurrency} runs in flight)",
            format!("{prefix}runs/s"),
            self.runs as f64 / self.throughput_wall.as_secs_f64()
        );
        println!(
            "{:<44} {:>12.0}   ({concurrency} runs in flight)",
            format!("{prefix}node invocations/s"),
            (self.runs * WORKLOAD.nodes()) as f64 / self.throughput_wall.as_secs_f64()
        );
        println!(
            "{:<44} {:>12}   (warm-up, latency and throughput passes)",
            format!("{prefix}node invocations in all"),
            (self.warmup_runs + 2 * self.runs) * WORKLOAD.nodes()
        );
    }

    /// Two rows in `bench/`'s format: the latency pass (1 thread) and the
    /// throughput pass (`concurrency` threads), with frames/s, the invoke
    /// and instantiate times and, when durable, the commit latency.
    fn print_json(
        &self,
        durable: bool,
        concurrency: usize,
        commits: Option<&[Duration]>,
        store: Option<&str>,
        hosts: usize,
        reuse: bool,
    ) -> Result<()> {
        let passes = [
            (1, &self.per_node, self.latency_wall, self.serial_fps()),
            (
                concurrency,
                &self.per_node_parallel,
                self.throughput_wall,
                self.parallel_fps(),
            ),
        ];
        for (threads, per_node, wall, fps) in passes {
            let mut line = Line {
                workload: WORKLOAD,
                llm_ms: 0,
                threads,
                store: match (durable, store) {
                    (false, _) => "memory",
                    (true, Some("postgres")) => "postgres",
                    (true, _) => "sqlite",
                },
                reuse,
            }
            .json(per_node.clone(), wall.as_secs_f64())?;
            line.insert("frames_per_s".into(), round(fps, 0).into());
            line.insert("hosts".into(), hosts.into());
            if threads == 1 {
                line.insert("invoke_us".into(), percentiles(&self.invoke));
                line.insert("instantiate_us".into(), percentiles(&self.instantiate));
            }
            if let Some(commits) = commits {
                line.insert("commit_us".into(), percentiles(commits));
            }
            println!("{}", serde_json::Value::Object(line));
        }
        Ok(())
    }
}

/// Warm-up, a latency pass (one run at a time) and a throughput pass
/// (`concurrency` threads running back to back), measured from a task on
/// the runtime's worker threads, where a server's request handlers run
/// (and `bench compare` measures). Measured from the thread that blocks on
/// the runtime instead, every run's start and end crossed between threads,
/// a thread wake-up each, which made the per-node figure ~50% higher than
/// `bench compare`'s for the same graph.
async fn measure(
    engines: &[Arc<Engine>],
    graph: &Arc<LoadedGraph>,
    runs: usize,
    concurrency: usize,
) -> Result<Figures> {
    let (engines, graph) = (engines.to_vec(), graph.clone());
    tokio::spawn(async move { measure_on_worker(&engines, &graph, runs, concurrency).await })
        .await
        .context("the benchmark task failed")?
}

async fn measure_on_worker(
    engines: &[Arc<Engine>],
    graph: &Arc<LoadedGraph>,
    runs: usize,
    concurrency: usize,
) -> Result<Figures> {
    let engine = &engines[0];
    let inbound = || Inbound::to("a", "relay", &serde_json::json!({ "n": 0 }));
    let nodes = WORKLOAD.nodes();
    let checked = move |trace: &weft_engine::FrameTrace| {
        anyhow::ensure!(
            trace.status == RunStatus::Completed && trace.records.len() == nodes,
            "a benchmark run went wrong:\n{}",
            trace.render()
        );
        Ok(())
    };

    // Warm-up: caches, pools, allocator.
    let warmup_runs = (runs / 10).max(10);
    let thread = engine.open_thread(None, graph);
    for _ in 0..warmup_runs {
        engine.start_run(&thread, inbound()).await?.finish().await?;
    }

    // Latency pass: one run at a time.
    let thread = engine.open_thread(None, graph);
    let mut per_node = Vec::with_capacity(runs);
    let mut invoke = Vec::with_capacity(runs * nodes);
    let mut instantiate = Vec::with_capacity(runs * nodes);
    let started = Instant::now();
    for _ in 0..runs {
        let t = Instant::now();
        let trace = engine.start_run(&thread, inbound()).await?.finish().await?;
        let wall = t.elapsed();
        checked(&trace)?;
        per_node.push(wall / nodes as u32);
        for r in &trace.records {
            invoke.push(Duration::from_micros(r.duration_us));
            instantiate.push(Duration::from_micros(r.instantiate_us));
        }
    }
    let latency_wall = started.elapsed();

    // Throughput pass: `concurrency` threads, each running runs back to back.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..concurrency {
        // The runs in flight spread over the hosts.
        let engine = engines[t % engines.len()].clone();
        let thread = engine.open_thread(None, graph);
        let share = runs / concurrency + usize::from(t < runs % concurrency);
        tasks.spawn(async move {
            let mut per_node = Vec::with_capacity(share);
            for _ in 0..share {
                let t = Instant::now();
                let trace = engine.start_run(&thread, inbound()).await?.finish().await?;
                checked(&trace)?;
                per_node.push(t.elapsed() / nodes as u32);
            }
            Ok::<_, anyhow::Error>(per_node)
        });
    }
    let mut per_node_parallel = Vec::with_capacity(runs);
    while let Some(done) = tasks.join_next().await {
        per_node_parallel.extend(done??);
    }
    let throughput_wall = started.elapsed();
    for samples in [
        &mut per_node,
        &mut per_node_parallel,
        &mut invoke,
        &mut instantiate,
    ] {
        samples.sort_unstable();
    }
    Ok(Figures {
        runs,
        per_node,
        per_node_parallel,
        invoke,
        instantiate,
        latency_wall,
        throughput_wall,
        warmup_runs,
    })
}

/// A table row: median and p99 (nearest rank) of ascending samples, in µs.
fn row(name: &str, sorted: &[Duration]) {
    println!(
        "{name:<44} {:>12.1} {:>12.1}",
        micros(nearest_rank(sorted, 50.0)),
        micros(nearest_rank(sorted, 99.0))
    );
}

/// Removes a benchmark's SQLite store and its companions (WAL, shared
/// memory, lock file), before a run on a fresh file and after it.
pub(crate) fn remove_store_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(name));
    }
}
