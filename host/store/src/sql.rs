//! The statements: one function per unit of work or read.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_engine::store::{
    ForkStart, FrameCommit, GraphVersion, InvocationRecord, InvocationTotals, NodePause, Page,
    PluginBlob, PruneReport, RecordedOutput, RunEnd, RunStart, StoreResult, StoredFrame,
    StoredInstance, StoredMessage, StoredRun, StoredThread, ThreadFilter, UnfinishedRun,
    UsageHistory,
};
use weft_engine::trace::FrameRecord;
use weft_engine::{MoneyBudget, StoreError, UsageEvent};
use weft_runtime::capabilities::JournalEntry;
use weft_runtime::capabilities::memory::MemoryWrite;
use weft_runtime::{Capability, Message};

/// Maps SQLite's errors to the store's.
pub(crate) fn error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::DatabaseCorrupt | C::NotADatabase => {
                StoreError::Incompatible(format!("the database file is corrupt ({e})"))
            }
            C::DiskFull => StoreError::Full(e.to_string()),
            C::DatabaseBusy | C::DatabaseLocked => StoreError::Locked(format!(
                "the database is locked by another connection ({e})"
            )),
            C::ConstraintViolation => StoreError::Conflict(e.to_string()),
            _ => StoreError::Backend(e.to_string()),
        },
        _ => StoreError::Backend(e.to_string()),
    }
}

fn json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("cannot encode: {e}")))
}

fn parse<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("stored {what} is unreadable: {e}")))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The parts of a frame's commit, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePart {
    /// The frame row.
    Frame,
    /// Invocation records and their journals.
    Invocations,
    /// Messages delivered and sent.
    Messages,
    /// Memory writes.
    Memory,
    /// Usage events.
    Usage,
    /// Run and thread state.
    Run,
}

/// Faults to inject into frame commits (tests).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    armed: Mutex<Option<Fault>>,
}

#[derive(Debug)]
struct Fault {
    part: FramePart,
    /// Frame commits to let through first.
    skip: u32,
    /// Frame commits to fail.
    times: u32,
}

impl Faults {
    pub fn set(&self, part: FramePart, skip: u32, times: u32) {
        *self
            .armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (times > 0).then_some(Fault { part, skip, times });
    }

    /// Called once at the start of each frame commit: the part after which
    /// this commit is to fail, if it is.
    fn arm(&self) -> Option<FramePart> {
        let mut armed = self
            .armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fault = armed.as_mut()?;
        if fault.skip > 0 {
            fault.skip -= 1;
            return None;
        }
        fault.times -= 1;
        let part = fault.part;
        if fault.times == 0 {
            *armed = None;
        }
        Some(part)
    }
}

/// The fault armed for one commit.
struct Armed(Option<FramePart>);

impl Armed {
    fn check(&self, part: FramePart) -> StoreResult<()> {
        if self.0 == Some(part) {
            return Err(StoreError::Backend(format!(
                "injected fault after writing {part:?}"
            )));
        }
        Ok(())
    }
}

pub(crate) fn put_graph(c: &Connection, v: &GraphVersion) -> StoreResult<()> {
    let plugins = json(&v.plugins)?;
    c.prepare_cached(
        "INSERT INTO graph_versions (id, name, graph_hash, file, source, plugins, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            v.id,
            v.name,
            v.graph_hash,
            v.file,
            v.source,
            plugins,
            now_ms()
        ])
    })
    .map_err(error)?;
    Ok(())
}

