//! A full instance pool makes ticks wait for a slot, not fail.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::{
    CapabilityError, Completion, CompletionRequest, Grants, Invocation, PoolConfig, Runtime,
    RuntimeConfig, Services,
};

/// A model that answers after 100 ms and remembers how many calls it was
/// inside at once, at most.
#[derive(Default)]
struct Slow {
    inside: AtomicUsize,
    most: AtomicUsize,
}

impl LlmBackend for Slow {
    fn complete<'a>(
        &'a self,
        _call: LlmCall<'a>,
        _request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async move {
            let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.inside.fetch_sub(1, Ordering::SeqCst);
            Ok(Completion {
                text: "ok".into(),
                prompt_tokens: 1,
                completion_tokens: 1,
                model: "slow".into(),
                provider: "slow".into(),
                usage_estimated: false,
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_beyond_the_pool_wait_for_a_slot_and_all_complete() {
    // Six slots: four are kept for `describe`, two run ticks.
    let rt = Arc::new(
        Runtime::new(RuntimeConfig {
            pool: Some(PoolConfig {
                instances: 6,
                ..PoolConfig::default()
            }),
            ..RuntimeConfig::default()
        })
        .unwrap(),
    );
    let plugin = load(&rt, "guest-llm").await;
    let slow = Arc::new(Slow::default());
    let mut services = Services::unavailable();
    services.llm = slow.clone();
    let services = Arc::new(services);

    let mut ticks = tokio::task::JoinSet::new();
    for n in 0..5 {
        let (rt, plugin, services) = (rt.clone(), plugin.clone(), services.clone());
        ticks.spawn(async move {
            rt.invoke(
                &plugin,
                Invocation {
                    call: call(&format!("t{n}"), "a"),
                    inbox: &[user_message("m", serde_json::json!({}))],
                    config: "{}",
                    model: None,
                    grants: Grants::all(),
                    tools: &weft_runtime::capabilities::tools::NO_TOOLS,
                    services: &services,
                    limits: None,
                    wall_time: None,
                    reuse: None,
                },
            )
            .await
        });
    }
    // While two ticks wait on the model, the other three wait for a slot.
    let mut queued = 0;
    for _ in 0..100 {
        queued = queued.max(rt.ticks_queued());
        if queued == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(queued, 3, "three ticks should queue for the two slots");
    while let Some(outcome) = ticks.join_next().await {
        let outcome = outcome.unwrap();
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    }
    assert_eq!(slow.most.load(Ordering::SeqCst), 2);
    assert_eq!(rt.ticks_queued(), 0);
}
