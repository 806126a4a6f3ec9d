//! Commands on the durable store: `weft resume`, `replay`, `fork`, `prune`
//! and `threads`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use weft_engine::{Engine, ReplayOptions, ReplayPlugins};
use weft_runtime::capabilities::db::InMemoryDb;
use weft_runtime::capabilities::llm::Unavailable;

use crate::progress::Progress;
use crate::run_cmd::{BackendArgs, engine, report_runs};
use crate::{Common, setup};

/// Arguments of `weft resume`.
#[derive(Args, Debug)]
pub struct ResumeArgs {
    #[command(flatten)]
    backends: BackendArgs,
}

/// Arguments of `weft replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The thread.
    thread: String,
    /// Only this frame (counted over the thread's runs, from 0).
    #[arg(long)]
    frame: Option<u64>,
    /// Which plugin versions run: those that ran (kept in the store), or
    /// those installed now (to see how a changed plugin behaves on
    /// recorded traffic).
    #[arg(long, value_enum, default_value_t = Versions::Recorded)]
    versions: Versions,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `--versions` of `weft replay`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Versions {
    Recorded,
    Current,
}

/// Arguments of `weft fork`.
#[derive(Args, Debug)]
pub struct ForkArgs {
    /// The thread to fork.
    thread: String,
    /// The frame to fork after (counted over the thread's runs, from 0).
    #[arg(long)]
    after: u64,
    #[command(flatten)]
    backends: BackendArgs,
}

/// Arguments of `weft prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove threads whose runs all finished longer ago than this, e.g.
    /// `30d`, `12h`, `0s` (everything finished).
    #[arg(long, value_parser = humantime::parse_duration)]
    older_than: Duration,
}

