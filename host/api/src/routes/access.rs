//! What a request may reach: the threads a key sees, the store (a host
//! may run without one) and the active graph.

use std::sync::Arc;

use weft_engine::store::StoredThread;
use weft_engine::{DEFAULT_PROJECT, LoadedGraph, Store};

use crate::Api;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};

/// The thread, if it exists and the key sees its project (404 otherwise,
/// never 403: a key learns nothing about other projects).
pub(crate) async fn visible(api: &Api, who: &Principal, id: &str) -> ApiResult<StoredThread> {
    let stored = match api.engine.store() {
        Some(store) => store.thread(id).await?,
        None => None,
    };
    let not_found = || ApiError::not_found(format!("no thread `{id}`"));
    match stored {
        Some(t) if who.sees(&t.project) => Ok(t),
        Some(_) => Err(not_found()),
        None => match api.engine.thread_project(id) {
            Some(project) if who.sees(&project) => Ok(StoredThread {
                id: id.to_owned(),
                project,
                graph_version: api
                    .engine
                    .thread_graph(id)
                    .map(|g| g.version_id().to_owned())
                    .unwrap_or_default(),
                status: if api.engine.active_run(id).is_some() {
                    "running".into()
                } else {
                    "idle".into()
                },
                runs: 0,
                frames: 0,
                budget_limit: None,
                forked_from: None,
                created_ms: 0,
                updated_ms: 0,
            }),
            _ => Err(not_found()),
        },
    }
}

/// Refuses a thread id of another project (404); unknown ids are fine (a
/// message to a new id creates the thread).
pub(crate) async fn may_use(api: &Api, who: &Principal, id: &str) -> ApiResult<()> {
    let existing = match api.engine.store() {
        Some(store) => store.thread(id).await?.map(|t| t.project),
        None => None,
    }
    .or_else(|| api.engine.thread_project(id));
    if existing.is_some_and(|p| !who.sees(&p)) {
        return Err(ApiError::not_found(format!("no thread `{id}`")));
    }
    Ok(())
}

/// The store, or 503 on a host without one.
pub(crate) fn store(api: &Api) -> ApiResult<&Arc<dyn Store>> {
    api.engine.store().ok_or_else(|| {
        ApiError::unavailable(
            "store_unavailable",
            "this host runs without a store (--ephemeral): history is not kept",
        )
    })
}

/// The active graph, or 503.
pub(crate) fn active_graph(api: &Api) -> ApiResult<Arc<LoadedGraph>> {
    api.catalog
        .active()
        .ok_or_else(|| ApiError::unavailable("no_graph", "no graph is active"))
}

/// The project a new thing (a run's thread, a webhook, a schedule) goes
/// to: a key limited to a project gets its own (naming another is 400),
/// a key of the whole host the one it names or `default`.
pub(crate) fn project_for(who: &Principal, asked: Option<String>) -> ApiResult<String> {
    let project = match (who.project(), asked) {
        (Some(mine), Some(asked)) if mine != asked => {
            return Err(ApiError::field(
                "project",
                "this key is limited to another project",
            ));
        }
        (Some(mine), _) => mine.to_owned(),
        (None, Some(asked)) => asked,
        (None, None) => DEFAULT_PROJECT.to_owned(),
    };
    if project.is_empty() || project.chars().count() > 64 {
        return Err(ApiError::field(
            "project",
            "a project name has 1 to 64 characters",
        ));
    }
    Ok(project)
}

/// Which project a list shows: `Some(None)` every project's (a key of
/// the whole host asking for none), `Some(Some(p))` one project's, and
/// `None` nothing (a project's key asking for another).
pub(crate) fn listed_project(who: &Principal, asked: Option<String>) -> Option<Option<String>> {
    match (who.project(), asked) {
        (Some(mine), Some(asked)) if mine != asked => None,
        (Some(mine), _) => Some(Some(mine.to_owned())),
        (None, asked) => Some(asked),
    }
}

/// `bytes` random bytes as hex, for a new id or secret (500 without
/// randomness).
pub(crate) fn random_hex(bytes: usize) -> ApiResult<String> {
    crate::auth::random_hex(bytes)
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", e))
}

/// A field that is there, even as `null`, is `Some` (serde's
/// `deserialize_with` for an optional JSON value).
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    <serde_json::Value as serde::Deserialize>::deserialize(d).map(Some)
}
