//! Test tools from PyPI, in a virtual environment of the workspace
//! (`.tools/venv`, not committed): schemathesis, which the API tests run
//! against the served OpenAPI document, OpenAI's Python client, which the
//! `/v1` tests run against the OpenAI-compatible endpoint, and the official
//! MCP Python SDK, which the `/mcp` tests run.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The schemathesis release the tests are written for.
pub const SCHEMATHESIS: &str = "4.32.5";

/// The release of OpenAI's Python client (`openai`) the tests are written for.
pub const OPENAI: &str = "3.63.0";

/// The release of the official MCP Python SDK (`mcp`) the tests are
/// written for.
pub const MCP: &str = "2.3.0";

/// Every package of the environment, with its pinned version.
const PACKAGES: [(&str, &str); 3] = [
    ("schemathesis", SCHEMATHESIS),
    ("openai", OPENAI),
    ("mcp", MCP),
];

/// The version of `package` installed in `venv`, if any.
fn installed(venv: &Path, package: &str) -> Option<String> {
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))",
            package,
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Creates the environment and installs the pinned packages, unless the
/// pinned versions are there already.
pub fn install(root: &Path) -> Result<()> {
    let venv = root.join(".tools/venv");
    let missing: Vec<String> = PACKAGES
        .iter()
        .filter(|(package, version)| installed(&venv, package).as_deref() != Some(*version))
        .map(|(package, version)| format!("{package}=={version}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "installing {} into {} …",
        missing.join(", "),
        venv.display()
    );
    if !venv.join("bin/pip").exists() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("running python3 -m venv (install python3 and python3-venv)")?;
        if !status.success() {
            bail!("python3 -m venv {} failed ({status})", venv.display());
        }
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(&missing)
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install {} failed ({status})", missing.join(" "));
    }
    Ok(())
}
