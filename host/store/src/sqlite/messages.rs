//! Messages: stored when sent or received from outside, marked when
//! delivered, listed by thread or by node.

use rusqlite::{Connection, OptionalExtension, params};
use weft_engine::StoreError;
use weft_engine::store::{Page, StoreResult, StoredMessage};
use weft_runtime::Message;

use super::connection::error;
use crate::codec::int;

/// A query of the positions of the messages of the thread whose id is the
/// SQL expression `$thread`, for `pos IN (…)`, with `$from` (e.g.
/// `"doomed d CROSS JOIN "`) joined before `messages m`. Those whose id
/// starts with the thread's id and a dot (every message the engine names:
/// `{thread}.run-{n}/…`) are found through the ids' index by that prefix;
/// `messages_by_thread` holds only the others (its `WHERE` is the second
/// part's last term word for word, so that SQLite uses it). The first
/// part's `+m.thread` keeps SQLite from looking messages up by thread
/// there (with no statistics, SQLite 3.40 built an automatic index of
/// every message's thread for the join with the threads being pruned).
macro_rules! thread_messages {
    ($thread:literal, $from:literal) => {
        concat!(
            "SELECT m.pos FROM ",
            $from,
            "messages m WHERE m.id >= ",
            $thread,
            " || '.' AND m.id < ",
            $thread,
            " || '/' AND +m.thread = ",
            $thread,
            " UNION ALL SELECT m.pos FROM ",
            $from,
            "messages m WHERE m.thread = ",
            $thread,
            " AND substr(m.id, 1, length(m.thread) + 1) <> m.thread || '.'"
        )
    };
}
pub(super) use thread_messages;

pub(super) fn insert_message(
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

pub(super) fn message_exists(c: &Connection, id: &str) -> StoreResult<bool> {
    c.query_row("SELECT 1 FROM messages WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(error)
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

pub(super) fn node_messages(
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

pub(super) fn messages(c: &Connection, thread: &str) -> StoreResult<Vec<StoredMessage>> {
    let mut s = c
        .prepare_cached(
            concat!(
                "SELECT m.id, m.thread, m.run, m.to_node, m.from_node, m.kind, m.body, m.sent_seq, m.delivered_seq
                 FROM messages m WHERE m.pos IN (",
                thread_messages!("?1", ""),
                ") AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = m.run AND r.status = 'rolled_back')
                 ORDER BY m.pos"
            ),
        )
        .map_err(error)?;
    s.query_map([thread], message_row)
        .and_then(Iterator::collect)
        .map_err(error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The plan of `sql` (with `?1` bound), one line per step.
    fn plan(c: &Connection, sql: &str) -> String {
        let mut s = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        s.query_map(["thread-1"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join("\n")
    }

    #[test]
    fn a_threads_messages_are_read_through_indexes_only() {
        let c = Connection::open_in_memory().unwrap();
        for migration in crate::schema::MIGRATIONS {
            c.execute_batch(migration).unwrap();
        }
        let plan = plan(
            &c,
            concat!(
                "SELECT id FROM messages WHERE pos IN (",
                thread_messages!("?1", ""),
                ") ORDER BY pos"
            ),
        );
        assert!(
            plan.contains("sqlite_autoindex_messages_1 (id>? AND id<?)"),
            "{plan}"
        );
        assert!(plan.contains("messages_by_thread (thread=?)"), "{plan}");
        assert!(!plan.contains("SCAN"), "{plan}");
    }
}
