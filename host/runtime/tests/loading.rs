//! Loading components: the real `input` plugin, bad files of every kind,
//! and the on-disk cache of precompiled artifacts.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::path::PathBuf;

use common::*;
use weft_runtime::{CacheHit, Capability, Runtime, RuntimeConfig, RuntimeError, Services};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-runtime-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_plugin_describes_itself() {
    let rt = runtime();
    let input = load(&rt, "weft-plugin-input").await;
    let info = input.info();
    assert_eq!(info.name, "input");
    assert!(!info.version.is_empty());
    assert!(info.capabilities.contains(&Capability::Llm));
    assert_eq!(info.input_schema["type"], "object");
    assert_eq!(input.contract(), "0.4.0");
    assert_eq!(
        input.hash(),
        weft_runtime::ContentHash::of(&std::fs::read(input.path()).unwrap())
    );
}

async fn expect_load_error(rt: &Runtime, path: PathBuf) -> RuntimeError {
    match rt.load_file(&path).await {
        Ok(p) => panic!("{} loaded as {p:?}", path.display()),
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains(&path.display().to_string()),
                "error does not name the file: {text}"
            );
            e
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_get_clear_errors_and_the_host_stays_up() {
    let rt = runtime();
    let dir = temp_dir("bad");

    let text = dir.join("notes.wasm");
    std::fs::write(&text, "this is not webassembly").unwrap();
    let e = expect_load_error(&rt, text).await;
    assert!(
        matches!(&e, RuntimeError::InvalidComponent { reason, .. } if reason.contains("not a WebAssembly file")),
        "{e}"
    );

    let empty = dir.join("empty.wasm");
    std::fs::write(&empty, b"").unwrap();
    let e = expect_load_error(&rt, empty).await;
    assert!(
        matches!(&e, RuntimeError::InvalidComponent { reason, .. } if reason.contains("too short")),
        "{e}"
    );

    // The smallest valid core module: magic + version 1.
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let e = expect_load_error(&rt, core).await;
    assert!(
        matches!(&e, RuntimeError::InvalidComponent { reason, .. } if reason.contains("core WebAssembly module")),
        "{e}"
    );

    let good = std::fs::read(artifact("weft-plugin-input")).unwrap();
    let truncated = dir.join("truncated.wasm");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let e = expect_load_error(&rt, truncated).await;
    assert!(
        matches!(&e, RuntimeError::InvalidComponent { reason, .. } if reason.contains("not a valid component")),
        "{e}"
    );

    let e = expect_load_error(&rt, artifact("guest-wrong-world")).await;
    assert!(
        matches!(&e, RuntimeError::WrongWorld { reason, .. } if reason.contains("weft:node/plugin") && reason.contains("run")),
        "{e}"
    );

    let e = expect_load_error(&rt, artifact("guest-future-contract")).await;
    match &e {
        RuntimeError::IncompatibleContract {
            found, supported, ..
        } => {
            assert_eq!(found, "9.0.0");
            assert_eq!(supported, &vec!["0.4.0", "0.3.0", "0.2.0", "0.1.0"]);
            assert!(
                e.to_string().contains("weft:node@9.0.0")
                    && e.to_string().contains("weft:node@0.4.0")
                    && e.to_string().contains("weft:node@0.2.0")
                    && e.to_string().contains("weft:node@0.1.0"),
                "{e}"
            );
        }
        other => panic!("expected an incompatible contract, got {other}"),
    }

    let missing = dir.join("missing.wasm");
    let e = expect_load_error(&rt, missing).await;
    assert!(matches!(e, RuntimeError::Io { .. }), "{e}");

    // The host is still up: a good plugin loads and ticks.
    let echo = load(&rt, "guest-echo").await;
    let outcome = tick(&rt, &echo, &Services::unavailable(), &[], None).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompiled_artifacts_are_reused_across_runtimes() {
    let dir = temp_dir("cache");
    let config = || RuntimeConfig {
        cache_dir: Some(dir.clone()),
        ..RuntimeConfig::default()
    };
    let first = Runtime::new(config()).unwrap();
    let a = load(&first, "guest-echo").await;
    assert_eq!(a.cache_hit(), CacheHit::Compiled);
    let again = load(&first, "guest-echo").await;
    assert_eq!(again.cache_hit(), CacheHit::Memory);
    drop(first);

    let second = Runtime::new(config()).unwrap();
    let b = load(&second, "guest-echo").await;
    assert_eq!(b.cache_hit(), CacheHit::Disk);
    assert_eq!(a.hash(), b.hash());
    let outcome = tick(&second, &b, &Services::unavailable(), &[], None).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);

    // A corrupt artifact is discarded and recompiled, not fatal.
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let third = Runtime::new(config()).unwrap();
    let c = load(&third, "guest-echo").await;
    assert_eq!(c.cache_hit(), CacheHit::Compiled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_of_every_contract_version_load_and_tick_side_by_side() {
    let rt = runtime();
    let old = load(&rt, "guest-v0-1").await;
    let middle = load(&rt, "guest-v0-2").await;
    let third = load(&rt, "guest-v0-3").await;
    let new = load(&rt, "guest-echo").await;
    assert_eq!(
        (
            old.contract(),
            middle.contract(),
            third.contract(),
            new.contract()
        ),
        ("0.1.0", "0.2.0", "0.3.0", "0.4.0")
    );
    assert_eq!(old.info().name, "guest-v0-1");
    assert_eq!(
        old.info().capabilities,
        vec![Capability::Log, Capability::Memory]
    );
    let services = Services::unavailable();
    for _ in 0..2 {
        // The 0.1.0 node's imports (log, memory) reach the same host
        // functions as 0.2.0 nodes'.
        let out = tick(
            &rt,
            &old,
            &services,
            &[user_message("m1", serde_json::json!({}))],
            None,
        )
        .await;
        let output = out.result.expect("the 0.1.0 node ticks");
        assert_eq!(
            output.reply.as_deref(),
            Some("contract 0.1.0: node guest-v0-1 frame 0 inbox 1")
        );
        assert_eq!(out.logs.len(), 1, "logged through the 0.1.0 import");
        assert_eq!(out.memory_writes.len(), 1, "wrote through the 0.1.0 import");
        let out = tick(
            &rt,
            &middle,
            &services,
            &[user_message("m2", serde_json::json!({}))],
            None,
        )
        .await;
        let output = out.result.expect("the 0.2.0 node ticks");
        let reply = output.reply.unwrap_or_default();
        assert!(
            reply.starts_with("contract 0.2.0: node guest-v0-2 project "),
            "{reply}"
        );
        assert!(output.interrupt.is_none());
        assert_eq!(out.logs.len(), 1, "logged through the 0.2.0 import");
        assert_eq!(out.memory_writes.len(), 1, "wrote through the 0.2.0 import");
        let out = tick(&rt, &third, &services, &[], None).await;
        let output = out.result.expect("the 0.3.0 node ticks");
        let reply = output.reply.unwrap_or_default();
        assert!(
            reply.starts_with("contract 0.3.0: node guest-v0-3 project "),
            "{reply}"
        );
        assert_eq!(out.logs.len(), 1, "logged through the 0.3.0 import");
        assert_eq!(out.kv_writes.len(), 1, "wrote through the 0.3.0 store");
        let out = tick(&rt, &new, &services, &[], None).await;
        assert!(out.result.is_ok(), "the 0.4.0 node ticks next to them");
    }
}
