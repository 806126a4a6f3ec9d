//! Threads: the engine's entry per thread (its graph, the run in flight,
//! its run and frame counters), the claim a run holds on its thread, and
//! thread ids.
//!
//! A thread has at most one run in flight. Starting a run *claims* the
//! thread's slot ([`Threads::claim`]) and gets a [`Claim`] guard that frees
//! the slot if setting the run up fails; once the run's task owns the slot,
//! the task's [`Release`] guard frees it however the task ends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use weft_runtime::Message;

use crate::error::EngineError;
use crate::loaded::LoadedGraph;
pub use crate::multitask::Multitask;
pub(crate) use crate::multitask::{NextRun, QueueOutcome, Queued, Stop};
use crate::store::StoredThread;

/// A thread id as clients may choose it: 1 to 128 characters, no `/` and
/// no control characters. The one rule for every way in (REST, WebSocket,
/// the command line); ids the engine makes are `thread-` and 16 random hex
/// digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadId(String);

/// A thread id that breaks the rule of [`ThreadId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a thread id has 1 to 128 characters, no `/` and no control characters")]
pub struct InvalidThreadId;

impl ThreadId {
    /// The longest id, in characters.
    pub const MAX_LEN: usize = 128;

    /// Checks a client's id.
    pub fn parse(id: impl Into<String>) -> Result<Self, InvalidThreadId> {
        let id = id.into();
        if id.is_empty()
            || id.chars().count() > Self::MAX_LEN
            || id.chars().any(|c| c.is_control() || c == '/')
        {
            return Err(InvalidThreadId);
        }
        Ok(Self(id))
    }