pub(crate) fn graph(c: &Connection, id: &str) -> StoreResult<Option<GraphVersion>> {
    let row = c
        .query_row(
            "SELECT name, graph_hash, file, source, plugins FROM graph_versions WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()
        .map_err(error)?;
    row.map(|(name, graph_hash, file, source, plugins)| {
        Ok(GraphVersion {
            id: id.to_owned(),
            name,
            graph_hash,
            file,
            source,
            plugins: parse(&plugins, "graph version")?,
        })
    })
    .transpose()
}

pub(crate) fn has_plugin(c: &Connection, hash: &str) -> StoreResult<bool> {
    c.query_row("SELECT 1 FROM plugins WHERE hash = ?1", [hash], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(error)
}

pub(crate) fn put_plugin(c: &Connection, p: &PluginBlob) -> StoreResult<()> {
    c.execute(
        "INSERT INTO plugins (hash, name, version, contract, path, size, bytes, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (hash) DO NOTHING",
        params![
            p.hash,
            p.name,
            p.version,
            p.contract,
            p.path,
            p.bytes.len() as i64,
            p.bytes,
            now_ms()
        ],
    )
    .map_err(error)?;
    Ok(())
}

pub(crate) fn plugin(c: &Connection, hash: &str) -> StoreResult<Option<PluginBlob>> {
    c.query_row(
        "SELECT name, version, contract, path, bytes FROM plugins WHERE hash = ?1",
        [hash],
        |r| {
            Ok(PluginBlob {
                hash: hash.to_owned(),
                name: r.get(0)?,
                version: r.get(1)?,
                contract: r.get(2)?,
                path: r.get(3)?,
                bytes: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(error)
}

const THREAD_COLUMNS: &str = "id, project, graph_version, status, runs, frames, budget_limit, \
                              forked_from, forked_at, created_ms, updated_ms";

fn thread_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredThread> {
    let forked_from: Option<String> = r.get(7)?;
    let forked_at: Option<i64> = r.get(8)?;
    Ok(StoredThread {
        id: r.get(0)?,
        project: r.get(1)?,
        graph_version: r.get(2)?,
        status: r.get(3)?,
        runs: r.get::<_, i64>(4)? as u64,
        frames: r.get::<_, i64>(5)? as u64,
        budget_limit: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
        forked_from: forked_from.zip(forked_at.map(|n| n as u64)),
        created_ms: r.get::<_, i64>(9)? as u64,
        updated_ms: r.get::<_, i64>(10)? as u64,
    })
}

pub(crate) fn thread(c: &Connection, id: &str) -> StoreResult<Option<StoredThread>> {
    c.prepare_cached(&format!(
        "SELECT {THREAD_COLUMNS} FROM threads WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], thread_row).optional())
    .map_err(error)
}

pub(crate) fn threads(
    c: &Connection,
    filter: &ThreadFilter,
    limit: u64,
    offset: u64,
) -> StoreResult<Page<StoredThread>> {
    let wanted = "(?1 IS NULL OR project = ?1) AND (?2 IS NULL OR status = ?2)
         AND (?3 IS NULL OR EXISTS (SELECT 1 FROM invocations i WHERE i.thread = threads.id AND i.node = ?3))";
    let total: i64 = c
        .prepare_cached(&format!("SELECT count(*) FROM threads WHERE {wanted}"))
        .and_then(|mut s| {
            s.query_row(params![filter.project, filter.status, filter.node], |r| {
                r.get(0)
            })
        })
        .map_err(error)?;
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {THREAD_COLUMNS} FROM threads WHERE {wanted}
             ORDER BY updated_ms DESC, id LIMIT ?4 OFFSET ?5"
        ))
        .map_err(error)?;
    let items = s
        .query_map(
            params![
                filter.project,
                filter.status,
                filter.node,
                int(limit),
                int(offset)
            ],
            thread_row,
        )
        .and_then(Iterator::collect)
        .map_err(error)?;
    Ok(Page {
        items,
        total: total as u64,
    })
}

pub(crate) fn runs(c: &Connection, thread: &str) -> StoreResult<Vec<StoredRun>> {
    let mut s = c
        .prepare_cached(
            "SELECT id, graph_version, status, frames, reply, started_ms, ended_ms
             FROM runs WHERE thread = ?1 ORDER BY started_ms, rowid",
        )
        .map_err(error)?;
    s.query_map([thread], |r| {
        Ok(StoredRun {
            id: r.get(0)?,
            thread: thread.to_owned(),
            graph_version: r.get(1)?,
            status: r.get(2)?,
            frames: r.get(3)?,
            reply: r.get(4)?,
            started_ms: r.get::<_, i64>(5)? as u64,
            ended_ms: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
        })
    })
    .and_then(Iterator::collect)
    .map_err(error)
}

pub(crate) fn memory(c: &Connection, thread: &str) -> StoreResult<Vec<MemoryWrite>> {
    let mut s = c
        .prepare_cached("SELECT node, key, value FROM memory WHERE thread = ?1 ORDER BY node, key")
        .map_err(error)?;
    s.query_map([thread], |r| {
        let node: String = r.get(0)?;
        Ok(MemoryWrite {
            thread: thread.to_owned(),
            node: (!node.is_empty()).then_some(node),
            key: r.get(1)?,
            value: Some(r.get(2)?),
        })
    })
    .and_then(Iterator::collect)
    .map_err(error)
}

pub(crate) fn set_thread_budget(c: &Connection, thread: &str, limit: u64) -> StoreResult<()> {
    let n = c
        .execute(
            "UPDATE threads SET budget_limit = ?2, updated_ms = ?3 WHERE id = ?1",
            params![thread, int(limit), now_ms()],
        )
        .map_err(error)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("no thread `{thread}`")));
    }
    Ok(())
}

pub(crate) fn project_budgets(
    c: &Connection,
) -> StoreResult<BTreeMap<String, Option<MoneyBudget>>> {
    let mut s = c
        .prepare("SELECT id, budget FROM projects")
        .map_err(error)?;
    let rows: Vec<(String, Option<String>)> = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(Iterator::collect)
        .map_err(error)?;
    rows.into_iter()
        .map(|(id, budget)| {
            let budget = budget.map(|b| parse(&b, "project budget")).transpose()?;
            Ok((id, budget))
        })
        .collect()
}

pub(crate) fn set_project_budget(
    c: &Connection,
    project: &str,
    budget: Option<MoneyBudget>,
) -> StoreResult<()> {
    let budget = budget.as_ref().map(json).transpose()?;
    c.execute(
        "INSERT INTO projects (id, budget, updated_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET budget = excluded.budget, updated_ms = excluded.updated_ms",
        params![project, budget, now_ms()],
    )
    .map_err(error)?;
    Ok(())
}

pub(crate) fn instances(c: &Connection) -> StoreResult<Vec<StoredInstance>> {
    let mut s = c
        .prepare(
            "SELECT id, project, name, plugin, thread, status, tasks_completed, config,
                    created_ms, updated_ms, terminated_ms
             FROM instances ORDER BY created_ms, id",
        )
        .map_err(error)?;
    s.query_map([], |r| {
        Ok(StoredInstance {
            id: r.get(0)?,
            project: r.get(1)?,
            name: r.get(2)?,
            plugin: r.get(3)?,
            thread: r.get(4)?,
            status: r.get(5)?,
            tasks_completed: r.get::<_, i64>(6)? as u64,
            config: r.get(7)?,
            created_ms: r.get::<_, i64>(8)? as u64,
            updated_ms: r.get::<_, i64>(9)? as u64,
            terminated_ms: r.get::<_, Option<i64>>(10)?.map(|n| n as u64),
        })
    })
    .and_then(Iterator::collect)
    .map_err(error)
}

pub(crate) fn put_instance(c: &Connection, i: &StoredInstance) -> StoreResult<()> {
    c.execute(
        "INSERT INTO instances (id, project, name, plugin, thread, status, tasks_completed, config,
             created_ms, updated_ms, terminated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status,
             tasks_completed = excluded.tasks_completed, config = excluded.config,
             updated_ms = excluded.updated_ms, terminated_ms = excluded.terminated_ms",
        params![
            i.id,
            i.project,
            i.name,
            i.plugin,
            i.thread,
            i.status,
            int(i.tasks_completed),
            i.config,
            int(i.created_ms),
            int(i.updated_ms),
            i.terminated_ms.map(int)
        ],
    )
    .map_err(error)?;
    Ok(())
}

pub(crate) fn paused_nodes(c: &Connection) -> StoreResult<Vec<NodePause>> {
    let mut s = c
        .prepare("SELECT project, node FROM node_pauses ORDER BY project, node")
        .map_err(error)?;
    s.query_map([], |r| {
        let project: String = r.get(0)?;
        Ok(NodePause {
            project: (!project.is_empty()).then_some(project),
            node: r.get(1)?,
        })
    })
    .and_then(Iterator::collect)
    .map_err(error)
}

pub(crate) fn set_node_paused(c: &Connection, pause: &NodePause, paused: bool) -> StoreResult<()> {
    let project = pause.project.as_deref().unwrap_or_default();
    if paused {
        c.execute(
            "INSERT INTO node_pauses (project, node, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (project, node) DO UPDATE SET updated_ms = excluded.updated_ms",
            params![project, pause.node, now_ms()],
        )
    } else {
        c.execute(
            "DELETE FROM node_pauses WHERE project = ?1 AND node = ?2",
            params![project, pause.node],
        )
    }
    .map_err(error)?;
    Ok(())
}

fn insert_message(
    c: &Connection,
    thread: &str,
    run: &str,
    to: &str,
    m: &Message,
    sent: Option<u64>,
    delivered: Option<u64>,
) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO messages (id, thread, run, to_node, from_node, kind, body, sent_seq, delivered_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            m.id,
            thread,
            run,
            to,
            m.from,
            m.kind,
            m.body,
            sent.map(int),
            delivered.map(int)
        ])
    })
    .map_err(|e| match error(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("message `{}` is stored already", m.id))
        }
        other => other,
    })?;
    Ok(())
}

