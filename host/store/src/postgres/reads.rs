//! The reads, on pooled connections: graph versions and plugins, threads,
//! runs, memory, operator settings, committed frames and messages.

use std::collections::BTreeMap;

use tokio_postgres::{Client, Row};
use weft_engine::MoneyBudget;
use weft_engine::StoreError;
use weft_engine::store::{
    GraphVersion, InvocationRecord, NodePause, Page, PluginBlob, QueuedRun, RecordedOutput,
    StoreResult, StoredFrame, StoredGraphVersion, StoredInstance, StoredMessage, StoredRun,
    StoredThread, ThreadFilter, UnfinishedRun,
};
use weft_runtime::capabilities::JournalEntry;
use weft_runtime::capabilities::memory::MemoryWrite;
use weft_runtime::{Capability, Message};

use super::error::ReadResult;
use crate::codec::{int, parse, unsigned as u};

pub(super) async fn graph(c: &Client, id: &str) -> StoreResult<Option<GraphVersion>> {
    let row = c
        .query_opt(
            "SELECT name, graph_hash, file, source, plugins FROM graph_versions WHERE id = $1",
            &[&id],
        )
        .await
        .read()?;
    row.map(|r| {
        Ok(GraphVersion {
            id: id.to_owned(),
            name: r.get(0),
            graph_hash: r.get(1),
            file: r.get(2),
            source: r.get(3),
            plugins: parse(&r.get::<_, String>(4), "graph version")?,
        })
    })
    .transpose()
}

const VERSION_COLUMNS: &str = "id, name, graph_hash, file, source, plugins, created_ms";

fn version_row(r: &Row) -> StoreResult<StoredGraphVersion> {
    Ok(StoredGraphVersion {
        version: GraphVersion {
            id: r.get(0),
            name: r.get(1),
            graph_hash: r.get(2),
            file: r.get(3),
            source: r.get(4),
            plugins: parse(&r.get::<_, String>(5), "graph version")?,
        },
        created_ms: u(r.get(6)),
    })
}

pub(super) async fn graph_versions(
    c: &Client,
    name: &str,
    limit: u64,
    offset: u64,
) -> StoreResult<Page<StoredGraphVersion>> {
    let total: i64 = c
        .query_one(
            "SELECT count(*) FROM graph_versions WHERE name = $1",
            &[&name],
        )
        .await
        .read()?
        .get(0);
    let rows = c
        .query(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM graph_versions WHERE name = $1
                 ORDER BY created_ms DESC, id DESC LIMIT $2 OFFSET $3"
            ),
            &[&name, &int(limit), &int(offset)],
        )
        .await
        .read()?;
    Ok(Page {
        items: rows.iter().map(version_row).collect::<StoreResult<_>>()?,
        total: u(total),
    })
}

pub(super) async fn graph_version(c: &Client, id: &str) -> StoreResult<Option<StoredGraphVersion>> {
    c.query_opt(
        &format!("SELECT {VERSION_COLUMNS} FROM graph_versions WHERE id = $1"),
        &[&id],
    )
    .await
    .read()?
    .as_ref()
    .map(version_row)
    .transpose()
}

pub(super) async fn graph_version_before(
    c: &Client,
    id: &str,
) -> StoreResult<Option<StoredGraphVersion>> {
    c.query_opt(
        &format!(
            "SELECT {VERSION_COLUMNS} FROM graph_versions p
             WHERE EXISTS (SELECT 1 FROM graph_versions v WHERE v.id = $1 AND p.name = v.name
                 AND (p.created_ms < v.created_ms OR (p.created_ms = v.created_ms AND p.id < v.id)))
             ORDER BY created_ms DESC, id DESC LIMIT 1"
        ),
        &[&id],
    )
    .await
    .read()?
    .as_ref()
    .map(version_row)
    .transpose()
}

pub(super) async fn has_plugin(c: &Client, hash: &str) -> StoreResult<bool> {
    Ok(
        c.query_opt("SELECT 1 FROM plugins WHERE hash = $1", &[&hash])
            .await
            .read()?
            .is_some(),
    )
}

pub(super) async fn plugin(c: &Client, hash: &str) -> StoreResult<Option<PluginBlob>> {
    let row = c
        .query_opt(
            "SELECT name, version, contract, path, bytes FROM plugins WHERE hash = $1",
            &[&hash],
        )
        .await
        .read()?;
    Ok(row.map(|r| PluginBlob {
        hash: hash.to_owned(),
        name: r.get(0),
        version: r.get(1),
        contract: r.get(2),
        path: r.get(3),
        bytes: r.get(4),
    }))
}

