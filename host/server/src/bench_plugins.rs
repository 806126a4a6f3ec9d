//! `weft bench plugins FILE…`: what a node costs in each language, side by
//! side in one run: component size, cold compile time (no cache), the time
//! to create a fresh instance, and the time of one whole invocation
//! (instantiate, lift the inbox, run the tick with its capability calls,
//! lower the output).
//!
//! Each plugin is ticked with the same message and a scripted model that
//! answers at once, so the figures compare the languages' runtimes, not
//! the model. The nodes `weft new` makes in each language do the same work
//! (a memory read and write, a progress event, a model call, a log line and
//! a reply), which is what the closing figures of issue 8 compare.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use weft_runtime::capabilities::db::InMemoryDb;
use weft_runtime::capabilities::hud::NullSink;
use weft_runtime::capabilities::llm::{ScriptRule, Scripted};
use weft_runtime::capabilities::memory::MemoryMap;
use weft_runtime::{Message, Runtime, RuntimeConfig, Services};

use crate::bench_compare::{micros, nearest_rank};

/// Arguments of `weft bench plugins`.
#[derive(Args, Debug)]
pub struct PluginBenchArgs {
    /// The components to compare.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Measured invocations per plugin (after a tenth as many to warm up).
    #[arg(long, default_value_t = 500)]
    iterations: usize,
    /// The kind of the message each tick gets.
    #[arg(long, default_value = "user")]
    kind: String,
    /// The JSON body of the message each tick gets.
    #[arg(long, default_value = r#"{"text": "hello"}"#)]
    body: String,
    /// The node's config (JSON).
    #[arg(long, default_value = "{}")]
    node_config: String,
}

/// One plugin's figures.
struct Row {
    name: String,
    size: usize,
    compile: Duration,
    instantiate: Vec<Duration>,
    invoke: Vec<Duration>,
    /// Whole invocations in a kept instance (`instance: reuse`).
    kept: Vec<Duration>,
}

pub async fn run(args: PluginBenchArgs) -> Result<ExitCode> {
    serde_json::from_str::<serde_json::Value>(&args.body).context("--body is not JSON")?;
    serde_json::from_str::<serde_json::Value>(&args.node_config)
        .context("--node-config is not JSON")?;
    // No cache: every load compiles, which is the cold figure.
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .context("starting the runtime")?;
    let mut rows = Vec::new();
    for file in &args.files {
        eprintln!("{}: compiling …", file.display());
        rows.push(measure(&runtime, file, &args).await?);
    }
    println!(
        "{:<22} {:>9} {:>11} {:>14} {:>12} {:>12} {:>14}",
        "plugin",
        "size MiB",
        "compile ms",
        "instantiate µs",
        "invoke µs",
        "invoke p99",
        "kept invoke µs"
    );
    for row in &mut rows {
        row.instantiate.sort_unstable();
        row.invoke.sort_unstable();
        row.kept.sort_unstable();
        println!(
            "{:<22} {:>9.1} {:>11.0} {:>14.1} {:>12.1} {:>12.1} {:>14.1}",
            row.name,
            row.size as f64 / (1024.0 * 1024.0),
            row.compile.as_secs_f64() * 1e3,
            micros(nearest_rank(&row.instantiate, 50.0)),
            micros(nearest_rank(&row.invoke, 50.0)),
            micros(nearest_rank(&row.invoke, 99.0)),
            micros(nearest_rank(&row.kept, 50.0)),
        );
    }
    println!(
        "({} invocations each; invoke = fresh instance + tick with its capability calls; kept invoke = the same tick in an instance kept from the last (`instance: reuse`); scripted model)",
        args.iterations
    );
    Ok(ExitCode::SUCCESS)
}

async fn measure(runtime: &Runtime, file: &Path, args: &PluginBenchArgs) -> Result<Row> {
    let started = Instant::now();
    let plugin = runtime
        .load_file(file)
        .await
        .with_context(|| format!("loading {}", file.display()))?;
    let compile = started.elapsed();
    let info = plugin.info().clone();
    let services = Services {
        llm: Arc::new(Scripted::from_rules([ScriptRule::answer(
            "Hello! How can I help?",
        )
        .repeat()])),
        db: Arc::new(InMemoryDb::default()),
        memory: Arc::new(MemoryMap::default()),
        kv: Arc::new(weft_runtime::capabilities::store::KvMap::default()),
        tools: Arc::new(weft_runtime::capabilities::tools::NoTools),
        events: Arc::new(NullSink),
    };
    let inbox = [Message {
        id: "bench/in".into(),
        from: "user".into(),
        kind: args.kind.clone(),
        body: args.body.clone(),
    }];
    let warmup = (args.iterations / 10).max(1);
    let mut instantiate = Vec::with_capacity(args.iterations);
    let mut invoke = Vec::with_capacity(args.iterations);
    let mut kept = Vec::with_capacity(args.iterations);
    let scope = weft_runtime::ReuseScope::new();
    for reuse in [None, Some(&scope)] {
        for i in 0..warmup + args.iterations {
            let run = format!("bench.run-{i}");
            let (_, outcome) = crate::plugin_cases::tick_alone(
                runtime,
                &plugin,
                &services,
                ("bench", &run),
                &inbox,
                &args.node_config,
                reuse,
            )
            .await;
            if let Err(e) = &outcome.result {
                bail!("{} ({}) failed its tick: {e}", info.name, file.display());
            }
            if i < warmup {
                continue;
            }
            if reuse.is_some() {
                kept.push(outcome.duration);
            } else {
                instantiate.push(outcome.instantiate_time);
                invoke.push(outcome.duration);
            }
        }
    }
    Ok(Row {
        name: info.name,
        size: plugin.size(),
        compile,
        instantiate,
        invoke,
        kept,
    })
}