/// Creates the thread if new (else points it at the run), the run, and
/// its inbound messages. `fork` names the thread and frame a new thread
/// was forked from.
pub(crate) fn begin_run(
    c: &Connection,
    start: &RunStart,
    fork: Option<(&str, u64)>,
) -> StoreResult<()> {
    let now = int(start.at_ms);
    let (parent, at) = fork.unzip();
    let frames = at.map_or(0, |a| a + 1);
    c.prepare_cached(
        "INSERT INTO threads (id, project, graph_version, status, runs, frames, forked_from, forked_at, created_ms, updated_ms, budget_limit)
         VALUES (?1, ?2, ?3, 'running', 1, ?4, ?5, ?6, ?7, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET graph_version = excluded.graph_version,
             status = 'running', runs = runs + 1, updated_ms = excluded.updated_ms,
             budget_limit = coalesce(excluded.budget_limit, budget_limit)",
    )
    .and_then(|mut s| {
        s.execute(params![
            start.thread,
            start.project,
            start.graph_version,
            int(frames),
            parent,
            at.map(int),
            now,
            start.budget_limit.map(int)
        ])
    })
    .map_err(error)?;
    c.prepare_cached(
        "INSERT INTO runs (id, thread, graph_version, status, frames, started_ms)
         VALUES (?1, ?2, ?3, 'running', 0, ?4)",
    )
    .and_then(|mut s| s.execute(params![start.run, start.thread, start.graph_version, now]))
    .map_err(|e| match error(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("run `{}` exists already", start.run))
        }
        other => other,
    })?;
    for (to, m) in &start.inbound {
        insert_message(c, &start.thread, &start.run, to, m, None, None)?;
    }
    Ok(())
}

