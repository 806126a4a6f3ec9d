//! The WebSockets: chat (`GET /api/v1/ws`, authenticated before the
//! upgrade) and the event stream (`GET /api/v1/ws/events`).
//!
//! One socket is one session on one thread (`?thread=ID` to continue one,
//! checked like a thread id in a REST request; a new thread otherwise). The client sends JSON messages:
//!
//! - `{"type": "message", "text": "…"}`: a chat message for the graph's entry;
//! - `{"type": "action", "action": "go:on", "data": {…}}`: a UI action for the `ui` node;
//!
//!   both take `"multitask"` (`reject`, `enqueue`, `interrupt`,
//!   `rollback`; `api.multitask` when absent): what happens while a run is
//!   in flight on the thread;
//! - `{"type": "cancel"}`: kills the run in flight;
//! - `{"type": "resume", "value": …}` / `{"type": "reject", "reason": "…"}`:
//!   answers or declines the question the run in flight waits on (its
//!   oldest pending one unless `interrupt` names another; `runId` names
//!   the run when it is not the thread's run in flight).
//!
//! The server sends `session` (on connect), `accepted` (a run started,
//! or `{"queued": true, "position", "behind"}` when it waits for the run in
//! flight),
//! `delta` (streamed text), `progress`, `controls` (the UI node's state),
//! `interrupt` (a node asks a question: `{interruptId, runId, node,
//! question, answerSchema, deadlineMs}`), `interrupt_resolved`
//! (`{interruptId, runId, status, answer}`), `resumed` (an answer was
//! taken), `done` (the run ended, with its reply), `error` (`{code, message}`) and
//! `graph` (the active graph was switched or edited: `{graph, version,
//! change}`). The session outlives graph switches and runs: only the
//! socket ends it; each message runs the graph active when it arrives, on
//! the same thread, with its history and memory.
//!
//! Each client message counts against the key's rate limit like a REST
//! request (over it: an `error` with code `rate_limited`, the message is
//! not acted on). The key is checked again on every message and every few
//! seconds: once it is revoked, or its token has expired, the socket closes
//! with code 4401 ([`CLOSE_REVOKED`]) and the reason. A key may have
//! `api.streams_per_key` sockets and event streams open; more get 429.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use weft_engine::bus::{Delivery, Scope};
use weft_engine::{Answer, DEFAULT_PROJECT, Event, EventBody, Inbound, Multitask, Sent};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Query};
use crate::ids::ThreadId;
use crate::middleware::rate_limit;
use crate::routes::access;
use crate::routes::feed::{EventQuery, Feed, Item, REVALIDATE, checked_thread, reset_data};

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/ws", get(chat))
        .route("/api/v1/ws/events", get(events))
}

/// Which thread the session continues.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// Continue this thread (a new one when absent).
    pub thread: Option<String>,
    /// The API key, for clients that cannot set headers (browsers).
    #[allow(dead_code)] // read by the auth middleware, listed here for the document
    #[serde(rename = "access_token")]
    #[param(rename = "access_token")]
    pub access_token: Option<String>,
}

/// A client's message.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    Message {
        text: String,
        multitask: Option<Multitask>,
    },
    Action {
        action: String,
        #[serde(default)]
        data: Value,
        multitask: Option<Multitask>,
    },
    Cancel,
    #[serde(rename_all = "camelCase")]
    Resume {
        #[serde(default, deserialize_with = "crate::routes::access::present")]
        value: Option<Value>,
        interrupt: Option<String>,
        run_id: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Reject {
        #[serde(default)]
        reason: String,
        interrupt: Option<String>,
        run_id: Option<String>,
    },
}

/// Chat over a WebSocket. The client sends `{"type": "message", "text"}`,
/// `{"type": "action", "action", "data"}`, `{"type": "cancel"}`,
/// `{"type": "resume", "value"}` or `{"type": "reject", "reason"}`; the
/// server sends `session`, `accepted`, `delta`, `progress`, `controls`,
/// `interrupt`, `interrupt_resolved`, `resumed`, `done`, `graph` and
/// `error`. `?thread=` continues a thread (400 for a
/// malformed id, 404 for a thread of another project). Each message counts
/// against the key's rate limit (`error` `rate_limited` over it). When the
/// key is revoked or its token expires, the socket closes with code 4401.
/// At most `api.streams_per_key` sockets and streams per key (429).
#[utoipa::path(get, path = "/api/v1/ws", tag = "events", security(("key" = [])),
    params(WsQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub(crate) async fn chat(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<WsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    who.require(Role::Operator)?;
    let upgrade = websocket(upgrade)?;
    let graph = access::active_graph(&api)?;
    let project = who.project().unwrap_or(DEFAULT_PROJECT).to_owned();
    let asked = match q.thread {
        Some(id) => {
            let id = ThreadId::parse(id).map_err(|e| ApiError::field("thread", e.to_string()))?;
            access::may_use(&api, &who, id.as_str()).await?;
            Some(id)
        }
        None => None,
    };
    let slot = api.streams.take(&who.key)?;
    let thread = api
        .engine
        .open_thread_in(&project, asked.as_ref().map(ThreadId::as_str), &graph);
    // The thread's project's events only: other projects' traffic never
    // makes this socket miss its own.
    let scope = Scope::Project(api.engine.thread_project(&thread).unwrap_or(project));
    let events = api.bus.subscribe(scope, None).await.items;
    Ok(upgrade
        .max_message_size(api.config.body_limit)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            session(api, who, thread, events, socket).await;
        }))
}

