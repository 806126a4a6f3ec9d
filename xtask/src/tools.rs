//! Test tools from PyPI, in a virtual environment of the workspace
//! (`.tools/venv`, not committed): schemathesis, which the API tests run
//! against the served OpenAPI document.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The schemathesis release the tests are written for.
pub const SCHEMATHESIS: &str = "4.32.5";

/// The `st` command of the tools' environment.
pub fn schemathesis_bin(root: &Path) -> PathBuf {
    root.join(".tools/venv/bin/st")
}

/// Creates the environment and installs schemathesis, unless the pinned
/// version is there already.
pub fn schemathesis(root: &Path) -> Result<()> {
    let st = schemathesis_bin(root);
    if let Ok(out) = Command::new(&st).arg("--version").output()
        && String::from_utf8_lossy(&out.stdout).contains(SCHEMATHESIS)
    {
        return Ok(());
    }
    let venv = root.join(".tools/venv");
    eprintln!(
        "installing schemathesis {SCHEMATHESIS} into {} …",
        venv.display()
    );
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("running python3 -m venv (install python3 and python3-venv)")?;
    if !status.success() {
        bail!("python3 -m venv {} failed ({status})", venv.display());
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("schemathesis=={SCHEMATHESIS}"))
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install schemathesis=={SCHEMATHESIS} failed ({status})");
    }
    Ok(())
}
