//! Building weft plugins from source, in any of the languages weft ships
//! toolchains for, and scaffolding new plugin projects.
//!
//! A plugin project is a folder; its language is told by what it holds:
//!
//! | language   | marker       | toolchain                                          |
//! |------------|--------------|----------------------------------------------------|
//! | Rust       | `Cargo.toml` | cargo, target `wasm32-wasip2` (added with rustup)  |
//! | Python     | `app.py`     | componentize-py (PyPI), module `app`               |
//! | JavaScript | `app.js`     | componentize-js (npm), one ES module               |
//!
//! [`build`] turns a project into a component; the Python and JavaScript
//! toolchains are installed on first use by [`Toolchains`], and their builds
//! are skipped when nothing that goes into them changed (a fingerprint of
//! the sources, the contract and the toolchain version is kept next to the
//! output). Both `weft plugin build` and `cargo xtask build-plugins` use it.

pub mod contract;
pub mod scaffold;
mod tools;

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use tools::{COMPONENTIZE_JS, COMPONENTIZE_PY, Toolchains};

/// The target Rust plugins are built for.
pub const RUST_TARGET: &str = "wasm32-wasip2";

/// Why a plugin could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The folder is not a plugin project.
    #[error(
        "{} is not a plugin project: it has no Cargo.toml (Rust), app.py (Python) or app.js (JavaScript); create one with `weft new NAME --lang rust|python|js`",
        .0.display()
    )]
    NotAProject(PathBuf),
    /// A tool the build needs is not installed and cannot be installed here.
    #[error("{tool} is missing: {hint}")]
    ToolMissing {
        /// The tool.
        tool: String,
        /// What to do about it.
        hint: String,
    },
    /// A tool ran and failed; `output` is the end of what it printed.
    #[error("{step} failed ({status}){}", if .output.is_empty() { String::new() } else { format!(":\n{}", .output) })]
    Failed {
        /// What was running.
        step: String,
        /// Its exit status.
        status: String,
        /// The last lines it printed.
        output: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A new project's name or folder is not usable.
    #[error("{0}")]
    BadProject(String),
}

impl BuildError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Where a build reports its steps (toolchain installs, skipped builds).
pub trait Progress {
    /// One step, as a line for people.
    fn step(&self, text: &str);
}

/// Progress printed to stderr.
pub struct Stderr;

impl Progress for Stderr {
    fn step(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "{text}");
    }
}

/// A plugin's source language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust, with the weft SDK.
    Rust,
    /// Python, with componentize-py.
    Python,
    /// JavaScript, with componentize-js.
    Js,
}

impl Lang {
    /// Every language, in the order they are documented.
    pub const ALL: [Lang; 3] = [Lang::Rust, Lang::Python, Lang::Js];

    /// The language's name on the command line (`rust`, `python`, `js`).
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// The file that marks a project of this language.
    pub fn marker(self) -> &'static str {
        match self {
            Lang::Rust => "Cargo.toml",
            Lang::Python => "app.py",
            Lang::Js => "app.js",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rust" | "rs" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            other => Err(format!(
                "unknown language `{other}`: use rust, python or js"
            )),
        }
    }
}

/// A plugin project: a folder and its language.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder.
    pub dir: PathBuf,
    /// Its language.
    pub lang: Lang,
    /// The folder's name, used for the component's file name.
    pub name: String,
}

impl Project {
    /// The project in `dir`, or [`BuildError::NotAProject`].
    pub fn open(dir: &Path) -> Result<Self, BuildError> {
        let lang = Lang::ALL
            .into_iter()
            .find(|lang| dir.join(lang.marker()).is_file())
            .ok_or_else(|| BuildError::NotAProject(dir.to_owned()))?;
        let canonical = dir.canonicalize().map_err(|e| BuildError::io(dir, e))?;
        let name = canonical
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        Ok(Self {
            dir: canonical,
            lang,
            name,
        })
    }

    /// Where [`build`] writes the component unless told otherwise:
    /// `build/<name>.wasm` in the project.
    pub fn default_output(&self) -> PathBuf {
        self.dir.join("build").join(format!("{}.wasm", self.name))
    }
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The component.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// False when the sources had not changed and the build was skipped.
    pub rebuilt: bool,
    /// How long the build took, including a toolchain installed for it.
    pub took: Duration,
}

