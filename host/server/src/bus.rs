//! `weft serve --bus`: connecting to the bus of several hosts, telling
//! the other hosts what operators change here (plugin swaps, graph
//! changes, node pauses; config reloads are sent by the API), and
//! applying what they change, at the next frame boundary of each run as
//! any change here is. A host that was away from the bus catches up from
//! the store (pauses) and its graph files.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Result;
use tokio::sync::broadcast;
use weft_api::Api;
use weft_bus::{NatsBus, NatsConfig};
use weft_engine::bus::{Change, SystemBus};
use weft_engine::{Catalog, EventBody, NodePause};

use crate::config::BusSection;

/// Connects to the bus named by `--bus` or the config's `bus:` (none: this
/// host's own bus). An unreachable server, or one without JetStream, is
/// refused with a message naming it.
pub async fn connect(
    flag: Option<&str>,
    section: Option<&BusSection>,
    client_buffer: usize,
) -> Result<Option<Arc<dyn SystemBus>>> {
    let url = match (flag, section) {
        (Some(url), _) => url.to_owned(),
        (None, Some(s)) => s.url.clone(),
        (None, None) => return Ok(None),
    };
    let defaults = NatsConfig::default();
    let config = NatsConfig {
        url,
        cluster: section.map_or(defaults.cluster, |s| s.cluster.clone()),
        history: section.map_or(defaults.history, |s| s.history),
        client_buffer,
    };
    let bus = NatsBus::connect(config)
        .await
        .map_err(|e| anyhow::anyhow!("{e} [{}]", e.code()))?;
    Ok(Some(bus))
}

/// Changes applied here because another host made them: their events
/// are not sent back.
#[derive(Debug, Default)]
struct Echoes(Mutex<HashSet<String>>);

impl Echoes {
    fn expect(&self, key: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key);
    }

    fn take(&self, key: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
    }
}

/// The shared store's settings that hold what hosts catch up on.
const ACTIVE_GRAPH: &str = "system.active_graph";
const PLUGIN: &str = "system.plugin.";

/// Keeps a change made here in a shared store's settings, so that a host
/// that misses its broadcast (away from the bus, or restarted) catches up.
async fn record(api: &Api, change: &Change) {
    let Some(store) = api.engine().store().filter(|s| s.shared()) else {
        return;
    };
    let (key, value) = match change {
        Change::PluginSwapped { plugin, to } => (format!("{PLUGIN}{plugin}"), to.clone()),
        Change::GraphChanged {
            graph,
            version,
            change,
        } if change == "activated" => (
            ACTIVE_GRAPH.to_owned(),
            serde_json::json!({"graph": graph, "version": version}).to_string(),
        ),
        _ => return,
    };
    if let Err(e) = store.put_setting(&key, &value).await {
        tracing::warn!(%key, error = %e, "a change was not kept in the store; hosts that miss its broadcast will not catch up on it");
    }
}

fn plugin_key(plugin: &str, to: &str) -> String {
    format!("plugin {plugin} {to}")
}

fn graph_key(graph: &str, version: &str, change: &str) -> String {
    format!("graph {graph} {version} {change}")
}

fn pause_key(pause: &NodePause, paused: bool) -> String {
    format!("pause {:?} {} {paused}", pause.project, pause.node)
}

/// Starts the tasks that send this host's changes to the bus and apply
/// the other hosts'.
pub fn start(api: &Arc<Api>, catalog: &Arc<Catalog>) {
    let echoes = Arc::new(Echoes::default());
    tokio::spawn(send_changes(Arc::clone(api), Arc::clone(&echoes)));
    tokio::spawn(send_pauses(Arc::clone(api), Arc::clone(&echoes)));
    if api.engine().store().is_some_and(|s| s.shared()) {
        // A host that starts on a shared store catches up on what the
        // others changed while it was away.
        let (api, catalog, echoes) = (Arc::clone(api), Arc::clone(catalog), Arc::clone(&echoes));
        tokio::spawn(async move { resync(&api, &catalog, &echoes).await });
    }
    tokio::spawn(apply_changes(Arc::clone(api), Arc::clone(catalog), echoes));
}

