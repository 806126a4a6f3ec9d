//! `weft`: the host for WebAssembly agent nodes.
//!
//! ```text
//! weft run --graph graphs/assistant.yaml --script graphs/scripts/assistant.json "how many devices does customer 1042 have?"
//! weft graph validate graphs/framed.yaml
//! weft plugin inspect artifacts/plugins/weft-plugin-pa.wasm
//! weft llm --schema '{"type":"object"}' "Describe a heat meter as JSON"
//! weft bench llm
//! weft bench frames --runs 2000 --concurrency 8 --durable
//! weft bench soak --runs 20000
//! weft replay thread-5f0c… --frame 2
//! weft fork thread-5f0c… --after 1
//! weft prune --older-than 30d
//! weft inject --server http://127.0.0.1:8080 --key "$WEFT_KEY" --wait "which eras are there?"
//! weft usage --server http://127.0.0.1:8080 --key "$WEFT_KEY"
//! ```

mod bench;
mod bench_compare;
mod bench_llm;
mod bench_plugins;
mod bench_soak;
mod bus;
mod client_cmd;
mod config;
mod config_cmd;
mod eval_cmd;
mod graph_cmd;
mod hooks_cmd;
mod llm_cmd;
mod mcp_tools;
mod plugin_cases;
mod plugin_cmd;
mod progress;
mod reload;
mod run_cmd;
mod schema_doc;
mod serve_cmd;
mod setup;
mod store_cmd;
mod test_cmd;
mod tools_server;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Runs graphs of WebAssembly agent nodes.
#[derive(Parser, Debug)]
#[command(name = "weft", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    common: Common,
}

/// Options every command understands.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Folder of plugin components (`*.wasm`), as built by `cargo xtask build-plugins`.
    #[arg(
        long,
        global = true,
        env = "WEFT_PLUGIN_DIR",
        default_value = "artifacts/plugins"
    )]
    plugins: PathBuf,
    /// Data folder: compiled-component cache and the sample database.
    #[arg(long, global = true, env = "WEFT_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Compiled-component cache (default: `cache` in the data folder).
    /// Hosts that share one skip compiling what another compiled.
    #[arg(long, global = true, env = "WEFT_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Config file (LLM providers, model routes, budgets, prices); see the README.
    #[arg(long, global = true, env = "WEFT_CONFIG")]
    config: Option<PathBuf>,
    /// The GGUF model of the embedded provider, used when the config file
    /// names no providers (`cargo xtask fetch-model` downloads the default).
    /// Default: `models/SmolLM2-135M-Instruct.Q4_1.gguf` in the current
    /// folder or the nearest folder above it that has one, else beside the
    /// project the `weft` binary was built in, else in
    /// `$XDG_DATA_HOME/weft` (`~/.local/share/weft`).
    #[arg(long, global = true, env = "WEFT_MODEL")]
    model: Option<PathBuf>,
    /// The durable store: a SQLite file, or a PostgreSQL database as
    /// `postgres://user:password@host:port/database`; default: the
    /// config's `store.url` or `store.path`, else `weft.db` in the data
    /// folder.
    #[arg(long, global = true, env = "WEFT_STORE")]
    store: Option<PathBuf>,
    /// This host's id in the leases of a PostgreSQL store shared by several
    /// hosts; default: `host-`, the process id and the start time.
    #[arg(long, global = true, env = "WEFT_HOST_ID")]
    host_id: Option<String>,
    /// Keep nothing: run without the store (runs are not durable, replay
    /// and fork are unavailable).
    #[arg(long, global = true, env = "WEFT_EPHEMERAL")]
    ephemeral: bool,
    /// A running `weft serve` for the client commands (`inject`, `usage`,
    /// and `threads` when given); default for those that need one:
    /// http://127.0.0.1:8080.
    #[arg(long, global = true, env = "WEFT_SERVER")]
    server: Option<String>,
    /// API key (or OIDC token) for `--server`.
    #[arg(long, global = true, env = "WEFT_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Log filter (tracing's env-filter syntax), e.g. `info,weft_engine=debug`.
    #[arg(long, global = true, env = "WEFT_LOG", default_value = "warn")]
    log: String,
}

/// The default model file, relative to a project folder.
pub const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