const THREAD_COLUMNS: &str = "id, project, graph_version, status, runs, frames, budget_limit, \
                              forked_from, forked_at, created_ms, updated_ms";

fn thread_row(r: &Row) -> StoredThread {
    let forked_from: Option<String> = r.get(7);
    let forked_at: Option<i64> = r.get(8);
    StoredThread {
        id: r.get(0),
        project: r.get(1),
        graph_version: r.get(2),
        status: r.get(3),
        runs: u(r.get(4)),
        frames: u(r.get(5)),
        budget_limit: r.get::<_, Option<i64>>(6).map(u),
        forked_from: forked_from.zip(forked_at.map(u)),
        created_ms: u(r.get(9)),
        updated_ms: u(r.get(10)),
    }
}

pub(super) async fn thread(c: &Client, id: &str) -> StoreResult<Option<StoredThread>> {
    let row = c
        .query_opt(
            &format!("SELECT {THREAD_COLUMNS} FROM threads WHERE id = $1"),
            &[&id],
        )
        .await
        .read()?;
    Ok(row.as_ref().map(thread_row))
}

pub(super) async fn threads(
    c: &Client,
    filter: &ThreadFilter,
    limit: u64,
    offset: u64,
) -> StoreResult<Page<StoredThread>> {
    let wanted = "($1::TEXT IS NULL OR project = $1) AND ($2::TEXT IS NULL OR status = $2)
         AND ($3::TEXT IS NULL OR EXISTS (SELECT 1 FROM invocations i WHERE i.thread = threads.id AND i.node = $3))
         AND ($4::BIGINT IS NULL OR updated_ms >= $4) AND ($5::BIGINT IS NULL OR updated_ms < $5)";
    let (since, until) = (filter.since_ms.map(int), filter.until_ms.map(int));
    let total: i64 = c
        .query_one(
            &format!("SELECT count(*) FROM threads WHERE {wanted}"),
            &[
                &filter.project,
                &filter.status,
                &filter.node,
                &since,
                &until,
            ],
        )
        .await
        .read()?
        .get(0);
    let rows = c
        .query(
            &format!(
                "SELECT {THREAD_COLUMNS} FROM threads WHERE {wanted}
                 ORDER BY updated_ms DESC, id LIMIT $6 OFFSET $7"
            ),
            &[
                &filter.project,
                &filter.status,
                &filter.node,
                &since,
                &until,
                &int(limit),
                &int(offset),
            ],
        )
        .await
        .read()?;
    Ok(Page {
        items: rows.iter().map(thread_row).collect(),
        total: u(total),
    })
}

pub(super) async fn runs(c: &Client, thread: &str) -> StoreResult<Vec<StoredRun>> {
    let rows = c
        .query(
            "SELECT id, graph_version, status, frames, reply, started_ms, ended_ms
             FROM runs WHERE thread = $1 ORDER BY started_ms, pos",
            &[&thread],
        )
        .await
        .read()?;
    Ok(rows
        .iter()
        .map(|r| StoredRun {
            id: r.get(0),
            thread: thread.to_owned(),
            graph_version: r.get(1),
            status: r.get(2),
            frames: u32::try_from(r.get::<_, i64>(3)).unwrap_or(u32::MAX),
            reply: r.get(4),
            started_ms: u(r.get(5)),
            ended_ms: r.get::<_, Option<i64>>(6).map(u),
        })
        .collect())
}

pub(super) async fn unfinished_runs(c: &Client) -> StoreResult<Vec<UnfinishedRun>> {
    unfinished(c, None).await
}

/// The unfinished runs, or the one named `run` if it is unfinished.
pub(super) async fn unfinished(c: &Client, run: Option<&str>) -> StoreResult<Vec<UnfinishedRun>> {
    let rows = c
        .query(
            "SELECT r.id, r.thread, t.project, r.graph_version, r.frames, t.frames, r.reply
             FROM runs r JOIN threads t ON t.id = r.thread
             WHERE r.status = 'running' AND ($1::TEXT IS NULL OR r.id = $1)
             ORDER BY r.started_ms, r.pos",
            &[&run],
        )
        .await
        .read()?;
    let mut runs = Vec::with_capacity(rows.len());
    for r in rows {
        let run: String = r.get(0);
        let pending = pending(c, &run).await?;
        runs.push(UnfinishedRun {
            thread: r.get(1),
            project: r.get(2),
            graph_version: r.get(3),
            frame: u32::try_from(r.get::<_, i64>(4)).unwrap_or(u32::MAX),
            seq: u(r.get(5)),
            reply: r.get(6),
            pending,
            run,
        });
    }
    Ok(runs)
}

