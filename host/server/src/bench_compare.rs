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
//!   threads; durable (every frame committed to a fresh SQLite store) at 1
//!   and 100 threads;
//! - `waiting_threads`: how many threads waiting on a slow model call fit
//!   in memory.
//!
//! Each row runs in a fresh process (this command re-invoked with `--row`),
//! so its peak RSS is its own. A thread is a closed loop: it starts its
//! next run as soon as its last one ends, until the time budget is spent.
//! Per-node overhead of a run = (the run's wall time − the model time on its
//! critical path, as the simulated model measured its waits) ÷ nodes
//! invoked; percentiles are nearest-rank.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use weft_engine::{Backends, Engine, EngineConfig, Inbound, LoadedGraph, RunStatus};

use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::db::InMemoryDb;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::{CapabilityError, Completion, CompletionRequest};

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
}

/// One workload row.
#[derive(Clone, Copy, Debug)]
struct Row {
    workload: Workload,
    llm_ms: u64,
    threads: usize,
    durable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Workload {
    Chain3,
    Fanout5,
}

impl Workload {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Chain3 => "chain3",
            Workload::Fanout5 => "fanout5",
        }
    }

    pub(crate) fn nodes(self) -> usize {
        match self {
            Workload::Chain3 => 3,
            Workload::Fanout5 => 5,
        }
    }

    /// The graph's steps in order, each the nodes that run in parallel in
    /// it: a run's model time on its critical path is the sum over the
    /// steps of the longest wait in each.
    fn steps(self) -> &'static [&'static [&'static str]] {
        match self {
            Workload::Chain3 => &[&["a"], &["b"], &["c"]],
            Workload::Fanout5 => &[&["a"], &["b", "c", "d"], &["e"]],
        }
    }

    /// The graph, with `plugin` for every node.
    pub(crate) fn graph(self, plugin: &str, llm: bool) -> String {
        let grants = if llm { "grants: [llm], " } else { "" };
        let node = |name: &str, peers: &[&str]| {
            let send = if llm {
                format!("send: [{}]", peers.join(", "))
            } else {
                let to: Vec<String> = peers.iter().map(|p| format!("{{ to: {p} }}")).collect();
                format!("send: [{}]", to.join(", "))
            };
            format!("  {name}: {{ plugin: {plugin}, {grants}config: {{ {send} }} }}\n")
        };
        let (nodes, edges) = match self {
            Workload::Chain3 => (
                [node("a", &["b"]), node("b", &["c"]), node("c", &[])].concat(),
                "  - { from: a, to: b }\n  - { from: b, to: c }\n",
            ),
            Workload::Fanout5 => (
                [
                    node("a", &["b", "c", "d"]),
                    node("b", &["e"]),
                    node("c", &["e"]),
                    node("d", &["e"]),
                    node("e", &[]),
                ]
                .concat(),
                "  - { from: a, to: [b, c, d] }\n  - { from: b, to: e }\n  - { from: c, to: e }\n  - { from: d, to: e }\n",
            ),
        };
        format!(
            "name: bench-{}\nentry: a\ndefaults:\n  max_frames: 8\nnodes:\n{nodes}edges:\n{edges}",
            self.name()
        )
    }
}

impl Row {
    fn name(&self) -> String {
        let store = if self.durable { "-durable" } else { "" };
        format!(
            "{}-llm{}-t{}{store}",
            self.workload.name(),
            self.llm_ms,
            self.threads
        )
    }
}

/// The rows, in the order `bench/langgraph_bench.py` lists them.
fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for workload in [Workload::Chain3, Workload::Fanout5] {
        let row = |llm_ms, threads, durable| Row {
            workload,
            llm_ms,
            threads,
            durable,
        };
        rows.push(row(0, 1, false));
        for threads in [1, 100, 1000] {
            rows.push(row(1, threads, false));
        }
    }
    for workload in [Workload::Chain3, Workload::Fanout5] {
        for threads in [1, 100] {
            rows.push(Row {
                workload,
                llm_ms: 0,
                threads,
                durable: true,
            });
        }
    }
    rows
}

const WAITING_ROW: &str = "waiting_threads";

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
        let out = command.output().context("running a benchmark row")?;
        if !out.status.success() {
            bail!("the row {name} failed ({})", out.status);
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(ExitCode::SUCCESS)
}

