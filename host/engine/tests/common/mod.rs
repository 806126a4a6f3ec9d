//! Shared helpers for the engine's integration tests: the real components
//! built by `cargo xtask build-plugins`, a runtime with a disk cache, and an
//! engine over them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weft_engine::{
    Backends, Engine, EngineConfig, Event, EventBody, FrameTrace, Inbound, LoadedGraph, PluginSet,
};
use weft_runtime::capabilities::db::{Database, InMemoryDb};
use weft_runtime::capabilities::llm::{LlmBackend, Scripted};
use weft_runtime::{Runtime, RuntimeConfig};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder `cargo xtask build-plugins` writes components into.
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("WEFT_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("artifacts/plugins"))
}

/// A runtime whose compiled components are cached on disk next to the
/// artifacts, so each test loads them in milliseconds.
pub fn runtime() -> Arc<Runtime> {
    let config = RuntimeConfig {
        cache_dir: Some(artifacts_dir().join("../cache")),
        ..RuntimeConfig::default()
    };
    Arc::new(Runtime::new(config).expect("runtime"))
}

/// Every built plugin and test guest (the ones that fail to load on
/// purpose are skipped).
pub async fn plugins(rt: &Runtime) -> Arc<PluginSet> {
    let dir = artifacts_dir();
    assert!(
        dir.join("weft-plugin-input.wasm").exists(),
        "missing components in {}: run `cargo xtask build-plugins`",
        dir.display()
    );
    let set = PluginSet::new();
    set.load_dir(rt, &dir).await.expect("plugin dir");
    set.load_dir(rt, &dir.join("../guests"))
        .await
        .expect("test guests: run `cargo xtask build-plugins`");
    Arc::new(set)
}

/// An engine over every built plugin with `llm` and `db` behind the capabilities.
pub async fn engine_with(llm: Arc<dyn LlmBackend>, db: Arc<dyn Database>) -> Arc<Engine> {
    let rt = runtime();
    let plugins = plugins(&rt).await;
    Engine::new(
        rt,
        plugins,
        Backends {
            llm,
            db,
            tools: weft_engine::Backends::no_tools(),
        },
        EngineConfig::default(),
    )
}

/// An engine with a scripted LLM and an empty database.
pub async fn engine(llm: Arc<Scripted>) -> Arc<Engine> {
    engine_with(llm, Arc::new(InMemoryDb::default())).await
}

/// Loads graph text as if it were the file `name` in the artifacts folder.
pub async fn graph(engine: &Engine, name: &str, yaml: &str) -> Arc<LoadedGraph> {
    let file = artifacts_dir().join(name);
    Arc::new(
        LoadedGraph::from_yaml(yaml, &file, engine.plugins(), engine.runtime())
            .await
            .unwrap_or_else(|e| panic!("graph {name}: {e}")),
    )
}

/// Loads a shipped graph from `graphs/`.
pub async fn shipped_graph(engine: &Engine, file: &str) -> Arc<LoadedGraph> {
    engine
        .load_graph(&root().join("graphs").join(file))
        .await
        .unwrap_or_else(|e| panic!("graphs/{file}: {e}"))
}

/// Runs one inbound message on a new thread and returns the trace.
pub async fn run(engine: &Arc<Engine>, graph: &Arc<LoadedGraph>, inbound: Inbound) -> FrameTrace {
    let thread = engine.open_thread(None, graph);
    run_on(engine, &thread, inbound).await
}

/// Runs one inbound message on `thread` and returns the trace.
pub async fn run_on(engine: &Arc<Engine>, thread: &str, inbound: Inbound) -> FrameTrace {
    let handle = engine.start_run(thread, inbound).await.expect("start run");
    tokio::time::timeout(Duration::from_secs(120), handle.finish())
        .await
        .expect("the run did not finish in 2 minutes")
        .expect("run")
}

/// Waits for the first event matching `pred` (failing after 60 s).
pub async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    mut pred: impl FnMut(&Event) -> bool,
) -> Arc<Event> {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream closed: {e}"),
            }
        }
    })
    .await
    .expect("the event did not come in 60 s")
}

/// Whether an event is a status change to `status` for `run`.
pub fn is_status(e: &Event, run: &str, status: weft_engine::RunStatus) -> bool {
    e.run == run && matches!(&e.body, EventBody::Status { status: s } if *s == status)
}

/// The parsed reply of a trace.
pub fn reply_json(trace: &FrameTrace) -> serde_json::Value {
    serde_json::from_str(trace.reply.as_deref().expect("a reply")).expect("reply is JSON")
}

/// A path under the system temp dir unique to this test process and `name`.
pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-engine-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A graph of the real input node feeding a no-op sink, for tests about
/// what happens around one `llm` call.
pub const INPUT_ONLY: &str = r#"
name: input-only
entry: input
nodes:
  input: { plugin: input, grants: [llm, hud, memory, log], config: { think: sink, reflex: sink } }
  sink: { plugin: guest-echo }
edges:
  - { from: input, to: sink }
"#;
