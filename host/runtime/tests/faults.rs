//! Misbehaving guests are stopped with typed errors, and the runtime keeps
//! serving afterwards.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use weft_runtime::{Capability, InvokeError, Limits, RuntimeError, Services};

fn reply(outcome: &weft_runtime::Outcome) -> String {
    match &outcome.result {
        Ok(out) => out.reply.clone().unwrap_or_default(),
        Err(e) => panic!("expected a reply, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_is_a_typed_trap_and_the_next_invocation_succeeds() {
    let rt = runtime();
    let panicking = load(&rt, "guest-panic").await;
    let echo = load(&rt, "guest-echo").await;
    let services = Services::unavailable();

    let outcome = tick(&rt, &panicking, &services, &[], None).await;
    match outcome.result {
        Err(InvokeError::Runtime(RuntimeError::Trap { node, message, .. })) => {
            assert_eq!(node, "guest-panic");
            assert!(
                message.contains("guest panicked on purpose"),
                "message: {message}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }

    let outcome = tick(&rt, &echo, &services, &[], None).await;
    let body: serde_json::Value = serde_json::from_str(&reply(&outcome)).unwrap();
    assert_eq!(body["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_loop_is_stopped_by_fuel() {
    let rt = runtime();
    let looping = load(&rt, "guest-loop").await;
    let limits = Limits {
        fuel: Some(50_000_000),
        deadline: Duration::from_secs(60),
        ..Limits::default()
    };
    let outcome = tick(&rt, &looping, &Services::unavailable(), &[], Some(limits)).await;
    assert!(
        matches!(
            outcome.result,
            Err(InvokeError::Runtime(RuntimeError::OutOfFuel {
                limit: 50_000_000,
                ..
            }))
        ),
        "{:?}",
        outcome.result
    );
    assert!(
        outcome.fuel_used >= 50_000_000 - 1000,
        "fuel used: {}",
        outcome.fuel_used
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_loop_without_fuel_is_stopped_by_the_deadline() {
    let rt = runtime();
    let looping = load(&rt, "guest-loop").await;
    let limits = Limits {
        fuel: None,
        deadline: Duration::from_millis(300),
        ..Limits::default()
    };
    let outcome = tick(&rt, &looping, &Services::unavailable(), &[], Some(limits)).await;
    match outcome.result {
        Err(InvokeError::Runtime(RuntimeError::DeadlineExceeded { limit, .. })) => {
            assert_eq!(limit, Duration::from_millis(300));
        }
        other => panic!("expected the deadline, got {other:?}"),
    }
    assert!(outcome.duration >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_allocation_is_stopped_at_the_memory_cap() {
    let rt = runtime();
    let alloc = load(&rt, "guest-alloc").await;
    let limits = Limits {
        max_memory: 32 << 20,
        ..Limits::default()
    };
    let outcome = tick(&rt, &alloc, &Services::unavailable(), &[], Some(limits)).await;
    match outcome.result {
        Err(InvokeError::Runtime(RuntimeError::MemoryLimit { limit, .. })) => {
            assert_eq!(limit, 32 << 20)
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_capability_is_denied_and_audited() {
    let rt = runtime();
    let guest = load(&rt, "guest-ungranted").await;
    assert!(guest.info().capabilities.is_empty());
    let (services, llm) = scripted(&["should never be used"]);
    let outcome = tick_with(
        &rt,
        &guest,
        &services,
        &[],
        None,
        weft_runtime::Grants::NONE,
    )
    .await;
    let text = reply(&outcome);
    assert!(
        text.contains("llm") && text.to_lowercase().contains("denied"),
        "reply: {text}"
    );
    assert!(text.contains("memory"), "reply: {text}");
    assert_eq!(outcome.denied, vec![Capability::Llm, Capability::Memory]);
    assert!(llm.requests().is_empty(), "the backend must not be reached");
    assert!(outcome.memory_writes.is_empty());
    assert_eq!(
        outcome.journal.len(),
        2,
        "denials are journaled: {:?}",
        outcome.journal
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_files_and_network_are_out_of_reach() {
    let rt = runtime();
    let guest = load(&rt, "guest-fs").await;
    let outcome = tick(&rt, &guest, &Services::unavailable(), &[], None).await;
    let text = reply(&outcome);
    assert!(
        !text.contains("root:"),
        "the guest read /etc/passwd: {text}"
    );
    let report: serde_json::Value = serde_json::from_str(&text).expect("guest-fs replies JSON");
    for key in ["read", "create", "connect"] {
        let entry = report[key].as_str().unwrap_or_default();
        assert!(
            entry.starts_with("error"),
            "{key} should have failed inside the sandbox: {report}"
        );
    }
    assert!(!std::path::Path::new("/tmp/weft-escape").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_output_is_refused() {
    let rt = runtime();
    let echo = load(&rt, "guest-echo").await;
    let limits = Limits {
        max_output: 1000,
        ..Limits::default()
    };
    let inbox = [user_message("m1", json!({ "reply_bytes": 5000 }))];
    let outcome = tick(&rt, &echo, &Services::unavailable(), &inbox, Some(limits)).await;
    assert!(
        matches!(
            outcome.result,
            Err(InvokeError::Runtime(RuntimeError::OutputTooLarge {
                size: 5000,
                limit: 1000,
                ..
            }))
        ),
        "{:?}",
        outcome.result
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_share_no_state() {
    let rt = runtime();
    let echo = load(&rt, "guest-echo").await;
    let services = Services::unavailable();
    for _ in 0..3 {
        let outcome = tick(&rt, &echo, &services, &[], None).await;
        let body: serde_json::Value = serde_json::from_str(&reply(&outcome)).unwrap();
        assert_eq!(
            body["count"], 1,
            "a static counter must start afresh in every instance"
        );
    }
    // Concurrent invocations too.
    let runs = (0..32).map(|_| tick(&rt, &echo, &services, &[], None));
    for outcome in futures::future::join_all(runs).await {
        let body: serde_json::Value = serde_json::from_str(&reply(&outcome)).unwrap();
        assert_eq!(body["count"], 1);
    }
}
