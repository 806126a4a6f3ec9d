//! Control: what operators change under running runs — node pauses, the
//! shutdown, the count of runs alive, and the log of plugin swaps. Runs
//! look at each only at frame boundaries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use weft_runtime::Plugin;

use crate::durable::Versions;
use crate::error::EngineError;
use crate::events::{Bus, EventBody};
use crate::graph::PluginRef;
use crate::loaded::LoadedGraph;
use crate::plugins::PluginSet;
use crate::store::NodePause;

/// Pauses, shutdown, runs alive and swaps.
pub(crate) struct Control {
    paused: watch::Sender<BTreeSet<NodePause>>,
    /// Set by a shutdown: runs stop at their next frame boundary and no
    /// new run starts.
    stopping: watch::Sender<bool>,
    /// Runs whose task is alive.
    running: watch::Sender<usize>,
    swaps: SwapLog,
    /// Swaps are applied one at a time.
    swap_lock: tokio::sync::Mutex<()>,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            paused: watch::Sender::new(BTreeSet::new()),
            stopping: watch::Sender::new(false),
            running: watch::Sender::new(0),
            swaps: SwapLog::default(),
            swap_lock: tokio::sync::Mutex::new(()),
        }
    }
}

impl Control {
    /// Adds a pause; false if it was in force already.
    pub fn pause(&self, pause: NodePause) -> bool {
        self.paused.send_if_modified(|p| p.insert(pause))
    }

    /// Lifts a pause; false if there was none.
    pub fn resume(&self, pause: &NodePause) -> bool {
        self.paused.send_if_modified(|p| p.remove(pause))
    }

    /// Puts the pauses read from the store in force.
    pub fn restore_pauses(&self, pauses: impl IntoIterator<Item = NodePause>) {
        self.paused.send_modify(|p| p.extend(pauses));
    }

    /// The pause that holds `node` for threads of `project`: the one for
    /// every project first, else the project's own. With `project` `None`,
    /// only a pause for every project counts.
    pub fn pause_of(&self, project: Option<&str>, node: &str) -> Option<NodePause> {
        let paused = self.paused.borrow();
        let everywhere = NodePause::new(None, node);
        if paused.contains(&everywhere) {
            return Some(everywhere);
        }
        let own = NodePause::new(Some(project?), node);
        paused.contains(&own).then_some(own)
    }

    /// Every pause in force.
    pub fn pauses(&self) -> Vec<NodePause> {
        self.paused.borrow().iter().cloned().collect()
    }

    /// Resolves when pauses change.
    pub fn watch_pauses(&self) -> watch::Receiver<BTreeSet<NodePause>> {
        self.paused.subscribe()
    }

    /// Begins a shutdown.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether a shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves when a shutdown begins.
    pub fn watch_stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Counts a run's task as alive until the guard drops (taken before
    /// the task is spawned, so a shutdown right after waits for it).
    pub fn run_started(&self) -> Running {
        self.running.send_modify(|n| *n += 1);
        Running(self.running.clone())
    }

    /// Runs in flight.
    pub fn runs_in_flight(&self) -> usize {
        *self.running.borrow()
    }

    /// Waits until no run is alive.
    pub async fn all_stopped(&self) {
        let mut running = self.running.subscribe();
        let _ = running.wait_for(|n| *n == 0).await;
    }

    /// Holds the one-swap-at-a-time lock.
    pub async fn swapping(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.swap_lock.lock().await
    }

    /// The swap log.
    pub fn swaps(&self) -> &SwapLog {
        &self.swaps
    }
}

/// Counts one run's task as alive (see [`Control::run_started`]).
pub(crate) struct Running(watch::Sender<usize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Every plugin version swapped in while serving: runs switch at their
/// next frame boundary to the versions swapped since they last looked.
///
/// A run that has seen the first `k` swaps needs, of every plugin swapped
/// after that, only its latest version (a graph takes the last version of
/// each name). So the log keeps one entry per plugin name — its latest
/// version and the number of the swap that brought it — and stays as small
/// as the set of plugins, however many swaps a long-lived host makes.
#[derive(Default)]
pub(crate) struct SwapLog {
    latest: Mutex<BTreeMap<String, (u64, Plugin)>>,
    /// Swaps made so far.
    count: watch::Sender<u64>,
}

impl SwapLog {
    /// Logs `plugin` as the latest version of its name.
    pub fn push(&self, plugin: Plugin) {
        let mut latest = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let number = *self.count.borrow() + 1;
        latest.insert(plugin.info().name.clone(), (number, plugin));
        self.count.send_replace(number);
    }

    /// Resolves when a swap is logged; its value is the number of swaps.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.count.subscribe()
    }

    /// The latest version of every plugin swapped after the first `seen`
    /// swaps, and the number of swaps now.
    pub fn since(&self, seen: u64) -> (Vec<Plugin>, u64) {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = *self.count.borrow();
        let plugins = latest
            .values()
            .filter(|(number, _)| *number > seen)
            .map(|(_, plugin)| plugin.clone())
            .collect();
        (plugins, now)
    }
}

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

/// Makes `plugin` the version of its name that nodes run (see
/// [`Engine::swap_plugin`](crate::Engine::swap_plugin)).
pub(crate) async fn swap_plugin(
    control: &Control,
    (plugins, versions, bus): (&PluginSet, &Versions, &Bus),
    plugin: Plugin,
    bytes: Vec<u8>,
    graphs: &[Arc<LoadedGraph>],
) -> Result<PluginSwap, EngineError> {
    let _one_at_a_time = control.swapping().await;
    let name = plugin.info().name.clone();
    let current = plugins.get(&PluginRef::Name(name.clone()));
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
    versions.keep_plugin(&plugin, bytes).await?;
    plugins.insert(plugin.clone());
    control.swaps().push(plugin);
    tracing::info!(plugin = %name, version = %swap.version, from = ?swap.from, to = %swap.to, "plugin swapped");
    bus.publish_host(EventBody::PluginSwapped {
        plugin: name,
        version: swap.version.clone(),
        from: swap.from.clone(),
        to: swap.to.clone(),
        graphs: swap.graph_names(),
    });
    Ok(swap)
}
