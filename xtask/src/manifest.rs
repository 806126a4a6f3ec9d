//! Just enough of a `Cargo.toml` reader to find a crate's names.
//!
//! xtask only needs `[package] name` and, if set, `[lib] name`; a full TOML
//! parser would be a dependency for two lines. It understands plain
//! `name = "…"` lines, which is how every manifest in this workspace spells
//! them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A crate's identity as far as its build output is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    /// The package name, as given to `cargo -p` (`weft-plugin-input`).
    pub package: String,
    /// The library target's name, which names the `.wasm` (`weft_plugin_input`).
    pub lib: String,
    /// The crate's directory.
    pub dir: PathBuf,
}

impl Crate {
    /// Read the crate in `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let (package, lib) = parse(&text).with_context(|| format!("in {}", path.display()))?;
        let lib = lib.unwrap_or_else(|| package.replace('-', "_"));
        Ok(Self {
            package,
            lib,
            dir: dir.to_path_buf(),
        })
    }
}

/// `[package] name` and `[lib] name` (if any) of a manifest.
fn parse(text: &str) -> Result<(String, Option<String>)> {
    let mut section = String::new();
    let (mut package, mut lib) = (None, None);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.trim().to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "name" {
            continue;
        }
        let value = value.trim();
        let Some(value) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            bail!("`name = {value}` is not a plain string");
        };
        match section.as_str() {
            "package" => package = Some(value.to_owned()),
            "lib" => lib = Some(value.to_owned()),
            _ => {}
        }
    }
    let package = package.context("no `name` in [package]")?;
    Ok((package, lib))
}

/// The crates in the immediate subdirectories of `dir` that have a
/// `Cargo.toml`, sorted by package name. A missing `dir` has none.
pub fn crates_in(dir: &Path) -> Result<Vec<Crate>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut crates = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path.join("Cargo.toml").is_file() {
            crates.push(Crate::read(&path)?);
        }
    }
    crates.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(crates)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_package_and_lib_names() {
        let text = "[package]\nname = \"weft-plugin-input\" # the node\nversion.workspace = true\n\n\
                    [lib]\nname = \"input\"\ncrate-type = [\"cdylib\"]\n\n\
                    [dependencies]\nname = \"not-this\"\n";
        assert_eq!(
            parse(text).unwrap(),
            ("weft-plugin-input".into(), Some("input".into()))
        );
    }

    #[test]
    fn lib_name_is_optional() {
        assert_eq!(
            parse("[package]\nname = \"guest-echo\"\n").unwrap(),
            ("guest-echo".into(), None)
        );
    }

    #[test]
    fn a_manifest_without_a_package_name_is_an_error() {
        assert!(parse("[workspace]\nmembers = []\n").is_err());
        assert!(parse("[package]\nname.workspace = true\n").is_err());
    }
}
