//! Replay: re-executes committed frames and checks that every invocation
//! produces exactly what it produced the first time.
//!
//! Each invocation runs with its recorded inbox, config, grants, limits,
//! wall time and random seed; every capability call is answered from its
//! journal instead of the LLM, the database or the memory store. The
//! outputs (messages, reply, done, memory writes, error) and the journal
//! itself (each call's request and answer) are compared with the record;
//! the first difference of each invocation is reported.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use weft_runtime::capabilities::hud::NullSink;
use weft_runtime::capabilities::{JournalEntry, Services};
use weft_runtime::{CallContext, Plugin};

use super::Versions;
use super::tape::Tape;
use crate::error::EngineError;
use crate::loaded::LoadedGraph;
use crate::store::{RecordedOutput, StoreError};

/// Plugins by hash, loaded once per replay.
type PluginCache = HashMap<String, Plugin>;

/// Which plugin versions a replay runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplayPlugins {
    /// The versions that ran (from the store): checks that frames are
    /// reproducible.
    #[default]
    Recorded,
    /// The versions installed now: shows where a changed plugin behaves
    /// differently on recorded traffic.
    Current,
}

/// What to replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Only this frame of the thread (counted over its runs, from 0).
    pub frame: Option<u64>,
    /// Which plugin versions run.
    pub plugins: ReplayPlugins,
}

/// The first difference between an invocation's record and its replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Divergence {
    /// Frame within the thread.
    pub seq: u64,
    /// Run id.
    pub run: String,
    /// Frame within the run.
    pub frame: u32,
    /// Node.
    pub node: String,
    /// Which output differs, e.g. `message 0 body` or `journal entry 2 (llm complete) request`.
    pub what: String,
    /// What was recorded.
    pub recorded: String,
    /// What the replay produced.
    pub replayed: String,
}

/// A node whose replayed plugin is not the version that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginChange {
    /// Node.
    pub node: String,
    /// The hash that ran.
    pub recorded: String,
    /// The hash replayed.
    pub replayed: String,
}

/// The result of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// Thread id.
    pub thread: String,
    /// Frames replayed.
    pub frames: u64,
    /// Invocations replayed.
    pub invocations: u64,
    /// Capability calls answered from journals.
    pub journal_entries: u64,
    /// Plugins that differ from the versions that ran.
    pub changed_plugins: Vec<PluginChange>,
    /// The first difference of each invocation that diverged, in order.
    pub divergences: Vec<Divergence>,
}

impl ReplayReport {
    /// Whether every frame was reproduced exactly.
    pub fn reproduced(&self) -> bool {
        self.divergences.is_empty()
    }
}

/// Replays a thread's committed frames (all, or one) and reports every
/// invocation whose outputs differ from the record.
pub(crate) async fn replay(
    versions: &Versions,
    thread: &str,
    options: ReplayOptions,
) -> Result<ReplayReport, EngineError> {
    {
        let store = versions.store()?;
        let stored = store
            .thread(thread)
            .await?
            .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?;
        let (from, to) = match options.frame {
            Some(n) => (n, n.saturating_add(1)),
            None => (0, u64::MAX),
        };
        let frames = store.frames(thread, from, to).await?;
        if let Some(n) = options.frame
            && frames.is_empty()
        {
            return Err(EngineError::Store(StoreError::NotFound(format!(
                "thread `{thread}` has no committed frame {n} (it has {} frames)",
                stored.frames
            ))));
        }
        let mut report = ReplayReport {
            thread: thread.to_owned(),
            ..ReplayReport::default()
        };
        let mut plugins: PluginCache = HashMap::new();
        let mut current: HashMap<String, Arc<LoadedGraph>> = HashMap::new();
        let mut changed = BTreeSet::new();
        for frame in frames {
            let graph = versions.graph_version(&frame.graph_version).await?;
            let wall_time = SystemTime::UNIX_EPOCH + Duration::from_millis(frame.wall_time_ms);
            for invocation in &frame.invocations {
                let record = &invocation.record;
                let i = graph
                    .position(&record.node)
                    .ok_or_else(|| EngineError::UnknownNode {
                        graph: graph.graph().name().to_owned(),
                        node: record.node.clone(),
                    })?;
                let node = &graph.graph().nodes()[i];
                let plugin = match options.plugins {
                    ReplayPlugins::Recorded => {
                        recorded_plugin(versions, &graph, i, &record.plugin_hash, &mut plugins)
                            .await?
                    }
                    ReplayPlugins::Current => {
                        let now = match current.get(graph.version_id()) {
                            Some(g) => Arc::clone(g),
                            None => {
                                let g = current_graph(versions, &graph).await?;
                                current.insert(graph.version_id().to_owned(), Arc::clone(&g));
                                g
                            }
                        };
                        let plugin = now.loaded(i).plugin.clone();
                        let hash = plugin.hash_hex().to_owned();
                        if hash != record.plugin_hash
                            && changed.insert((record.node.clone(), hash.clone()))
                        {
                            report.changed_plugins.push(PluginChange {
                                node: record.node.clone(),
                                recorded: record.plugin_hash.clone(),
                                replayed: hash,
                            });
                        }
                        plugin
                    }
                };
                let tape = Arc::new(Tape::new(&record.journal));
                let services = Services {
                    llm: tape.clone(),
                    db: tape.clone(),
                    memory: tape.clone(),
                    kv: tape.clone(),
                    tools: tape.clone(),
                    events: Arc::new(NullSink),
                };
                let mut call = graph.invocation(
                    i,
                    CallContext {
                        thread: thread.to_owned(),
                        run: frame.run.clone(),
                        frame: frame.frame,
                        node: node.name.clone(),
                        project: stored.project.clone(),
                    },
                    &invocation.inbox,
                    &services,
                    wall_time,
                );
                // Always a fresh instance: a node with `instance: reuse`
                // whose output depends on what an earlier tick left in its
                // instance shows here as a divergence.
                call.reuse = None;
                let outcome = versions.runtime().invoke(&plugin, call).await;
                report.invocations += 1;
                report.journal_entries += record.journal.len() as u64;
                let replayed = RecordedOutput::of(&outcome);
                let difference = first_difference(&invocation.output, &replayed)
                    .or_else(|| journal_difference(&record.journal, &outcome.journal));
                if let Some((what, recorded, replayed)) = difference {
                    report.divergences.push(Divergence {
                        seq: frame.seq,
                        run: frame.run.clone(),
                        frame: frame.frame,
                        node: node.name.clone(),
                        what,
                        recorded,
                        replayed,
                    });
                }
            }
            report.frames += 1;
        }
        Ok(report)
    }
}

