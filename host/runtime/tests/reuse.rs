//! Kept instances (`instance: reuse`): what survives between ticks, what
//! does not, and when a kept instance is dropped.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{call, load, runtime, scripted, user_message};
use weft_runtime::{
    Grants, InvokeError, Limits, Outcome, Plugin, PoolConfig, ReuseScope, Runtime, RuntimeConfig,
    RuntimeError, Services,
};

/// One tick of `plugin` as node `a` on thread `t1` of `project`, in a kept
/// instance of `scope` if there is one.
async fn tick_in(
    rt: &Runtime,
    plugin: &Plugin,
    scope: Option<&ReuseScope>,
    project: &str,
    body: serde_json::Value,
    services: &Services,
    limits: Option<Limits>,
) -> Outcome {
    let mut call = call("t1", "a");
    call.project = project.into();
    rt.invoke(
        plugin,
        weft_runtime::Invocation {
            call,
            inbox: &[user_message("m", body)],
            config: "{}",
            model: None,
            grants: Grants::all(),
            tools: &weft_runtime::capabilities::tools::NO_TOOLS,
            services,
            limits,
            wall_time: None,
            reuse: scope,
        },
    )
    .await
}

/// The echo guest's tick counter (a `static` in the guest).
fn count(outcome: &Outcome) -> u64 {
    let output = outcome.result.as_ref().expect("the tick succeeds");
    let reply: serde_json::Value =
        serde_json::from_str(output.reply.as_deref().expect("a reply")).unwrap();
    reply["count"].as_u64().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_instance_keeps_guest_state_within_its_scope_and_project_only() {
    let rt = runtime();
    let echo = load(&rt, "guest-echo").await;
    let services = Services::unavailable();
    let scope = ReuseScope::new();
    let json = serde_json::json!({});
    let mut seen = Vec::new();
    for _ in 0..3 {
        let o = tick_in(
            &rt,
            &echo,
            Some(&scope),
            "p1",
            json.clone(),
            &services,
            None,
        )
        .await;
        seen.push((count(&o), o.reused, o.instantiate_time.is_zero()));
    }
    assert_eq!(seen, [(1, false, false), (2, true, true), (3, true, true)]);
    assert_eq!(rt.instances_idle(), 1);
    assert_eq!(rt.instances_reused(), 2);

    // Without a scope: a fresh instance, as always.
    let fresh = tick_in(&rt, &echo, None, "p1", json.clone(), &services, None).await;
    assert_eq!((count(&fresh), fresh.reused), (1, false));
    // Another project never gets the first project's instance.
    let other = tick_in(
        &rt,
        &echo,
        Some(&scope),
        "p2",
        json.clone(),
        &services,
        None,
    )
    .await;
    assert_eq!((count(&other), other.reused), (1, false));
    // Nor does another node (another scope).
    let second = ReuseScope::new();
    let node_b = tick_in(
        &rt,
        &echo,
        Some(&second),
        "p1",
        json.clone(),
        &services,
        None,
    )
    .await;
    assert_eq!((count(&node_b), node_b.reused), (1, false));
    assert_eq!(rt.instances_idle(), 3);
    let again = tick_in(&rt, &echo, Some(&scope), "p1", json, &services, None).await;
    assert_eq!((count(&again), again.reused), (4, true));

    // A scope's idle instances go when the scope does (its graph unloaded).
    drop(scope);
    assert_eq!(rt.instances_idle(), 1);
    drop(second);
    assert_eq!(rt.instances_idle(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_side_of_each_call_is_new_in_a_kept_instance() {
    let rt = runtime();
    let llm = load(&rt, "guest-llm").await;
    let (services, model) = scripted(&["one", "two", "three"]);
    let scope = ReuseScope::new();
    let mut journals = Vec::new();
    for n in 0..3 {
        let o = tick_in(
            &rt,
            &llm,
            Some(&scope),
            "default",
            serde_json::json!({ "n": n }),
            &services,
            None,
        )
        .await;
        let output = o.result.as_ref().expect("the tick succeeds");
        journals.push((o.reused, o.journal.len(), output.reply.clone()));
    }
    // Each tick's journal holds its own model call only, and each sees its
    // own answer.
    assert_eq!(
        journals,
        [
            (false, 1, Some("one".into())),
            (true, 1, Some("two".into())),
            (true, 1, Some("three".into())),
        ]
    );
    // While idle, the kept instance holds none of its last call's
    // services: the model here is referenced by `services` and `model` only.
    assert_eq!(rt.instances_idle(), 1);
    assert_eq!(Arc::strong_count(&model), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_instance_that_hits_a_limit_is_dropped() {
    let rt = runtime();
    let echo = load(&rt, "guest-echo").await;
    let services = Services::unavailable();
    let scope = ReuseScope::new();
    let json = serde_json::json!({});
    let first = tick_in(&rt, &echo, Some(&scope), "p", json.clone(), &services, None).await;
    assert_eq!(count(&first), 1);
    // A reply bigger than the memory cap: the guest's allocation fails and
    // it traps inside the kept instance.
    let limits = Limits {
        max_memory: 8 << 20,
        ..Limits::default()
    };
    let big = serde_json::json!({ "reply_bytes": 64 << 20 });
    let failed = tick_in(&rt, &echo, Some(&scope), "p", big, &services, Some(limits)).await;
    assert!(failed.reused);
    assert!(
        matches!(
            failed.result,
            Err(InvokeError::Runtime(RuntimeError::MemoryLimit { .. }))
        ),
        "{:?}",
        failed.result
    );
    assert_eq!(rt.instances_idle(), 0, "a trapped instance is not kept");
    // The next tick starts over in a fresh instance.
    let next = tick_in(&rt, &echo, Some(&scope), "p", json, &services, None).await;
    assert_eq!((count(&next), next.reused), (1, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_are_bounded_and_give_their_slots_to_new_ticks() {
    // Five pool slots, four kept for `describe`: one slot for ticks.
    let rt = Runtime::new(RuntimeConfig {
        pool: Some(PoolConfig {
            instances: 5,
            ..PoolConfig::default()
        }),
        max_idle_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let echo = load(&rt, "guest-echo").await;
    let services = Services::unavailable();
    let json = serde_json::json!({});
    let scope = ReuseScope::new();
    let kept = tick_in(&rt, &echo, Some(&scope), "p", json.clone(), &services, None).await;
    assert_eq!(count(&kept), 1);
    assert_eq!(rt.instances_idle(), 1);
    // The only tick slot is held by the idle instance: a fresh tick gets
    // it by dropping that instance, instead of waiting for ever.
    let fresh = tokio::time::timeout(
        Duration::from_secs(60),
        tick_in(&rt, &echo, None, "p", json.clone(), &services, None),
    )
    .await
    .expect("a fresh tick must not wait behind an idle instance");
    assert_eq!(count(&fresh), 1);
    assert_eq!(rt.instances_idle(), 0);

    // With room in the pool, at most `max_idle_instances` are kept: the
    // least recently used goes.
    let rt = Arc::new(
        Runtime::new(RuntimeConfig {
            max_idle_instances: 2,
            ..RuntimeConfig::default()
        })
        .unwrap(),
    );
    let echo = load(&rt, "guest-echo").await;
    let scopes: Vec<ReuseScope> = (0..3).map(|_| ReuseScope::new()).collect();
    for scope in &scopes {
        tick_in(&rt, &echo, Some(scope), "p", json.clone(), &services, None).await;
    }
    assert_eq!(rt.instances_idle(), 2);
    let oldest = tick_in(
        &rt,
        &echo,
        Some(&scopes[0]),
        "p",
        json.clone(),
        &services,
        None,
    )
    .await;
    assert!(!oldest.reused, "the oldest was dropped");
    let newest = tick_in(&rt, &echo, Some(&scopes[2]), "p", json, &services, None).await;
    assert!(newest.reused);
}
