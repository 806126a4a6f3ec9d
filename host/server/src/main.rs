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
mod graph_cmd;
mod llm_cmd;
mod plugin_cases;
mod plugin_cmd;
mod reload;
mod run_cmd;
mod serve_cmd;
mod setup;
mod store_cmd;
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
    #[arg(
        long,
        global = true,
        env = "WEFT_MODEL",
        default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    )]
    model: PathBuf,
    /// The durable store (SQLite); default: `weft.db` in the data folder
    /// (or the config's `store.path`).
    #[arg(long, global = true, env = "WEFT_STORE")]
    store: Option<PathBuf>,
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

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs one message through a graph and prints the reply and the frame trace.
    Run(run_cmd::RunArgs),
    /// Graph files.
    #[command(subcommand)]
    Graph(graph_cmd::GraphCommand),
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
    /// Usage of a running server (`--server`): totals, per node, per model.
    Usage(client_cmd::UsageArgs),
    /// Serves the operators' API (REST, events, OpenAPI) on the embedded
    /// defaults until SIGINT/SIGTERM or `POST /api/v1/organism/stop`.
    Serve(serve_cmd::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        exit_quietly_on_closed_pipe();
    }
    // The server logs structured JSON; the other commands log for people.
    setup::init_tracing(&cli.common.log, matches!(cli.command, Command::Serve(_)));
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
            Command::Graph(cmd) => graph_cmd::run(&cli.common, cmd).await,
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
            Command::Usage(args) => client_cmd::usage(&cli.common, args).await,
            Command::Serve(args) => serve_cmd::run(&cli.common, args).await,
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
