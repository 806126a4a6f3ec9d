//! `weft run`: one message through a graph, with live progress.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use std::sync::Arc;

use weft_engine::{Engine, EventBody, Inbound, Ledger, RunHandle, RunStatus};

use crate::config::Config;
use crate::{Common, setup};

/// Where `llm` and `db` calls go (for every command that runs frames).
#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// Answer `llm` calls from a script file (a JSON list of rules:
    /// `{node?, contains?, answer | error, repeat?, delay_ms?}`) instead of a model.
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// The SQLite database behind the `db` capability (default: the sample
    /// Eras database in the data folder, generated on first use).
    #[arg(long)]
    pub db: Option<PathBuf>,
}

/// Arguments of `weft run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The graph file.
    #[arg(long, default_value = "graphs/assistant.yaml")]
    graph: PathBuf,
    #[command(flatten)]
    backends: BackendArgs,
    /// Start this many runs of the message at once, each on a new thread,
    /// and print one line per run instead of the trace.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    runs: u32,
    /// Continue this thread of the store (its memory and history) instead
    /// of starting a new one; the thread must exist.
    #[arg(long, conflicts_with = "runs")]
    thread: Option<String>,
    /// Deliver the message to this node instead of the graph's entry.
    #[arg(long)]
    to: Option<String>,
    /// Message kind (with `--to`; the entry node gets `user`).
    #[arg(long, default_value = "user")]
    kind: String,
    /// Treat MESSAGE as the JSON body instead of chat text.
    #[arg(long)]
    body_json: bool,
    /// Print the whole trace as JSON instead of the summary.
    #[arg(long)]
    json: bool,
    /// Hide the live progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// The message.
    message: String,
}

/// An engine for commands that run frames: runtime, plugins, config,
/// backends and the store.
pub async fn engine(common: &Common, backends: &BackendArgs) -> Result<Arc<Engine>> {
    engine_with(common, backends, &setup::config(common)?).await
}

/// [`engine`] with the config file read already.
pub async fn engine_with(
    common: &Common,
    backends: &BackendArgs,
    config: &Config,
) -> Result<Arc<Engine>> {
    let runtime = setup::runtime(common, &config.runtime)?;
    let plugins = setup::plugins(common, &runtime).await?;
    let llm = setup::llm(common, backends.script.as_deref(), config)?;
    let db = setup::database(common, backends.db.as_deref())?;
    setup::engine(common, runtime, plugins, llm, db, config).await
}

/// `weft run`'s engine: like [`engine`], but the model (the embedded one,
/// or the config's providers) is loaded only once the graph turns out to
/// grant `llm` to a node ([`setup::DeferredLlm::load`]), so a graph without
/// model calls runs without a model file.
async fn engine_deferred(
    common: &Common,
    backends: &BackendArgs,
) -> Result<(Arc<Engine>, Arc<setup::DeferredLlm>, Config)> {
    let config = setup::config(common)?;
    let runtime = setup::runtime(common, &config.runtime)?;
    let plugins = setup::plugins(common, &runtime).await?;
    let llm = Arc::new(setup::DeferredLlm::default());
    let db = setup::database(common, backends.db.as_deref())?;
    let engine = setup::engine(
        common,
        runtime,
        plugins,
        Arc::clone(&llm) as Arc<dyn weft_runtime::capabilities::llm::LlmBackend>,
        db,
        &config,
    )
    .await?;
    Ok((engine, llm, config))
}

/// Waits for runs and prints one line each; true if all completed cleanly.
pub async fn report_runs(handles: Vec<RunHandle>) -> Result<bool> {
    let mut clean = true;
    for handle in handles {
        let trace = handle.finish().await?;
        let ok = trace.status == RunStatus::Completed && trace.errors().next().is_none();
        clean &= ok;
        let reply: String = trace
            .reply
            .as_deref()
            .unwrap_or("(no reply)")
            .chars()
            .take(100)
            .collect();
        println!(
            "{} {} {} frames={} {}",
            trace.run,
            trace.status.as_str(),
            if ok { "ok" } else { "errors" },
            trace.frames,
            reply.replace('\n', " ")
        );
    }
    Ok(clean)
}

