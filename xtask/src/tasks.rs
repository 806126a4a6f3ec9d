//! `cargo xtask demo` and `cargo xtask test`: the README's two commands.
//! Each does all setup (target, plugins) first, so it works on a fresh
//! machine.

use std::path::Path;

use anyhow::{Result, bail};

use crate::{build_plugins, cargo};

/// Build the plugins, then run the host's main job. Until the server lands
/// that is the one-plugin demo of `weft-runtime`.
pub fn demo(root: &Path, args: &[String]) -> Result<()> {
    build_plugins::run(root)?;
    let mut command = cargo(root);
    command
        .args([
            "run",
            "--release",
            "--package",
            "weft-runtime",
            "--example",
            "demo",
            "--",
        ])
        .args(args);
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
