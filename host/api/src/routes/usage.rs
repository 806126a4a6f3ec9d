//! Usage and budgets: totals (per node, model and project), thread token
//! budgets, project money budgets, and starting the totals over.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use weft_engine::store::{SeriesKey, SeriesQuery};
use weft_engine::{BudgetStatus, Ledger, MoneyBudget, ProjectBudgetStatus, Window};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::access::visible;

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/usage", get(usage))
        .route("/api/v1/usage/threads", get(usage_threads))
        .route("/api/v1/usage/threads/{id}/budget", put(set_budget))
        .route("/api/v1/usage/nodes/{node}", get(usage_node))
        .route("/api/v1/usage/models/{model}", get(usage_model))
        .route("/api/v1/usage/reset", post(reset_usage))
        .route("/api/v1/usage/series", get(usage_series))
        .route(
            "/api/v1/usage/projects/{project}/budget",
            get(project_budget).put(set_project_budget),
        )
}

/// A thread's token budget.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetView {
    /// Thread.
    pub thread_id: String,
    /// Project.
    pub project: String,
    /// Token limit.
    pub limit: u64,
    /// Tokens used.
    pub used: u64,
    /// Reserved by calls in flight.
    pub reserved: u64,
    /// Used in percent of the limit.
    pub percent_used: f64,
    /// A call was refused since the last raise.
    pub exhausted: bool,
}

impl BudgetView {
    fn new(thread_id: String, project: String, s: BudgetStatus) -> Self {
        Self {
            thread_id,
            project,
            limit: s.limit,
            used: s.used,
            reserved: s.reserved,
            percent_used: s.percent_used,
            exhausted: s.exhausted,
        }
    }
}

/// A budget change: exactly one of `raise` and `limit`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetChange {
    /// Tokens to add.
    #[serde(default, deserialize_with = "tokens")]
    pub raise: Option<u64>,
    /// The new limit.
    #[serde(default, deserialize_with = "tokens")]
    pub limit: Option<u64>,
}

/// A token count: a whole number from 0 to 2^64−1, written as JSON
/// writes it (`5`, `5.0` and `5e3` are all whole numbers).
fn tokens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(n) = n.as_u64() {
        return Ok(Some(n));
    }
    match n.as_f64() {
        // Exactly representable whole floats up to 2^64 (exclusive).
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0 => {
            Ok(Some(f as u64))
        }
        _ => Err(D::Error::custom(format!(
            "{n} is not a token count (a whole number from 0 to 2^64-1)"
        ))),
    }
}

/// A project's money budget: its limit, window and spend in the window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectBudgetView {
    /// The project.
    pub project: String,
    /// Money allowed per window (`null`: unlimited; the spend is still kept).
    pub limit: Option<f64>,
    /// `daily` (a UTC day), `monthly` (a UTC month) or `none` (all time).
    #[schema(value_type = String, pattern = "^(daily|monthly|none)$")]
    pub window: Window,
    /// Spent in the current window (priced calls only).
    pub spent: f64,
    /// Reserved by calls in flight.
    pub reserved: f64,
    /// Start of the current window, Unix milliseconds (`null`: no window).
    pub window_start_ms: Option<u64>,
    /// End of the current window, Unix milliseconds (`null`: no window).
    pub window_end_ms: Option<u64>,
    /// `spent` in percent of `limit` (0 when unlimited).
    pub percent_used: f64,
    /// A call was refused and neither a raise nor a new window has come since.
    pub exhausted: bool,
    /// Calls in this window whose model has no price.
    pub unenforced_calls: u64,
}

impl From<ProjectBudgetStatus> for ProjectBudgetView {
    fn from(s: ProjectBudgetStatus) -> Self {
        Self {
            project: s.project,
            limit: s.limit,
            window: s.window,
            spent: s.spent,
            reserved: s.reserved,
            window_start_ms: s.window_start_ms,
            window_end_ms: s.window_end_ms,
            percent_used: s.percent_used,
            exhausted: s.exhausted,
            unenforced_calls: s.unenforced_calls,
        }
    }
}

/// A change of a project's money budget: `raise` adds to the limit;
/// `limit` (with `window`) replaces it; `unlimited: true` removes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectBudgetChange {
    /// Money to add to the limit.
    pub raise: Option<f64>,
    /// The new limit.
    pub limit: Option<f64>,
    /// With `limit`: daily, monthly or none (default none).
    pub window: Option<String>,
    /// Remove the limit.
    pub unlimited: Option<bool>,
}