/// The close code of a socket whose key was revoked or whose token expired.
pub(crate) const CLOSE_REVOKED: u16 = 4401;

/// Closes `socket` with `code` and `reason`.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })))
        .await;
}

async fn session(
    api: Arc<Api>,
    who: Principal,
    thread: String,
    mut events: BoxStream<'static, Delivery>,
    mut socket: WebSocket,
) {
    let mut closing = api.closing.subscribe();
    let mut check = tokio::time::interval(REVALIDATE);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if send(&mut socket, json!({"type": "session", "threadId": thread}))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(incoming)) = incoming else { return };
                if let Err(why) = api.still_valid(&who) {
                    close(&mut socket, CLOSE_REVOKED, why).await;
                    return;
                }
                // Each message counts against the key's rate limit, like a
                // REST request.
                let limited = match &incoming {
                    WsMessage::Text(_) | WsMessage::Binary(_) => rate_limit(&api, &who.key).err(),
                    _ => None,
                };
                let reply = match (incoming, limited) {
                    (WsMessage::Close(_), _) => return,
                    (_, Some(e)) => Some(error(&e.code, e.message)),
                    (WsMessage::Text(text), None) => handle(&api, &thread, text.as_str()).await,
                    (WsMessage::Binary(_), None) => Some(error("invalid_message", "send JSON text messages")),
                    _ => None,
                };
                if let Some(reply) = reply
                    && send(&mut socket, reply).await.is_err()
                {
                    return;
                }
            }
            event = events.next() => {
                let out = match event {
                    Some(Delivery::Event(e)) if e.thread == thread || e.thread.is_empty() => translate(&e),
                    Some(Delivery::Event(_)) => None,
                    Some(Delivery::Missed(n)) => Some(json!({"type": "missed", "missed": n})),
                    None => return,
                };
                if let Some(out) = out
                    && send(&mut socket, out).await.is_err()
                {
                    return;
                }
            }
            _ = check.tick() => {
                if let Err(why) = api.still_valid(&who) {
                    close(&mut socket, CLOSE_REVOKED, why).await;
                    return;
                }
            }
            _ = closing.changed() => {
                let _ = send(&mut socket, error("shutting_down", "the host is stopping")).await;
                let _ = socket.send(WsMessage::Close(None)).await;
                return;
            }
        }
    }
}

async fn send(socket: &mut WebSocket, value: Value) -> Result<(), axum::Error> {
    socket.send(WsMessage::Text(value.to_string().into())).await
}

fn error(code: &str, message: impl Into<String>) -> Value {
    json!({"type": "error", "code": code, "message": message.into()})
}

/// Acts on one client message; returns the immediate answer.
async fn handle(api: &Api, thread: &str, text: &str) -> Option<Value> {
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => return Some(error("invalid_message", e.to_string())),
    };
    let inbound = match message {
        ClientMessage::Cancel => {
            return Some(match api.engine.kill(thread) {
                Ok(run) => json!({"type": "cancelled", "runId": run}),
                Err(_) => error("not_running", "no run is in flight"),
            });
        }
        ClientMessage::Resume { value: None, .. } => {
            return Some(error("invalid_message", "`resume` needs a `value`"));
        }
        ClientMessage::Resume {
            value: Some(value),
            interrupt,
            run_id,
        } => return Some(answer(api, thread, run_id, interrupt, Answer::Value(value)).await),
        ClientMessage::Reject {
            reason,
            interrupt,
            run_id,
        } => return Some(answer(api, thread, run_id, interrupt, Answer::Reject(reason)).await),
        ClientMessage::Message { text, .. } if text.trim().is_empty() => {
            return Some(error("invalid_message", "the text is empty"));
        }
        ClientMessage::Message { text, multitask } => (Inbound::user_text(&text), multitask),
        ClientMessage::Action {
            action,
            data,
            multitask,
        } => {
            let mut body = match data {
                Value::Object(map) => map,
                Value::Null => serde_json::Map::new(),
                _ => return Some(error("invalid_message", "`data` must be an object")),
            };
            body.insert("action".into(), Value::String(action));
            (Inbound::to("ui", "action", &Value::Object(body)), multitask)
        }
    };
    let (inbound, multitask) = inbound;
    // The session stays attached across a graph switch or edit: each
    // message runs the graph active now, on the same thread.
    if let Some(graph) = api.catalog.active() {
        api.engine.set_thread_graph(thread, &graph);
    }
    let policy = multitask.unwrap_or(api.config.multitask);
    match api.engine.send(thread, inbound, policy).await {
        Ok(Sent::Started(handle)) => {
            api.metrics.run_started();
            Some(json!({"type": "accepted", "runId": handle.run}))
        }
        Ok(Sent::Queued {
            run,
            position,
            behind,
        }) => Some(json!({
            "type": "accepted",
            "runId": run,
            "queued": true,
            "position": position,
            "behind": behind,
        })),
        Err(e) => {
            let e = ApiError::from(e);
            Some(error(&e.code, e.message))
        }
    }
}

