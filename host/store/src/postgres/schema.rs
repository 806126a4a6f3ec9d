//! The PostgreSQL schema and its migrations, applied in order at start-up.
//!
//! The table `weft_meta` names weft as the database's owner and holds the
//! schema version (the number of migrations applied). A migration is never
//! edited once released: changes are new migrations appended to
//! [`MIGRATIONS`]. Integers are `BIGINT`, JSON columns `TEXT` (as on
//! SQLite, so that both backends store the same encoding).

/// The owner recorded in `weft_meta`.
pub const APPLICATION: &str = "weft";

/// Each migration's SQL; migration `n` brings the schema to version `n + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema (SQLite's schema version 7, on PostgreSQL).
    r#"
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    budget      TEXT,
    updated_ms  BIGINT NOT NULL
);
CREATE TABLE plugins (
    hash        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    contract    TEXT NOT NULL,
    path        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    bytes       BYTEA NOT NULL,
    created_ms  BIGINT NOT NULL
);
CREATE TABLE graph_versions (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    graph_hash  TEXT NOT NULL,
    file        TEXT NOT NULL,
    source      TEXT NOT NULL,
    plugins     TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);
CREATE TABLE threads (
    id            TEXT PRIMARY KEY,
    project       TEXT NOT NULL,
    graph_version TEXT NOT NULL,
    status        TEXT NOT NULL,
    runs          BIGINT NOT NULL,
    frames        BIGINT NOT NULL,
    budget_limit  BIGINT,
    forked_from   TEXT,
    forked_at     BIGINT,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
CREATE INDEX threads_by_update ON threads(updated_ms);
CREATE INDEX threads_by_parent ON threads(forked_from) WHERE forked_from IS NOT NULL;
CREATE TABLE runs (
    pos           BIGINT GENERATED ALWAYS AS IDENTITY,
    id            TEXT PRIMARY KEY,
    thread        TEXT NOT NULL,
    graph_version TEXT NOT NULL,
    status        TEXT NOT NULL,
    frames        BIGINT NOT NULL,
    reply         TEXT,
    started_ms    BIGINT NOT NULL,
    ended_ms      BIGINT
);
CREATE INDEX runs_by_thread ON runs(thread);
CREATE INDEX runs_unfinished ON runs(started_ms) WHERE status = 'running';
CREATE TABLE messages (
    pos           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    thread        TEXT NOT NULL,
    run           TEXT NOT NULL,
    to_node       TEXT NOT NULL,
    from_node     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    body          TEXT NOT NULL,
    sent_seq      BIGINT,
    delivered_seq BIGINT
);
CREATE INDEX messages_pending ON messages(run) WHERE delivered_seq IS NULL;
CREATE INDEX messages_by_thread ON messages(thread);
CREATE TABLE frames (
    thread        TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    run           TEXT NOT NULL,
    frame         BIGINT NOT NULL,
    graph_version TEXT NOT NULL,
    wall_time_ms  BIGINT NOT NULL,
    committed_ms  BIGINT NOT NULL,
    PRIMARY KEY (thread, seq)
);
CREATE INDEX frames_by_run ON frames(run);
CREATE TABLE invocations (
    thread        TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    idx           BIGINT NOT NULL,
    node          TEXT NOT NULL,
    project       TEXT NOT NULL,
    plugin_hash   TEXT NOT NULL,
    fuel          BIGINT NOT NULL,
    duration_us   BIGINT NOT NULL,
    outcome       TEXT NOT NULL,
    at_ms         BIGINT NOT NULL,
    record        TEXT NOT NULL,
    inbox         TEXT NOT NULL,
    output        TEXT NOT NULL,
    PRIMARY KEY (thread, seq, idx)
);
CREATE INDEX invocations_by_project_time ON invocations(at_ms);
CREATE TABLE journal (
    thread        TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    idx           BIGINT NOT NULL,
    entry         BIGINT NOT NULL,
    capability    TEXT NOT NULL,
    op            TEXT NOT NULL,
    request       TEXT NOT NULL,
    response      TEXT NOT NULL,
    PRIMARY KEY (thread, seq, idx, entry)
);
CREATE TABLE memory (
    thread        TEXT NOT NULL,
    node          TEXT NOT NULL,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (thread, node, key)
);
CREATE TABLE usage_events (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project           TEXT NOT NULL,
    thread            TEXT NOT NULL,
    run               TEXT NOT NULL,
    frame             BIGINT NOT NULL,
    node              TEXT NOT NULL,
    model             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    estimated         BOOLEAN NOT NULL,
    latency_ms        BIGINT NOT NULL,
    cost              DOUBLE PRECISION,
    outcome           TEXT NOT NULL,
    at_ms             BIGINT NOT NULL
);
CREATE INDEX usage_by_project_time ON usage_events(project, at_ms);
CREATE INDEX usage_by_thread ON usage_events(thread);
CREATE TABLE invocation_totals (
    project       TEXT NOT NULL,
    node          TEXT NOT NULL,
    invocations   BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    fuel          BIGINT NOT NULL,
    duration_us   BIGINT NOT NULL,
    PRIMARY KEY (project, node)
);
CREATE TABLE node_pauses (
    project     TEXT NOT NULL,
    node        TEXT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (project, node)
);
CREATE TABLE instances (
    id              TEXT PRIMARY KEY,
    project         TEXT NOT NULL,
    name            TEXT NOT NULL,
    plugin          TEXT NOT NULL,
    thread          TEXT NOT NULL,
    status          TEXT NOT NULL,
    tasks_completed BIGINT NOT NULL,
    config          TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    terminated_ms   BIGINT,
    graph           TEXT NOT NULL DEFAULT '',
    definition      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX instances_by_project ON instances(project, status);
CREATE TABLE settings (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
-- The last batch each writer committed: after a connection lost during
-- COMMIT, the writer learns from it whether the batch committed.
CREATE TABLE writer_batches (
    writer  TEXT PRIMARY KEY,
    batch   BIGINT NOT NULL,
    at_ms   BIGINT NOT NULL
);
"#,
    // 2: leases with fencing tokens, for several hosts sharing the store.
    r#"
CREATE SEQUENCE lease_tokens;
CREATE TABLE leases (
    run         TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    token       BIGINT NOT NULL,   -- from lease_tokens: a later claim's is greater
    expires_ms  BIGINT NOT NULL,
    renewals    BIGINT NOT NULL DEFAULT 0
);
"#,
    // 3: usage over time (every project) and a graph's versions are read
    // by range.
    r#"
CREATE INDEX usage_by_time ON usage_events(at_ms);
CREATE INDEX graph_versions_by_name ON graph_versions(name, created_ms);
"#,
    // 4: interrupts, a node's questions for a person.
    r#"
CREATE TABLE interrupts (
    id            TEXT PRIMARY KEY,   -- <run>/f<frame>/<node>
    thread        TEXT NOT NULL,
    run           TEXT NOT NULL,
    node          TEXT NOT NULL,
    frame         BIGINT NOT NULL,
    question      TEXT NOT NULL,
    answer_schema TEXT NOT NULL,      -- JSON
    created_ms    BIGINT NOT NULL,
    deadline_ms   BIGINT,
    status        TEXT NOT NULL,      -- pending, answered, rejected, timed_out, cancelled
    answer        TEXT,               -- JSON: the value, or the reason
    resolved_ms   BIGINT
);
CREATE INDEX interrupts_by_run ON interrupts(run);
CREATE INDEX interrupts_due ON interrupts(deadline_ms) WHERE status = 'pending';
"#,
    // 5: webhooks and their outbox. A run's status change writes its
    // deliveries in the same transaction (the trigger), so none is lost.
    r#"
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    project    TEXT NOT NULL,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,       -- JSON array of event names
    secret     TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX webhooks_by_project ON webhooks(project);
CREATE TABLE webhook_deliveries (
    pos         BIGSERIAL PRIMARY KEY, -- write order
    id          TEXT NOT NULL UNIQUE,  -- <webhook>/<event key>
    webhook     TEXT NOT NULL,
    event       TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL,         -- pending, delivered, failed
    attempts    BIGINT NOT NULL DEFAULT 0,
    created_ms  BIGINT NOT NULL,
    next_ms     BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_ms) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries(webhook, pos);
CREATE TABLE webhook_attempts (
    delivery    TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    status_code BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery, attempt)
);
CREATE FUNCTION runs_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ev  TEXT := CASE NEW.status
                    WHEN 'completed' THEN 'run_finished'
                    WHEN 'killed' THEN 'run_finished'
                    WHEN 'interrupted' THEN 'run_interrupted'
                    ELSE 'run_failed' END;
    now BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
BEGIN
    INSERT INTO webhook_deliveries (id, webhook, event, body, status, created_ms, next_ms)
    SELECT w.id || '/' || NEW.id || '/' || NEW.status || '/' || NEW.frames,
           w.id, ev,
           json_build_object(
               'id', w.id || '/' || NEW.id || '/' || NEW.status || '/' || NEW.frames,
               'type', ev,
               'createdMs', now,
               'project', t.project,
               'data', json_build_object(
                   'threadId', NEW.thread, 'runId', NEW.id, 'status', NEW.status,
                   'frames', NEW.frames, 'reply', NEW.reply, 'graphVersion', NEW.graph_version))::TEXT,
           'pending', now, now
    FROM threads t JOIN webhooks w ON w.project = t.project
    WHERE t.id = NEW.thread AND (w.events::jsonb) ? ev
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE TRIGGER runs_webhooks AFTER UPDATE OF status ON runs
FOR EACH ROW
WHEN (NEW.status IS DISTINCT FROM OLD.status
      AND NEW.status IN ('completed', 'killed', 'frame_limit', 'store_failed', 'interrupted'))
EXECUTE FUNCTION runs_webhooks();
"#,
    // 6: schedules, and each tick fired (claimed exactly once).
    r#"
CREATE TABLE schedules (
    id         TEXT PRIMARY KEY,
    project    TEXT NOT NULL,
    spec       TEXT NOT NULL,       -- JSON: what, where, when
    next_ms    BIGINT,              -- NULL: will not fire again
    paused     BOOLEAN NOT NULL DEFAULT FALSE,
    created_ms BIGINT NOT NULL,
    fires      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX schedules_due ON schedules(next_ms) WHERE NOT paused;
CREATE TABLE schedule_fires (
    schedule TEXT NOT NULL,
    tick_ms  BIGINT NOT NULL,
    fired_ms BIGINT NOT NULL,
    thread   TEXT,
    run      TEXT,
    error    TEXT,
    PRIMARY KEY (schedule, tick_ms)
);
"#,
    // 7: double-texting: runs `queued` behind the run in flight (found
    // at start-up), and the statuses of runs a newer message stopped
    // (`preempted`, `rolled_back`) end with `run_finished` webhooks.
    r#"
CREATE INDEX runs_queued ON runs(started_ms) WHERE status = 'queued';
CREATE OR REPLACE FUNCTION runs_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ev  TEXT := CASE NEW.status
                    WHEN 'completed' THEN 'run_finished'
                    WHEN 'killed' THEN 'run_finished'
                    WHEN 'preempted' THEN 'run_finished'
                    WHEN 'rolled_back' THEN 'run_finished'
                    WHEN 'interrupted' THEN 'run_interrupted'
                    ELSE 'run_failed' END;
    now BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
BEGIN
    INSERT INTO webhook_deliveries (id, webhook, event, body, status, created_ms, next_ms)
    SELECT w.id || '/' || NEW.id || '/' || NEW.status || '/' || NEW.frames,
           w.id, ev,
           json_build_object(
               'id', w.id || '/' || NEW.id || '/' || NEW.status || '/' || NEW.frames,
               'type', ev,
               'createdMs', now,
               'project', t.project,
               'data', json_build_object(
                   'threadId', NEW.thread, 'runId', NEW.id, 'status', NEW.status,
                   'frames', NEW.frames, 'reply', NEW.reply, 'graphVersion', NEW.graph_version))::TEXT,
           'pending', now, now
    FROM threads t JOIN webhooks w ON w.project = t.project
    WHERE t.id = NEW.thread AND (w.events::jsonb) ? ev
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END;
$$;
DROP TRIGGER runs_webhooks ON runs;
CREATE TRIGGER runs_webhooks AFTER UPDATE OF status ON runs
FOR EACH ROW
WHEN (NEW.status IS DISTINCT FROM OLD.status
      AND NEW.status IN ('completed', 'killed', 'preempted', 'rolled_back', 'frame_limit', 'store_failed', 'interrupted'))
EXECUTE FUNCTION runs_webhooks();
"#,
    // 8: the projects' `store` state (contract 0.3.0's key/value
    // capability): keys in namespaces, per project, compared bytewise.
    r#"
CREATE TABLE kv (
    project    TEXT NOT NULL,
    namespace  TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    value      TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (project, namespace, key)
);
"#,
    // 9: the hosts sharing the store (their heartbeats), and projects'
    // money windows with the holds of the calls in flight on every host,
    // so that hosts never grant more than a money budget between them.
    r#"
CREATE TABLE hosts (
    id             TEXT PRIMARY KEY,
    address        TEXT NOT NULL,
    version        TEXT NOT NULL,
    started_ms     BIGINT NOT NULL,
    last_seen_ms   BIGINT NOT NULL,
    runs_held      BIGINT NOT NULL,
    lease_renewals BIGINT NOT NULL
);
CREATE TABLE money_windows (
    project      TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    spent        BIGINT NOT NULL,  -- billionths of the currency
    warned       INTEGER NOT NULL, -- bit i: WARNING_THRESHOLDS[i] reported
    PRIMARY KEY (project, window_start)
);
CREATE TABLE money_holds (
    id           TEXT PRIMARY KEY, -- the call
    project      TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    host         TEXT NOT NULL,
    amount       BIGINT NOT NULL,
    created_ms   BIGINT NOT NULL
);
CREATE INDEX money_holds_by_window ON money_holds(project, window_start);
"#,
];

/// The schema version this weft writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}
