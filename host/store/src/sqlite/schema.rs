//! The schema and its migrations, applied in order at start-up.
//!
//! The database's `user_version` is the number of migrations applied; its
//! `application_id` marks it as weft's. A migration is never edited once
//! released: changes are new migrations appended to [`MIGRATIONS`].
//! (`rusqlite_migration` does the same job, but its current release is
//! built against rusqlite 0.40 and two bundled SQLite libraries cannot be
//! linked into one binary.)

/// `weft` in ASCII: the `application_id` of weft's stores.
pub const APPLICATION_ID: i32 = 0x7765_6674;

/// Each migration's SQL; migration `n` brings the schema to version `n + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    budget      TEXT,              -- MoneyBudget JSON set by an operator; NULL: unlimited
    updated_ms  INTEGER NOT NULL
);
CREATE TABLE plugins (
    hash        TEXT PRIMARY KEY,  -- SHA-256 of the component, hex
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    contract    TEXT NOT NULL,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    bytes       BLOB NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE graph_versions (
    id          TEXT PRIMARY KEY,  -- hash of the graph text and its plugin hashes
    name        TEXT NOT NULL,
    graph_hash  TEXT NOT NULL,
    file        TEXT NOT NULL,
    source      TEXT NOT NULL,
    plugins     TEXT NOT NULL,     -- {node: {hash, file}} JSON
    created_ms  INTEGER NOT NULL
);
CREATE TABLE threads (
    id            TEXT PRIMARY KEY,
    project       TEXT NOT NULL,
    graph_version TEXT NOT NULL,
    status        TEXT NOT NULL,   -- running, or the last run's final status
    runs          INTEGER NOT NULL,
    frames        INTEGER NOT NULL, -- the next frame's seq
    budget_limit  INTEGER,
    forked_from   TEXT,
    forked_at     INTEGER,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);
CREATE INDEX threads_by_update ON threads(updated_ms);
CREATE INDEX threads_by_parent ON threads(forked_from) WHERE forked_from IS NOT NULL;
CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    thread        TEXT NOT NULL,
    graph_version TEXT NOT NULL,
    status        TEXT NOT NULL,
    frames        INTEGER NOT NULL, -- the next frame within the run
    reply         TEXT,
    started_ms    INTEGER NOT NULL,
    ended_ms      INTEGER
);
CREATE INDEX runs_by_thread ON runs(thread);
CREATE INDEX runs_unfinished ON runs(started_ms) WHERE status = 'running';
CREATE TABLE messages (
    pos           INTEGER PRIMARY KEY, -- storage order
    id            TEXT NOT NULL UNIQUE,
    thread        TEXT NOT NULL,
    run           TEXT NOT NULL,
    to_node       TEXT NOT NULL,
    from_node     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    body          TEXT NOT NULL,
    sent_seq      INTEGER,          -- NULL: from outside the graph
    delivered_seq INTEGER           -- NULL: pending
);
CREATE INDEX messages_pending ON messages(run) WHERE delivered_seq IS NULL;
CREATE INDEX messages_by_thread ON messages(thread);
CREATE TABLE frames (
    thread        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    run           TEXT NOT NULL,
    frame         INTEGER NOT NULL,
    graph_version TEXT NOT NULL,
    wall_time_ms  INTEGER NOT NULL,
    committed_ms  INTEGER NOT NULL,
    PRIMARY KEY (thread, seq)
) WITHOUT ROWID;
CREATE TABLE invocations (
    thread        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    idx           INTEGER NOT NULL,
    node          TEXT NOT NULL,
    project       TEXT NOT NULL,
    plugin_hash   TEXT NOT NULL,
    fuel          INTEGER NOT NULL,
    duration_us   INTEGER NOT NULL,
    outcome       TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    record        TEXT NOT NULL,    -- FrameRecord JSON without the journal
    inbox         TEXT NOT NULL,    -- the messages delivered, JSON
    output        TEXT NOT NULL,    -- RecordedOutput JSON
    PRIMARY KEY (thread, seq, idx)
) WITHOUT ROWID;
CREATE TABLE journal (
    thread        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    idx           INTEGER NOT NULL,
    entry         INTEGER NOT NULL,
    capability    TEXT NOT NULL,
    op            TEXT NOT NULL,
    request       TEXT NOT NULL,
    response      TEXT NOT NULL,
    PRIMARY KEY (thread, seq, idx, entry)
) WITHOUT ROWID;
CREATE TABLE memory (
    thread        TEXT NOT NULL,
    node          TEXT NOT NULL,    -- '' for thread-scoped keys
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (thread, node, key)
) WITHOUT ROWID;
CREATE TABLE usage_events (
    id                INTEGER PRIMARY KEY,
    project           TEXT NOT NULL,
    thread            TEXT NOT NULL,
    run               TEXT NOT NULL,
    frame             INTEGER NOT NULL,
    node              TEXT NOT NULL,
    model             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    estimated         INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    cost              REAL,
    outcome           TEXT NOT NULL,
    at_ms             INTEGER NOT NULL
);
CREATE INDEX usage_by_project_time ON usage_events(project, at_ms);
CREATE TABLE invocation_totals (  -- invocations of pruned threads
    project       TEXT NOT NULL,
    node          TEXT NOT NULL,
    invocations   INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    fuel          INTEGER NOT NULL,
    duration_us   INTEGER NOT NULL,
    PRIMARY KEY (project, node)
) WITHOUT ROWID;
"#,
    // 2: node (agent) lifecycle state set by operators.
    r#"