pub(crate) fn fork(c: &Connection, f: &ForkStart) -> StoreResult<()> {
    let s = &f.start;
    begin_run(c, s, Some((&f.from_thread, f.from_seq)))?;
    if !f.has_run {
        c.execute(
            "UPDATE runs SET status = 'completed', ended_ms = started_ms WHERE id = ?1",
            [&s.run],
        )
        .map_err(error)?;
        c.execute(
            "UPDATE threads SET status = 'completed' WHERE id = ?1",
            [&s.thread],
        )
        .map_err(error)?;
    }
    write_memory(c, &f.memory)?;
    Ok(())
}

fn write_memory(c: &Connection, writes: &[MemoryWrite]) -> StoreResult<()> {
    for w in writes {
        let node = w.node.as_deref().unwrap_or("");
        match &w.value {
            Some(v) => c
                .prepare_cached(
                    "INSERT INTO memory (thread, node, key, value) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (thread, node, key) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute(params![w.thread, node, w.key, v])),
            None => c
                .prepare_cached("DELETE FROM memory WHERE thread = ?1 AND node = ?2 AND key = ?3")
                .and_then(|mut s| s.execute(params![w.thread, node, w.key])),
        }
        .map_err(error)?;
    }
    Ok(())
}

pub(crate) fn commit_frame(c: &Connection, f: &FrameCommit, faults: &Faults) -> StoreResult<()> {
    // The run must be running and expecting exactly this frame.
    let expected: Option<(String, i64)> = c
        .prepare_cached("SELECT status, frames FROM runs WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([&f.run], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(error)?;
    let Some((status, next)) = expected else {
        return Err(StoreError::Conflict(format!("no run `{}`", f.run)));
    };
    if status != "running" || next != i64::from(f.frame) {
        return Err(StoreError::Conflict(format!(
            "run `{}` is {status} at frame {next}; frame {} cannot be committed",
            f.run, f.frame
        )));
    }
    let faults = Armed(faults.arm());
    let seq = int(f.seq);
    let now = now_ms();
    c.prepare_cached(
        "INSERT INTO frames (thread, seq, run, frame, graph_version, wall_time_ms, committed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            f.thread,
            seq,
            f.run,
            f.frame,
            f.graph_version,
            int(f.wall_time_ms),
            now
        ])
    })
    .map_err(|e| match error(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!(
            "thread `{}` has a frame {} already",
            f.thread, f.seq
        )),
        other => other,
    })?;
    faults.check(FramePart::Frame)?;

    for (idx, inv) in f.invocations.iter().enumerate() {
        let r = &inv.record;
        let metering = f.metering.iter().find(|m| m.node == r.node);
        // Encoded first: a value that cannot be encoded fails the commit
        // instead of being stored empty.
        let record = json(&FrameRecord {
            journal: Vec::new(),
            ..r.clone()
        })?;
        let (inbox, output) = (json(&inv.inbox)?, json(&inv.output)?);
        c.prepare_cached(
            "INSERT INTO invocations (thread, seq, idx, node, project, plugin_hash, fuel, duration_us, outcome, at_ms, record, inbox, output)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .and_then(|mut s| {
            s.execute(params![
                f.thread,
                seq,
                idx as i64,
                r.node,
                metering.map_or("", |m| m.project.as_str()),
                r.plugin_hash,
                int(r.fuel_used),
                int(r.duration_us),
                r.error.as_ref().map_or("ok", |e| e.code.as_str()),
                metering.map_or(now, |m| int(m.at_ms)),
                record,
                inbox,
                output,
            ])
        })
        .map_err(error)?;
        let mut s = c
            .prepare_cached(
                "INSERT INTO journal (thread, seq, idx, entry, capability, op, request, response)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(error)?;
        for e in &r.journal {
            s.execute(params![
                f.thread,
                seq,
                idx as i64,
                e.seq,
                e.capability.to_string(),
                e.op,
                e.request.to_string(),
                e.response.to_string(),
            ])
            .map_err(error)?;
        }
    }
    faults.check(FramePart::Invocations)?;

    for (to, m) in &f.delivered {
        let n = c
            .prepare_cached(
                "UPDATE messages SET delivered_seq = ?1
                 WHERE id = ?2 AND run = ?3 AND delivered_seq IS NULL",
            )
            .and_then(|mut s| s.execute(params![seq, m.id, f.run]))
            .map_err(error)?;
        if n == 0 {
            if m.from == weft_engine::SYSTEM_SENDER && !message_exists(c, &m.id)? {
                // An engine notice (budget warning) made for this frame.
                insert_message(c, &f.thread, &f.run, to, m, Some(f.seq), Some(f.seq))?;
            } else {
                return Err(StoreError::Conflict(format!(
                    "message `{}` is not pending for run `{}`: it was delivered before or never stored",
                    m.id, f.run
                )));
            }
        }
    }
    for (to, m) in &f.sent {
        insert_message(c, &f.thread, &f.run, to, m, Some(f.seq), None)?;
    }
    faults.check(FramePart::Messages)?;

    write_memory(c, &f.memory)?;
    faults.check(FramePart::Memory)?;

    for u in &f.usage {
        insert_usage(c, u)?;
    }
    faults.check(FramePart::Usage)?;

    let status = f.status.as_str();
    let ended = f.status.is_final().then_some(now);
    c.prepare_cached(
        "UPDATE runs SET frames = ?2, status = ?3, reply = ?4, ended_ms = ?5, graph_version = ?6 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            f.run,
            f.frame + 1,
            status,
            f.reply,
            ended,
            f.graph_version
        ])
    })
    .map_err(error)?;
    c.prepare_cached("UPDATE threads SET frames = ?2, status = ?3, updated_ms = ?4 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![f.thread, seq + 1, status, int(f.wall_time_ms)]))
        .map_err(error)?;
    faults.check(FramePart::Run)?;
    Ok(())
}