pub async fn run(common: &Common, args: RunArgs) -> Result<ExitCode> {
    let (engine, llm, config) = engine_deferred(common, &args.backends).await?;
    let graph = match engine.load_graph(&args.graph).await {
        Ok(g) => g,
        Err(weft_engine::LoadError::Graph(e)) => {
            for p in e.problems() {
                eprintln!("{p}");
            }
            anyhow::bail!("{e}");
        }
        Err(e) => return Err(e.into()),
    };
    // Runs left unfinished by an earlier process may need the model even
    // when this graph does not.
    let unfinished = match engine.store() {
        Some(store) => !store.unfinished_runs().await?.is_empty(),
        None => false,
    };
    let grants_llm = graph
        .graph()
        .nodes()
        .iter()
        .any(|n| n.grants.allows(weft_runtime::Capability::Llm));
    if grants_llm || unfinished {
        llm.load(setup::llm(
            common,
            args.backends.script.as_deref(),
            &config,
        )?);
    }
    let resumed = setup::resume(&engine).await?;
    let thread = match &args.thread {
        Some(id) => Some(existing_thread(&engine, id).await?),
        None => None,
    };
    let inbound = if args.body_json {
        let body: serde_json::Value =
            serde_json::from_str(&args.message).context("MESSAGE is not JSON")?;
        Inbound {
            to: args.to.clone(),
            kind: args.kind.clone(),
            body: body.to_string(),
        }
    } else {
        Inbound {
            to: args.to.clone(),
            ..Inbound::user_text(&args.message)
        }
    };
    if args.runs > 1 {
        let mut handles = Vec::with_capacity(args.runs as usize);
        for _ in 0..args.runs {
            let thread = engine.open_thread(None, &graph);
            handles.push(engine.start_run(&thread, inbound.clone()).await?);
        }
        eprintln!("started {} runs", handles.len());
        let resumed_ok = report_runs(resumed).await?;
        let ok = report_runs(handles).await?;
        return Ok(if ok && resumed_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    let mut events = engine.subscribe();
    let thread = engine.open_thread(thread.as_deref(), &graph);
    let handle = engine.start_run(&thread, inbound).await?;
    let run_id = handle.run.clone();
    let quiet = args.quiet;
    let progress = tokio::spawn(async move {
        let mut stderr = std::io::stderr();
        let mut streaming = false;
        while let Ok(event) = events.recv().await {
            if event.run != run_id {
                continue;
            }
            if matches!(event.body, EventBody::FrameTrace(_)) {
                break;
            }
            if quiet {
                continue;
            }
            let node = event.node.as_deref().unwrap_or("-");
            match &event.body {
                EventBody::Streaming { delta } => {
                    if !streaming {
                        let _ = write!(stderr, "[{node}] ");
                        streaming = true;
                    }
                    let _ = write!(stderr, "{delta}");
                }
                EventBody::Progress { text } => {
                    let _ = writeln!(stderr, "[{node}] {text}");
                }
                EventBody::Error(e) => {
                    let _ = writeln!(stderr, "[{node}] error {}: {}", e.code, e.message);
                }
                _ => {}
            }
            let _ = stderr.flush();
        }
        if streaming {
            let _ = writeln!(stderr);
        }
    });
    let trace = handle.finish().await?;
    // The progress task stops at the run's trace event; should that event
    // have been dropped (a lagging subscriber), do not wait for it.
    let abort = progress.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(2), progress)
        .await
        .is_err()
    {
        abort.abort();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&trace)?);
    } else {
        match &trace.reply {
            Some(reply) => println!("{reply}\n"),
            None => println!("(no reply)\n"),
        }
        print!("{}", trace.render());
        // This thread's usage (the engine's totals include the store's history).
        let usage = engine
            .ledger()
            .breakdown()
            .by_thread
            .remove(&thread)
            .unwrap_or_default();
        let cost = if usage.unpriced_calls > 0 {
            format!(
                "{:.6} (+{} unpriced calls)",
                usage.cost, usage.unpriced_calls
            )
        } else {
            format!("{:.6}", usage.cost)
        };
        println!(
            "usage: {} llm calls, {} prompt + {} completion tokens, cost {cost}",
            usage.calls, usage.prompt_tokens, usage.completion_tokens
        );
    }
    let resumed_ok = report_runs(resumed).await?;
    Ok(match trace.status {
        RunStatus::Completed if trace.errors().next().is_none() && resumed_ok => ExitCode::SUCCESS,
        _ => ExitCode::from(2),
    })
}

/// The id of a thread `weft run --thread` may continue: well-formed and in
/// the store.
async fn existing_thread(engine: &Engine, id: &str) -> Result<String> {
    let id = weft_engine::ThreadId::parse(id).map_err(|e| anyhow::anyhow!("--thread: {e}"))?;
    let Some(store) = engine.store() else {
        anyhow::bail!("--thread needs the store: without it (--ephemeral) no thread is kept");
    };
    if store.thread(id.as_str()).await?.is_none() {
        anyhow::bail!(
            "--thread: the store has no thread `{id}` (`weft threads` lists the threads it has)"
        );
    }
    Ok(id.into_string())
}
