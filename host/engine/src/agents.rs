//! Agent instances: a plugin spawned as a named agent of a project, with
//! the lifecycle of the seed Syndarix (idle, working, waiting, paused,
//! terminated). [`Agents`] is a client of the [`Engine`] facade: it uses
//! only the engine's public API.
//!
//! "Instance" here always means an *agent instance*; the runtime's pool
//! holds *slots*, and a slot hosts one short-lived wasm instance per tick.
//!
//! An instance is spawned from a node of a served graph: its plugin,
//! grants, model, limits and config are that node's, never more than the
//! graph grants (what the plugin's `describe` asks for is not a grant).
//! It runs that node as the only node of its own graph, on its own thread
//! (in its project: the project's money budget holds for its calls): a
//! task is a run on that thread. `working` and `waiting` are
//! owned by the engine (a task in flight; a task waiting on a budget or a
//! pause); clients move instances between `idle`, `paused` and
//! `terminated` only. Transitions are checked against the state machine and
//! applied one at a time (an async lock held across the store write), so
//! of two concurrent requests exactly one wins.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weft_runtime::Capability;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::run::RunHandle;
use crate::store::StoredInstance;
use crate::threads::ThreadId;
use crate::{Inbound, LoadedGraph};

/// Where an instance is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Ready for a task.
    Idle,
    /// A task is running (engine-owned).
    Working,
    /// A task waits on a budget or a pause (engine-owned).
    Waiting,
    /// Takes no tasks until resumed.
    Paused,
    /// Gone for good.
    Terminated,
}

impl InstanceStatus {
    /// The states a status may move to.
    pub fn targets(self) -> &'static [InstanceStatus] {
        use InstanceStatus::*;
        match self {
            Idle => &[Working, Paused, Terminated],
            Working => &[Idle, Waiting, Paused, Terminated],
            Waiting => &[Idle, Working, Paused, Terminated],
            Paused => &[Idle, Terminated],
            Terminated => &[],
        }
    }

    /// Whether the engine alone may set it.
    pub fn system_owned(self) -> bool {
        matches!(self, Self::Working | Self::Waiting)
    }

    /// The name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Working => "working",
            Self::Waiting => "waiting",
            Self::Paused => "paused",
            Self::Terminated => "terminated",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// Why an instance request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    /// No such instance (or not in the caller's project).
    #[error("no agent instance `{0}`")]
    Unknown(String),
    /// No plugin of this name is loaded.
    #[error("no plugin `{0}` is loaded")]
    UnknownPlugin(String),
    /// The state machine does not allow this.
    #[error("agent instance `{id}` cannot go from {from} to {to}")]
    Transition {
        /// Instance.
        id: String,
        /// Its status.
        from: &'static str,
        /// The status asked for.
        to: &'static str,
    },
    /// Clients cannot set `working` or `waiting`.
    #[error("`{0}` is set by the engine, not by clients")]
    SystemOwned(&'static str),
    /// The graph has no node to take the instance's definition from (no
    /// node of that name, none or several running the plugin, or the
    /// instance predates instances from graphs).
    #[error("{0}")]
    NotInGraph(String),
    /// The engine refused (store, busy thread …).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl InstanceError {
    /// A stable code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unknown(_) => "not_found",
            Self::UnknownPlugin(_) => "unknown_plugin",
            Self::Transition { .. } => "invalid_transition",
            Self::SystemOwned(_) => "system_owned_state",
            Self::NotInGraph(_) => "not_in_graph",
            Self::Engine(e) => e.code(),
        }
    }
}

/// An instance as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// Id.
    #[serde(flatten)]
    pub stored: StoredInstance,
    /// Tokens its tasks used.
    pub tokens_used: u64,
    /// Cost of its tasks.
    pub cost_incurred: f64,
    /// The task in flight.
    pub current_run: Option<String>,
}

/// The agent instances of an engine.
pub struct Agents {
    engine: Arc<Engine>,
    map: tokio::sync::Mutex<BTreeMap<String, StoredInstance>>,
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agents").finish_non_exhaustive()
    }
}

/// The instance `id` (in `project`, when given).
fn find(
    map: &BTreeMap<String, StoredInstance>,
    id: &str,
    project: Option<&str>,
) -> Result<StoredInstance, InstanceError> {
    map.get(id)
        .filter(|i| project.is_none_or(|p| p == i.project))
        .cloned()
        .ok_or_else(|| InstanceError::Unknown(id.to_owned()))
}

