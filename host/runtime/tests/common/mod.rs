//! Shared helpers for the runtime's integration tests: artifacts built by
//! `cargo xtask build-plugins`, a runtime, and invocation shorthands.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use weft_runtime::{
    CallContext, Grants, Invocation, Limits, Message, Outcome, Plugin, Runtime, RuntimeConfig,
    Services,
};

/// The folder `cargo xtask build-plugins` writes components into.
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("WEFT_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/plugins")
        })
}

/// Path of a built plugin or test guest; fails with the command that builds it.
pub fn artifact(package: &str) -> PathBuf {
    let file = format!("{package}.wasm");
    let guest = artifacts_dir().join("../guests").join(&file);
    let path = if guest.exists() {
        guest
    } else {
        artifacts_dir().join(&file)
    };
    assert!(
        path.exists(),
        "missing artifact {}: build the plugins and test guests with `cargo xtask build-plugins`",
        path.display()
    );
    path
}

/// A runtime with default configuration and no disk cache.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

/// Loads a built artifact.
pub async fn load(rt: &Runtime, package: &str) -> Plugin {
    rt.load_file(artifact(package))
        .await
        .unwrap_or_else(|e| panic!("loading {package}: {e}"))
}

/// A call context for frame 0 of run `r1` on `thread`.
pub fn call(thread: &str, node: &str) -> CallContext {
    CallContext {
        thread: thread.into(),
        run: "r1".into(),
        frame: 0,
        node: node.into(),
        project: "default".into(),
    }
}

/// A user message with a JSON body.
pub fn user_message(id: &str, body: serde_json::Value) -> Message {
    Message {
        id: id.into(),
        from: "user".into(),
        kind: "user".into(),
        body: body.to_string(),
    }
}

/// Invokes `plugin` once with every capability granted.
pub async fn tick(
    rt: &Runtime,
    plugin: &Plugin,
    services: &Services,
    inbox: &[Message],
    limits: Option<Limits>,
) -> Outcome {
    tick_with(rt, plugin, services, inbox, limits, Grants::all()).await
}

/// Invokes `plugin` once with the given grants.
pub async fn tick_with(
    rt: &Runtime,
    plugin: &Plugin,
    services: &Services,
    inbox: &[Message],
    limits: Option<Limits>,
    grants: Grants,
) -> Outcome {
    rt.invoke(
        plugin,
        Invocation {
            call: call("t1", &plugin.info().name),
            inbox,
            config: "{}",
            model: None,
            grants,
            tools: &weft_runtime::capabilities::tools::NO_TOOLS,
            services,
            limits,
            wall_time: None,
            reuse: None,
        },
    )
    .await
}

/// Services with a scripted LLM giving `answers` in order.
pub fn scripted(answers: &[&str]) -> (Services, Arc<weft_runtime::capabilities::llm::Scripted>) {
    let llm = Arc::new(weft_runtime::capabilities::llm::Scripted::new(
        answers.iter().copied(),
    ));
    let mut services = Services::unavailable();
    services.llm = llm.clone();
    (services, llm)
}