/// Arguments of `weft threads`.
#[derive(Args, Debug)]
pub struct ThreadsArgs {
    /// At most this many, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    /// Skip this many.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Only threads with this status (running, completed, killed, …).
    #[arg(long)]
    pub status: Option<String>,
    /// Only threads in which this node ran.
    #[arg(long)]
    pub node: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A line of `weft threads`.
pub struct ThreadRow {
    pub id: String,
    pub project: String,
    pub status: String,
    pub runs: u64,
    pub frames: u64,
    pub forked_from: Option<String>,
}

/// Prints threads as a table (with the filter's total when it is more).
pub fn print_threads(rows: &[ThreadRow], total: Option<u64>) {
    println!(
        "{:<24} {:<10} {:<16} {:>5} {:>7}  forked from",
        "thread", "project", "status", "runs", "frames"
    );
    for t in rows {
        println!(
            "{:<24} {:<10} {:<16} {:>5} {:>7}  {}",
            t.id,
            t.project,
            t.status,
            t.runs,
            t.frames,
            t.forked_from.as_deref().unwrap_or_default()
        );
    }
    if let Some(total) = total.filter(|&t| t > rows.len() as u64) {
        println!(
            "({} of {total} shown; --limit and --offset page)",
            rows.len()
        );
    }
}

/// An engine for commands that run no model and no query: every answer
/// comes from the store's journals. `read_only` opens the store without
/// its lock (a running weft may hold it) and refuses writes.
async fn offline_engine(common: &Common, read_only: bool) -> Result<Arc<Engine>> {
    if common.ephemeral {
        bail!("this command reads the store: drop --ephemeral");
    }
    let config = setup::config(common)?;
    let runtime = setup::runtime(common, &config.runtime)?;
    let plugins = setup::plugins(common, &runtime).await?;
    let store = if read_only {
        setup::read_store(common, &config).await?
    } else {
        setup::open_store(common, &config).await?
    };
    setup::engine_on(
        runtime,
        plugins,
        Arc::new(Unavailable),
        Arc::new(InMemoryDb::default()),
        &config,
        Some(store),
        common.host_id.clone(),
    )
    .await
}

pub async fn resume(common: &Common, args: ResumeArgs) -> Result<ExitCode> {
    if common.ephemeral {
        bail!("there is nothing to resume without the store: drop --ephemeral");
    }
    let engine = engine(common, &args.backends).await?;
    let handles = setup::resume(&engine).await?;
    if handles.is_empty() {
        eprintln!("no unfinished runs");
    }
    let ok = report_runs(handles).await?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

pub async fn replay(common: &Common, args: ReplayArgs) -> Result<ExitCode> {
    let engine = offline_engine(common, true).await?;
    let options = ReplayOptions {
        frame: args.frame,
        plugins: match args.versions {
            Versions::Recorded => ReplayPlugins::Recorded,
            Versions::Current => ReplayPlugins::Current,
        },
    };
    let progress = Progress::spinner(format!("replaying thread {}", args.thread));
    let report = engine.replay(&args.thread, options).await?;
    drop(progress);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for change in &report.changed_plugins {
            println!(
                "plugin of node {} changed: recorded {}, replayed {}",
                change.node,
                &change.recorded[..12.min(change.recorded.len())],
                &change.replayed[..12.min(change.replayed.len())]
            );
        }
        for d in &report.divergences {
            println!(
                "DIVERGED frame {} (run {} frame {}) node {}: {}\n  recorded: {}\n  replayed: {}",
                d.seq, d.run, d.frame, d.node, d.what, d.recorded, d.replayed
            );
        }
        let verdict = if report.reproduced() {
            "reproduced"
        } else {
            "diverged"
        };
        println!(
            "{verdict}: {} frames, {} invocations, {} capability calls answered from the journal, {} divergences",
            report.frames,
            report.invocations,
            report.journal_entries,
            report.divergences.len()
        );
    }
    Ok(if report.reproduced() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

pub async fn fork(common: &Common, args: ForkArgs) -> Result<ExitCode> {
    if common.ephemeral {
        bail!("fork reads the store: drop --ephemeral");
    }
    let engine = engine(common, &args.backends).await?;
    let (thread, run) = engine.fork(&args.thread, args.after).await?;
    println!(
        "forked {} after frame {} as {thread}",
        args.thread, args.after
    );
    let Some(run) = run else {
        println!("(nothing was pending after that frame: the new thread is idle)");
        return Ok(ExitCode::SUCCESS);
    };
    let trace = run.finish().await?;
    match &trace.reply {
        Some(reply) => println!("{reply}\n"),
        None => println!("(no reply)\n"),
    }
    print!("{}", trace.render());
    Ok(
        if trace.status == weft_engine::RunStatus::Completed && trace.errors().next().is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        },
    )
}

pub async fn prune(common: &Common, args: PruneArgs) -> Result<ExitCode> {
    let engine = offline_engine(common, false).await?;
    let progress = Progress::spinner("pruning");
    let report = engine.prune(args.older_than).await?;
    drop(progress);
    println!(
        "pruned {} threads: {} runs, {} frames, {} messages, {} journal entries, {} memory entries (usage totals kept)",
        report.threads, report.runs, report.frames, report.messages, report.journal, report.memory
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn threads(common: &Common, args: ThreadsArgs) -> Result<ExitCode> {
    if common.ephemeral {
        bail!("threads are listed from the store: drop --ephemeral");
    }
    let config = setup::config(common)?;
    let store = setup::read_store(common, &config).await?;
    let page = weft_engine::Store::threads(
        store.as_ref(),
        weft_engine::store::ThreadFilter {
            project: None,
            status: args.status,
            node: args.node,
            ..weft_engine::store::ThreadFilter::default()
        },
        args.limit,
        args.offset,
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page.items)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<ThreadRow> = page
        .items
        .into_iter()
        .map(|t| ThreadRow {
            id: t.id,
            project: t.project,
            status: t.status,
            runs: t.runs,
            frames: t.frames,
            forked_from: t
                .forked_from
                .map(|(thread, seq)| format!("{thread} @ {seq}")),
        })
        .collect();
    print_threads(&rows, Some(page.total));
    Ok(ExitCode::SUCCESS)
}
