//! Webhooks: a project's subscriptions to its runs' ends, interrupts and
//! budget events, and each delivery with its attempts.
//!
//! The secret that signs deliveries is in the answer that creates the
//! webhook only. Deliveries come from the store's outbox; see
//! [`crate::webhooks`] for how they are sent, signed and retried.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use weft_engine::store::{DeliveryAttempt, StoredDelivery, WEBHOOK_EVENTS, Webhook};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routes::access::{listed_project, project_for, random_hex, store};
use crate::routes::paging::{Page, Paging};
use crate::webhooks::{check_url, resolve};

/// Webhooks one project may have.
const MAX_PER_PROJECT: usize = 50;

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/webhooks", get(list).post(create))
        .route("/api/v1/webhooks/{id}", get(detail).delete(delete))
        .route("/api/v1/webhooks/{id}/deliveries", get(deliveries))
}

/// A webhook (its secret is shown once, when it is created).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// Id.
    pub id: String,
    /// The project whose events it gets.
    pub project: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The events it gets.
    pub events: Vec<String>,
    /// Creation, Unix ms.
    pub created_ms: u64,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id,
            project: w.project,
            url: w.url,
            events: w.events,
            created_ms: w.created_ms,
        }
    }
}

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// An `http://` or `https://` URL on a public address (private and
    /// loopback addresses only when the config allows them).
    pub url: String,
    /// The events to deliver: `run_finished` (completed, killed, preempted
    /// or rolled back),
    /// `run_failed` (frame limit, store failure), `run_interrupted` (a
    /// node asks a person), `budget_warning`, `budget_exhausted`.
    #[schema(min_items = 1)]
    pub events: Vec<String>,
    /// Its project (a key limited to a project: its own; default
    /// `default`).
    pub project: Option<String>,
}

/// A created webhook and its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCreated {
    /// The webhook.
    pub webhook: WebhookView,
    /// The HMAC-SHA256 key of the `Weft-Signature` header: shown only
    /// here.
    pub secret: String,
}

/// A delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// 1 for the first.
    pub attempt: u32,
    /// When, Unix ms.
    pub at_ms: u64,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// How long it took, ms.
    pub duration_ms: u64,
}

impl From<DeliveryAttempt> for AttemptView {
    fn from(a: DeliveryAttempt) -> Self {
        Self {
            attempt: a.attempt,
            at_ms: a.at_ms,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
        }
    }
}

/// A delivery and its attempts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// Id (also in the body and the `Weft-Delivery` header).
    pub id: String,
    /// The event.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// The body POSTed (JSON text).
    pub body: String,
    /// When it was written, Unix ms.
    pub created_ms: u64,
    /// When it is tried next (pending).
    pub next_ms: u64,
    /// Its attempts, oldest first.
    pub attempts: Vec<AttemptView>,
}

impl From<StoredDelivery> for DeliveryView {
    fn from(d: StoredDelivery) -> Self {
        Self {
            id: d.id,
            event: d.event,
            status: d.status.as_str().to_owned(),
            body: d.body,
            created_ms: d.created_ms,
            next_ms: d.next_ms,
            attempts: d.attempts.into_iter().map(AttemptView::from).collect(),
        }
    }
}

/// Webhook list filter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    /// Only this project's (a key limited to a project sees its own only).
    pub project: Option<String>,
}

/// The webhook, if the key sees its project (404 otherwise).
async fn visible_hook(api: &Api, who: &Principal, id: &str) -> ApiResult<Webhook> {
    store(api)?
        .webhooks(who.project().map(str::to_owned))
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no webhook `{id}`")))
}

