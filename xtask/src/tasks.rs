//! `cargo xtask demo` and `cargo xtask test`: the README's two commands.
//! Each does all setup (target, plugins) first, so it works on a fresh
//! machine.

use std::path::Path;

use anyhow::{Result, bail};

use crate::{build_plugins, cargo, fetch_model, setup, ui};

/// Everything a fresh machine needs before building the host: system
/// tools, the wasm target (with the plugins), the model, and the
/// dashboard the host embeds.
pub fn setup(root: &Path) -> Result<()> {
    setup::system_packages()?;
    build_plugins::run(root)?;
    fetch_model::run(root)?;
    ui::build(root)?;
    Ok(())
}

/// Set up, then run the host's main job: `weft serve` on the embedded
/// defaults (the SQLite store in `data/`, the embedded model, the sample
/// Eras database generated on first use, `graphs/assistant.yaml` active)
/// on 127.0.0.1:8080 until Ctrl-C. Extra arguments go to `weft serve`.
pub fn demo(root: &Path, args: &[String]) -> Result<()> {
    setup(root)?;
    let mut command = cargo(root);
    command
        .args(["run", "--release", "--package", "weft", "--", "serve"])
        .args(args);
    run(command, "the demo")
}

/// Set up (and install the test tools: schemathesis and OpenAI's Python
/// client), then run every test of the workspace (release: the
/// wasmtime compiler is far too slow unoptimised). Extra arguments go to
/// `cargo test`.
pub fn test(root: &Path, args: &[String]) -> Result<()> {
    setup(root)?;
    setup::test_packages()?;
    crate::tools::install(root)?;
    precompile(root)?;
    let mut command = cargo(root);
    command
        .args(["test", "--release", "--workspace"])
        .args(args);
    run(command, "the tests")
}

/// Compiles the Python and JavaScript plugins (10–20 s each; Rust ones
/// take milliseconds) into the cache the test hosts share
/// (`artifacts/cache`), once, before tests that run in parallel would
/// each compile them.
fn precompile(root: &Path) -> Result<()> {
    for file in build_plugins::componentized_artifacts(root)? {
        let mut command = cargo(root);
        command
            .args(["run", "--quiet", "--release", "--package", "weft", "--"])
            .arg("--cache-dir")
            .arg(root.join("artifacts/cache"))
            .args(["plugin", "inspect"])
            .arg(&file)
            .stdout(std::process::Stdio::null());
        run(command, &format!("precompiling {}", file.display()))?;
    }
    Ok(())
}

fn run(mut command: std::process::Command, what: &str) -> Result<()> {
    let status = command.status()?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
