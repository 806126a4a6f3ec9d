//! Messages: into the engine (inject, a chat message for a thread), a
//! thread's messages and every thread's message history.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use weft_engine::store::StoredMessage;
use weft_engine::{Inbound, Multitask, Sent};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::ids::ThreadId;
use crate::routes::access::{self, may_use, visible};
use crate::routes::paging::{Page, Paging};

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route(
            "/api/v1/threads/{id}/messages",
            get(thread_messages).post(send),
        )
        .route("/api/v1/inject", post(inject))
        .route("/api/v1/messages", get(messages))
}

/// A message of a thread.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Id.
    pub id: String,
    /// Run.
    pub run: String,
    /// Receiver.
    pub to: String,
    /// Sender.
    pub from: String,
    /// Kind.
    pub kind: String,
    /// Body (JSON text).
    pub body: String,
    /// Frame it was sent in (absent: from outside).
    pub sent_frame: Option<u64>,
    /// Frame it was delivered in (absent: pending).
    pub delivered_frame: Option<u64>,
}

impl From<StoredMessage> for MessageView {
    fn from(m: StoredMessage) -> Self {
        Self {
            id: m.id,
            run: m.run,
            to: m.to,
            from: m.from,
            kind: m.kind,
            body: m.body,
            sent_frame: m.sent_seq,
            delivered_frame: m.delivered_seq,
        }
    }
}

/// A message into the engine.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InjectRequest {
    /// The thread (created if new); a new thread when absent. 1 to 128
    /// characters, no `/` and no control characters.
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001F\u007F-\u009F/]+$")]
    pub thread_id: Option<String>,
    /// Project of a new thread (keys limited to a project use theirs; 1 to
    /// 64 characters).
    #[schema(min_length = 1, max_length = 64)]
    pub project: Option<String>,
    /// The receiving node; the graph's entry when absent.
    pub to: Option<String>,
    /// Message kind (default `user`).
    pub kind: Option<String>,
    /// Chat text (for the entry node): body `{"text": …}`.
    pub text: Option<String>,
    /// A JSON body instead of `text`.
    #[schema(value_type = Object)]
    pub body: Option<Value>,
    /// What happens while a run is in flight on the thread (`api.multitask`
    /// when absent).
    pub multitask: Option<MultitaskPolicy>,
}

/// What a message for a thread with a run in flight does (double-texting).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MultitaskPolicy {
    /// 409 `thread_busy`.
    Reject,
    /// The new run waits behind the run in flight (and any queued before).
    Enqueue,
    /// The run in flight stops at its next frame boundary (`preempted`, its
    /// effects kept); the new run goes next.
    Interrupt,
    /// Like `interrupt`, and the stopped run's memory writes are undone and
    /// its messages leave the thread's history (`rolled_back`); needs a
    /// store.
    Rollback,
}

impl From<MultitaskPolicy> for Multitask {
    fn from(p: MultitaskPolicy) -> Self {
        match p {
            MultitaskPolicy::Reject => Self::Reject,
            MultitaskPolicy::Enqueue => Self::Enqueue,
            MultitaskPolicy::Interrupt => Self::Interrupt,
            MultitaskPolicy::Rollback => Self::Rollback,
        }
    }
}

/// What a message started, or queued.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// Thread.
    pub thread_id: String,
    /// Run (a queued run keeps this id when it starts).
    pub run_id: String,
    /// The message's id.
    pub message_id: String,
    /// `started`, or `queued` (it waits for the run in flight).
    #[schema(pattern = "^(started|queued)$")]
    pub status: &'static str,
    /// A queued run's place in the thread's queue (0: next).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// The run in flight a queued run waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind: Option<String>,
}

/// A chat message for a thread.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The text (not only spaces).
    #[schema(pattern = r"\S")]
    pub text: String,
    /// What happens while a run is in flight on the thread (`api.multitask`
    /// when absent).
    pub multitask: Option<MultitaskPolicy>,
}

/// Message history filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Only messages to or from this node.
    pub node: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// Items to skip.
    pub offset: Option<u64>,
}