/// A queued run from a row of [`QUEUED`].
fn queued_run(r: &Row) -> QueuedRun {
    QueuedRun {
        thread: r.get(0),
        run: r.get(1),
        graph_version: r.get(2),
        to: r.get(3),
        message: Message {
            id: r.get(4),
            from: r.get(5),
            kind: r.get(6),
            body: r.get(7),
        },
    }
}

/// The columns [`queued_run`] reads, and what they come from.
const QUEUED: &str =
    "SELECT r.thread, r.id, r.graph_version, m.to_node, m.id, m.from_node, m.kind, m.body
     FROM runs r JOIN messages m ON m.run = r.id AND m.sent_seq IS NULL";

/// Every queued run with its inbound message, in the order accepted.
pub(super) async fn queued_runs(c: &Client) -> StoreResult<Vec<QueuedRun>> {
    let sql = format!("{QUEUED} WHERE r.status = 'queued' ORDER BY r.started_ms, r.pos");
    let rows = c.query(&sql, &[]).await.read()?;
    Ok(rows.iter().map(queued_run).collect())
}

/// The oldest run queued on `thread`, if the thread has no run in flight.
pub(super) async fn next_queued(c: &Client, thread: &str) -> StoreResult<Option<QueuedRun>> {
    let sql = format!(
        "{QUEUED} JOIN threads t ON t.id = r.thread
         WHERE r.thread = $1 AND r.status = 'queued'
           AND t.status NOT IN ('running', 'waiting', 'budget_exhausted', 'interrupted')
         ORDER BY r.started_ms, r.pos LIMIT 1"
    );
    let rows = c.query(&sql, &[&thread]).await.read()?;
    Ok(rows.first().map(queued_run))
}

/// A run's messages sent and not yet delivered, in the order they were
/// stored.
pub(super) async fn pending(c: &Client, run: &str) -> StoreResult<Vec<(String, Message)>> {
    let rows = c
        .query(
            "SELECT id, to_node, from_node, kind, body FROM messages
             WHERE run = $1 AND delivered_seq IS NULL ORDER BY pos",
            &[&run],
        )
        .await
        .read()?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get(1),
                Message {
                    id: r.get(0),
                    from: r.get(2),
                    kind: r.get(3),
                    body: r.get(4),
                },
            )
        })
        .collect())
}

pub(super) async fn memory(c: &Client, thread: &str) -> StoreResult<Vec<MemoryWrite>> {
    let rows = c
        .query(
            "SELECT node, key, value FROM memory WHERE thread = $1 ORDER BY node, key",
            &[&thread],
        )
        .await
        .read()?;
    Ok(rows
        .iter()
        .map(|r| {
            let node: String = r.get(0);
            MemoryWrite {
                thread: thread.to_owned(),
                node: (!node.is_empty()).then_some(node),
                key: r.get(1),
                value: Some(r.get(2)),
            }
        })
        .collect())
}

pub(super) async fn project_budgets(
    c: &Client,
) -> StoreResult<BTreeMap<String, Option<MoneyBudget>>> {
    let rows = c
        .query("SELECT id, budget FROM projects", &[])
        .await
        .read()?;
    rows.iter()
        .map(|r| {
            let budget: Option<String> = r.get(1);
            let budget = budget.map(|b| parse(&b, "project budget")).transpose()?;
            Ok((r.get(0), budget))
        })
        .collect()
}

pub(super) async fn instances(c: &Client) -> StoreResult<Vec<StoredInstance>> {
    let rows = c
        .query(
            "SELECT id, project, name, plugin, thread, status, tasks_completed, config,
                    created_ms, updated_ms, terminated_ms, graph, definition
             FROM instances ORDER BY created_ms, id",
            &[],
        )
        .await
        .read()?;
    Ok(rows
        .iter()
        .map(|r| StoredInstance {
            id: r.get(0),
            project: r.get(1),
            name: r.get(2),
            plugin: r.get(3),
            thread: r.get(4),
            status: r.get(5),
            tasks_completed: u(r.get(6)),
            config: r.get(7),
            created_ms: u(r.get(8)),
            updated_ms: u(r.get(9)),
            terminated_ms: r.get::<_, Option<i64>>(10).map(u),
            graph: r.get(11),
            definition: r.get(12),
        })
        .collect())
}

pub(super) async fn paused_nodes(c: &Client) -> StoreResult<Vec<NodePause>> {
    let rows = c
        .query(
            "SELECT project, node FROM node_pauses ORDER BY project, node",
            &[],
        )
        .await
        .read()?;
    Ok(rows
        .iter()
        .map(|r| {
            let project: String = r.get(0);
            NodePause {
                project: (!project.is_empty()).then_some(project),
                node: r.get(1),
            }
        })
        .collect())
}

