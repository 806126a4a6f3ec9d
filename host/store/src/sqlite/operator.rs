//! What operators set: project budgets, node pauses and agent instances.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};
use weft_engine::MoneyBudget;
use weft_engine::store::{NodePause, StoreResult, StoredInstance};

use super::connection::error;
use crate::codec::{int, json, now_ms, parse};

pub(super) fn project_budgets(
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

pub(super) fn set_project_budget(
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

pub(super) fn instances(c: &Connection) -> StoreResult<Vec<StoredInstance>> {
    let mut s = c
        .prepare(
            "SELECT id, project, name, plugin, thread, status, tasks_completed, config,
                    created_ms, updated_ms, terminated_ms, graph, definition
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
            graph: r.get(11)?,
            definition: r.get(12)?,
        })
    })
    .and_then(Iterator::collect)
    .map_err(error)
}

pub(super) fn put_instance(c: &Connection, i: &StoredInstance) -> StoreResult<()> {
    c.execute(
        "INSERT INTO instances (id, project, name, plugin, thread, status, tasks_completed, config,
             created_ms, updated_ms, terminated_ms, graph, definition)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
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
            i.terminated_ms.map(int),
            i.graph,
            i.definition
        ],
    )
    .map_err(error)?;
    Ok(())
}

pub(super) fn paused_nodes(c: &Connection) -> StoreResult<Vec<NodePause>> {
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

pub(super) fn set_node_paused(c: &Connection, pause: &NodePause, paused: bool) -> StoreResult<()> {
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