/// A budget window as a client names it (400 otherwise).
fn window(name: &str) -> ApiResult<Window> {
    match name {
        "daily" => Ok(Window::Daily),
        "monthly" => Ok(Window::Monthly),
        "none" => Ok(Window::None),
        other => Err(ApiError::field(
            "window",
            format!("unknown window `{other}`: daily, monthly or none"),
        )),
    }
}

/// Usage: totals, per node, per model, per project (a key limited to a
/// project sees its project's totals only).
#[utoipa::path(get, path = "/api/v1/usage", tag = "usage", security(("key" = [])),
    responses((status = 200, body = Object)))]
pub(crate) async fn usage(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> Json<Value> {
    let breakdown = api.engine.ledger().breakdown();
    match who.project() {
        Some(p) => Json(json!({
            "project": p,
            "totals": breakdown.by_project.get(p).cloned().unwrap_or_default(),
        })),
        None => Json(json!({
            "sinceMs": api.engine.ledger().since_ms(),
            "totals": api.engine.ledger().totals(),
            "byNode": breakdown.by_node,
            "byModel": breakdown.by_model,
            "byProject": breakdown.by_project,
        })),
    }
}

/// Thread token budgets, most used first.
#[utoipa::path(get, path = "/api/v1/usage/threads", tag = "usage", security(("key" = [])),
    responses((status = 200, body = Vec<BudgetView>)))]
pub(crate) async fn usage_threads(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> Json<Vec<BudgetView>> {
    let mut list: Vec<BudgetView> = api
        .engine
        .budgets()
        .into_iter()
        .filter(|(_, project, _)| who.sees(project))
        .map(|(thread, project, s)| BudgetView::new(thread, project, s))
        .collect();
    list.sort_by(|a, b| b.percent_used.total_cmp(&a.percent_used));
    Json(list)
}

/// Raises or sets a thread's token budget; a run waiting on it goes on.
/// Answers once the change is stored. A raise whose new limit would pass
/// the largest 64-bit number, or a negative or fractional number, is
/// refused with 400 (`invalid_budget`, or `invalid_request` for a number that
/// is not a 64-bit count) and changes nothing.
#[utoipa::path(put, path = "/api/v1/usage/threads/{id}/budget", tag = "usage", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")), request_body = BudgetChange,
    responses((status = 200, body = BudgetView), (status = 400, body = crate::error::ErrorBody),
        (status = 409, description = "`budget_overflow`: the raise would pass the largest limit", body = crate::error::ErrorBody)))]
pub(crate) async fn set_budget(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Json(change): Json<BudgetChange>,
) -> ApiResult<Json<BudgetView>> {
    who.require(Role::Operator)?;
    let t = visible(&api, &who, &id).await?;
    let s = match (change.raise, change.limit) {
        (Some(n), None) => api
            .engine
            .raise_budget(&id, n)
            .await
            .map_err(|e| budget_error("raise", e))?,
        (None, Some(n)) => api
            .engine
            .set_budget(&id, n)
            .await
            .map_err(|e| budget_error("limit", e))?,
        _ => {
            return Err(ApiError::field(
                "raise",
                "give exactly one of `raise` and `limit`",
            ));
        }
    };
    Ok(Json(BudgetView::new(id, t.project, s)))
}

/// A refused budget change: 400 `invalid_budget` naming `field` (a raise
/// or limit that is negative, not finite or too large; nothing was
/// changed); other engine errors as usual (409 `budget_overflow` for a
/// raise the current limit cannot take; a change that could not be
/// stored is a 503 `store_error`).
fn budget_error(field: &str, e: weft_engine::EngineError) -> ApiError {
    match e {
        weft_engine::EngineError::InvalidBudget(message) => ApiError {
            code: "invalid_budget".into(),
            ..ApiError::field(field, message)
        },
        other => other.into(),
    }
}