/// Plugin swaps and graph changes made here, to the other hosts.
async fn send_changes(api: Arc<Api>, echoes: Arc<Echoes>) {
    let mut events = api.engine().subscribe();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "changes may not have reached the bus; other hosts catch up when they resync"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let change = match &event.body {
            EventBody::PluginSwapped { plugin, to, .. } => {
                if echoes.take(&plugin_key(plugin, to)) {
                    continue;
                }
                Change::PluginSwapped {
                    plugin: plugin.clone(),
                    to: to.clone(),
                }
            }
            EventBody::GraphChanged {
                graph,
                version,
                change,
            } => {
                if echoes.take(&graph_key(graph, version, change)) {
                    continue;
                }
                Change::GraphChanged {
                    graph: graph.clone(),
                    version: version.clone(),
                    change: change.clone(),
                }
            }
            _ => continue,
        };
        record(&api, &change).await;
        api.bus().broadcast(change);
    }
}

/// Node pauses and resumes made here, to the other hosts.
async fn send_pauses(api: Arc<Api>, echoes: Arc<Echoes>) {
    let mut pauses = api.engine().watch_pauses();
    let mut before: BTreeSet<NodePause> = pauses.borrow_and_update().clone();
    while pauses.changed().await.is_ok() {
        let now: BTreeSet<NodePause> = pauses.borrow_and_update().clone();
        for pause in now.difference(&before) {
            if !echoes.take(&pause_key(pause, true)) {
                api.bus().broadcast(Change::Paused {
                    pause: pause.clone(),
                });
            }
        }
        for pause in before.difference(&now) {
            if !echoes.take(&pause_key(pause, false)) {
                api.bus().broadcast(Change::Resumed {
                    pause: pause.clone(),
                });
            }
        }
        before = now;
    }
}

/// The other hosts' changes, applied here.
async fn apply_changes(api: Arc<Api>, catalog: Arc<Catalog>, echoes: Arc<Echoes>) {
    let mut changes = api.bus().broadcasts();
    let me = api.bus().host_id().to_owned();
    loop {
        let broadcast = match changes.recv().await {
            Ok(b) => b,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "changes from the bus were lost; catching up from the store"
                );
                resync(&api, &catalog, &echoes).await;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if broadcast.origin == me && broadcast.change != Change::Resync {
            continue;
        }
        tracing::info!(from = %broadcast.origin, change = ?broadcast.change, "applying a change from the bus");
        apply(&api, &catalog, &echoes, broadcast.change).await;
    }
}

async fn apply(api: &Api, catalog: &Catalog, echoes: &Echoes, change: Change) {
    let engine = api.engine();
    match change {
        Change::PluginSwapped { plugin, to } => {
            let Some(store) = engine.store() else {
                tracing::warn!(%plugin, "a plugin swapped on another host cannot be loaded here: this host has no store");
                return;
            };
            let blob = match store.plugin(&to).await {
                Ok(Some(blob)) => blob,
                Ok(None) => {
                    tracing::warn!(%plugin, hash = %to, "a plugin swapped on another host is not in this host's store; upload it here too");
                    return;
                }
                Err(e) => {
                    tracing::error!(%plugin, error = %e, "reading a swapped plugin from the store");
                    return;
                }
            };
            echoes.expect(plugin_key(&plugin, &to));
            if let Err(e) = catalog.upload_plugin(&plugin, blob.bytes).await {
                echoes.take(&plugin_key(&plugin, &to));
                tracing::error!(%plugin, code = e.code(), error = %e, "a plugin swapped on another host was refused here");
            }
        }
        Change::GraphChanged {
            graph,
            version,
            change,
        } => {
            if change == "activated" {
                if catalog.active().is_some_and(|g| g.graph().name() == graph) {
                    return;
                }
                echoes.expect(graph_key(&graph, &version, &change));
                if let Err(e) = catalog.switch_active(&graph) {
                    echoes.take(&graph_key(&graph, &version, &change));
                    tracing::error!(%graph, code = e.code(), error = %e, "a graph switched to on another host is not served here");
                }
            } else {
                // Graph files are deployed to every host: read them again.
                echoes.expect(graph_key(&graph, &version, &change));
                let report = catalog.reload().await;
                if !report.edited.iter().any(|c| c.name == graph) {
                    echoes.take(&graph_key(&graph, &version, &change));
                }
            }
        }
        Change::Paused { pause } => {
            echoes.expect(pause_key(&pause, true));
            if !engine.pause(pause.project.as_deref(), &pause.node) {
                echoes.take(&pause_key(&pause, true));
            }
        }
        Change::Resumed { pause } => {
            echoes.expect(pause_key(&pause, false));
            if !engine.resume(pause.project.as_deref(), &pause.node) {
                echoes.take(&pause_key(&pause, false));
            }
        }
        Change::BudgetChanged { project } => {
            if let Err(e) = engine.reload_project_budget(&project).await {
                tracing::error!(%project, error = %e, "a project budget set on another host could not be read from the store; the old one stays here");
            }
        }
        Change::ConfigReloaded => {
            if let Err(e) = api.reload_config_here().await {
                tracing::error!(code = %e.code, message = %e.message, "a config reload from another host failed here; the old config stays");
            }
        }
        Change::Resync => resync(api, catalog, echoes).await,
    }
}

