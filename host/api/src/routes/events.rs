//! The event stream over SSE (`GET /api/v1/events`): the events the key
//! may see (its project's for a project key, the host's otherwise) with
//! their sequence number as the SSE id. A client that reconnects with
//! `Last-Event-ID` gets what it missed from the recent history; a client
//! too slow for the stream, or one that asks for events older than the
//! history, gets a `missed` event saying how many events it lost instead
//! of losing them silently; an id of an earlier boot (or beyond the last
//! event) gets a `reset` event, then everything kept.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::Stream;

use crate::Api;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Query};
use crate::routes::feed::{EventQuery, Feed, checked_thread};

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new().route("/api/v1/events", get(sse))
}

/// The engine's events as server-sent events. Each has `id` (its sequence
/// number), `event` (its type) and `data` (the event as JSON). A key
/// limited to a project streams that project's events (and host events)
/// with the project's own sequence numbers; a key without a project
/// streams the whole host's. Send `Last-Event-ID` to resume (`0`: from the
/// start of this boot). Besides events: `missed` (`{missed, after}`, the
/// client fell behind or asked for more than is kept), `reset`
/// (`{lastEventId, after, reason}`, the id is of an earlier boot or beyond
/// the last event; everything kept follows) and `revoked` (`{reason}`, the
/// key was revoked or the token expired; the stream ends). On a host with
/// a bus (`weft serve --bus`), ids are the sequence numbers of the
/// system's JetStream stream: the same on every host and across restarts,
/// with events of every host, `0` resuming from the first kept; while the
/// bus is unreachable the host's own events come without an id. A key may have
/// `api.streams_per_key` streams and sockets open (default 16); more get
/// 429 `too_many_streams`.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("key" = [])),
    params(EventQuery, ("Last-Event-ID" = Option<u64>, Header, description = "resume after this event (0: from the start of this boot, or with a bus from the first event kept)")),
    responses((status = 200, description = "text/event-stream of events", content_type = "text/event-stream"),
        (status = 400, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub(crate) async fn sse(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Query(q): Query<EventQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let header = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::field(
                        "Last-Event-ID",
                        "Last-Event-ID must be an event id (a number)",
                    )
                })?,
        ),
        None => None,
    };
    let thread = checked_thread(q.thread)?;
    let state = Feed::new(&api, who, thread, header.or(q.last_event_id)).await?;
    let stream = futures_util::stream::unfold(state, |mut feed| async move {
        let mut closing = feed.closing.clone();
        if *closing.borrow_and_update() {
            return None;
        }
        tokio::select! {
            event = feed.next() => event.map(|e| (Ok(e), feed)),
            _ = closing.changed() => None,
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