    /// A fresh id, unique across restarts and hosts: `thread-` and 16
    /// random hex digits.
    pub fn generate() -> Self {
        Self(format!("thread-{:016x}", random_u64()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for ThreadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ThreadId {
    type Err = InvalidThreadId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// 64 random bits from the OS; should the OS have none, a per-process
/// random SipHash key over the time still differs between calls.
pub(crate) fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    })
}

/// A thread's state in the engine.
struct ThreadEntry {
    graph: Arc<LoadedGraph>,
    /// The run in flight, with the sender that stops it.
    active: Option<(String, watch::Sender<Stop>)>,
    /// Runs accepted while the thread was busy, in the order they run.
    queue: VecDeque<Queued>,
    runs: u64,
    /// Frames committed over all runs: the next frame's `seq`.
    frames: u64,
    /// Whether its durable state (runs, frames, memory, budget) has been
    /// read from the store (always true without one).
    hydrated: bool,
    /// The token limit the store held when the thread was last read
    /// from it.
    budget_seen: Option<u64>,
    /// Budget warnings a run ended before delivering, by node: the node
    /// finds them in its next tick, in a later run (at most
    /// [`MAX_PARKED_NOTICES`] per node, the newest).
    notices: HashMap<String, Vec<Message>>,
    /// Bumped whenever the thread goes idle: an idle-queue entry with an
    /// older number is stale.
    idle_since: u64,
}

/// Idle threads whose state a durable engine keeps in memory; beyond
/// this, the longest idle are evicted (their state is in the store, and
/// is loaded again when they are next used, as after a restart).
pub const IDLE_THREADS_KEPT: usize = 1024;

/// Budget warnings parked per node of a thread; older ones are dropped
/// (each was also published as a `budget_warning` event).
pub const MAX_PARKED_NOTICES: usize = 16;

impl ThreadEntry {
    fn new(graph: &Arc<LoadedGraph>, hydrated: bool) -> Self {
        Self {
            graph: Arc::clone(graph),
            active: None,
            queue: VecDeque::new(),
            runs: 0,
            frames: 0,
            hydrated,
            budget_seen: None,
            notices: HashMap::new(),
            idle_since: 0,
        }
    }
}

/// What claiming a thread for a new run gives.
pub(crate) struct Claimed {
    /// The graph the run runs.
    pub graph: Arc<LoadedGraph>,
    /// Resolves when the run is stopped.
    pub kill: watch::Receiver<Stop>,
    /// Whether the thread's durable state is loaded already.
    pub hydrated: bool,
}

/// Every thread this process knows.
#[derive(Default)]
pub(crate) struct Threads {
    map: Mutex<HashMap<String, ThreadEntry>>,
    /// Threads that went idle, oldest first, with their `idle_since`.
    idle: Mutex<VecDeque<(String, u64)>>,
    /// The last `idle_since` handed out.
    idle_counter: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Threads {
    /// Opens the thread `id` (a fresh id when `None`) on `graph`, or points
    /// an existing one at `graph` for its next run. Returns the id and
    /// whether the thread is new to this process.
    pub fn open(
        &self,
        id: Option<&str>,
        graph: &Arc<LoadedGraph>,
        durable: bool,
    ) -> (String, bool) {
        let mut threads = lock(&self.map);
        let (id, chosen) = match id {
            Some(id) => (id.to_owned(), true),
            // A new thread never joins an existing one, however unlikely a
            // repeated id is.
            None => loop {
                let id = ThreadId::generate().into_string();
                if !threads.contains_key(&id) {
                    break (id, false);
                }
            },
        };
        let mut created = false;
        let entry = threads.entry(id.clone()).or_insert_with(|| {
            created = true;
            // A caller-chosen id may name a thread the store knows.
            ThreadEntry::new(graph, !chosen || !durable)
        });
        // The thread's next run uses `graph` (an edited or switched graph);
        // a run in flight keeps the version it started with.
        entry.graph = Arc::clone(graph);
        (id, created)
    }

    /// Points `thread`'s next run at `graph`; false for an unknown thread.
    pub fn set_graph(&self, thread: &str, graph: &Arc<LoadedGraph>) -> bool {
        match lock(&self.map).get_mut(thread) {
            Some(entry) => {
                entry.graph = Arc::clone(graph);
                true
            }
            None => false,
        }
    }

    /// Whether this process knows `thread`.
    pub fn contains(&self, thread: &str) -> bool {
        lock(&self.map).contains_key(thread)
    }

    /// The graph `thread`'s next run uses.
    /// The `seq` of `thread`'s next frame, as this host knows it.
    pub fn next_seq(&self, thread: &str) -> Option<u64> {
        lock(&self.map).get(thread).map(|t| t.frames)
    }

    /// The run holding `thread` on this host, if any.
    pub fn active(&self, thread: &str) -> Option<String> {
        lock(&self.map)
            .get(thread)
            .and_then(|t| t.active.as_ref().map(|(run, _)| run.clone()))
    }

    pub fn graph(&self, thread: &str) -> Option<Arc<LoadedGraph>> {
        lock(&self.map).get(thread).map(|t| Arc::clone(&t.graph))
    }

    /// The run in flight on `thread`.
    pub fn active_run(&self, thread: &str) -> Option<String> {
        lock(&self.map)
            .get(thread)
            .and_then(|t| t.active.as_ref().map(|(r, _)| r.clone()))
    }

    /// Claims `thread` for a new run, if no run is in flight, after
    /// `check` accepts its graph. The slot is held under a placeholder id
    /// until [`name_run`](Self::name_run).
    pub fn claim<'a, T>(
        &'a self,
        thread: &'a str,
        check: impl FnOnce(&Arc<LoadedGraph>) -> Result<T, EngineError>,
    ) -> Result<(Claim<'a>, Claimed, T), EngineError> {
        let mut threads = lock(&self.map);
        let entry = threads
            .get_mut(thread)
            .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?;
        if let Some((run, _)) = &entry.active {
            return Err(EngineError::ThreadBusy {
                thread: thread.to_owned(),
                run: run.clone(),
            });
        }
        let checked = check(&entry.graph)?;
        let (kill_tx, kill) = watch::channel(Stop::No);
        entry.active = Some((String::new(), kill_tx));
        let claimed = Claimed {
            graph: Arc::clone(&entry.graph),
            kill,
            hydrated: entry.hydrated,
        };
        let claim = Claim {
            threads: self,
            thread,
            run: String::new(),
        };
        Ok((claim, claimed, checked))
    }

    /// Names the claimed run (`{thread}.run-{n}`); returns the id and the
    /// thread's next frame `seq`.
    pub fn name_run(&self, claim: &mut Claim<'_>) -> Result<(String, u64), EngineError> {
        let mut threads = lock(&self.map);
        let entry = threads
            .get_mut(claim.thread)
            .ok_or_else(|| EngineError::UnknownThread(claim.thread.to_owned()))?;
        entry.runs += 1;
        let run = format!("{}.run-{}", claim.thread, entry.runs);
        if let Some((id, _)) = &mut entry.active {
            id.clone_from(&run);
        }
        claim.run.clone_from(&run);
        Ok((run, entry.frames))
    }

    /// Registers a thread read from the store (resume, fork), claimed for
    /// `run` when one is given. Its durable state still has to be loaded.
    pub fn adopt(
        &self,
        thread: &StoredThread,
        graph: &Arc<LoadedGraph>,
        run: Option<&str>,
    ) -> Result<watch::Receiver<Stop>, EngineError> {
        let (kill_tx, kill) = watch::channel(Stop::No);
        let mut threads = lock(&self.map);
        if let Some(entry) = threads.get(&thread.id)
            && let Some((active, _)) = &entry.active
        {
            return Err(EngineError::ThreadBusy {
                thread: thread.id.clone(),
                run: active.clone(),
            });
        }
        let mut entry = ThreadEntry::new(graph, false);
        entry.active = run.map(|r| (r.to_owned(), kill_tx));
        entry.runs = thread.runs;
        entry.frames = thread.frames;
        threads.insert(thread.id.clone(), entry);
        Ok(kill)
    }

    /// Records that `thread`'s durable state is loaded, with the stored
    /// counters when the store knows the thread.
    pub fn hydrated(&self, thread: &str, stored: Option<&StoredThread>) {
        if let Some(entry) = lock(&self.map).get_mut(thread) {
            if let Some(stored) = stored {
                entry.runs = stored.runs;
                entry.frames = stored.frames;
                entry.budget_seen = stored.budget_limit;
            }
            entry.hydrated = true;
        }
    }

    /// Whether `thread`, loaded here already, is in the store as this
    /// host left it: the same runs and frames (no other host ran it or
    /// rolled it back since) and the same token limit (none set it).
    /// Its memory and usage need not be read again then.
    pub fn unchanged(&self, stored: &StoredThread) -> bool {
        lock(&self.map).get(&stored.id).is_some_and(|e| {
            e.hydrated
                && e.runs == stored.runs
                && e.frames == stored.frames
                && e.budget_seen == stored.budget_limit
        })
    }

    /// Notes that `thread` has committed frames up to `next_seq`.
    pub fn note_frames(&self, thread: &str, next_seq: u64) {
        if let Some(entry) = lock(&self.map).get_mut(thread) {
            entry.frames = entry.frames.max(next_seq);
        }
    }

    /// A new kill switch for `run`, when it still holds `thread` here (a
    /// run that waited on an interrupt and goes on).
    pub fn rearm(&self, thread: &str, run: &str) -> Option<watch::Receiver<Stop>> {
        let mut threads = lock(&self.map);
        let entry = threads.get_mut(thread)?;
        let (active, kill_tx) = entry.active.as_mut().filter(|(r, _)| r == run)?;
        debug_assert_eq!(active, run);
        let (tx, kill) = watch::channel(Stop::No);
        *kill_tx = tx;
        Some(kill)
    }

    /// Frees `thread` if `run` is still its run in flight.
    pub fn release(&self, thread: &str, run: &str) {
        if let Some(entry) = lock(&self.map).get_mut(thread)
            && entry.active.as_ref().is_some_and(|(r, _)| r == run)
        {
            entry.active = None;
        }
    }

    /// Stops the run in flight on `thread` at its next frame boundary for
    /// `why`; returns its id. A stop asked for already is not changed.
    pub fn stop(&self, thread: &str, why: Stop) -> Result<String, EngineError> {
        let threads = lock(&self.map);
        let entry = threads
            .get(thread)
            .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?;
        let (run, kill) = entry
            .active
            .as_ref()
            .ok_or_else(|| EngineError::UnknownRun(format!("(none on thread `{thread}`)")))?;
        why.ask(kill);
        Ok(run.clone())
    }

    /// The next run's number on `thread` (its id, `{thread}.run-{n}`), for
    /// a run that is queued rather than started.
    pub fn name_queued(&self, thread: &str) -> Result<String, EngineError> {
        let mut threads = lock(&self.map);
        let entry = threads
            .get_mut(thread)
            .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?;
        entry.runs += 1;
        Ok(format!("{thread}.run-{}", entry.runs))
    }

    /// Queues `queued` on `thread` (first in line when `why` stops the run
    /// in flight, which it then asks to stop) or, when no run is in flight
    /// any more, lets it hold the thread.
    pub fn queue(
        &self,
        thread: &str,
        queued: Queued,
        why: Stop,
    ) -> Result<QueueOutcome, EngineError> {
        let mut threads = lock(&self.map);
        let entry = threads
            .get_mut(thread)
            .ok_or_else(|| EngineError::UnknownThread(thread.to_owned()))?;
        let Some((active, kill)) = &entry.active else {
            return Ok(QueueOutcome::Claimed(Box::new(Self::hold(entry, queued))));
        };
        let active = active.clone();
        let position = if why.is_set() {
            why.ask(kill);
            entry.queue.push_front(queued);
            0
        } else {
            entry.queue.push_back(queued);
            entry.queue.len() - 1
        };
        Ok(QueueOutcome::Behind { active, position })
    }

    fn hold(entry: &mut ThreadEntry, queued: Queued) -> NextRun {
        let (kill_tx, kill) = watch::channel(Stop::No);
        entry.active = Some((queued.run.clone(), kill_tx));
        NextRun {
            queued,
            kill,
            seq: entry.frames,
        }
    }

    /// Frees `thread` when `run` ended there, or hands it to its next
    /// queued run, which the caller starts.
    pub fn release_to_next(&self, thread: &str, run: &str) -> Option<NextRun> {
        let mut threads = lock(&self.map);
        let entry = threads.get_mut(thread)?;
        if entry.active.as_ref().is_none_or(|(r, _)| r != run) {
            return None;
        }
        entry.active = None;
        let next = entry.queue.pop_front()?;
        Some(Self::hold(entry, next))
    }

    /// The runs queued on `thread`, in the order they run.
    pub fn queued(&self, thread: &str) -> Vec<String> {
        lock(&self.map)
            .get(thread)
            .map(|e| e.queue.iter().map(|q| q.run.clone()).collect())
            .unwrap_or_default()
    }

    /// Notes that `thread` went idle (its run ended, or it was opened
    /// without one) and returns the idle threads beyond
    /// [`IDLE_THREADS_KEPT`], removed from memory: the caller drops their
    /// other in-memory state. Only a durable engine calls this: without a
    /// store a thread's state lives only in memory.
    pub fn went_idle(&self, thread: &str) -> Vec<String> {
        let n = self
            .idle_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let mut threads = lock(&self.map);
        let Some(entry) = threads.get_mut(thread) else {
            return Vec::new();
        };
        entry.idle_since = n;
        let mut idle = lock(&self.idle);
        idle.push_back((thread.to_owned(), n));
        let mut evicted = Vec::new();
        while idle.len() > IDLE_THREADS_KEPT {
            let Some((id, since)) = idle.pop_front() else {
                break;
            };
            let still_idle = threads.get(&id).is_some_and(|e| {
                e.idle_since == since && e.active.is_none() && e.queue.is_empty() && e.hydrated
            });
            if still_idle {
                if let Some(entry) = threads.remove(&id)
                    && !entry.notices.is_empty()
                {
                    tracing::debug!(thread = %id, "idle thread evicted with parked budget warnings");
                }
                evicted.push(id);
            }
        }
        evicted
    }

    /// Threads this process holds in memory.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Keeps budget warnings a run could not deliver for `node`'s next tick.
    pub fn park_notices(&self, thread: &str, node: &str, notices: Vec<Message>) {
        if notices.is_empty() {
            return;
        }
        if let Some(entry) = lock(&self.map).get_mut(thread) {
            let parked = entry.notices.entry(node.to_owned()).or_default();
            parked.extend(notices);
            let over = parked.len().saturating_sub(MAX_PARKED_NOTICES);
            parked.drain(..over);
        }
    }

    /// Every budget warning parked on `thread`, by node, removed.
    pub fn take_notices(&self, thread: &str) -> HashMap<String, Vec<Message>> {
        lock(&self.map)
            .get_mut(thread)
            .map(|entry| std::mem::take(&mut entry.notices))
            .unwrap_or_default()
    }
}

/// A claim on a thread's slot while a run is being set up: the slot is
/// freed if setting up fails.
pub(crate) struct Claim<'a> {
    threads: &'a Threads,
    thread: &'a str,
    run: String,
}

impl Claim<'_> {
    /// The run started: the slot now belongs to its task.
    pub fn keep(mut self) {
        self.thread = "";
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.thread.is_empty() {
            self.threads.release(self.thread, &self.run);
        }
    }
}

/// Frees a thread when its run's task ends, however it ends.
pub(crate) struct Release<'a> {
    /// The threads.
    pub threads: &'a Threads,
    /// The thread.
    pub thread: &'a str,
    /// The run that holds it.
    pub run: &'a str,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.threads.release(self.thread, self.run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_1_to_128_bytes_without_slashes_or_control_characters_parse() {
        for good in ["t", "thread-1", "a b", "ü", &"x".repeat(128)] {
            assert_eq!(ThreadId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "a/b", "tab\there", "nl\n", &"x".repeat(129)] {
            assert_eq!(ThreadId::parse(bad), Err(InvalidThreadId), "{bad:?}");
        }
        assert_eq!("t-1".parse::<ThreadId>().unwrap().to_string(), "t-1");
    }

    #[test]
    fn generated_ids_are_valid_and_differ() {
        let a = ThreadId::generate();
        let b = ThreadId::generate();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("thread-") && a.as_str().len() == 23);
        assert_eq!(ThreadId::parse(a.as_str()), Ok(a));
    }
}