fn grants_yaml(grants: weft_runtime::Grants) -> String {
    let names: Vec<String> = grants.iter().map(|c: Capability| c.to_string()).collect();
    format!("[{}]", names.join(", "))
}

/// A graph node's definition as a YAML flow mapping: its plugin, grants,
/// model, limits and config (what an instance spawned from it runs with).
fn definition(node: &crate::graph::Node) -> String {
    let l = node.limits;
    let mut limits = vec![
        format!("deadline_ms: {}", l.deadline.as_millis()),
        format!("max_memory_mb: {}", l.max_memory >> 20),
        format!("max_output_kb: {}", l.max_output >> 10),
    ];
    if let Some(fuel) = l.fuel {
        limits.push(format!("fuel: {fuel}"));
    }
    let model = node
        .model
        .as_ref()
        .map(|m| format!("model: {}, ", serde_json::Value::String(m.clone())))
        .unwrap_or_default();
    format!(
        "{{ plugin: {plugin}, grants: {grants}, {model}limits: {{ {limits} }}, config: {config} }}",
        plugin = node.info.name,
        grants = grants_yaml(node.grants),
        limits = limits.join(", "),
        config = serde_json::Value::Object(node.config.clone()),
    )
}

impl Agents {
    /// No agent instances yet, on `engine`: for an engine without a store
    /// (with one, [`open`](Self::open) loads the stored instances).
    pub fn new(engine: Arc<Engine>) -> Arc<Self> {
        Arc::new(Self {
            engine,
            map: tokio::sync::Mutex::default(),
        })
    }

    /// The agent instances of `engine`, loaded from its store (if it has one).
    pub async fn open(engine: Arc<Engine>) -> Result<Arc<Self>, EngineError> {
        let mut map = BTreeMap::new();
        if let Some(store) = engine.store() {
            for i in store.instances().await? {
                map.insert(i.id.clone(), i);
            }
        }
        Ok(Arc::new(Self {
            engine,
            map: tokio::sync::Mutex::new(map),
        }))
    }

    /// The engine the instances run on.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The one-node graph an instance runs: the node definition it was
    /// spawned with (from a served graph), named after the instance.
    async fn instance_graph(&self, i: &StoredInstance) -> Result<Arc<LoadedGraph>, InstanceError> {
        if i.definition.is_empty() {
            return Err(InstanceError::NotInGraph(format!(
                "agent instance `{}` was spawned before instances came from graphs: \
                 spawn it again from a graph's node",
                i.id
            )));
        }
        self.engine
            .plugins()
            .get(&crate::PluginRef::Name(i.plugin.clone()))
            .ok_or_else(|| InstanceError::UnknownPlugin(i.plugin.clone()))?;
        let yaml = format!(
            "name: {id}\nentry: {id}\nnodes:\n  {id}: {definition}\n",
            id = i.id,
            definition = i.definition,
        );
        let graph = LoadedGraph::from_yaml(
            &yaml,
            std::path::Path::new(&format!("instances/{}.yaml", i.id)),
            self.engine.plugins(),
            self.engine.runtime(),
        )
        .await
        .map_err(|e| EngineError::GraphVersion {
            version: i.id.clone(),
            message: e.to_string(),
        })?;
        Ok(Arc::new(graph))
    }

    async fn save_instance(&self, i: &StoredInstance) -> Result<(), EngineError> {
        if let Some(store) = self.engine.store() {
            store.put_instance(i.clone()).await?;
        }
        Ok(())
    }

    /// The instance with its usage: from the ledger while its thread is in
    /// memory, else summed by the store.
    async fn instance_view(&self, stored: StoredInstance) -> Instance {
        let mut usage = self.engine.ledger().thread_totals(&stored.thread);
        if usage.is_none()
            && let Some(store) = self.engine.store()
        {
            match store
                .thread_usage(&stored.thread, self.engine.ledger().since_ms())
                .await
            {
                Ok((_, totals)) => usage = Some(totals),
                Err(e) => {
                    tracing::warn!(instance = %stored.id, error = %e, "instance usage not read")
                }
            }
        }
        let usage = usage.unwrap_or_default();
        Instance {
            current_run: self.engine.active_run(&stored.thread),
            tokens_used: usage.prompt_tokens + usage.completion_tokens,
            cost_incurred: usage.cost,
            stored,
        }
    }