fn message_exists(c: &Connection, id: &str) -> StoreResult<bool> {
    c.query_row("SELECT 1 FROM messages WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(error)
}

fn insert_usage(c: &Connection, u: &UsageEvent) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO usage_events (project, thread, run, frame, node, model, provider, prompt_tokens,
             completion_tokens, estimated, latency_ms, cost, outcome, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut s| {
        s.execute(params![
            u.project,
            u.thread,
            u.run,
            u.frame,
            u.node,
            u.model,
            u.provider,
            int(u.prompt_tokens),
            int(u.completion_tokens),
            u.estimated,
            int(u.latency_ms),
            u.cost,
            u.outcome,
            int(u.at_ms)
        ])
    })
    .map_err(error)?;
    Ok(())
}

pub(crate) fn end_run(c: &Connection, e: &RunEnd) -> StoreResult<()> {
    let status = e.status.as_str();
    let n = c
        .execute(
            "UPDATE runs SET status = ?2, ended_ms = ?3 WHERE id = ?1 AND status = 'running'",
            params![e.run, status, int(e.at_ms)],
        )
        .map_err(error)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "run `{}` is not running",
            e.run
        )));
    }
    c.execute(
        "UPDATE threads SET status = ?2, updated_ms = ?3 WHERE id = ?1",
        params![e.thread, status, int(e.at_ms)],
    )
    .map_err(error)?;
    Ok(())
}