pub(super) async fn frames(
    c: &Client,
    thread: &str,
    from: u64,
    to: u64,
) -> StoreResult<Vec<StoredFrame>> {
    let rows = c
        .query(
            "SELECT seq, run, frame, graph_version, wall_time_ms FROM frames
             WHERE thread = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
            &[&thread, &int(from), &int(to)],
        )
        .await
        .read()?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.get(0);
        let invocations = c
            .query(
                "SELECT idx, record, inbox, output FROM invocations
                 WHERE thread = $1 AND seq = $2 ORDER BY idx",
                &[&thread, &seq],
            )
            .await
            .read()?;
        let journal = c
            .query(
                "SELECT idx, entry, capability, op, request, response FROM journal
                 WHERE thread = $1 AND seq = $2 ORDER BY idx, entry",
                &[&thread, &seq],
            )
            .await
            .read()?;
        let mut list = Vec::with_capacity(invocations.len());
        for inv in invocations {
            let idx: i64 = inv.get(0);
            let mut record: weft_engine::trace::FrameRecord =
                parse(&inv.get::<_, String>(1), "frame record")?;
            record.journal = journal
                .iter()
                .filter(|j| j.get::<_, i64>(0) == idx)
                .map(|j| {
                    Ok(JournalEntry {
                        seq: u32::try_from(j.get::<_, i64>(1)).unwrap_or(u32::MAX),
                        capability: j
                            .get::<_, String>(2)
                            .parse::<Capability>()
                            .map_err(StoreError::Backend)?,
                        op: j.get(3),
                        request: parse(&j.get::<_, String>(4), "journal request")?,
                        response: parse(&j.get::<_, String>(5), "journal response")?,
                    })
                })
                .collect::<StoreResult<_>>()?;
            list.push(InvocationRecord {
                record,
                inbox: parse(&inv.get::<_, String>(2), "inbox")?,
                output: parse::<RecordedOutput>(&inv.get::<_, String>(3), "output")?,
            });
        }
        out.push(StoredFrame {
            run: row.get(1),
            frame: u32::try_from(row.get::<_, i64>(2)).unwrap_or(u32::MAX),
            seq: u(seq),
            wall_time_ms: u(row.get(4)),
            graph_version: row.get(3),
            invocations: list,
        });
    }
    Ok(out)
}

/// A message row: id, thread, run, to, from, kind, body, sent, delivered.
fn message_row(r: &Row) -> StoredMessage {
    StoredMessage {
        id: r.get(0),
        thread: r.get(1),
        run: r.get(2),
        to: r.get(3),
        from: r.get(4),
        kind: r.get(5),
        body: r.get(6),
        sent_seq: r.get::<_, Option<i64>>(7).map(u),
        delivered_seq: r.get::<_, Option<i64>>(8).map(u),
    }
}

pub(super) async fn node_messages(
    c: &Client,
    node: Option<String>,
    project: Option<String>,
    limit: u64,
    offset: u64,
) -> StoreResult<Page<StoredMessage>> {
    let wanted = "($1::TEXT IS NULL OR m.to_node = $1 OR m.from_node = $1)
         AND ($2::TEXT IS NULL OR m.thread IN (SELECT id FROM threads WHERE project = $2))";
    let total: i64 = c
        .query_one(
            &format!("SELECT count(*) FROM messages m WHERE {wanted}"),
            &[&node, &project],
        )
        .await
        .read()?
        .get(0);
    let rows = c
        .query(
            &format!(
                "SELECT m.id, m.thread, m.run, m.to_node, m.from_node, m.kind, m.body, m.sent_seq, m.delivered_seq
                 FROM messages m WHERE {wanted} ORDER BY m.pos DESC LIMIT $3 OFFSET $4"
            ),
            &[&node, &project, &int(limit), &int(offset)],
        )
        .await
        .read()?;
    Ok(Page {
        items: rows.iter().map(message_row).collect(),
        total: u(total),
    })
}

pub(super) async fn messages(c: &Client, thread: &str) -> StoreResult<Vec<StoredMessage>> {
    let rows = c
        .query(
            "SELECT m.id, m.thread, m.run, m.to_node, m.from_node, m.kind, m.body, m.sent_seq, m.delivered_seq
             FROM messages m WHERE m.thread = $1
               AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = m.run AND r.status = 'rolled_back')
             ORDER BY m.pos",
            &[&thread],
        )
        .await
        .read()?;
    Ok(rows.iter().map(message_row).collect())
}