/// Adds a webhook for a project's events. The URL must be `http(s)` and,
/// unless the config allows it, on a public address.
#[utoipa::path(post, path = "/api/v1/webhooks", operation_id = "create_webhook", tag = "webhooks", security(("key" = [])),
    request_body = WebhookRequest,
    responses((status = 201, body = WebhookCreated),
        (status = 400, description = "`invalid_request`: a URL that is not http(s), an unknown event; `private_address`: a receiver on a private or loopback address", body = crate::error::ErrorBody),
        (status = 409, description = "`webhook_limit`: the project has 50 webhooks", body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn create(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Json(req): Json<WebhookRequest>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    who.require(Role::Admin)?;
    let project = project_for(&who, req.project)?;
    if req.events.is_empty() {
        return Err(ApiError::field(
            "events",
            format!("name at least one event of {}", WEBHOOK_EVENTS.join(", ")),
        ));
    }
    let mut events: Vec<String> = Vec::new();
    for event in req.events {
        if !WEBHOOK_EVENTS.contains(&event.as_str()) {
            return Err(ApiError::field(
                "events",
                format!(
                    "unknown event `{event}`; one of {}",
                    WEBHOOK_EVENTS.join(", ")
                ),
            ));
        }
        if !events.contains(&event) {
            events.push(event);
        }
    }
    if req.url.len() > 2048 {
        return Err(ApiError::field(
            "url",
            "a webhook URL has at most 2048 characters",
        ));
    }
    let url = check_url(&req.url).map_err(|m| ApiError::field("url", m))?;
    resolve(&url, api.config.webhooks.allow_private_addresses)
        .await
        .map_err(|m| ApiError {
            code: "private_address".into(),
            ..ApiError::field("url", m)
        })?;
    let store = store(&api)?;
    if store.webhooks(Some(project.clone())).await?.len() >= MAX_PER_PROJECT {
        return Err(ApiError::conflict(
            "webhook_limit",
            format!("project `{project}` has {MAX_PER_PROJECT} webhooks; delete one first"),
        ));
    }
    let hook = Webhook {
        id: format!("wh_{}", random_hex(8)?),
        project,
        url: url.to_string(),
        events,
        secret: format!("whsec_{}", random_hex(32)?),
        created_ms: api.engine.now_ms(),
    };
    store.put_webhook(hook.clone()).await?;
    tracing::info!(
        webhook = hook.id,
        project = hook.project,
        url = hook.url,
        "webhook added"
    );
    let secret = hook.secret.clone();
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            webhook: hook.into(),
            secret,
        }),
    ))
}

/// The webhooks the key's project has (every project's for a key of the
/// whole host, or `?project=`'s).
#[utoipa::path(get, path = "/api/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks", security(("key" = [])),
    params(WebhookQuery),
    responses((status = 200, body = Vec<WebhookView>), (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<WebhookQuery>,
) -> ApiResult<Json<Vec<WebhookView>>> {
    who.require(Role::Operator)?;
    let Some(project) = listed_project(&who, q.project) else {
        return Ok(Json(Vec::new()));
    };
    let hooks = store(&api)?.webhooks(project).await?;
    Ok(Json(hooks.into_iter().map(WebhookView::from).collect()))
}

/// A webhook.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", operation_id = "webhook", tag = "webhooks", security(("key" = [])),
    params(("id" = String, Path, description = "webhook id")),
    responses((status = 200, body = WebhookView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn detail(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    who.require(Role::Operator)?;
    Ok(Json(visible_hook(&api, &who, &id).await?.into()))
}

/// Removes a webhook and its deliveries (pending ones are not sent).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks", security(("key" = [])),
    params(("id" = String, Path, description = "webhook id")),
    responses((status = 204, description = "removed"), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn delete(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Role::Admin)?;
    visible_hook(&api, &who, &id).await?;
    store(&api)?.delete_webhook(&id).await?;
    tracing::info!(webhook = id, "webhook removed");
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's deliveries, newest first, each with its attempts.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", operation_id = "webhook_deliveries", tag = "webhooks", security(("key" = [])),
    params(("id" = String, Path, description = "webhook id"), Paging),
    responses((status = 200, body = Page<DeliveryView>), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn deliveries(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<Page<DeliveryView>>> {
    who.require(Role::Operator)?;
    let (limit, offset) = paging.get()?;
    visible_hook(&api, &who, &id).await?;
    let page = store(&api)?.deliveries(&id, limit, offset).await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(DeliveryView::from).collect(),
        total: page.total,
        limit,
        offset,
    }))
}
