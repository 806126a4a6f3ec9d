//! The engine's use of its [`Store`]: graph versions kept and rebuilt,
//! resume after a crash, fork, and retention.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use weft_runtime::capabilities::memory::MemoryWrite;
use weft_runtime::{ContentHash, Message, Plugin};

use crate::engine::{Engine, EngineError, Retention, RunHandle};
use crate::loaded::LoadedGraph;
use crate::plugins::PluginSet;
use crate::run::RunState;
use crate::store::{ForkStart, PluginBlob, PruneReport, RunStart, Store, StoreError, StoredThread};

/// Keeps a graph version and the bytes of its plugins (read again from
/// their files; a file changed since it was loaded is not kept, and a run
/// on that version can then only resume while the same version is
/// installed).
pub(crate) async fn put_version(store: &dyn Store, graph: &LoadedGraph) -> Result<(), StoreError> {
    let mut seen = std::collections::BTreeSet::new();
    for node in graph.graph().nodes() {
        let Some(plugin) = graph.plugin(&node.name) else {
            continue;
        };
        let hash = plugin.hash_hex().to_owned();
        if !seen.insert(hash.clone()) || store.has_plugin(&hash).await? {
            continue;
        }
        match tokio::fs::read(plugin.path()).await {
            Ok(bytes) if ContentHash::of(&bytes) == plugin.hash() => {
                keep_plugin(store, plugin, bytes).await?;
            }
            Ok(_) => tracing::warn!(
                plugin = %plugin.path().display(),
                "the plugin's file changed since it was loaded: its bytes are not kept"
            ),
            Err(error) => tracing::warn!(
                plugin = %plugin.path().display(),
                %error,
                "the plugin's file cannot be read: its bytes are not kept"
            ),
        }
    }
    store.put_graph(graph.version()).await
}

/// Stores `plugin`'s component `bytes` under its hash.
pub(crate) async fn keep_plugin(
    store: &dyn Store,
    plugin: &Plugin,
    bytes: Vec<u8>,
) -> Result<(), StoreError> {
    store
        .put_plugin(PluginBlob {
            hash: plugin.hash_hex().to_owned(),
            name: plugin.info().name.clone(),
            version: plugin.info().version.clone(),
            contract: plugin.contract().to_owned(),
            path: plugin.path().display().to_string(),
            bytes,
        })
        .await
}

fn version_error(version: &str, message: impl Into<String>) -> EngineError {
    EngineError::GraphVersion {
        version: version.to_owned(),
        message: message.into(),
    }
}

impl Engine {
    pub(crate) fn durable(&self) -> Result<&Arc<dyn Store>, EngineError> {
        self.store.as_ref().ok_or_else(|| {
            EngineError::Store(StoreError::NotFound(
                "this engine has no store (start it with one to resume, replay or fork)".into(),
            ))
        })
    }

    /// A stored plugin version, loaded: from the store's bytes, else from
    /// the installed plugins if one has the same hash.
    pub(crate) async fn plugin_version(
        &self,
        hash: &str,
        path: Option<&str>,
    ) -> Result<Option<Plugin>, EngineError> {
        let store = self.durable()?;
        if let Some(blob) = store.plugin(hash).await? {
            let path = PathBuf::from(path.unwrap_or(&blob.path));
            let plugin = self
                .runtime
                .load_bytes(path, blob.bytes)
                .await
                .map_err(|e| {
                    version_error(hash, format!("the stored plugin does not load: {e}"))
                })?;
            return Ok(Some(plugin));
        }
        Ok(self
            .plugins()
            .all()
            .into_iter()
            .find(|p| p.hash_hex() == hash))
    }

    /// Rebuilds a graph version from the store: its text, and each node's
    /// plugin at the recorded hash.
    pub(crate) async fn graph_version(&self, id: &str) -> Result<Arc<LoadedGraph>, EngineError> {
        if let Some(graph) = self.known_version(id) {
            return Ok(graph);
        }
        let store = self.durable()?;
        let version = store
            .graph(id)
            .await?
            .ok_or_else(|| version_error(id, "it is not in the store"))?;
        let set = PluginSet::new();
        for (node, pin) in &version.plugins {
            let plugin = self
                .plugin_version(&pin.hash, pin.file.as_deref())
                .await?
                .ok_or_else(|| {
                    version_error(
                        id,
                        format!(
                            "node `{node}` ran plugin {} whose bytes are neither stored nor installed",
                            &pin.hash[..12.min(pin.hash.len())]
                        ),
                    )
                })?;
            set.insert(plugin);
        }
        let graph = LoadedGraph::from_yaml(
            &version.source,
            Path::new(&version.file),
            &set,
            &self.runtime,
        )
        .await
        .map_err(|e| version_error(id, e.to_string()))?;
        if graph.version_id() != id {
            return Err(version_error(
                id,
                format!("it rebuilds as version {}", graph.version_id()),
            ));
        }
        let graph = Arc::new(graph);
        self.remember_version(&graph);
        Ok(graph)
    }