    /// Spawns an instance of `plugin` in `project` from a node of `graph`
    /// (a served graph): the node named `node`, or else the one node that
    /// runs `plugin`. The instance gets that node's grants, model, limits
    /// and config, nothing more; it is `idle`, on its own thread.
    pub async fn spawn_instance(
        &self,
        project: &str,
        name: &str,
        plugin: &str,
        graph: &LoadedGraph,
        node: Option<&str>,
    ) -> Result<Instance, InstanceError> {
        self.engine
            .plugins()
            .get(&crate::PluginRef::Name(plugin.to_owned()))
            .ok_or_else(|| InstanceError::UnknownPlugin(plugin.to_owned()))?;
        let g = graph.graph();
        let chosen = match node {
            Some(n) => g.nodes().iter().find(|x| x.name == n).ok_or_else(|| {
                InstanceError::NotInGraph(format!("graph `{}` has no node `{n}`", g.name()))
            })?,
            None => {
                let mut running = g.nodes().iter().filter(|x| x.info.name == plugin);
                match (running.next(), running.next()) {
                    (Some(one), None) => one,
                    (None, _) => {
                        return Err(InstanceError::NotInGraph(format!(
                            "graph `{}` has no node running plugin `{plugin}`",
                            g.name()
                        )));
                    }
                    (Some(_), Some(_)) => {
                        return Err(InstanceError::NotInGraph(format!(
                            "graph `{}` has several nodes running plugin `{plugin}`: name one",
                            g.name()
                        )));
                    }
                }
            }
        };
        if chosen.info.name != plugin {
            return Err(InstanceError::NotInGraph(format!(
                "node `{}` of graph `{}` runs plugin `{}`, not `{plugin}`",
                chosen.name,
                g.name(),
                chosen.info.name
            )));
        }
        let id = format!(
            "agent-{}",
            &ThreadId::generate().as_str()["thread-".len()..]
        );
        let now = self.engine.now_ms();
        let stored = StoredInstance {
            thread: format!("{id}.thread"),
            id: id.clone(),
            project: project.to_owned(),
            name: name.to_owned(),
            plugin: plugin.to_owned(),
            status: InstanceStatus::Idle.as_str().to_owned(),
            tasks_completed: 0,
            config: serde_json::Value::Object(chosen.config.clone()).to_string(),
            created_ms: now,
            updated_ms: now,
            terminated_ms: None,
            graph: g.name().to_owned(),
            definition: definition(chosen),
        };
        // Fails early for an unknown plugin or a config it rejects.
        let graph = self.instance_graph(&stored).await?;
        self.engine
            .open_thread_in(project, Some(&stored.thread), &graph);
        let mut map = self.map.lock().await;
        self.save_instance(&stored).await?;
        map.insert(id, stored.clone());
        drop(map);
        Ok(self.instance_view(stored).await)
    }

    /// Instances, oldest first; `project` and `status` filter.
    pub async fn instances(&self, project: Option<&str>, status: Option<&str>) -> Vec<Instance> {
        let list: Vec<StoredInstance> = {
            let map = self.map.lock().await;
            map.values()
                .filter(|i| project.is_none_or(|p| p == i.project))
                .filter(|i| status.is_none_or(|s| s == i.status))
                .cloned()
                .collect()
        };
        let mut views = Vec::with_capacity(list.len());
        for i in list {
            views.push(self.instance_view(i).await);
        }
        views
    }

    /// One instance (in `project`, when given).
    pub async fn instance(
        &self,
        id: &str,
        project: Option<&str>,
    ) -> Result<Instance, InstanceError> {
        let found = find(&*self.map.lock().await, id, project)?;
        Ok(self.instance_view(found).await)
    }