CREATE TABLE node_states (
    node        TEXT PRIMARY KEY,
    state       TEXT NOT NULL,     -- paused (running nodes have no row)
    updated_ms  INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // 3: agent instances.
    r#"
CREATE TABLE instances (
    id              TEXT PRIMARY KEY,
    project         TEXT NOT NULL,
    name            TEXT NOT NULL,
    plugin          TEXT NOT NULL,
    thread          TEXT NOT NULL,
    status          TEXT NOT NULL,
    tasks_completed INTEGER NOT NULL,
    config          TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    terminated_ms   INTEGER
) WITHOUT ROWID;
CREATE INDEX instances_by_project ON instances(project, status);
"#,
    // 4: host settings (the last usage reset).
    r#"
CREATE TABLE settings (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // 5: pauses per project ('' = every project) instead of per node.
    r#"
CREATE TABLE node_pauses (
    project     TEXT NOT NULL,     -- '' for every project
    node        TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (project, node)
) WITHOUT ROWID;
INSERT INTO node_pauses (project, node, updated_ms)
    SELECT '', node, updated_ms FROM node_states WHERE state = 'paused';
DROP TABLE node_states;
"#,
    // 6: one thread's usage is summed by the store (the ledger keeps no
    // events in memory).
    r#"
CREATE INDEX usage_by_thread ON usage_events(thread);
"#,
    // 7: an agent instance's node comes from a served graph (grants,
    // model, limits, config), kept with it.
    r#"
ALTER TABLE instances ADD COLUMN graph TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN definition TEXT NOT NULL DEFAULT '';
"#,
    // 8: usage over time (every project) and a graph's versions are read
    // by range.
    r#"
CREATE INDEX usage_by_time ON usage_events(at_ms);
CREATE INDEX graph_versions_by_name ON graph_versions(name, created_ms);
"#,
    // 9: interrupts, a node's questions for a person.
    r#"
CREATE TABLE interrupts (
    id            TEXT PRIMARY KEY,   -- <run>/f<frame>/<node>
    thread        TEXT NOT NULL,
    run           TEXT NOT NULL,
    node          TEXT NOT NULL,
    frame         INTEGER NOT NULL,
    question      TEXT NOT NULL,
    answer_schema TEXT NOT NULL,      -- JSON
    created_ms    INTEGER NOT NULL,
    deadline_ms   INTEGER,
    status        TEXT NOT NULL,      -- pending, answered, rejected, timed_out, cancelled
    answer        TEXT,               -- JSON: the value, or the reason
    resolved_ms   INTEGER
);
CREATE INDEX interrupts_by_run ON interrupts(run);
CREATE INDEX interrupts_due ON interrupts(deadline_ms) WHERE status = 'pending';
"#,
    // 10: webhooks and their outbox. A run's status change writes its
    // deliveries in the same transaction (the trigger), so none is lost.
    r#"
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    project    TEXT NOT NULL,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,       -- JSON array of event names
    secret     TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX webhooks_by_project ON webhooks(project);
CREATE TABLE webhook_deliveries (
    pos         INTEGER PRIMARY KEY, -- write order
    id          TEXT NOT NULL UNIQUE, -- <webhook>/<event key>
    webhook     TEXT NOT NULL,
    event       TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL,       -- pending, delivered, failed
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL,
    next_ms     INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_ms) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries(webhook, pos);
CREATE TABLE webhook_attempts (
    delivery    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    status_code INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery, attempt)
);
CREATE TRIGGER runs_webhooks AFTER UPDATE OF status ON runs
WHEN NEW.status <> OLD.status
 AND NEW.status IN ('completed', 'killed', 'frame_limit', 'store_failed', 'interrupted')
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries (id, webhook, event, body, status, created_ms, next_ms)
    SELECT w.id || '/' || NEW.id || '/' || NEW.status || '/' || NEW.frames,
           w.id, e.event,
           json_object(
               'id', w.id || '/' || NEW.id || '/' || NEW.status || '/' || NEW.frames,
               'type', e.event,
               'createdMs', e.now,
               'project', t.project,
               'data', json_object(
                   'threadId', NEW.thread, 'runId', NEW.id, 'status', NEW.status,
                   'frames', NEW.frames, 'reply', NEW.reply, 'graphVersion', NEW.graph_version)),
           'pending', e.now, e.now
    FROM (SELECT CASE NEW.status
                     WHEN 'completed' THEN 'run_finished'
                     WHEN 'killed' THEN 'run_finished'
                     WHEN 'interrupted' THEN 'run_interrupted'
                     ELSE 'run_failed' END AS event,
                 CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS now) e
    JOIN threads t ON t.id = NEW.thread
    JOIN webhooks w ON w.project = t.project
    WHERE EXISTS (SELECT 1 FROM json_each(w.events) WHERE value = e.event);
END;
"#,
    // 11: schedules, and each tick fired (claimed exactly once).
    r#"
CREATE TABLE schedules (
    id         TEXT PRIMARY KEY,
    project    TEXT NOT NULL,
    spec       TEXT NOT NULL,       -- JSON: what, where, when
    next_ms    INTEGER,             -- NULL: will not fire again
    paused     INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    fires      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX schedules_due ON schedules(next_ms) WHERE paused = 0;
CREATE TABLE schedule_fires (
    schedule TEXT NOT NULL,
    tick_ms  INTEGER NOT NULL,
    fired_ms INTEGER NOT NULL,
    thread   TEXT,
    run      TEXT,
    error    TEXT,
    PRIMARY KEY (schedule, tick_ms)
);
"#,
    // 12: double-texting: runs `queued` behind the run in flight (found
    // at start-up), and the statuses of runs a newer message stopped
    // (`preempted`, `rolled_back`) end with `run_finished` webhooks.
    r#"
CREATE INDEX runs_queued ON runs(started_ms) WHERE status = 'queued';
DROP TRIGGER runs_webhooks;
CREATE TRIGGER runs_webhooks AFTER UPDATE OF status ON runs
WHEN NEW.status <> OLD.status
 AND NEW.status IN ('completed', 'killed', 'preempted', 'rolled_back', 'frame_limit', 'store_failed', 'interrupted')
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries (id, webhook, event, body, status, created_ms, next_ms)
    SELECT w.id || '/' || NEW.id || '/' || NEW.status || '/' || NEW.frames,
           w.id, e.event,
           json_object(
               'id', w.id || '/' || NEW.id || '/' || NEW.status || '/' || NEW.frames,
               'type', e.event,
               'createdMs', e.now,
               'project', t.project,
               'data', json_object(
                   'threadId', NEW.thread, 'runId', NEW.id, 'status', NEW.status,
                   'frames', NEW.frames, 'reply', NEW.reply, 'graphVersion', NEW.graph_version)),
           'pending', e.now, e.now
    FROM (SELECT CASE NEW.status
                     WHEN 'completed' THEN 'run_finished'
                     WHEN 'killed' THEN 'run_finished'
                     WHEN 'preempted' THEN 'run_finished'
                     WHEN 'rolled_back' THEN 'run_finished'
                     WHEN 'interrupted' THEN 'run_interrupted'
                     ELSE 'run_failed' END AS event,
                 CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS now) e
    JOIN threads t ON t.id = NEW.thread
    JOIN webhooks w ON w.project = t.project
    WHERE EXISTS (SELECT 1 FROM json_each(w.events) WHERE value = e.event);
END;
"#,
    // 13: the projects' `store` state (contract 0.3.0's key/value
    // capability): keys in namespaces, per project.
    r#"
CREATE TABLE kv (
    project    TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (project, namespace, key)
);
"#,
    // 14: no index of pending messages by run. Each message entered it
    // when sent and left it when delivered, two more pages written per
    // message at a random place (run ids are spread like thread ids);
    // the pending messages of a run are read only when a run is resumed
    // after a restart, through the thread's messages instead.
    r#"
DROP INDEX messages_pending;
"#,
    // 15: frames and invocations in storage order (rowid tables). Keyed
    // by thread, a frame's rows went into the b-trees at their thread's
    // place, a page each with many threads committing at once; an index
    // b-tree keeps at most a quarter of a 1 KiB page (231 bytes) of a row
    // in the leaf, so an invocation of about a kilobyte also took an
    // overflow page, and leaves holding a few rows split every few
    // inserts, each split rewriting three or four pages. Appended, the
    // rows of a batch fill shared pages. Frames are found by thread
    // through `frames_by_thread`, a small entry per frame; a frame's
    // invocations are the `inv_count` rows from `inv_first` on (written
    // together by the frame's commit), so they need no index of their own.
    r#"
CREATE TABLE invocations_by_pos (
    pos           INTEGER PRIMARY KEY, -- storage order
    thread        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    idx           INTEGER NOT NULL,
    node          TEXT NOT NULL,
    project       TEXT NOT NULL,
    plugin_hash   TEXT NOT NULL,
    fuel          INTEGER NOT NULL,
    duration_us   INTEGER NOT NULL,
    outcome       TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    record        TEXT NOT NULL,    -- FrameRecord JSON without the journal
    inbox         TEXT NOT NULL,    -- the messages delivered, JSON
    output        TEXT NOT NULL     -- RecordedOutput JSON
);
INSERT INTO invocations_by_pos
    (thread, seq, idx, node, project, plugin_hash, fuel, duration_us, outcome, at_ms, record, inbox, output)
    SELECT thread, seq, idx, node, project, plugin_hash, fuel, duration_us, outcome, at_ms, record, inbox, output
    FROM invocations ORDER BY thread, seq, idx;
CREATE TABLE frames_by_pos (
    pos           INTEGER PRIMARY KEY, -- storage order
    thread        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    run           TEXT NOT NULL,
    frame         INTEGER NOT NULL,
    graph_version TEXT NOT NULL,
    wall_time_ms  INTEGER NOT NULL,
    committed_ms  INTEGER NOT NULL,
    inv_first     INTEGER NOT NULL, -- the pos of its first invocation
    inv_count     INTEGER NOT NULL  -- its invocations, at inv_first and on
);
INSERT INTO frames_by_pos
    (thread, seq, run, frame, graph_version, wall_time_ms, committed_ms, inv_first, inv_count)
    SELECT f.thread, f.seq, f.run, f.frame, f.graph_version, f.wall_time_ms, f.committed_ms,
           coalesce(i.first, 0), coalesce(i.n, 0)
    FROM frames f LEFT JOIN (
        SELECT thread, seq, min(pos) AS first, count(*) AS n
        FROM invocations_by_pos GROUP BY thread, seq
    ) i ON i.thread = f.thread AND i.seq = f.seq
    ORDER BY f.thread, f.seq;
DROP TABLE frames;
DROP TABLE invocations;
ALTER TABLE frames_by_pos RENAME TO frames;
ALTER TABLE invocations_by_pos RENAME TO invocations;
CREATE UNIQUE INDEX frames_by_thread ON frames(thread, seq);
"#,
    // 16: a thread's messages are found through the ids' index: the
    // engine names a message after its run and a run after its thread
    // (`{thread}.run-{n}/…`), so they share the thread's id and a dot as a
    // prefix. `messages_by_thread` keeps only the messages named
    // otherwise, and no longer takes a page write at the thread's place
    // for every message sent (`messages::thread_messages!` reads both).
    r#"
DROP INDEX messages_by_thread;
CREATE INDEX messages_by_thread ON messages(thread)
    WHERE substr(id, 1, length(thread) + 1) <> thread || '.';
"#,
];

/// The schema version this weft writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}