/// Catches up on changes missed while away from the bus: the pauses and
/// project budgets the store holds, and the graph files.
async fn resync(api: &Api, catalog: &Catalog, echoes: &Echoes) {
    let engine = api.engine();
    if let Some(store) = engine.store() {
        match store.paused_nodes().await {
            Ok(stored) => {
                let stored: BTreeSet<NodePause> = stored.into_iter().collect();
                let now: BTreeSet<NodePause> = engine.pauses().into_iter().collect();
                for pause in stored.difference(&now) {
                    echoes.expect(pause_key(pause, true));
                    engine.pause(pause.project.as_deref(), &pause.node);
                }
                for pause in now.difference(&stored) {
                    echoes.expect(pause_key(pause, false));
                    engine.resume(pause.project.as_deref(), &pause.node);
                }
            }
            Err(e) => tracing::error!(error = %e, "reading the pauses from the store to catch up"),
        }
        // Project budgets set or raised on other hosts meanwhile.
        match store.project_budgets().await {
            Ok(stored) => {
                for project in stored.keys() {
                    if let Err(e) = engine.reload_project_budget(project).await {
                        tracing::error!(%project, error = %e, "reading a project budget from the store to catch up");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the project budgets from the store to catch up");
            }
        }
    }
    // Edited graphs are told to the other hosts too, which find their
    // files unchanged or catch up the same way.
    catalog.reload().await;
    // Plugin versions and the active graph the other hosts put in force.
    if let Some(store) = engine.store().filter(|s| s.shared()) {
        match store.settings("system.").await {
            Ok(settings) => {
                for (key, value) in settings {
                    if let Some(change) = missed(api, catalog, &key, &value) {
                        Box::pin(apply(api, catalog, echoes, change)).await;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the system's plugins and active graph from the store to catch up");
            }
        }
    }
}

/// The change a stored setting says this host missed, if any.
fn missed(api: &Api, catalog: &Catalog, key: &str, value: &str) -> Option<Change> {
    if let Some(plugin) = key.strip_prefix(PLUGIN) {
        let here = api
            .engine()
            .plugins()
            .get(&weft_engine::PluginRef::Name(plugin.to_owned()))
            .map(|p| p.hash_hex().to_owned());
        return (here.as_deref() != Some(value)).then(|| Change::PluginSwapped {
            plugin: plugin.to_owned(),
            to: value.to_owned(),
        });
    }
    if key == ACTIVE_GRAPH {
        let v: serde_json::Value = serde_json::from_str(value).ok()?;
        let graph = v["graph"].as_str()?.to_owned();
        if catalog.active().is_some_and(|g| g.graph().name() == graph) {
            return None;
        }
        return Some(Change::GraphChanged {
            graph,
            version: v["version"].as_str().unwrap_or_default().to_owned(),
            change: "activated".to_owned(),
        });
    }
    None
}
