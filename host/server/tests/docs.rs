//! The plugin author's guide (`docs/plugins.md`) cannot rot: every block
//! fenced as `sh tested` runs here, in order, in one empty folder, with the
//! `weft` under test first on the `PATH`. The blocks build and test a new
//! plugin in each language (`weft new`, `weft plugin build`, `weft plugin
//! test`, `cargo test` for Rust), run one in a graph and replay it, and
//! inspect a file that is not a component.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use common::{root, shared_cache, temp_dir};

/// The guide's tested blocks, with the line each starts on.
fn tested_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match &mut current {
            None if line.trim_start().starts_with("```sh tested") => {
                current = Some((i + 1, String::new()));
            }
            Some((_, text)) if line.trim_start().starts_with("```") => {
                let text = std::mem::take(text);
                let (start, _) = current.take().unwrap();
                blocks.push((start, text));
            }
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(
        current.is_none(),
        "an unclosed tested block in docs/plugins.md"
    );
    blocks
}

/// Where `cargo` builds the guide's Rust project: beside the suite's own
/// target folder, so later runs reuse it.
fn plugin_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("weft-new-plugins")
}

/// Runs `script` with bash in `dir`; returns its status and what it printed.
fn bash(dir: &Path, script: &str) -> (ExitStatus, String) {
    let weft = PathBuf::from(env!("CARGO_BIN_EXE_weft"));
    let path = format!(
        "{}:{}",
        weft.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = dir.join(".block-output.txt");
    let mut child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("WEFT_TOOLS", root().join(".tools"))
        .env("WEFT_CACHE_DIR", shared_cache())
        .env("CARGO_TARGET_DIR", plugin_target_dir())
        .env("WEFT_LOG", "warn")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.join(".block-stderr.txt")).unwrap())
        .spawn()
        .expect("bash");
    // Generous: the Rust block compiles the SDK for wasm32 on a cold cache.
    let deadline = Instant::now() + Duration::from_secs(900);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a block of docs/plugins.md ran for 15 minutes:\n{script}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = std::fs::read_to_string(&log).unwrap_or_default();
    output.push_str(&std::fs::read_to_string(dir.join(".block-stderr.txt")).unwrap_or_default());
    (status, output)
}

#[test]
fn the_plugin_guide_commands_work() {
    let guide = std::fs::read_to_string(root().join("docs/plugins.md")).unwrap();
    let blocks = tested_blocks(&guide);
    assert!(blocks.len() >= 5, "the guide lost its tested blocks");
    let dir = temp_dir("guide");
    for (line, script) in &blocks {
        let (status, output) = bash(&dir, script);
        assert!(
            status.success(),
            "docs/plugins.md, the block at line {line} failed ({status}):\n{script}\n--- output ---\n{output}"
        );
    }

    // `weft plugin test` fails when a case does not hold.
    let cases = dir.join("greeter/tests.yaml");
    let text = std::fs::read_to_string(&cases).unwrap();
    std::fs::write(
        &cases,
        text.replace("Hello! How can I help?\"\n", "Something else.\"\n"),
    )
    .unwrap();
    let (status, output) = bash(&dir.join("greeter"), "weft plugin test");
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("FAILED  answers with the model and counts turns")
            && output.contains("expected \"Something else.\"")
            && output.contains("1 of 2 cases failed"),
        "{output}"
    );

    // A key expected absent that the node wrote fails, naming both states;
    // a value of the wrong type is reported in the file's terms.
    let greeter = dir.join("greeter");
    std::fs::write(
        greeter.join("present.yaml"),
        "cases:\n  - name: turns is written\n    llm: [\"Hi.\"]\n    steps:\n      - inbox: [{ kind: user, body: { text: \"hi\" } }]\n        expect: { memory: { node: { turns: null } } }\n",
    )
    .unwrap();
    let (status, output) = bash(
        &greeter,
        "weft plugin test --component build/greeter.wasm --cases present.yaml",
    );
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("memory Node `turns` is \"1\", expected absent"),
        "{output}"
    );
    std::fs::write(
        greeter.join("typed.yaml"),
        "cases:\n  - name: t\n    steps:\n      - inbox: [{ kind: user, body: {} }]\n        expect: { reply: [1, 2] }\n",
    )
    .unwrap();
    let (status, output) = bash(
        &greeter,
        "weft plugin test --component build/greeter.wasm --cases typed.yaml",
    );
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("typed.yaml is not a valid cases file"),
        "{output}"
    );
    assert!(output.contains("line 5"), "the position is named: {output}");
    assert!(
        !output.contains("Option<") && !output.contains("String>"),
        "no Rust types in the message: {output}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tested_blocks_are_found_with_their_lines() {
    let text = "intro\n```sh tested\necho a\n```\n```sh\nnot run\n```\n```sh tested\necho b\necho c\n```\n";
    assert_eq!(
        tested_blocks(text),
        vec![
            (2, "echo a\n".to_owned()),
            (8, "echo b\necho c\n".to_owned())
        ]
    );
}
