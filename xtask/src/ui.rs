//! The operators' dashboard (`ui/`): its npm packages (pinned by
//! `ui/package-lock.json`) and its build into `ui/dist`, which the host
//! embeds when it is compiled.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// `npm ci` (when the installed packages are older than the lock file),
/// then `npm run build` (type check against the API document, bundle).
pub fn build(root: &Path) -> Result<()> {
    let ui = root.join("ui");
    let lock = ui.join("package-lock.json");
    let installed = ui.join("node_modules/.package-lock.json");
    let fresh = match (modified(&installed), modified(&lock)) {
        (Some(i), Some(l)) => i >= l,
        _ => false,
    };
    if !fresh {
        eprintln!("installing the dashboard's npm packages (npm ci in ui/) …");
        npm(&ui, &["ci", "--no-audit", "--no-fund"])?;
    }
    eprintln!("building the dashboard (npm run build in ui/) …");
    npm(&ui, &["run", "build"])
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn npm(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .status()
        .context("running npm (install Node.js and npm)")?;
    if !status.success() {
        bail!(
            "npm {} in {} failed ({status})",
            args.join(" "),
            dir.display()
        );
    }
    Ok(())
}
