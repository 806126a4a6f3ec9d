//! The system tools the build needs besides Rust: llama.cpp (the embedded
//! model provider) is built with CMake and its bindings are generated with
//! libclang; the JavaScript plugins are built with componentize-js, which
//! runs on Node.js and is installed with npm. Missing ones are installed
//! with apt-get when this runs as root on Debian or Ubuntu; otherwise the
//! command to run is named.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

/// A check that tells whether a package is present.
type Present = fn() -> bool;

/// Debian packages and the check that tells each is present.
const PACKAGES: [(&str, Present); 5] = [
    ("cmake", || runs("cmake", &["--version"])),
    ("clang", || runs("clang", &["--version"])),
    ("libclang-dev", has_libclang),
    ("nodejs", || runs("node", &["--version"])),
    ("npm", || runs("npm", &["--version"])),
];

/// Debian packages only the tests need: the servers the multi-host tests
/// start on loopback with throwaway data folders (PostgreSQL, NATS) and
/// the browser the dashboard tests drive.
const TEST_PACKAGES: [(&str, Present); 3] = [
    ("postgresql", || postgres_bin("initdb").is_some()),
    ("nats-server", || runs("nats-server", &["--version"])),
    ("chromium", || runs("chromium", &["--version"])),
];

/// Installs whatever of [`PACKAGES`] is missing.
pub fn system_packages() -> Result<()> {
    install_missing(
        &PACKAGES,
        "the build needs {} (llama.cpp, the embedded model, needs cmake and clang; the JavaScript plugins need Node.js and npm)",
    )
}

/// Installs whatever of [`TEST_PACKAGES`] is missing.
pub fn test_packages() -> Result<()> {
    install_missing(
        &TEST_PACKAGES,
        "the tests need {} (PostgreSQL and NATS for the multi-host tests, Chromium for the dashboard tests)",
    )
}

/// Installs PostgreSQL and NATS if missing (for `cargo xtask cluster`).
pub fn cluster_packages() -> Result<()> {
    install_missing(
        &TEST_PACKAGES[..2],
        "a local system of several hosts needs {} (the shared store and the bus)",
    )
}

/// PostgreSQL's server programs (`initdb`, `pg_ctl`, `postgres`): on the
/// `PATH`, or in Debian's versioned folder, which is not on it.
pub fn postgres_bin(program: &str) -> Option<std::path::PathBuf> {
    if runs(program, &["--version"]) {
        return Some(program.into());
    }
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin").join(program))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// Installs the missing packages of `packages` with apt-get; `why` says
/// what needs them (`{}` stands for their names).
fn install_missing(packages: &[(&str, Present)], why: &str) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, present)| !present())
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !runs("apt-get", &["--version"]) || !is_root() {
        let why = why.replace("{}", &missing.join(", "));
        bail!("{why}; install them, e.g. `sudo {install}`");
    }
    println!("installing {} …", missing.join(", "));
    let status = Command::new("apt-get")
        .arg("update")
        .status()
        .context("running apt-get update")?;
    ensure!(status.success(), "`apt-get update` failed ({status})");
    let status = Command::new("sh")
        .args(["-c", &format!("DEBIAN_FRONTEND=noninteractive {install}")])
        .status()
        .context("running apt-get install")?;
    ensure!(status.success(), "`{install}` failed ({status})");
    Ok(())
}

/// Whether `program args` runs and succeeds.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// libclang as bindgen finds it: `LIBCLANG_PATH`, or an LLVM install.
fn has_libclang() -> bool {
    if std::env::var_os("LIBCLANG_PATH").is_some() {
        return true;
    }
    let Ok(entries) = std::fs::read_dir("/usr/lib") else {
        return false;
    };
    let llvm_dirs = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("llvm-"))
        .map(|e| e.path().join("lib"));
    let multiarch = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
    ]
    .into_iter()
    .map(std::path::PathBuf::from);
    llvm_dirs.chain(multiarch).any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libclang"))
        })
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