/// Builds `project` into the component `output`.
///
/// Rust projects are built by cargo (incremental by itself) in release mode
/// for [`RUST_TARGET`]; the library's `cdylib` is the component. Python and
/// JavaScript projects are built with the toolchains in `tools`, installed
/// on first use, and skipped when their fingerprint has not changed.
pub fn build(
    project: &Project,
    output: &Path,
    tools: &Toolchains,
    progress: &dyn Progress,
) -> Result<Built, BuildError> {
    let started = Instant::now();
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
    }
    let rebuilt = match project.lang {
        Lang::Rust => {
            build_rust(project, output)?;
            true
        }
        Lang::Python | Lang::Js => build_componentized(project, output, tools, progress)?,
    };
    let size = std::fs::metadata(output)
        .map_err(|e| BuildError::io(output, e))?
        .len();
    Ok(Built {
        path: output.to_owned(),
        size,
        rebuilt,
        took: started.elapsed(),
    })
}

/// Installs the Rust target with rustup unless it is there already.
pub fn ensure_rust_target() -> Result<(), BuildError> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|_| BuildError::ToolMissing {
            tool: "rustup".into(),
            hint: "Rust plugins need rustup (https://rustup.rs)".into(),
        })?;
    if String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|line| line.trim() == RUST_TARGET)
    {
        return Ok(());
    }
    let mut command = Command::new("rustup");
    command.args(["target", "add", RUST_TARGET]);
    run(command, "rustup target add wasm32-wasip2", "")
}

fn build_rust(project: &Project, output: &Path) -> Result<(), BuildError> {
    ensure_rust_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Diagnostics go to the terminal as cargo renders them; stdout carries
    // the JSON messages that name the built files.
    let result = Command::new(cargo)
        .args(["build", "--release", "--lib", "--target", RUST_TARGET])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(&project.dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|_| BuildError::ToolMissing {
            tool: "cargo".into(),
            hint: "Rust plugins need cargo (https://rustup.rs)".into(),
        })?;
    if !result.status.success() {
        return Err(BuildError::Failed {
            step: "cargo build".into(),
            status: result.status.to_string(),
            output: "see cargo's messages above".into(),
        });
    }
    let built = String::from_utf8_lossy(&result.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| {
            BuildError::BadProject(format!(
                "cargo built no component in {}: the library needs `crate-type = [\"cdylib\"]` in Cargo.toml",
                project.dir.display()
            ))
        })?;
    copy_atomically(&built, output)
}

/// Builds a Python or JavaScript project unless its fingerprint is
/// unchanged; returns whether it built.
fn build_componentized(
    project: &Project,
    output: &Path,
    tools: &Toolchains,
    progress: &dyn Progress,
) -> Result<bool, BuildError> {
    let wit = contract::write_into(tools.dir())?;
    let tool_id = match project.lang {
        Lang::Python => format!("componentize-py {COMPONENTIZE_PY}"),
        _ => format!("componentize-js {COMPONENTIZE_JS}"),
    };
    let fingerprint = fingerprint(&project.dir, &tool_id)?;
    let stamp = stamp_path(output);
    if output.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == fingerprint) {
        progress.step(&format!("{}: unchanged, not rebuilt", project.name));
        return Ok(false);
    }
    // Build into a temporary file, so a failed build leaves the previous
    // component in place.
    let partial = output.with_extension("wasm.partial");
    let command = match project.lang {
        Lang::Python => {
            let bin = tools.componentize_py(progress)?;
            let mut command = Command::new(bin);
            command
                .arg("--quiet")
                .arg("-d")
                .arg(&wit)
                .args(["-w", contract::WORLD, "componentize", "-p"])
                .arg(&project.dir)
                .arg("-o")
                .arg(&partial)
                .arg("app")
                // componentize-py would add an active virtualenv's packages.
                .env_remove("VIRTUAL_ENV")
                .current_dir(&project.dir);
            command
        }
        _ => {
            let (node, script) = tools.componentize_js(progress)?;
            let mut command = Command::new(node);
            command
                .arg(script)
                .arg(project.dir.join("app.js"))
                .arg(&wit)
                .arg(contract::WORLD)
                .arg(&partial)
                .current_dir(&project.dir);
            command
        }
    };
    run(
        command,
        &format!("{tool_id} on {}", project.dir.display()),
        "",
    )?;
    std::fs::rename(&partial, output).map_err(|e| BuildError::io(output, e))?;
    write_atomically(&stamp, fingerprint.as_bytes())?;
    Ok(true)
}