    /// A client's transition: to `idle` (resume), `paused` or
    /// `terminated`. Pausing holds the instance's node (a task in flight
    /// waits); terminating kills its task.
    pub async fn transition_instance(
        &self,
        id: &str,
        project: Option<&str>,
        to: InstanceStatus,
    ) -> Result<Instance, InstanceError> {
        if to.system_owned() {
            return Err(InstanceError::SystemOwned(to.as_str()));
        }
        let mut map = self.map.lock().await;
        let current = find(&map, id, project)?;
        let from = InstanceStatus::parse(&current.status).unwrap_or(InstanceStatus::Terminated);
        // `idle` from paused is a resume; a paused instance whose task is
        // still in flight goes back to working.
        let busy = self.engine.active_run(&current.thread).is_some();
        let target = if to == InstanceStatus::Idle && busy {
            InstanceStatus::Working
        } else {
            to
        };
        if !from.targets().contains(&to) {
            return Err(InstanceError::Transition {
                id: id.to_owned(),
                from: from.as_str(),
                to: to.as_str(),
            });
        }
        let mut next = current.clone();
        next.status = target.as_str().to_owned();
        next.updated_ms = self.engine.now_ms();
        if target == InstanceStatus::Terminated {
            next.terminated_ms = Some(next.updated_ms);
        }
        self.save_instance(&next).await?;
        match target {
            InstanceStatus::Paused => {
                self.engine.pause(None, id);
            }
            InstanceStatus::Terminated => {
                self.engine.resume(None, id);
                let _ = self.engine.kill(&current.thread);
            }
            _ => {
                self.engine.resume(None, id);
            }
        }
        map.insert(id.to_owned(), next.clone());
        drop(map);
        Ok(self.instance_view(next).await)
    }

    /// Renames an instance.
    pub async fn rename_instance(
        &self,
        id: &str,
        project: Option<&str>,
        name: &str,
    ) -> Result<Instance, InstanceError> {
        let mut map = self.map.lock().await;
        let mut next = find(&map, id, project)?;
        next.name = name.to_owned();
        next.updated_ms = self.engine.now_ms();
        self.save_instance(&next).await?;
        map.insert(id.to_owned(), next.clone());
        drop(map);
        Ok(self.instance_view(next).await)
    }

    /// Gives an idle instance a task (a message for its plugin): it is
    /// `working` until the task's run ends, then `idle` again.
    pub async fn instance_task(
        self: &Arc<Self>,
        id: &str,
        project: Option<&str>,
        kind: &str,
        body: &serde_json::Value,
    ) -> Result<RunHandle, InstanceError> {
        let mut map = self.map.lock().await;
        let current = find(&map, id, project)?;
        let from = InstanceStatus::parse(&current.status).unwrap_or(InstanceStatus::Terminated);
        if !from.targets().contains(&InstanceStatus::Working) || from == InstanceStatus::Working {
            return Err(InstanceError::Transition {
                id: id.to_owned(),
                from: from.as_str(),
                to: InstanceStatus::Working.as_str(),
            });
        }
        let graph = self.instance_graph(&current).await?;
        self.engine
            .open_thread_in(&current.project, Some(&current.thread), &graph);
        // Subscribed before the run starts: a short task may end before
        // this function returns, and its end must not be missed.
        let mut events = self.engine.subscribe();
        let thread = current.thread.clone();
        let handle = self
            .engine
            .start_run(&current.thread, Inbound::to(id, kind, body))
            .await?;
        let mut next = current;
        next.status = InstanceStatus::Working.as_str().to_owned();
        next.updated_ms = self.engine.now_ms();
        self.save_instance(&next).await?;
        map.insert(id.to_owned(), next);
        drop(map);
        // When the task ends, the instance is idle again (unless a client
        // paused or terminated it meanwhile).
        let agents = Arc::clone(self);
        let instance = id.to_owned();
        let run = handle.run.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) if e.run == run && matches!(e.body, crate::EventBody::FrameTrace(_)) => {
                        break;
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if agents.engine.active_run(&thread).is_none() {
                            break;
                        }
                    }
                    Err(_) => return,
                }
            }
            let mut map = agents.map.lock().await;
            if let Some(i) = map.get(&instance).cloned()
                && i.status == InstanceStatus::Working.as_str()
            {
                let mut next = i;
                next.status = InstanceStatus::Idle.as_str().to_owned();
                next.tasks_completed += 1;
                next.updated_ms = agents.engine.now_ms();
                if let Err(e) = agents.save_instance(&next).await {
                    tracing::error!(instance, error = %e, "instance state not stored");
                }
                map.insert(instance, next);
            }
        });
        Ok(handle)
    }
}
