//! Fork: a new thread in the same project with the memory a thread had
//! after one of its frames, and, if that frame's run still had messages
//! pending then, a run that continues with them on the same graph version.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use weft_runtime::Message;
use weft_runtime::capabilities::memory::MemoryWrite;

use super::{Versions, by_node};
use crate::error::EngineError;
use crate::loaded::LoadedGraph;
use crate::store::{ForkStart, RunStart, Store, StoreError, StoredThread};
use crate::threads::ThreadId;
use crate::trace::RunStatus;

/// A fork, stored.
pub(crate) struct Forked {
    /// The new thread, as stored.
    pub thread: StoredThread,
    /// The graph version the fork runs.
    pub graph: Arc<LoadedGraph>,
    /// The run that continues the fork point's pending messages, if any:
    /// its id, its pending messages per node and the next frame `seq`.
    pub run: Option<(String, Vec<Vec<Message>>, u64)>,
}

/// Forks `thread` after its frame `after` (counted over the thread's runs,
/// from 0) in the store.
pub(crate) async fn fork(
    versions: &Versions,
    thread: &str,
    after: u64,
    now_ms: u64,
) -> Result<Forked, EngineError> {
    let store = versions.store()?;
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
    let graph = versions.graph_version(&frame.graph_version).await?;
    let new = ThreadId::generate().into_string();
    let memory: Vec<MemoryWrite> = memory_before(store.as_ref(), thread, after + 1, None)
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
        at_ms: now_ms,
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
    let run = if has_run {
        Some((run, by_node(&graph, pending)?, after + 1))
    } else {
        None
    };
    Ok(Forked {
        thread: stored,
        graph,
        run,
    })
}

/// A thread's memory as it stood before its frame `until`: what forks it
/// came from left, then the writes of its own frames before `until`.
/// Rolled-back runs wrote nothing, nor does `without` (a run being rolled
/// back).
async fn memory_before(
    store: &dyn Store,
    thread: &str,
    until: u64,
    without: Option<&str>,
) -> Result<BTreeMap<(Option<String>, String), Option<String>>, EngineError> {
    // The chain of forks, newest first: (thread, first frame not to apply).
    let mut chain = vec![(thread.to_owned(), until)];
    loop {
        let (current, _) = chain.last().cloned().unwrap_or_default();
        let stored = store
            .thread(&current)
            .await?
            // Pruning keeps threads that have forks, so this is a bug.
            .ok_or_else(|| EngineError::UnknownThread(current.clone()))?;
        match stored.forked_from {
            Some((parent, at)) => chain.push((parent, at + 1)),
            None => break,
        }
    }
    let mut memory = BTreeMap::new();
    for (t, until) in chain.into_iter().rev() {
        let undone: BTreeSet<String> = store
            .runs(&t)
            .await?
            .into_iter()
            .filter(|r| r.status == RunStatus::RolledBack.as_str())
            .map(|r| r.id)
            .chain(without.map(str::to_owned))
            .collect();
        // A fork's own frames start after its fork point; frames of a
        // parent after the fork point are not the fork's past.
        for frame in store.frames(&t, 0, until).await? {
            if undone.contains(&frame.run) {
                continue;
            }
            for invocation in frame.invocations {
                for w in invocation.output.memory_writes {
                    memory.insert((w.node, w.key), w.value);
                }
            }
        }
    }
    Ok(memory)
}

/// The writes that take `run`'s memory writes out of `thread`: its memory
/// set to what every other (not rolled-back) run of it wrote, keys only
/// `run` wrote removed.
pub(crate) async fn undo_writes(
    store: &dyn Store,
    thread: &str,
    run: &str,
) -> Result<Vec<MemoryWrite>, EngineError> {
    let frames = store
        .thread(thread)
        .await?
        .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?
        .frames;
    let target = memory_before(store, thread, frames, Some(run)).await?;
    let mut writes = Vec::new();
    for current in store.memory(thread).await? {
        let key = (current.node.clone(), current.key.clone());
        if !matches!(target.get(&key), Some(Some(_))) {
            writes.push(MemoryWrite {
                value: None,
                ..current
            });
        }
    }
    for ((node, key), value) in target {
        if value.is_some() {
            writes.push(MemoryWrite {
                thread: thread.to_owned(),
                node,
                key,
                value,
            });
        }
    }
    Ok(writes)
}
