//! `weft run`: one message through a graph, with live progress.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use weft_engine::{EventBody, Inbound, RunStatus};

use crate::{Common, setup};

/// Arguments of `weft run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The graph file.
    #[arg(long, default_value = "graphs/assistant.yaml")]
    graph: PathBuf,
    /// Answer `llm` calls from a script file (a JSON list of rules:
    /// `{node?, contains?, answer | error, repeat?, delay_ms?}`) instead of a model.
    #[arg(long)]
    script: Option<PathBuf>,
    /// The SQLite database behind the `db` capability (default: the sample
    /// Eras database in the data folder, generated on first use).
    #[arg(long)]
    db: Option<PathBuf>,
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

pub async fn run(common: &Common, args: RunArgs) -> Result<ExitCode> {
    let runtime = setup::runtime(common)?;
    let plugins = setup::plugins(common, &runtime).await?;
    let config = setup::config(common)?;
    let llm = setup::llm(common, args.script.as_deref(), &config)?;
    let db = setup::database(common, args.db.as_deref())?;
    let engine = setup::engine(runtime, plugins, llm, db, &config);
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
    let mut events = engine.subscribe();
    let thread = engine.open_thread(None, &graph);
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
        let usage = engine.usage();
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
    Ok(match trace.status {
        RunStatus::Completed if trace.errors().next().is_none() => ExitCode::SUCCESS,
        _ => ExitCode::from(2),
    })
}