/// Usage of one node (all projects; admins and unscoped keys).
#[utoipa::path(get, path = "/api/v1/usage/nodes/{node}", tag = "usage", security(("key" = [])),
    params(("node" = String, Path, description = "node name")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn usage_node(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(node): Path<String>,
) -> ApiResult<Json<Value>> {
    unscoped(&who)?;
    let b = api.engine.ledger().breakdown();
    let totals = b
        .by_node
        .get(&node)
        .ok_or_else(|| ApiError::not_found(format!("no usage for node `{node}`")))?;
    Ok(Json(json!({ "node": node, "totals": totals })))
}

/// Usage of one model (all projects; admins and unscoped keys).
#[utoipa::path(get, path = "/api/v1/usage/models/{model}", tag = "usage", security(("key" = [])),
    params(("model" = String, Path, description = "model name")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn usage_model(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(model): Path<String>,
) -> ApiResult<Json<Value>> {
    unscoped(&who)?;
    let b = api.engine.ledger().breakdown();
    let totals = b
        .by_model
        .get(&model)
        .ok_or_else(|| ApiError::not_found(format!("no usage for model `{model}`")))?;
    Ok(Json(json!({ "model": model, "totals": totals })))
}

/// Per-node and per-model totals mix projects: project keys get 404.
fn unscoped(who: &Principal) -> ApiResult<()> {
    match who.project() {
        None => Ok(()),
        Some(_) => Err(ApiError::not_found(
            "usage per node and per model spans projects; this key sees its project's totals at /api/v1/usage",
        )),
    }
}

/// A project's money budget: limit, spend in the current window, window.
#[utoipa::path(get, path = "/api/v1/usage/projects/{project}/budget", tag = "usage", security(("key" = [])),
    params(("project" = String, Path, description = "project")),
    responses((status = 200, body = ProjectBudgetView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn project_budget(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
) -> ApiResult<Json<ProjectBudgetView>> {
    who.check_project(&project)?;
    Ok(Json(api.engine.project_budget(&project).into()))
}

/// Raises, sets or removes a project's money budget; its runs waiting on
/// it go on. Answers once the change is stored (kept across restarts). An
/// amount that is negative, not finite, above 1,000,000,000, or a raise
/// that takes the limit above that, is refused with 400 `invalid_budget`
/// and changes nothing.
#[utoipa::path(put, path = "/api/v1/usage/projects/{project}/budget", tag = "usage", security(("key" = [])),
    params(("project" = String, Path, description = "project (1 to 64 characters)", min_length = 1, max_length = 64)),
    request_body = ProjectBudgetChange,
    responses((status = 200, body = ProjectBudgetView), (status = 400, body = crate::error::ErrorBody),
        (status = 409, description = "`budget_overflow`: the raise would pass the largest limit", body = crate::error::ErrorBody)))]
pub(crate) async fn set_project_budget(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
    Json(change): Json<ProjectBudgetChange>,
) -> ApiResult<Json<ProjectBudgetView>> {
    who.require(Role::Operator)?;
    who.check_project(&project)?;
    if project.is_empty() || project.chars().count() > 64 {
        return Err(ApiError::field(
            "project",
            "a project name has 1 to 64 characters",
        ));
    }
    if change.window.is_some() && change.limit.is_none() {
        return Err(ApiError::field(
            "window",
            "a window goes with a new `limit` only",
        ));
    }
    let status = match (change.raise, change.limit, change.unlimited) {
        (Some(amount), None, None) => api
            .engine
            .raise_project_budget(&project, amount)
            .await
            .map_err(|e| budget_error("raise", e))?,
        (None, Some(limit), None) => {
            let window = window(change.window.as_deref().unwrap_or("none"))?;
            let budget = MoneyBudget::new(limit, window).map_err(|e| ApiError {
                code: "invalid_budget".into(),
                ..ApiError::field("limit", e.to_string())
            })?;
            api.engine
                .set_project_budget(&project, Some(budget))
                .await
                .map_err(|e| budget_error("limit", e))?
        }
        (None, None, Some(true)) => api
            .engine
            .set_project_budget(&project, None)
            .await
            .map_err(|e| budget_error("unlimited", e))?,
        _ => {
            return Err(ApiError::field(
                "raise",
                "give exactly one of `raise`, `limit` (with `window`) and `unlimited: true`",
            ));
        }
    };
    // Hosts sharing the store read the new budget from it.
    api.bus
        .broadcast(weft_engine::bus::Change::BudgetChanged { project });
    Ok(Json(status.into()))
}

/// The most buckets one series answers.
pub const MAX_BUCKETS: u64 = 1000;

/// What to chart.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// Group by `project` (default), `node` or `model`.
    #[param(pattern = "^(project|node|model)$")]
    pub by: Option<String>,
    /// Bucket width: `minute`, `hour` (default) or `day` (a UTC day).
    #[param(pattern = "^(minute|hour|day)$")]
    pub bucket: Option<String>,
    /// From (Unix milliseconds; default: 24 buckets before `untilMs`). A
    /// range of more than 1000 buckets starts 1000 buckets before `untilMs`.
    pub since_ms: Option<u64>,
    /// To (Unix milliseconds, excluded; default: now).
    pub until_ms: Option<u64>,
}

/// The `llm` usage of one key in one bucket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPointView {
    /// The bucket's start, Unix milliseconds.
    pub start_ms: u64,
    /// The project, node or model.
    pub key: String,
    /// Model calls.
    pub calls: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Priced spend.
    pub cost: f64,
}