/// Answers or declines a question of `run` (the thread's run in flight
/// when `None`).
async fn answer(
    api: &Api,
    thread: &str,
    run: Option<String>,
    interrupt: Option<String>,
    answer: Answer,
) -> Value {
    let Some(run) = run.or_else(|| api.engine.active_run(thread)) else {
        return error(
            "run_not_interrupted",
            "no run of this thread waits for an answer",
        );
    };
    match api
        .engine
        .answer_interrupt(thread, &run, interrupt.as_deref(), answer)
        .await
    {
        Ok(answered) => {
            if answered.run.is_some() {
                api.metrics.run_started();
            }
            json!({
                "type": "resumed",
                "runId": run,
                "interruptId": answered.interrupt.id,
                "status": answered.interrupt.status.as_str(),
                "resumed": answered.run.is_some(),
            })
        }
        Err(e) => {
            let e = ApiError::from(e);
            error(&e.code, e.message)
        }
    }
}

/// What the client sees of an engine event.
fn translate(event: &Event) -> Option<Value> {
    let node = event.node.as_deref();
    match &event.body {
        EventBody::Streaming { delta } => {
            Some(json!({"type": "delta", "node": node, "text": delta}))
        }
        EventBody::Progress { text } => {
            Some(json!({"type": "progress", "node": node, "text": text}))
        }
        EventBody::Updated(state) if node == Some("ui") => {
            Some(json!({"type": "controls", "state": state}))
        }
        EventBody::Error(e) => {
            Some(json!({"type": "error", "node": node, "code": e.code, "message": e.message}))
        }
        EventBody::GraphChanged {
            graph,
            version,
            change,
        } => Some(json!({
            "type": "graph", "graph": graph, "version": version, "change": change,
        })),
        EventBody::Interrupt(i) => Some(json!({
            "type": "interrupt",
            "interruptId": i.id,
            "runId": i.run,
            "node": i.node,
            "question": i.question,
            "answerSchema": i.answer_schema,
            "deadlineMs": i.deadline_ms,
        })),
        EventBody::InterruptResolved(i) => Some(json!({
            "type": "interrupt_resolved",
            "interruptId": i.id,
            "runId": i.run,
            "status": i.status.as_str(),
            "answer": i.answer,
        })),
        EventBody::FrameTrace(trace) => Some(json!({
            "type": "done",
            "runId": trace.run,
            "status": trace.status.as_str(),
            "reply": trace.reply,
            "frames": trace.frames,
        })),
        _ => None,
    }
}

/// A request that is not a WebSocket handshake, refused in the API's
/// shape: 400 `websocket_required` (426 when the connection cannot be
/// upgraded, 405 for another method).
fn websocket(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<WebSocketUpgrade> {
    upgrade.map_err(|e| {
        ApiError::new(
            e.status(),
            "websocket_required",
            format!("this route is a WebSocket: {}", e.body_text()),
        )
    })
}

/// The event stream over a WebSocket (the same events as `GET
/// /api/v1/events`: a project key's own project's): each message is
/// `{"id", "type", "event": {…}}`, `{"type": "missed", "missed", "after"}`
/// when the client fell behind, or `{"type": "reset", "id", "lastEventId",
/// "after", "reason"}` when `lastEventId` is of an earlier boot or beyond
/// the last event (everything kept follows); `lastEventId` resumes as with
/// SSE. Closes with code 4401 when the key is revoked or its token expires.
#[utoipa::path(get, path = "/api/v1/ws/events", tag = "events", security(("key" = [])),
    params(EventQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 400, description = "`websocket_required`: not a WebSocket handshake; or a query that does not parse", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub(crate) async fn events(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<EventQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let upgrade = websocket(upgrade)?;
    let thread = checked_thread(q.thread)?;
    let mut feed = Feed::new(&api, who, thread, q.last_event_id).await?;
    Ok(upgrade.on_upgrade(move |mut socket| async move {
        let mut closing = feed.closing.clone();
        loop {
            let out = tokio::select! {
                item = feed.next_item() => match item {
                    Item::Reset { last, after } => {
                        let mut out = reset_data(last, after);
                        out["type"] = "reset".into();
                        out["id"] = after.into();
                        out
                    }
                    Item::Revoked(why) => {
                        close(&mut socket, CLOSE_REVOKED, why).await;
                        return;
                    }
                    Item::Missed { missed, after } => {
                        json!({"type": "missed", "missed": missed, "after": after})
                    }
                    Item::Event(e) => {
                        json!({"id": (e.seq != 0).then_some(e.seq), "type": e.body.kind(), "event": &*e})
                    }
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                },
                _ = closing.changed() => {
                    let _ = socket.send(WsMessage::Close(None)).await;
                    return;
                }
            };
            if send(&mut socket, out).await.is_err() {
                return;
            }
        }
    }))
}
