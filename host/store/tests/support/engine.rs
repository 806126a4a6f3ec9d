//! An engine's parts for the store tests: the real plugins and test
//! guests built by `cargo xtask build-plugins`, and a runtime with a disk
//! cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weft_engine::{FrameTrace, PluginSet};
use weft_runtime::{Runtime, RuntimeConfig};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder of the built plugins.
pub fn artifacts() -> PathBuf {
    std::env::var_os("WEFT_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("artifacts/plugins"))
}

/// A runtime whose compiled components are cached on disk.
pub fn runtime() -> Arc<Runtime> {
    let config = RuntimeConfig {
        cache_dir: Some(artifacts().join("../cache")),
        ..RuntimeConfig::default()
    };
    Arc::new(Runtime::new(config).expect("runtime"))
}

/// Every built plugin and test guest.
pub async fn plugins(rt: &Runtime) -> Arc<PluginSet> {
    let set = PluginSet::new();
    set.load_dir(rt, &artifacts())
        .await
        .expect("plugins: run `cargo xtask build-plugins`");
    set.load_dir(rt, &artifacts().join("../guests"))
        .await
        .expect("test guests");
    Arc::new(set)
}

/// A run's trace (failing after 2 minutes).
pub async fn finish(handle: weft_engine::RunHandle) -> FrameTrace {
    tokio::time::timeout(Duration::from_secs(120), handle.finish())
        .await
        .expect("the run did not finish in 2 minutes")
        .expect("run")
}

/// An engine on `store` with every built plugin, a scripted model that
/// has no answers and an empty database.
pub async fn engine_on(
    store: Arc<dyn weft_engine::Store>,
    config: weft_engine::EngineConfig,
) -> Arc<weft_engine::Engine> {
    let rt = runtime();
    let plugins = plugins(&rt).await;
    let backends = weft_engine::Backends {
        llm: Arc::new(weft_runtime::capabilities::llm::Scripted::default()),
        db: Arc::new(weft_runtime::capabilities::db::InMemoryDb::default()),
        tools: weft_engine::Backends::no_tools(),
    };
    weft_engine::Engine::open(rt, plugins, backends, config, store)
        .await
        .expect("engine")
}