pub(crate) fn unfinished_runs(c: &Connection) -> StoreResult<Vec<UnfinishedRun>> {
    let mut s = c
        .prepare(
            "SELECT r.id, r.thread, t.project, r.graph_version, r.frames, t.frames, r.reply
             FROM runs r JOIN threads t ON t.id = r.thread
             WHERE r.status = 'running' ORDER BY r.started_ms, r.id",
        )
        .map_err(error)?;
    let mut runs: Vec<UnfinishedRun> = s
        .query_map([], |r| {
            Ok(UnfinishedRun {
                run: r.get(0)?,
                thread: r.get(1)?,
                project: r.get(2)?,
                graph_version: r.get(3)?,
                frame: r.get::<_, i64>(4)? as u32,
                seq: r.get::<_, i64>(5)? as u64,
                reply: r.get(6)?,
                pending: Vec::new(),
            })
        })
        .and_then(Iterator::collect)
        .map_err(error)?;
    let mut pending = c
        .prepare_cached(
            "SELECT id, to_node, from_node, kind, body FROM messages
             WHERE run = ?1 AND delivered_seq IS NULL ORDER BY pos",
        )
        .map_err(error)?;
    for run in &mut runs {
        run.pending = pending
            .query_map([&run.run], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    Message {
                        id: r.get(0)?,
                        from: r.get(2)?,
                        kind: r.get(3)?,
                        body: r.get(4)?,
                    },
                ))
            })
            .and_then(Iterator::collect)
            .map_err(error)?;
    }
    Ok(runs)
}

