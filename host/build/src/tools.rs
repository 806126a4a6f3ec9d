//! The Python and JavaScript component toolchains, installed on first use
//! into a tools folder (pinned versions, from PyPI and npm):
//!
//! - `<tools>/py/`: a virtual environment with componentize-py;
//! - `<tools>/js/`: componentize-js (npm), with the build script that calls
//!   it (`build.mjs`).
//!
//! Both need network access only the first time; later builds are offline.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{BuildError, Progress, run};

/// The componentize-py release plugins are built with.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The componentize-js release plugins are built with.
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// The script that turns one ES module into a component with
/// componentize-js. `jco componentize` cannot read WIT from disk, so the
/// library is called directly. `http` and `fetch-event` are disabled: with
/// them the component would import `wasi:http`, which no node needs.
const BUILD_MJS: &str = r#"// Written by weft: builds one JavaScript plugin with componentize-js.
// Usage: node build.mjs SOURCE.js WIT_DIR WORLD OUTPUT.wasm
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';

const [sourcePath, witPath, worldName, output] = process.argv.slice(2);
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName,
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(output, component);
"#;

/// Where the toolchains live.
#[derive(Debug, Clone)]
pub struct Toolchains {
    dir: PathBuf,
}

impl Toolchains {
    /// Toolchains kept in `dir` (created on first install).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The default folder: `$WEFT_TOOLS`, else `~/.cache/weft/tools`.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("WEFT_TOOLS").filter(|d| !d.is_empty()) {
            return dir.into();
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
        Path::new(&home).join(".cache/weft/tools")
    }

    /// The tools folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `componentize-py` command, installed if missing or of another version.
    pub fn componentize_py(&self, progress: &dyn Progress) -> Result<PathBuf, BuildError> {
        let venv = self.dir.join("py");
        let bin = venv.join("bin/componentize-py");
        if let Ok(out) = Command::new(&bin).arg("--version").output()
            && String::from_utf8_lossy(&out.stdout).contains(COMPONENTIZE_PY)
        {
            return Ok(bin);
        }
        progress.step(&format!(
            "installing componentize-py {COMPONENTIZE_PY} from PyPI into {} (once)",
            venv.display()
        ));
        let mut command = Command::new("python3");
        command.args(["-m", "venv"]).arg(&venv);
        run(
            command,
            "python3 -m venv",
            "install python3 and python3-venv",
        )?;
        let mut command = Command::new(venv.join("bin/pip"));
        command
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY}"));
        run(command, "pip install componentize-py", "is PyPI reachable?")?;
        Ok(bin)
    }

    /// `node` and the build script, with componentize-js installed if
    /// missing or of another version.
    pub fn componentize_js(
        &self,
        progress: &dyn Progress,
    ) -> Result<(PathBuf, PathBuf), BuildError> {
        let js = self.dir.join("js");
        let script = js.join("build.mjs");
        let installed = js.join("node_modules/@bytecodealliance/componentize-js/package.json");
        let current = std::fs::read_to_string(&installed)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|p| p["version"] == COMPONENTIZE_JS);
        if !current {
            if Command::new("npm").arg("--version").output().is_err() {
                return Err(BuildError::ToolMissing {
                    tool: "npm".into(),
                    hint: "JavaScript plugins need Node.js 20 or later with npm (e.g. `apt-get install nodejs npm`)".into(),
                });
            }
            progress.step(&format!(
                "installing componentize-js {COMPONENTIZE_JS} from npm into {} (once, ~400 MB)",
                js.display()
            ));
            std::fs::create_dir_all(&js).map_err(|e| BuildError::io(&js, e))?;
            let manifest = serde_json::json!({
                "name": "weft-js-toolchain",
                "private": true,
                "type": "module",
                "dependencies": {"@bytecodealliance/componentize-js": COMPONENTIZE_JS}
            });
            crate::write_atomically(&js.join("package.json"), manifest.to_string().as_bytes())?;
            let mut command = Command::new("npm");
            command
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&js);
            run(
                command,
                "npm install @bytecodealliance/componentize-js",
                "is the npm registry reachable?",
            )?;
        }
        if std::fs::read_to_string(&script).ok().as_deref() != Some(BUILD_MJS) {
            crate::write_atomically(&script, BUILD_MJS.as_bytes())?;
        }
        Ok((PathBuf::from("node"), script))
    }
}
