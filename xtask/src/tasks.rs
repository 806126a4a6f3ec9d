//! `cargo xtask demo` and `cargo xtask test`: the README's two commands.
//! Each does all setup (target, plugins) first, so it works on a fresh
//! machine.

use std::path::Path;

use anyhow::{Result, bail};

use crate::{build_plugins, cargo};

/// The question the demo asks when given none.
const DEMO_QUESTION: &str = "how many devices does customer 1042 have?";

/// Build the plugins, then run the host's main job: one message through
/// `graphs/assistant.yaml` with `weft run` (which generates the sample Eras
/// database on first use). Until the model providers land, the LLM is the
/// scripted provider with `graphs/scripts/assistant-demo.json`.
pub fn demo(root: &Path, args: &[String]) -> Result<()> {
    build_plugins::run(root)?;
    let mut command = cargo(root);
    command.args([
        "run",
        "--release",
        "--package",
        "weft",
        "--",
        "run",
        "--graph",
        "graphs/assistant.yaml",
        "--script",
        "graphs/scripts/assistant-demo.json",
    ]);
    if args.is_empty() {
        command.arg(DEMO_QUESTION);
    } else {
        command.args(args);
    }
    run(command, "the demo")
}

/// Build the plugins, then run every test of the workspace (release: the
/// wasmtime compiler is far too slow unoptimised). Extra arguments go to
/// `cargo test`.
pub fn test(root: &Path, args: &[String]) -> Result<()> {
    build_plugins::run(root)?;
    let mut command = cargo(root);
    command
        .args(["test", "--release", "--workspace"])
        .args(args);
    run(command, "the tests")
}

fn run(mut command: std::process::Command, what: &str) -> Result<()> {
    let status = command.status()?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
