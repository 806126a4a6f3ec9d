//! Swapping a plugin while serving: the new version is validated against
//! every graph that runs it and kept in the store before any node switches;
//! runs in flight switch at their next frame boundary.

use std::sync::Arc;

use weft_runtime::Plugin;

use crate::engine::{Engine, EngineError, lock};
use crate::events::EventBody;
use crate::loaded::LoadedGraph;

/// What a plugin swap did.
#[derive(Debug, Clone)]
pub struct PluginSwap {
    /// Plugin name (`describe`).
    pub plugin: String,
    /// Its new version (`describe`).
    pub version: String,
    /// Content hash of the version replaced, if the plugin was loaded.
    pub from: Option<String>,
    /// Content hash of the new version.
    pub to: String,
    /// The given graphs that run the plugin, each with its new version
    /// (old, new); serve the new ones to new runs.
    pub graphs: Vec<(Arc<LoadedGraph>, Arc<LoadedGraph>)>,
    /// The new version is the one serving already: nothing changed.
    pub unchanged: bool,
}

impl PluginSwap {
    /// The names of the graphs that got new versions.
    pub fn graph_names(&self) -> Vec<String> {
        self.graphs
            .iter()
            .map(|(_, g)| g.graph().name().to_owned())
            .collect()
    }
}

impl Engine {
    /// Makes `plugin` (loaded from `bytes`) the version of its name that
    /// nodes run. It is first checked against each of `graphs` that runs
    /// the plugin (its input schema, its capabilities against the node's
    /// grants, the graph's validation); a refusal changes nothing. Then its
    /// bytes go to the store (so any frame it runs can be replayed), it
    /// replaces the old version for new runs, and every run in flight
    /// switches at its next frame boundary: the frame running now finishes
    /// on the old version. Swaps are applied one at a time.
    pub async fn swap_plugin(
        &self,
        plugin: Plugin,
        bytes: Vec<u8>,
        graphs: &[Arc<LoadedGraph>],
    ) -> Result<PluginSwap, EngineError> {
        let _one_at_a_time = self.swap_lock.lock().await;
        let name = plugin.info().name.clone();
        let current = self
            .plugins
            .get(&crate::graph::PluginRef::Name(name.clone()));
        let mut swap = PluginSwap {
            plugin: name.clone(),
            version: plugin.info().version.clone(),
            from: current.as_ref().map(|p| p.hash_hex().to_owned()),
            to: plugin.hash_hex().to_owned(),
            graphs: Vec::new(),
            unchanged: current.as_ref().is_some_and(|p| p.hash() == plugin.hash()),
        };
        if swap.unchanged {
            return Ok(swap);
        }
        let news = std::slice::from_ref(&plugin);
        for graph in graphs {
            let rebound = graph
                .with_plugins(news)
                .map_err(|e| EngineError::PluginRejected(e.to_string()))?;
            if let Some(new) = rebound {
                swap.graphs.push((Arc::clone(graph), Arc::new(new)));
            }
        }
        if let Some(store) = &self.store
            && !store.has_plugin(&swap.to).await?
        {
            crate::durable::keep_plugin(store.as_ref(), &plugin, bytes).await?;
        }
        self.plugins.insert(plugin.clone());
        lock(&self.swaps).push(plugin);
        self.swap_count.send_modify(|n| *n += 1);
        tracing::info!(plugin = %name, version = %swap.version, from = ?swap.from, to = %swap.to, "plugin swapped");
        self.bus.publish_host(EventBody::PluginSwapped {
            plugin: name,
            version: swap.version.clone(),
            from: swap.from.clone(),
            to: swap.to.clone(),
            graphs: swap.graph_names(),
        });
        Ok(swap)
    }

    /// The version of `graph` a run should use for its next frame, given
    /// that it has seen the first `seen` swaps; and how many it has seen
    /// now. A graph the swapped version does not fit keeps its version
    /// (the problem is logged and published on the thread).
    pub(crate) async fn rebind(
        &self,
        (thread, run): (&str, &str),
        graph: &Arc<LoadedGraph>,
        seen: usize,
    ) -> (Arc<LoadedGraph>, usize) {
        let swapped: Vec<Plugin> = {
            let swaps = lock(&self.swaps);
            swaps[seen.min(swaps.len())..].to_vec()
        };
        let now = seen + swapped.len();
        let problem = match graph.with_plugins(&swapped) {
            Ok(None) => return (Arc::clone(graph), now),
            Ok(Some(new)) => {
                let new = Arc::new(new);
                match self.store_version(&new).await {
                    Ok(()) => return (new, now),
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        tracing::warn!(thread, run, %problem, "the run keeps its plugin versions");
        self.bus.publish(
            thread,
            run,
            None,
            None,
            EventBody::Error(crate::trace::TraceError {
                code: "swap_refused".into(),
                message: format!("the run keeps its plugin versions: {problem}"),
            }),
        );
        (Arc::clone(graph), now)
    }
}