impl Common {
    /// The embedded provider's model file: `--model` as given, else the
    /// first [`model_candidates`](Self::model_candidates) that exists (else
    /// the first of them, for the error to name).
    pub fn model_path(&self) -> PathBuf {
        if let Some(path) = &self.model {
            return path.clone();
        }
        let candidates = Self::model_candidates();
        candidates
            .iter()
            .find(|p| p.is_file())
            .or(candidates.first())
            .cloned()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL))
    }

    /// Where the default model is looked for, in order: the current folder
    /// and each folder above it; the folders above the `weft` binary (a
    /// build inside the project: `target/release/weft`); the user's data
    /// folder.
    pub fn model_candidates() -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(cwd) = std::env::current_dir() {
            out.extend(cwd.ancestors().map(|d| d.join(DEFAULT_MODEL)));
        }
        if let Some(exe) = std::env::current_exe()
            .ok()
            .and_then(|e| e.canonicalize().ok())
        {
            out.extend(exe.ancestors().skip(1).map(|d| d.join(DEFAULT_MODEL)));
        }
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
        if let Some(home) = data_home {
            out.push(home.join("weft").join(DEFAULT_MODEL));
        }
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|p| seen.insert(p.clone()));
        out
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs one message through a graph and prints the reply and the frame trace.
    Run(run_cmd::RunArgs),
    /// Runs a question set (JSON Lines, expected answers computed by SQL)
    /// through a graph: accuracy per kind and language, latency, tokens.
    Eval(eval_cmd::EvalArgs),
    /// Runs scenario suites (Markdown: steps sent to a graph and checks of
    /// the replies, traces and UI) and reports each step; `--junit FILE`.
    Test(test_cmd::TestArgs),
    /// Graph files.
    #[command(subcommand)]
    Graph(graph_cmd::GraphCommand),
    /// Config files.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Plugin components.
    #[command(subcommand)]
    Plugin(plugin_cmd::PluginCommand),
    /// Creates a plugin project (Rust, Python or JavaScript) with a test,
    /// ready for `weft plugin build` and `weft plugin test`.
    New(plugin_cmd::NewArgs),
    /// Sends one prompt to the configured model and streams the answer.
    Llm(llm_cmd::LlmArgs),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Continues the runs a previous process left unfinished and waits for them.
    Resume(store_cmd::ResumeArgs),
    /// Re-executes a thread's recorded frames from their journals and checks
    /// that every output is identical.
    Replay(store_cmd::ReplayArgs),
    /// Starts a new thread from the state of a thread after one of its frames.
    Fork(store_cmd::ForkArgs),
    /// Removes finished threads older than an age (usage totals are kept).
    Prune(store_cmd::PruneArgs),
    /// Lists threads: from the store, or from a running server with `--server`.
    Threads(store_cmd::ThreadsArgs),
    /// Sends a message to a running server (`--server`); `--wait` prints the reply.
    Inject(client_cmd::InjectArgs),
    /// Answers (or declines) the question a run of a running server waits
    /// on (`--server`); `--list` shows the run's questions.
    ResumeRun(client_cmd::ResumeRunArgs),
    /// A running server's schedules (`--server`): list, add, show, pause,
    /// resume, delete.
    Schedules(hooks_cmd::SchedulesArgs),
    /// A running server's webhooks (`--server`): list, add, deliveries,
    /// delete.
    Webhooks(hooks_cmd::WebhooksArgs),
    /// Usage of a running server (`--server`): totals, per node, per model.
    Usage(client_cmd::UsageArgs),
    /// Serves the operators' API (REST, events, OpenAPI) on the embedded
    /// defaults until SIGINT/SIGTERM or `POST /api/v1/organism/stop`.
    Serve(serve_cmd::ServeArgs),
    /// An MCP server on standard input and output with date and arithmetic
    /// tools (today, days_between, add_days, calculate): the built-in tool
    /// server `local` that `weft serve` starts for the `tools` capability.
    ToolsServer,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        exit_quietly_on_closed_pipe();
    }
    // The server logs structured JSON (and exports traces when its config
    // says so); the other commands log for people. A config file that does
    // not load is reported by the command itself.
    let telemetry = match &cli.command {
        Command::Serve(_) => setup::config(&cli.common).ok().and_then(|c| c.telemetry),
        _ => None,
    };
    let _telemetry = match setup::init_tracing(
        &cli.common.log,
        matches!(cli.command, Command::Serve(_)),
        telemetry.as_ref(),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run_cmd::run(&cli.common, args).await,
            Command::Eval(args) => eval_cmd::run(&cli.common, args).await,
            Command::Test(args) => test_cmd::run(&cli.common, args).await,
            Command::Graph(cmd) => graph_cmd::run(&cli.common, cmd).await,
            Command::Config(cmd) => config_cmd::run(cmd),
            Command::Llm(args) => llm_cmd::run(&cli.common, args).await,
            Command::Plugin(cmd) => plugin_cmd::run(&cli.common, cmd).await,
            Command::New(args) => plugin_cmd::new(args),
            Command::Bench(cmd) => bench::run(&cli.common, cmd).await,
            Command::Resume(args) => store_cmd::resume(&cli.common, args).await,
            Command::Replay(args) => store_cmd::replay(&cli.common, args).await,
            Command::Fork(args) => store_cmd::fork(&cli.common, args).await,
            Command::Prune(args) => store_cmd::prune(&cli.common, args).await,
            Command::Threads(args) if cli.common.server.is_some() => {
                client_cmd::threads(&cli.common, args).await
            }
            Command::Threads(args) => store_cmd::threads(&cli.common, args).await,
            Command::Inject(args) => client_cmd::inject(&cli.common, args).await,
            Command::ResumeRun(args) => client_cmd::resume_run(&cli.common, args).await,
            Command::Schedules(args) => hooks_cmd::schedules(&cli.common, args).await,
            Command::Webhooks(args) => hooks_cmd::webhooks(&cli.common, args).await,
            Command::Usage(args) => client_cmd::usage(&cli.common, args).await,
            Command::Serve(args) => serve_cmd::run(&cli.common, args).await,
            Command::ToolsServer => tools_server::run().await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A command whose output goes into a pipe that closes early
/// (`weft threads | head -1`) ends quietly, as Unix tools do, instead of
/// panicking on the failed print. Rust ignores SIGPIPE by default; this
/// restores the default action for the commands that print. Sockets are
/// not affected: the standard library writes to them with `MSG_NOSIGNAL`.
fn exit_quietly_on_closed_pipe() {
    #[cfg(unix)]
    #[allow(unsafe_code)] // the workspace denies it; this one call is reviewed
    // SAFETY: called at the start of `main`, before any thread is spawned;
    // `SIG_DFL` is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Clap's own consistency checks over every subcommand (a subcommand
    /// option that clashes with a global one panics only when used).
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