/// Usage over time: per bucket and key, only buckets with calls.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageSeries {
    /// Grouped by: `project`, `node` or `model`.
    pub by: String,
    /// Bucket width in milliseconds (buckets start at multiples of it
    /// since the Unix epoch).
    pub bucket_ms: u64,
    /// The range answered, from (included) …
    pub since_ms: u64,
    /// … to (excluded).
    pub until_ms: u64,
    /// Every key with calls in the range, sorted.
    pub keys: Vec<String>,
    /// The points, oldest bucket first.
    pub points: Vec<SeriesPointView>,
}

/// `llm` usage over time (calls, tokens, spend) per project, node or
/// model, in minute, hour or day buckets: what the dashboard charts. Every
/// kept call counts, whatever the last usage reset; a key limited to a
/// project sees its project's calls only.
#[utoipa::path(get, path = "/api/v1/usage/series", tag = "usage", security(("key" = [])),
    params(SeriesParams),
    responses((status = 200, body = UsageSeries), (status = 400, body = crate::error::ErrorBody),
        (status = 503, description = "`store_unavailable`: this host keeps no store", body = crate::error::ErrorBody)))]
pub(crate) async fn usage_series(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<SeriesParams>,
) -> ApiResult<Json<UsageSeries>> {
    let by = match q.by.as_deref().unwrap_or("project") {
        "project" => SeriesKey::Project,
        "node" => SeriesKey::Node,
        "model" => SeriesKey::Model,
        other => {
            return Err(ApiError::field(
                "by",
                format!("unknown grouping `{other}`: project, node or model"),
            ));
        }
    };
    let bucket_ms: u64 = match q.bucket.as_deref().unwrap_or("hour") {
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        other => {
            return Err(ApiError::field(
                "bucket",
                format!("unknown bucket `{other}`: minute, hour or day"),
            ));
        }
    };
    crate::routes::paging::Paging::check_times(q.since_ms, q.until_ms)?;
    let until_ms = q.until_ms.unwrap_or_else(|| api.engine.now_ms());
    let earliest = until_ms.saturating_sub(MAX_BUCKETS * bucket_ms);
    let since_ms = q
        .since_ms
        .unwrap_or_else(|| until_ms.saturating_sub(24 * bucket_ms))
        .max(earliest);
    let store = crate::routes::access::store(&api)?;
    let points = if since_ms < until_ms {
        store
            .usage_series(SeriesQuery {
                by,
                bucket_ms,
                since_ms,
                until_ms,
                project: who.project().map(str::to_owned),
            })
            .await?
    } else {
        Vec::new()
    };
    let keys: std::collections::BTreeSet<String> = points.iter().map(|p| p.key.clone()).collect();
    Ok(Json(UsageSeries {
        by: by.column().to_owned(),
        bucket_ms,
        since_ms,
        until_ms,
        keys: keys.into_iter().collect(),
        points: points
            .into_iter()
            .map(|p| SeriesPointView {
                start_ms: p.start_ms,
                key: p.key,
                calls: p.calls,
                prompt_tokens: p.prompt_tokens,
                completion_tokens: p.completion_tokens,
                cost: p.cost,
            })
            .collect(),
    }))
}

/// Starts the reported usage totals over, for every project (admin keys
/// without a project scope). Usage events are kept
/// in the store: budgets are not affected, and the reset survives restarts.
#[utoipa::path(post, path = "/api/v1/usage/reset", tag = "usage", security(("key" = [])),
    responses((status = 200, body = Object), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn reset_usage(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Value>> {
    who.require_host(Role::Admin)?;
    let at = api.engine.reset_usage().await?;
    tracing::warn!(key = %who.key, at_ms = at, "usage totals reset");
    Ok(Json(json!({ "sinceMs": at })))
}