    /// Continues every run the store holds as unfinished, from its last
    /// committed frame (the frame that was in flight runs again), on the
    /// graph and plugin versions it started with. Returns the resumed runs
    /// and, for each run that cannot resume, why (it stays unfinished in
    /// the store).
    pub async fn resume_runs(
        self: &Arc<Self>,
    ) -> Result<(Vec<RunHandle>, Vec<(String, EngineError)>), EngineError> {
        let store = Arc::clone(self.durable()?);
        let mut resumed = Vec::new();
        let mut failed = Vec::new();
        for unfinished in store.unfinished_runs().await? {
            let run = unfinished.run.clone();
            match self.resume_one(store.as_ref(), unfinished).await {
                Ok(handle) => resumed.push(handle),
                Err(error) => {
                    tracing::error!(run, %error, "the run cannot resume");
                    failed.push((run, error));
                }
            }
        }
        if !resumed.is_empty() {
            tracing::info!(runs = resumed.len(), "resumed unfinished runs");
        }
        Ok((resumed, failed))
    }

    async fn resume_one(
        self: &Arc<Self>,
        store: &dyn Store,
        u: crate::store::UnfinishedRun,
    ) -> Result<RunHandle, EngineError> {
        let graph = self.graph_version(&u.graph_version).await?;
        let thread = store
            .thread(&u.thread)
            .await?
            .ok_or_else(|| EngineError::UnknownThread(u.thread.clone()))?;
        let pending = by_node(&graph, u.pending)?;
        let kill = self.adopt_thread(&thread, &graph, Some(&u.run)).await?;
        let state = RunState {
            pending,
            frame: u.frame,
            seq: u.seq,
            reply: u.reply,
        };
        Ok(self.spawn_run(&thread.id, &u.run, graph, kill, state))
    }

    /// Forks `thread` after its frame `after` (counted over the thread's
    /// runs, from 0): a new thread in the same project with the memory the
    /// thread had after that frame, and, if the frame's run still had
    /// messages pending then, a run that continues with them on the same
    /// graph version. Returns the new thread's id and that run.
    pub async fn fork(
        self: &Arc<Self>,
        thread: &str,
        after: u64,
    ) -> Result<(String, Option<RunHandle>), EngineError> {
        let store = Arc::clone(self.durable()?);
        let origin = store
            .thread(thread)
            .await?
            .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?;
        let frame = store
            .frames(thread, after, after + 1)
            .await?
            .pop()
            .ok_or_else(|| {
                EngineError::Store(StoreError::NotFound(format!(
                    "thread `{thread}` has no committed frame {after} (it has frames up to {})",
                    origin.frames.saturating_sub(1)
                )))
            })?;
        let graph = self.graph_version(&frame.graph_version).await?;
        let new = crate::engine::new_thread_id();
        let memory: Vec<MemoryWrite> = self
            .memory_after(store.as_ref(), thread, after)
            .await?
            .into_iter()
            .filter_map(|((node, key), value)| {
                value.map(|value| MemoryWrite {
                    thread: new.clone(),
                    node,
                    key,
                    value: Some(value),
                })
            })
            .collect();
        let run = format!("{new}.run-1");
        let pending: Vec<(String, Message)> = store
            .messages(thread)
            .await?
            .into_iter()
            .filter(|m| {
                m.run == frame.run
                    && m.sent_seq.is_none_or(|s| s <= after)
                    && m.delivered_seq.is_none_or(|d| d > after)
            })
            .enumerate()
            .map(|(k, m)| {
                let message = Message {
                    id: format!("{run}/fork/{k}"),
                    from: m.from,
                    kind: m.kind,
                    body: m.body,
                };
                (m.to, message)
            })
            .collect();
        let has_run = !pending.is_empty();
        let start = RunStart {
            thread: new.clone(),
            project: origin.project.clone(),
            run: run.clone(),
            graph_version: frame.graph_version.clone(),
            inbound: pending.clone(),
            budget_limit: None,
            at_ms: self.budgets.now_ms(),
        };
        store
            .fork(ForkStart {
                from_thread: thread.to_owned(),
                from_seq: after,
                memory,
                start,
                has_run,
            })
            .await?;
        let stored = store
            .thread(&new)
            .await?
            .ok_or_else(|| EngineError::UnknownThread(new.clone()))?;
        let kill = self
            .adopt_thread(&stored, &graph, has_run.then_some(run.as_str()))
            .await?;
        if !has_run {
            return Ok((new, None));
        }
        let state = RunState {
            pending: by_node(&graph, pending)?,
            frame: 0,
            seq: after + 1,
            reply: None,
        };
        let handle = self.spawn_run(&new, &run, graph, kill, state);
        Ok((new, Some(handle)))
    }