pub(crate) fn frames(
    c: &Connection,
    thread: &str,
    from: u64,
    to: u64,
) -> StoreResult<Vec<StoredFrame>> {
    let mut s = c
        .prepare_cached(
            "SELECT seq, run, frame, graph_version, wall_time_ms FROM frames
             WHERE thread = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
        )
        .map_err(error)?;
    let rows: Vec<(i64, String, u32, String, i64)> = s
        .query_map(params![thread, int(from), int(to)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(Iterator::collect)
        .map_err(error)?;
    let mut invocations = c
        .prepare_cached(
            "SELECT idx, record, inbox, output FROM invocations WHERE thread = ?1 AND seq = ?2 ORDER BY idx",
        )
        .map_err(error)?;
    let mut journal = c
        .prepare_cached(
            "SELECT entry, capability, op, request, response FROM journal
             WHERE thread = ?1 AND seq = ?2 AND idx = ?3 ORDER BY entry",
        )
        .map_err(error)?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, run, frame, graph_version, wall) in rows {
        let raw: Vec<(i64, String, String, String)> = invocations
            .query_map(params![thread, seq], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(Iterator::collect)
            .map_err(error)?;
        let mut list = Vec::with_capacity(raw.len());
        for (idx, record, inbox, output) in raw {
            let mut record: FrameRecord = parse(&record, "frame record")?;
            let entries: Vec<(u32, String, String, String, String)> = journal
                .query_map(params![thread, seq, idx], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .and_then(Iterator::collect)
                .map_err(error)?;
            record.journal = entries
                .into_iter()
                .map(|(entry, cap, op, request, response)| {
                    Ok(JournalEntry {
                        seq: entry,
                        capability: cap.parse::<Capability>().map_err(StoreError::Backend)?,
                        op,
                        request: parse(&request, "journal request")?,
                        response: parse(&response, "journal response")?,
                    })
                })
                .collect::<StoreResult<_>>()?;
            list.push(InvocationRecord {
                record,
                inbox: parse(&inbox, "inbox")?,
                output: parse::<RecordedOutput>(&output, "output")?,
            });
        }
        out.push(StoredFrame {
            run,
            frame,
            seq: seq as u64,
            wall_time_ms: wall as u64,
            graph_version,
            invocations: list,
        });
    }
    Ok(out)
}

/// A message row: id, thread, run, to, from, kind, body, sent, delivered.
fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        id: r.get(0)?,
        thread: r.get(1)?,
        run: r.get(2)?,
        to: r.get(3)?,
        from: r.get(4)?,
        kind: r.get(5)?,
        body: r.get(6)?,
        sent_seq: r.get::<_, Option<i64>>(7)?.map(|n| n as u64),
        delivered_seq: r.get::<_, Option<i64>>(8)?.map(|n| n as u64),
    })
}

pub(crate) fn node_messages(
    c: &Connection,
    node: Option<String>,
    project: Option<String>,
    limit: u64,
    offset: u64,
) -> StoreResult<Page<StoredMessage>> {
    let wanted = "(?1 IS NULL OR m.to_node = ?1 OR m.from_node = ?1)
         AND (?2 IS NULL OR m.thread IN (SELECT id FROM threads WHERE project = ?2))";
    let total: i64 = c
        .prepare_cached(&format!("SELECT count(*) FROM messages m WHERE {wanted}"))
        .and_then(|mut s| s.query_row(params![node, project], |r| r.get(0)))
        .map_err(error)?;
    let mut s = c
        .prepare_cached(&format!(
            "SELECT m.id, m.thread, m.run, m.to_node, m.from_node, m.kind, m.body, m.sent_seq, m.delivered_seq
             FROM messages m WHERE {wanted} ORDER BY m.pos DESC LIMIT ?3 OFFSET ?4"
        ))
        .map_err(error)?;
    let items = s
        .query_map(params![node, project, int(limit), int(offset)], message_row)
        .and_then(Iterator::collect)
        .map_err(error)?;
    Ok(Page {
        items,
        total: total as u64,
    })
}

pub(crate) fn messages(c: &Connection, thread: &str) -> StoreResult<Vec<StoredMessage>> {
    let mut s = c
        .prepare_cached(
            "SELECT id, thread, run, to_node, from_node, kind, body, sent_seq, delivered_seq
             FROM messages WHERE thread = ?1 ORDER BY pos",
        )
        .map_err(error)?;
    s.query_map([thread], message_row)
        .and_then(Iterator::collect)
        .map_err(error)
}

pub(crate) fn reset_usage(c: &Connection, at_ms: u64) -> StoreResult<()> {
    c.execute(
        "INSERT INTO settings (key, value) VALUES ('usage_reset_ms', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [at_ms.to_string()],
    )
    .map_err(error)?;
    Ok(())
}

