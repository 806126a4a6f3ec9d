//! Running the real `weft` binary from tests.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
