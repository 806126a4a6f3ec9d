//! `cargo xtask build-plugins`: build every plugin and test guest as a
//! component and collect them: shipped plugins in `artifacts/plugins/` (the
//! folder `weft` loads by default), test guests in `artifacts/guests/`.
//!
//! One cargo invocation builds all Rust crates, so shared dependencies (the
//! SDK, serde) compile once. Python (`app.py`) and JavaScript (`app.js`)
//! projects in the same folders are built with `weft-build`, whose
//! toolchains (componentize-py, componentize-js) are installed into
//! `.tools/` on first use; they are rebuilt only when their sources change.
//! Host tests load the collected components instead of running nested
//! builds, and fail with this command when one is missing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use crate::manifest::{self, Crate};

/// The target every plugin is built for.
const TARGET: &str = "wasm32-wasip2";

/// The cargo profile plugins are built with (see the root `Cargo.toml`).
const PROFILE: &str = "plugin";

/// Folders whose subdirectories are plugin crates, and where their
/// components are collected, relative to the root.
const PLUGIN_DIRS: [(&str, &str); 2] = [
    ("plugins", "artifacts/plugins"),
    ("tests/guests", "artifacts/guests"),
];

/// Run the task for the workspace at `root`.
pub fn run(root: &Path) -> Result<()> {
    let mut crates = Vec::new();
    for (dir, dest) in PLUGIN_DIRS {
        for krate in manifest::crates_in(&root.join(dir))? {
            crates.push((krate, root.join(dest)));
        }
    }
    ensure!(
        !crates.is_empty(),
        "no plugin crates under {}",
        PLUGIN_DIRS.map(|(dir, _)| dir).join(" or ")
    );

    weft_build::ensure_rust_target()?;
    let all: Vec<Crate> = crates.iter().map(|(k, _)| k.clone()).collect();
    build(root, &all)?;

    let out_dir = target_dir(root).join(TARGET).join(PROFILE);
    let mut total = 0;
    for (krate, artifacts) in &crates {
        std::fs::create_dir_all(artifacts)
            .with_context(|| format!("creating {}", artifacts.display()))?;
        let size = collect(krate, &out_dir, artifacts)?;
        println!("{:<28} {:>10}", krate.package, human(size));
        total += size;
    }
    let projects = componentized(root)?;
    let tools = weft_build::Toolchains::at(root.join(TOOLS));
    for (project, artifacts) in &projects {
        let output = artifacts.join(format!("{}.wasm", project.name));
        let built = weft_build::build(project, &output, &tools, &weft_build::Stderr)
            .with_context(|| format!("building {}", project.dir.display()))?;
        println!(
            "{:<28} {:>10}  ({}{})",
            project.name,
            human(built.size),
            project.lang,
            if built.rebuilt {
                format!(", built in {:.1} s", built.took.as_secs_f64())
            } else {
                ", unchanged".to_owned()
            }
        );
        total += built.size;
    }
    println!(
        "{} components, {} in {}",
        crates.len() + projects.len(),
        human(total),
        PLUGIN_DIRS.map(|(_, dest)| dest).join(" and ")
    );
    Ok(())
}

/// Where the Python and JavaScript toolchains are installed (git-ignored).
pub const TOOLS: &str = ".tools";

/// The Python and JavaScript plugin projects of [`PLUGIN_DIRS`], each with
/// the folder its component goes to.
fn componentized(root: &Path) -> Result<Vec<(weft_build::Project, PathBuf)>> {
    let mut projects = Vec::new();
    for (dir, dest) in PLUGIN_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for path in dirs {
            if path.join("Cargo.toml").exists() || !path.is_dir() {
                continue;
            }
            if let Ok(project) = weft_build::Project::open(&path) {
                projects.push((project, root.join(dest)));
            }
        }
    }
    Ok(projects)
}

/// The components of the Python and JavaScript plugins and test guests.
pub fn componentized_artifacts(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(componentized(root)?
        .into_iter()
        .map(|(project, dest)| dest.join(format!("{}.wasm", project.name)))
        .collect())
}

/// Build all `crates` in one cargo invocation.
fn build(root: &Path, crates: &[Crate]) -> Result<()> {
    let mut command = crate::cargo(root);
    command.args(["build", "--profile", PROFILE, "--target", TARGET]);
    for krate in crates {
        command.args(["-p", &krate.package]);
    }
    let status = command.status().context("running cargo")?;
    if !status.success() {
        bail!("building the plugins failed ({status}); see cargo's output above");
    }
    Ok(())
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to `root`, where
/// cargo runs) or `root/target`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Copy `krate`'s component from `out_dir` to `artifacts/<package>.wasm`,
/// returning its size in bytes.
fn collect(krate: &Crate, out_dir: &Path, artifacts: &Path) -> Result<u64> {
    let built = out_dir.join(format!("{}.wasm", krate.lib));
    ensure!(
        built.is_file(),
        "{} was built but {} is missing; is its crate-type [\"cdylib\"]? (in {})",
        krate.package,
        built.display(),
        krate.dir.join("Cargo.toml").display()
    );
    let dest = artifacts.join(format!("{}.wasm", krate.package));
    // A host test loading the artifact meanwhile sees the old or the new
    // component, never half of one.
    weft_build::copy_atomically(&built, &dest)?;
    Ok(std::fs::metadata(&dest)
        .with_context(|| format!("reading {}", dest.display()))?
        .len())
}

/// A size for people: `812 B`, `95.3 KiB`, `1.2 MiB`.
fn human(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    // Sizes are far below 2^53, so the conversion is exact.
    let value = bytes as f64;
    if value < KIB {
        format!("{bytes} B")
    } else if value < KIB * KIB {
        format!("{:.1} KiB", value / KIB)
    } else {
        format!("{:.1} MiB", value / (KIB * KIB))
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn sizes_are_readable() {
        assert_eq!(human(812), "812 B");
        assert_eq!(human(97_587), "95.3 KiB");
        assert_eq!(human(1_258_291), "1.2 MiB");
    }
}