    /// A thread's memory as it stood after its frame `after`: what forks
    /// it came from left, then the writes of its own frames up to `after`.
    async fn memory_after(
        &self,
        store: &dyn Store,
        thread: &str,
        after: u64,
    ) -> Result<BTreeMap<(Option<String>, String), Option<String>>, EngineError> {
        // The chain of forks, newest first: (thread, last frame to apply).
        let mut chain = vec![(thread.to_owned(), after)];
        loop {
            let (current, _) = chain.last().cloned().unwrap_or_default();
            let stored = store
                .thread(&current)
                .await?
                // Pruning keeps threads that have forks, so this is a bug.
                .ok_or_else(|| EngineError::UnknownThread(current.clone()))?;
            match stored.forked_from {
                Some(parent) => chain.push(parent),
                None => break,
            }
        }
        let mut memory = BTreeMap::new();
        for (t, last) in chain.into_iter().rev() {
            // A fork's own frames start after its fork point; frames of a
            // parent after the fork point are not the fork's past.
            for frame in store.frames(&t, 0, last + 1).await? {
                for invocation in frame.invocations {
                    for w in invocation.output.memory_writes {
                        memory.insert((w.node, w.key), w.value);
                    }
                }
            }
        }
        Ok(memory)
    }

    /// Removes the threads whose runs all finished more than `max_age` ago
    /// (frames, journal, messages, memory), keeping usage totals.
    pub async fn prune(&self, max_age: std::time::Duration) -> Result<PruneReport, EngineError> {
        let store = self.durable()?;
        let now = self.budgets.now_ms();
        let before = now.saturating_sub(max_age.as_millis() as u64);
        let report = store.prune(before).await?;
        if report.threads > 0 {
            tracing::info!(
                threads = report.threads,
                frames = report.frames,
                messages = report.messages,
                "pruned finished threads"
            );
        }
        Ok(report)
    }

    /// The threads the store holds that match `filter`, most recently
    /// changed first.
    pub async fn stored_threads(
        &self,
        filter: crate::store::ThreadFilter,
        limit: u64,
        offset: u64,
    ) -> Result<crate::store::Page<StoredThread>, EngineError> {
        Ok(self.durable()?.threads(filter, limit, offset).await?)
    }
}

/// Sorts `(receiver, message)` pairs into per-node inboxes.
fn by_node(
    graph: &LoadedGraph,
    messages: Vec<(String, Message)>,
) -> Result<Vec<Vec<Message>>, EngineError> {
    let mut pending = vec![Vec::new(); graph.graph().nodes().len()];
    for (to, message) in messages {
        let i = graph
            .position(&to)
            .ok_or_else(|| EngineError::UnknownNode {
                graph: graph.graph().name().to_owned(),
                node: to.clone(),
            })?;
        pending[i].push(message);
    }
    Ok(pending)
}

/// Prunes in the background every `retention.every` while the engine lives.
pub(crate) fn spawn_retention(engine: &Arc<Engine>, retention: Retention) {
    let weak: Weak<Engine> = Arc::downgrade(engine);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(retention.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(engine) = weak.upgrade() else {
                return;
            };
            if let Err(error) = engine.prune(retention.max_age).await {
                tracing::error!(%error, "retention: pruning failed");
            }
        }
    });
}

/// Plugins by hash, loaded once per replay.
pub(crate) type PluginCache = HashMap<String, Plugin>;