/// The plugin version that ran node `i`.
async fn recorded_plugin(
    versions: &Versions,
    graph: &LoadedGraph,
    i: usize,
    hash: &str,
    cache: &mut PluginCache,
) -> Result<Plugin, EngineError> {
    let pinned = &graph.loaded(i).plugin;
    if pinned.hash_hex() == hash {
        return Ok(pinned.clone());
    }
    if let Some(p) = cache.get(hash) {
        return Ok(p.clone());
    }
    let plugin =
        versions
            .plugin_version(hash, None)
            .await?
            .ok_or_else(|| EngineError::GraphVersion {
                version: graph.version_id().to_owned(),
                message: format!(
                    "plugin {} ran but its bytes are neither stored nor installed",
                    &hash[..12.min(hash.len())]
                ),
            })?;
    cache.insert(hash.to_owned(), plugin.clone());
    Ok(plugin)
}

/// The graph version's text with the plugins installed now.
async fn current_graph(
    versions: &Versions,
    graph: &LoadedGraph,
) -> Result<Arc<LoadedGraph>, EngineError> {
    LoadedGraph::from_yaml(
        graph.graph().source(),
        graph.graph().file(),
        versions.plugins(),
        versions.runtime(),
    )
    .await
    .map(Arc::new)
    .map_err(|e| EngineError::GraphVersion {
        version: graph.version_id().to_owned(),
        message: format!("with the plugins installed now: {e}"),
    })
}

/// Short, single-line rendering of a value for a report.
fn show<T: Serialize + ?Sized>(value: &T) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.chars().count() > 300 {
        let cut: String = text.chars().take(300).collect();
        format!("{cut}…")
    } else {
        text
    }
}

type Difference = (String, String, String);

/// `what` differs: the recorded and replayed values, shown.
fn differ<T: Serialize + ?Sized>(what: String, recorded: &T, replayed: &T) -> Option<Difference> {
    Some((what, show(recorded), show(replayed)))
}

/// The first output that differs: what, recorded, replayed.
fn first_difference(recorded: &RecordedOutput, replayed: &RecordedOutput) -> Option<Difference> {
    if recorded.error != replayed.error {
        return differ("error".into(), &recorded.error, &replayed.error);
    }
    for (k, (a, b)) in recorded.messages.iter().zip(&replayed.messages).enumerate() {
        if a.to != b.to {
            return differ(format!("message {k} receiver"), &a.to, &b.to);
        }
        if a.kind != b.kind {
            return differ(format!("message {k} kind"), &a.kind, &b.kind);
        }
        if a.body != b.body {
            return differ(format!("message {k} body"), &a.body, &b.body);
        }
    }
    if recorded.messages.len() != replayed.messages.len() {
        return differ(
            "number of messages".into(),
            &recorded.messages.len(),
            &replayed.messages.len(),
        );
    }
    if recorded.reply != replayed.reply {
        return differ("reply".into(), &recorded.reply, &replayed.reply);
    }
    if recorded.done != replayed.done {
        return differ("done".into(), &recorded.done, &replayed.done);
    }
    if recorded.memory_writes != replayed.memory_writes {
        return differ(
            "memory writes".into(),
            &recorded.memory_writes,
            &replayed.memory_writes,
        );
    }
    if recorded.kv_writes != replayed.kv_writes {
        return differ(
            "store writes".into(),
            &recorded.kv_writes,
            &replayed.kv_writes,
        );
    }
    None
}

/// The first journal entry that differs.
fn journal_difference(recorded: &[JournalEntry], replayed: &[JournalEntry]) -> Option<Difference> {
    for (k, (a, b)) in recorded.iter().zip(replayed).enumerate() {
        let name = format!("journal entry {k} ({} {})", a.capability, a.op);
        if a.capability != b.capability || a.op != b.op {
            return Some((
                format!("journal entry {k} call"),
                format!("{} {}", a.capability, a.op),
                format!("{} {}", b.capability, b.op),
            ));
        }
        if a.request != b.request {
            return Some((
                format!("{name} request"),
                show(&a.request),
                show(&b.request),
            ));
        }
        if a.response != b.response {
            return Some((
                format!("{name} response"),
                show(&a.response),
                show(&b.response),
            ));
        }
    }
    (recorded.len() != replayed.len()).then(|| {
        (
            "number of capability calls".into(),
            recorded.len().to_string(),
            replayed.len().to_string(),
        )
    })
}
