//! Running the real `weft` binary from tests.
#![allow(dead_code)] // each test binary uses a different part

pub mod client;
pub mod plugins;
pub mod socket;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The compiled-component cache every test host shares, so that the
/// Python and JavaScript plugins (10–20 s to compile) compile once per
/// build, not once per test.
pub fn shared_cache() -> PathBuf {
    root().join("artifacts/cache")
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A data folder for a host of test guests: the built guests `guests`
/// (`cargo xtask build-plugins`) in `plugins/`, and `graph` in
/// `graph.yaml`.
pub fn guest_data(name: &str, guests: &[&str], graph: &str) -> PathBuf {
    let data = temp_dir(name);
    let plugins = data.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for guest in guests {
        let file = format!("{guest}.wasm");
        std::fs::copy(
            root().join("artifacts/guests").join(&file),
            plugins.join(&file),
        )
        .unwrap_or_else(|e| panic!("{file}: {e} (run `cargo xtask build-plugins`)"));
    }
    std::fs::write(data.join("graph.yaml"), graph).unwrap();
    data
}

/// `weft serve` on a folder made by [`guest_data`] (again after a `kill
/// -9`: same folder, same store), with `global` options besides
/// `--plugins`; a scripted model, so that no node reaches a real one.
pub fn serve_guests(data: &Path, global: &[&str]) -> Server {
    let plugins = data.join("plugins");
    let mut all = vec!["--plugins", plugins.to_str().unwrap()];
    all.extend_from_slice(global);
    let graph = data.join("graph.yaml");
    Server::start_in(
        data.to_owned(),
        &all,
        &[
            "--graph",
            graph.to_str().unwrap(),
            "--script",
            "graphs/scripts/assistant-demo.json",
        ],
    )
}

/// `weft ARGS` in the workspace root with its own data folder.
pub fn weft(data: &Path, args: &[&str]) -> Output {
    let plugins = root().join("artifacts/plugins");
    assert!(
        plugins.join("weft-plugin-input.wasm").exists(),
        "run `cargo xtask build-plugins` first"
    );
    // Output goes to files (no pipe to drain), so a hung process can be
    // killed after a generous bound instead of hanging the suite.
    let out_path = data.join("stdout.txt");
    let err_path = data.join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(root())
        .env("WEFT_PLUGIN_DIR", &plugins)
        .env("WEFT_DATA_DIR", data)
        .env("WEFT_CACHE_DIR", shared_cache())
        .args(args)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("running weft");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for weft") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "weft {args:?} did not exit within 3 minutes; stdout so far:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// The test tools' Python (`.tools/venv`, filled by `cargo xtask test`),
/// which must be able to import `module` (`what` names it for people).
pub fn tools_python(module: &str, what: &str) -> PathBuf {
    let python = root().join(".tools/venv/bin/python");
    let has = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has,
        "{what} is missing from {}: run `cargo xtask test` (it installs it)",
        python.display()
    );
    python
}

/// The first block of `file` (relative to the root) fenced as ```` ```FENCE ````.
pub fn fenced_block(file: &str, fence: &str) -> String {
    let markdown = std::fs::read_to_string(root().join(file)).unwrap();
    markdown
        .split(&format!("```{fence}\n"))
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("{file} has no `{fence}` block"))
        .to_owned()
}

/// Runs `command` to its end off the async runtime.
pub async fn output_of(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("running a command"))
        .await
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `weft serve` process on a free port with its own data folder.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its data folder.
    pub data: PathBuf,
    /// The bootstrap admin key.
    pub admin: String,
}

impl Server {
    /// Starts `weft serve` (with `args` after `serve`, and `global` before
    /// it) and waits until it listens.
    pub fn start(name: &str, global: &[&str], args: &[&str]) -> Self {
        let data = temp_dir(name);
        Self::start_in(data, global, args)
    }

    /// Like [`start`](Self::start), on an existing data folder.
    pub fn start_in(data: PathBuf, global: &[&str], args: &[&str]) -> Self {
        let admin = "weft_test_admin_0123456789abcdef".to_owned();
        let err_path = data.join(format!("serve-{}.stderr", std::process::id()));
        let _ = std::fs::remove_file(&err_path);
        let child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .current_dir(root())
            .env("WEFT_PLUGIN_DIR", root().join("artifacts/plugins"))
            .env("WEFT_DATA_DIR", &data)
            .env("WEFT_CACHE_DIR", shared_cache())
            .env("WEFT_ADMIN_KEY", &admin)
            .env("WEFT_LOG", "info")
            .args(global)
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("weft serve");
        let mut server = Self {
            child,
            base: String::new(),
            data,
            admin,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            // Only a whole line: the file may be read while the server is
            // still writing it.
            if let Some(line) = err
                .split_inclusive('\n')
                .filter_map(|l| l.strip_suffix('\n'))
                .find(|l| l.starts_with("weft serving on http://"))
            {
                let addr = line["weft serving on ".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned();
                server.base = addr;
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("weft serve exited with {status}:\n{err}");
            }
            assert!(
                Instant::now() < deadline,
                "weft serve did not start:\n{err}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the server has logged so far (stderr).
    pub fn log(&self) -> String {
        let path = self
            .data
            .join(format!("serve-{}.stderr", std::process::id()));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Sends a signal (`HUP`, `TERM`, …) to the server.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Sends SIGTERM and waits for the exit (at most 2 minutes).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait()
    }

    /// Waits for the process to exit by itself (at most 2 minutes).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "weft serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