/// Wakes waiters at their deadlines, to within the OS's sleep precision
/// (tens of µs), from a thread of its own. tokio's timer rounds every sleep
/// up to its next whole millisecond, so a 1 ms sleep takes about 2 ms;
/// asyncio's takes about 1.1 ms. With this timer both systems' simulated
/// model calls take about as long, and runs/s compares the systems, not
/// their timers.
struct PreciseTimer {
    requests: std::sync::mpsc::Sender<(Instant, tokio::sync::oneshot::Sender<()>)>,
}

impl PreciseTimer {
    fn start() -> Result<Self> {
        let (requests, incoming) =
            std::sync::mpsc::channel::<(Instant, tokio::sync::oneshot::Sender<()>)>();
        std::thread::Builder::new()
            .name("bench-timer".into())
            .spawn(move || {
                use std::cmp::Reverse;
                use std::sync::mpsc::RecvTimeoutError;
                let mut due: std::collections::BinaryHeap<Reverse<(Instant, u64)>> =
                    std::collections::BinaryHeap::new();
                let mut next_id = 0u64;
                let mut waiters: HashMap<u64, tokio::sync::oneshot::Sender<()>> = HashMap::new();
                loop {
                    let now = Instant::now();
                    while let Some(Reverse((at, id))) = due.peek().copied() {
                        if at > now {
                            break;
                        }
                        due.pop();
                        if let Some(waiter) = waiters.remove(&id) {
                            // A dropped receiver no longer waits.
                            let _ = waiter.send(());
                        }
                    }
                    let next = match due.peek() {
                        Some(Reverse((at, _))) => {
                            incoming.recv_timeout(at.saturating_duration_since(now))
                        }
                        None => incoming.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match next {
                        Ok((at, waiter)) => {
                            due.push(Reverse((at, next_id)));
                            waiters.insert(next_id, waiter);
                            next_id += 1;
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .context("starting the benchmark's timer thread")?;
        Ok(Self { requests })
    }

    async fn sleep(&self, delay: Duration) {
        let (wake, woken) = tokio::sync::oneshot::channel();
        if self.requests.send((Instant::now() + delay, wake)).is_ok() {
            let _ = woken.await;
        }
    }
}

/// A model that answers `ok` after a fixed delay (an async sleep, as a
/// remote provider's latency is) and counts the calls it is inside. It
/// keeps how long each answered call really waited, by thread and node, so
/// that a run's model time is what its calls took, not the nominal delay;
/// `bench/`'s LangGraph side measures its sleeps the same way. A call that
/// is still waiting (the `waiting_threads` row) keeps nothing, so it adds
/// nothing to the memory measured.
struct SimulatedLlm {
    delay: Duration,
    timer: PreciseTimer,
    in_flight: AtomicUsize,
    /// Per thread: each answered call's node and wait.
    waits: Mutex<HashMap<String, Vec<(String, Duration)>>>,
}

impl SimulatedLlm {
    /// The model time on the critical path of the run that just ended on
    /// `thread`, forgetting its waits.
    fn critical_wait(&self, thread: &str, steps: &[&[&str]]) -> Duration {
        let waits = {
            let mut all = self.waits.lock().unwrap_or_else(|e| e.into_inner());
            all.remove(thread).unwrap_or_default()
        };
        steps
            .iter()
            .map(|step| {
                waits
                    .iter()
                    .filter(|(node, _)| step.contains(&node.as_str()))
                    .map(|&(_, wait)| wait)
                    .max()
                    .unwrap_or_default()
            })
            .sum()
    }
}

impl LlmBackend for SimulatedLlm {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        _request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async move {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let started = Instant::now();
            if !self.delay.is_zero() {
                self.timer.sleep(self.delay).await;
            }
            let waited = started.elapsed();
            self.waits
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(call.ctx.thread.clone())
                .or_default()
                .push((call.ctx.node.clone(), waited));
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(Completion {
                text: "ok".to_owned(),
                prompt_tokens: 1,
                completion_tokens: 1,
                model: call.model.unwrap_or("simulated").to_owned(),
                provider: "simulated".to_owned(),
                usage_estimated: false,
            })
        })
    }
}

/// An engine over the two guests, with a model that answers every call
/// after `delay`, and a fresh SQLite store when `durable`.
async fn engine(
    common: &Common,
    args: &CompareArgs,
    delay: Duration,
    durable: Option<&std::path::Path>,
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
    let llm = Arc::new(SimulatedLlm {
        delay,
        timer: PreciseTimer::start()?,
        in_flight: AtomicUsize::new(0),
        waits: Mutex::default(),
    });
    let backends = Backends {
        llm: llm.clone(),
        db: Arc::new(InMemoryDb::default()),
    };
    let engine = match durable {
        None => Engine::new(runtime.clone(), plugins, backends, EngineConfig::default()),
        Some(path) => {
            let store = Arc::new(
                weft_store::SqliteStore::open(path, setup::store_options(&config))
                    .with_context(|| format!("opening {}", path.display()))?,
            );
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
    // A fresh store folder for a durable row, removed afterwards.
    let store_dir = row.durable.then(|| fresh_store_dir(common)).transpose()?;
    let store_path = store_dir.as_ref().map(|dir| dir.join("bench.db"));
    let (engine, runtime, llm) = engine(
        common,
        args,
        Duration::from_millis(row.llm_ms),
        store_path.as_deref(),
    )
    .await?;
    let with_llm = row.llm_ms > 0;
    let plugin = if with_llm { "guest-llm" } else { "guest-relay" };
    let yaml = row.workload.graph(plugin, with_llm);
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
    drop(engine);
    if let Some(dir) = store_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let line = Line {
        workload: row.workload,
        llm_ms: row.llm_ms,
        threads: row.threads,
        durable: row.durable,
    }
    .json(overheads, elapsed)?;
    println!("{}", serde_json::Value::Object(line));
    Ok(ExitCode::SUCCESS)
}

/// What a benchmark row of `bench/`'s JSON Lines format measured.
pub(crate) struct Line {
    pub workload: Workload,
    pub llm_ms: u64,
    pub threads: usize,
    pub durable: bool,
}

impl Line {
    /// The row, from each run's per-node overhead and the measured time.
    pub(crate) fn json(
        &self,
        mut overheads: Vec<Duration>,
        seconds: f64,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        overheads.sort_unstable();
        let line = json!({
            "system": "weft",
            "version": env!("CARGO_PKG_VERSION"),
            "workload": self.workload.name(),
            "nodes": self.workload.nodes(),
            "llm_ms": self.llm_ms,
            "threads": self.threads,
            "durable": self.durable,
            "runs": overheads.len(),
            "seconds": round(seconds, 3),
            "node_overhead_us": percentiles(&overheads),
            "runs_per_s": round(overheads.len() as f64 / seconds, 1),
            "peak_rss_mb": round(peak_rss_mib()?, 1),
        });
        let serde_json::Value::Object(map) = line else {
            unreachable!("a JSON object literal")
        };
        Ok(map)
    }
}

/// `{"median": µs, "p99": µs}` of ascending samples, nearest-rank.
pub(crate) fn percentiles(sorted: &[Duration]) -> serde_json::Value {
    json!({
        "median": round(micros(nearest_rank(sorted, 50.0)), 1),
        "p99": round(micros(nearest_rank(sorted, 99.0)), 1),
    })
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
        let waiting = llm.in_flight.load(Ordering::SeqCst);
        let queued = runtime.ticks_queued();
        if waiting + queued >= args.waiting || Instant::now() > deadline {
            break (waiting, queued);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let after = rss_mib("VmRSS")?;
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

/// The `p`th percentile of ascending `sorted` samples by nearest rank (the
/// value at index ⌈p/100·n⌉ − 1), as `bench/langgraph_bench.py` computes it.
pub(crate) fn nearest_rank(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub(crate) fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub(crate) fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// A memory figure of this process from `/proc/self/status`, in MiB.
fn rss_mib(field: &str) -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    Ok(kib / 1024.0)
}

fn peak_rss_mib() -> Result<f64> {
    rss_mib("VmHWM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_names_match_the_langgraph_script() {
        let names: Vec<String> = rows().iter().map(Row::name).collect();
        assert_eq!(names.len(), 12);
        assert!(names.contains(&"chain3-llm0-t1".to_owned()));
        assert!(names.contains(&"fanout5-llm1-t1000".to_owned()));
        assert!(names.contains(&"fanout5-llm0-t100-durable".to_owned()));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(nearest_rank(&samples, 50.0), Duration::from_micros(50));
        assert_eq!(nearest_rank(&samples, 99.0), Duration::from_micros(99));
        assert_eq!(nearest_rank(&samples[..1], 99.0), Duration::from_micros(1));
    }
}