pub(crate) fn usage(c: &Connection) -> StoreResult<UsageHistory> {
    let since_ms: u64 = c
        .query_row(
            "SELECT value FROM settings WHERE key = 'usage_reset_ms'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(error)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut s = c
        .prepare(
            "SELECT project, thread, run, frame, node, model, provider, prompt_tokens, completion_tokens,
                    estimated, latency_ms, cost, outcome, at_ms
             FROM usage_events ORDER BY id",
        )
        .map_err(error)?;
    let events = s
        .query_map([], |r| {
            Ok(UsageEvent {
                project: r.get(0)?,
                thread: r.get(1)?,
                run: r.get(2)?,
                frame: r.get(3)?,
                node: r.get(4)?,
                model: r.get(5)?,
                provider: r.get(6)?,
                prompt_tokens: r.get::<_, i64>(7)? as u64,
                completion_tokens: r.get::<_, i64>(8)? as u64,
                estimated: r.get(9)?,
                latency_ms: r.get::<_, i64>(10)? as u64,
                cost: r.get(11)?,
                outcome: r.get(12)?,
                at_ms: r.get::<_, i64>(13)? as u64,
            })
        })
        .and_then(Iterator::collect)
        .map_err(error)?;
    let mut s = c
        .prepare(
            "SELECT project, thread, node, count(*), sum(outcome != 'ok'), sum(fuel), sum(duration_us)
             FROM invocations WHERE at_ms >= ?1 GROUP BY project, thread, node
             UNION ALL
             SELECT project, NULL, node, invocations, failed, fuel, duration_us FROM invocation_totals
             WHERE ?1 = 0",
        )
        .map_err(error)?;
    let invocations = s
        .query_map([int(since_ms)], |r| {
            Ok(InvocationTotals {
                project: r.get(0)?,
                thread: r.get(1)?,
                node: r.get(2)?,
                invocations: r.get::<_, i64>(3)? as u64,
                failed: r.get::<_, i64>(4)? as u64,
                fuel: r.get::<_, i64>(5)? as u64,
                duration_us: r.get::<_, i64>(6)? as u64,
            })
        })
        .and_then(Iterator::collect)
        .map_err(error)?;
    Ok(UsageHistory {
        events,
        invocations,
        since_ms,
    })
}

pub(crate) fn prune(c: &Connection, before_ms: u64) -> StoreResult<PruneReport> {
    // Finished threads, idle since before the cut-off, that no fork needs.
    c.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY); DELETE FROM doomed;",
    )
    .map_err(error)?;
    let threads = c
        .execute(
            "INSERT INTO doomed (id)
             SELECT t.id FROM threads t
             WHERE t.updated_ms < ?1 AND t.status != 'running'
               AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread = t.id AND r.status = 'running')
               AND NOT EXISTS (SELECT 1 FROM threads f WHERE f.forked_from = t.id)",
            [int(before_ms)],
        )
        .map_err(error)? as u64;
    if threads == 0 {
        return Ok(PruneReport::default());
    }
    c.execute(
        "INSERT INTO invocation_totals (project, node, invocations, failed, fuel, duration_us)
         SELECT project, node, count(*), sum(outcome != 'ok'), sum(fuel), sum(duration_us)
         FROM invocations WHERE thread IN (SELECT id FROM doomed) GROUP BY project, node
         ON CONFLICT (project, node) DO UPDATE SET
             invocations = invocations + excluded.invocations,
             failed = failed + excluded.failed,
             fuel = fuel + excluded.fuel,
             duration_us = duration_us + excluded.duration_us",
        [],
    )
    .map_err(error)?;
    let delete = |table: &str| -> StoreResult<u64> {
        c.execute(
            &format!("DELETE FROM {table} WHERE thread IN (SELECT id FROM doomed)"),
            [],
        )
        .map(|n| n as u64)
        .map_err(error)
    };
    let report = PruneReport {
        threads,
        frames: delete("frames")?,
        journal: delete("journal")?,
        messages: delete("messages")?,
        memory: delete("memory")?,
        runs: delete("runs")?,
    };
    delete("invocations")?;
    c.execute(
        "DELETE FROM threads WHERE id IN (SELECT id FROM doomed)",
        [],
    )
    .map_err(error)?;
    Ok(report)
}