/// The file next to `output` that keeps the fingerprint of its sources.
fn stamp_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.fingerprint"))
}

/// Folders of a project that hold outputs or caches, not sources.
const NOT_SOURCES: [&str; 5] = ["build", "target", "node_modules", "__pycache__", ".git"];

/// A hash of what goes into a build: the toolchain, the contract and every
/// source file of the project (by relative path and content).
fn fingerprint(dir: &Path, tool: &str) -> Result<String, BuildError> {
    let mut hash = Sha256::new();
    hash.update(tool.as_bytes());
    for (name, content) in contract::FILES {
        hash.update(name.as_bytes());
        hash.update(content.as_bytes());
    }
    let mut files = Vec::new();
    collect_sources(dir, dir, &mut files)?;
    files.sort();
    for rel in files {
        let path = dir.join(&rel);
        let bytes = std::fs::read(&path).map_err(|e| BuildError::io(&path, e))?;
        hash.update(rel.to_string_lossy().as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn collect_sources(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BuildError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BuildError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| BuildError::io(&path, e))?;
        if kind.is_dir() {
            if !NOT_SOURCES.contains(&name.as_ref()) {
                collect_sources(root, &path, out)?;
            }
        } else if kind.is_file() && !name.ends_with(".wasm") && !name.starts_with('.') {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_owned());
        }
    }
    Ok(())
}

/// Runs `command`, capturing its output; a failure carries the last lines
/// it printed, and a command that cannot start names `hint`.
pub(crate) fn run(mut command: Command, step: &str, hint: &str) -> Result<(), BuildError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|e| BuildError::ToolMissing {
        tool: program.clone(),
        hint: if hint.is_empty() {
            format!("cannot run it: {e}")
        } else {
            format!("cannot run it ({e}); {hint}")
        },
    })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    Err(BuildError::Failed {
        step: step.to_owned(),
        status: output.status.to_string(),
        output: tail,
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader never sees half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let tmp = temp_beside(path);
    std::fs::write(&tmp, bytes).map_err(|e| BuildError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| BuildError::io(path, e))
}

/// Copies `from` to `to` through a temporary file and a rename.
pub fn copy_atomically(from: &Path, to: &Path) -> Result<(), BuildError> {
    let tmp = temp_beside(to);
    std::fs::copy(from, &tmp).map_err(|e| BuildError::io(from, e))?;
    std::fs::rename(&tmp, to).map_err(|e| BuildError::io(to, e))
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_a_marker_is_not_a_project() {
        let dir = tempfile::tempdir().unwrap();
        let err = Project::open(dir.path()).unwrap_err();
        assert!(matches!(err, BuildError::NotAProject(_)));
        assert!(err.to_string().contains("weft new"), "{err}");
    }

    #[test]
    fn the_marker_tells_the_language() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.js"), "export const plugin = {};").unwrap();
        let project = Project::open(dir.path()).unwrap();
        assert_eq!(project.lang, Lang::Js);
        assert!(
            project
                .default_output()
                .ends_with(format!("build/{}.wasm", project.name))
        );
    }

    #[test]
    fn the_fingerprint_follows_sources_and_ignores_outputs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "x = 1\n").unwrap();
        let first = fingerprint(dir.path(), "tool 1").unwrap();
        std::fs::create_dir(dir.path().join("build")).unwrap();
        std::fs::write(dir.path().join("build/app.wasm"), b"\0asm").unwrap();
        std::fs::create_dir(dir.path().join("__pycache__")).unwrap();
        std::fs::write(dir.path().join("__pycache__/app.pyc"), b"cache").unwrap();
        assert_eq!(fingerprint(dir.path(), "tool 1").unwrap(), first);
        assert_ne!(fingerprint(dir.path(), "tool 2").unwrap(), first);
        std::fs::write(dir.path().join("helper.py"), "y = 2\n").unwrap();
        assert_ne!(fingerprint(dir.path(), "tool 1").unwrap(), first);
    }

    #[test]
    fn languages_parse_from_their_names() {
        for lang in Lang::ALL {
            assert_eq!(lang.as_str().parse::<Lang>().unwrap(), lang);
        }
        assert!(
            "cobol"
                .parse::<Lang>()
                .unwrap_err()
                .contains("rust, python or js")
        );
    }
}