/// A thread's messages, in the order they were stored.
#[utoipa::path(get, path = "/api/v1/threads/{id}/messages", tag = "threads", security(("key" = [])),
    params(("id" = String, Path, description = "thread id"), Paging),
    responses((status = 200, body = Page<MessageView>), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn thread_messages(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<Page<MessageView>>> {
    let paging = paging.get()?;
    visible(&api, &who, &id).await?;
    let all = access::store(&api)?.messages(&id).await?;
    Ok(Json(Page::slice(all, paging, MessageView::from)))
}

/// Starts a run with one message; the message is durable when this answers.
async fn start(
    api: &Api,
    who: &Principal,
    thread: Option<String>,
    project: Option<String>,
    inbound: Inbound,
    multitask: Option<MultitaskPolicy>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    who.require(Role::Operator)?;
    let thread = match thread {
        Some(id) => {
            let id = ThreadId::parse(id).map_err(|e| ApiError::field("threadId", e.to_string()))?;
            may_use(api, who, id.as_str()).await?;
            Some(id)
        }
        None => None,
    };
    let project = access::project_for(who, project)?;
    let graph = access::active_graph(api)?;
    let thread = api
        .engine
        .open_thread_in(&project, thread.as_ref().map(ThreadId::as_str), &graph);
    let policy = multitask.map_or(api.config.multitask, Multitask::from);
    let sent = api.engine.send(&thread, inbound, policy).await?;
    let run = sent.run().to_owned();
    let accepted = Accepted {
        thread_id: thread,
        message_id: format!("{run}/in"),
        run_id: run,
        status: "started",
        position: None,
        behind: None,
    };
    // The run goes on without us; its end is on the event stream.
    let accepted = match sent {
        Sent::Started(_) => {
            api.metrics.run_started();
            accepted
        }
        Sent::Queued {
            position, behind, ..
        } => Accepted {
            status: "queued",
            position: Some(position),
            behind: Some(behind),
            ..accepted
        },
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Puts a message into the engine: a run starts on the thread (a new one
/// unless `threadId` is given). While a run is in flight there, `multitask`
/// decides: 409 `thread_busy` (`reject`), or the run is queued (`enqueue`,
/// `interrupt`, `rollback`).
#[utoipa::path(post, path = "/api/v1/inject", tag = "messages", security(("key" = [])),
    request_body = InjectRequest,
    responses((status = 202, body = Accepted), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn inject(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Json(req): Json<InjectRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let inbound = match (req.text, req.body) {
        (Some(text), None) => Inbound {
            to: req.to,
            kind: req.kind.unwrap_or_else(|| "user".into()),
            body: serde_json::json!({ "text": text }).to_string(),
        },
        (None, Some(body)) => Inbound {
            to: req.to,
            kind: req.kind.unwrap_or_else(|| "user".into()),
            body: body.to_string(),
        },
        _ => {
            return Err(ApiError::field(
                "text",
                "give exactly one of `text` and `body`",
            ));
        }
    };
    start(
        &api,
        &who,
        req.thread_id,
        req.project,
        inbound,
        req.multitask,
    )
    .await
}

/// A chat message for the thread (its graph's entry node); while a run is
/// in flight, `multitask` decides (409 `thread_busy` with `reject`).
#[utoipa::path(post, path = "/api/v1/threads/{id}/messages", tag = "messages", security(("key" = [])),
    params(("id" = String, Path, description = "thread id")), request_body = SendRequest,
    responses((status = 202, body = Accepted), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn send(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Json(req): Json<SendRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    if req.text.trim().is_empty() {
        return Err(ApiError::field("text", "the text is empty"));
    }
    start(
        &api,
        &who,
        Some(id),
        None,
        Inbound::user_text(&req.text),
        req.multitask,
    )
    .await
}

/// Every thread's messages, newest first (a project key: its project's).
#[utoipa::path(get, path = "/api/v1/messages", tag = "messages", security(("key" = [])),
    params(MessageQuery),
    responses((status = 200, body = Page<MessageView>), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn messages(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<MessageQuery>,
) -> ApiResult<Json<Page<MessageView>>> {
    let (limit, offset) = Paging::check(q.limit, q.offset)?;
    let store = api.engine.store().ok_or_else(|| {
        ApiError::unavailable("store_unavailable", "this host keeps no message history")
    })?;
    let page = store
        .node_messages(q.node, who.project().map(str::to_owned), limit, offset)
        .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(MessageView::from).collect(),
        total: page.total,
        limit,
        offset,
    }))
}
