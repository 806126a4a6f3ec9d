//! The writes outside runs, in the writer's transaction: graph versions
//! and plugin blobs, thread and project budgets, agent instances, node
//! pauses and the usage reset mark.

use tokio_postgres::Transaction;
use weft_engine::MoneyBudget;
use weft_engine::StoreError;
use weft_engine::store::{GraphVersion, NodePause, PluginBlob, StoredInstance};

use super::error::PgResult;
use crate::codec::{int, json, now_ms};

pub(super) async fn put_graph(c: &Transaction<'_>, v: &GraphVersion) -> PgResult<()> {
    let plugins = json(&v.plugins)?;
    c.execute(
        "INSERT INTO graph_versions (id, name, graph_hash, file, source, plugins, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        &[
            &v.id,
            &v.name,
            &v.graph_hash,
            &v.file,
            &v.source,
            &plugins,
            &now_ms(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn put_plugin(c: &Transaction<'_>, p: &PluginBlob) -> PgResult<()> {
    c.execute(
        "INSERT INTO plugins (hash, name, version, contract, path, size, bytes, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (hash) DO NOTHING",
        &[
            &p.hash,
            &p.name,
            &p.version,
            &p.contract,
            &p.path,
            &(p.bytes.len() as i64),
            &p.bytes,
            &now_ms(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn set_thread_budget(
    c: &Transaction<'_>,
    thread: &str,
    limit: u64,
) -> PgResult<()> {
    let n = c
        .execute(
            "UPDATE threads SET budget_limit = $2, updated_ms = $3 WHERE id = $1",
            &[&thread, &int(limit), &now_ms()],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("no thread `{thread}`")).into());
    }
    Ok(())
}

pub(super) async fn set_project_budget(
    c: &Transaction<'_>,
    project: &str,
    budget: Option<&MoneyBudget>,
) -> PgResult<()> {
    let budget = budget.map(json).transpose()?;
    c.execute(
        "INSERT INTO projects (id, budget, updated_ms) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET budget = excluded.budget, updated_ms = excluded.updated_ms",
        &[&project, &budget, &now_ms()],
    )
    .await?;
    Ok(())
}

pub(super) async fn put_instance(c: &Transaction<'_>, i: &StoredInstance) -> PgResult<()> {
    c.execute(
        "INSERT INTO instances (id, project, name, plugin, thread, status, tasks_completed, config,
             created_ms, updated_ms, terminated_ms, graph, definition)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status,
             tasks_completed = excluded.tasks_completed, config = excluded.config,
             updated_ms = excluded.updated_ms, terminated_ms = excluded.terminated_ms",
        &[
            &i.id,
            &i.project,
            &i.name,
            &i.plugin,
            &i.thread,
            &i.status,
            &int(i.tasks_completed),
            &i.config,
            &int(i.created_ms),
            &int(i.updated_ms),
            &i.terminated_ms.map(int),
            &i.graph,
            &i.definition,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn set_node_paused(
    c: &Transaction<'_>,
    pause: &NodePause,
    paused: bool,
) -> PgResult<()> {
    let project = pause.project.as_deref().unwrap_or_default();
    if paused {
        c.execute(
            "INSERT INTO node_pauses (project, node, updated_ms) VALUES ($1, $2, $3)
             ON CONFLICT (project, node) DO UPDATE SET updated_ms = excluded.updated_ms",
            &[&project, &pause.node, &now_ms()],
        )
        .await?;
    } else {
        c.execute(
            "DELETE FROM node_pauses WHERE project = $1 AND node = $2",
            &[&project, &pause.node],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn reset_usage(c: &Transaction<'_>, at_ms: u64) -> PgResult<()> {
    c.execute(
        "INSERT INTO settings (key, value) VALUES ('usage_reset_ms', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&at_ms.to_string()],
    )
    .await?;
    Ok(())
}
