//! The event stream over SSE (`GET /api/v1/events`): every engine event
//! with its sequence number as the SSE id. A client that reconnects with
//! `Last-Event-ID` gets what it missed from the recent history; a client
//! too slow for the stream, or one that asks for events older than the
//! history, gets a `missed` event saying how many events it lost instead
//! of losing them silently.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;
use utoipa::IntoParams;
use weft_engine::Event;

use crate::Api;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Query};

/// Recent events, and the fan-out to streaming clients.
pub(crate) struct EventLog {
    recent: Mutex<VecDeque<Arc<Event>>>,
    capacity: usize,
    live: broadcast::Sender<Arc<Event>>,
}

impl EventLog {
    /// Keeps `capacity` recent events; each streaming client may fall
    /// `client_buffer` events behind before it is told what it missed.
    pub fn new(capacity: usize, client_buffer: usize) -> Self {
        Self {
            recent: Mutex::new(VecDeque::with_capacity(capacity.min(65_536))),
            capacity: capacity.max(1),
            live: broadcast::Sender::new(client_buffer.max(1)),
        }
    }

    fn keep(&self, event: Arc<Event>) {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() == self.capacity {
            recent.pop_front();
        }
        recent.push_back(event);
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.live.subscribe()
    }

    /// Events after `seq`, and how many before them are no longer kept.
    fn since(&self, seq: u64) -> (Vec<Arc<Event>>, u64) {
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let missed = recent
            .front()
            .map_or(0, |first| first.seq.saturating_sub(seq + 1));
        let events = recent.iter().filter(|e| e.seq > seq).cloned().collect();
        (events, missed)
    }
}

/// Copies the engine's events into the log and the metrics, for as long
/// as the API lives.
pub(crate) fn spawn_collector(api: &Arc<Api>) {
    let mut rx = api.engine.subscribe();
    let weak = Arc::downgrade(api);
    tokio::spawn(async move {
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the event log fell behind the engine");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(api) = weak.upgrade() else { return };
            api.metrics.observe(&event);
            api.events.keep(Arc::clone(&event));
            let _ = api.events.live.send(event);
        }
    });
}

/// Stream filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only this thread's events.
    pub thread: Option<String>,
    /// Resume after this event (the `Last-Event-ID` header wins).
    pub last_event_id: Option<u64>,
    /// The API key, for clients that cannot set headers (EventSource).
    #[allow(dead_code)] // read by the auth middleware, listed here for the document
    #[serde(rename = "access_token")]
    #[param(rename = "access_token")]
    pub access_token: Option<String>,
}

/// The engine's events as server-sent events. Each has `id` (its sequence
/// number), `event` (its type) and `data` (the event as JSON). Send
/// `Last-Event-ID` to resume.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("key" = [])),
    params(EventQuery, ("Last-Event-ID" = Option<u64>, Header, description = "resume after this event")),
    responses((status = 200, description = "text/event-stream of events", content_type = "text/event-stream"),
        (status = 400, body = crate::error::ErrorBody)))]
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
    let state = Feed::new(&api, who, q.thread, header.or(q.last_event_id));
    let stream = futures_util::stream::unfold(state, |mut feed| async move {
        let mut closing = feed.closing.clone();
        if *closing.borrow_and_update() {
            return None;
        }
        tokio::select! {
            event = feed.next() => Some((Ok(event), feed)),
            _ = closing.changed() => None,
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// What a streaming client gets next.
pub(crate) enum Item {
    /// Events it will never get: `missed` of them after `after`.
    Missed {
        /// How many.
        missed: u64,
        /// The last event it got.
        after: u64,
    },
    /// An event.
    Event(Arc<Event>),
}

pub(crate) struct Feed {
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
    api: Arc<Api>,
    who: Principal,
    thread: Option<String>,
    live: broadcast::Receiver<Arc<Event>>,
    backlog: VecDeque<Arc<Event>>,
    /// Events lost that the client has not been told about yet.
    missed: u64,
    /// The last sequence number sent.
    sent: u64,
}

impl Feed {
    /// A feed of `who`'s events (of `thread`, when given), starting after
    /// event `last` (from now, when `None`).
    pub(crate) fn new(
        api: &Arc<Api>,
        who: Principal,
        thread: Option<String>,
        last: Option<u64>,
    ) -> Self {
        // Subscribe before reading the history, so that nothing falls between.
        let live = api.events.live.subscribe();
        let (backlog, missed) = match last {
            Some(seq) => api.events.since(seq),
            None => (Vec::new(), 0),
        };
        Self {
            closing: api.closing.subscribe(),
            api: Arc::clone(api),
            who,
            thread,
            live,
            backlog: backlog.into(),
            missed,
            sent: last.unwrap_or(0),
        }
    }

    fn wanted(&self, e: &Event) -> bool {
        if e.seq <= self.sent {
            return false;
        }
        if e.thread.is_empty() {
            // Host events (graph changes, plugin swaps) go to every stream
            // that is not limited to one thread.
            return self.thread.is_none();
        }
        self.thread.as_deref().is_none_or(|t| t == e.thread)
            && self
                .api
                .engine
                .thread_project(&e.thread)
                .is_some_and(|p| self.who.sees(&p))
    }

    /// The next item for the client: what it missed, or an event.
    pub(crate) async fn next_item(&mut self) -> Item {
        loop {
            if self.missed > 0 {
                let n = std::mem::take(&mut self.missed);
                return Item::Missed {
                    missed: n,
                    after: self.sent,
                };
            }
            let event = match self.backlog.pop_front() {
                Some(e) => e,
                None => match self.live.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.missed = n;
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        // The host is going away: idle until the client does.
                        std::future::pending::<()>().await;
                        continue;
                    }
                },
            };
            if !self.wanted(&event) {
                continue;
            }
            self.sent = event.seq;
            return Item::Event(event);
        }
    }

    async fn next(&mut self) -> SseEvent {
        match self.next_item().await {
            Item::Missed { missed, after } => SseEvent::default()
                .event("missed")
                .data(serde_json::json!({ "missed": missed, "after": after }).to_string()),
            Item::Event(event) => SseEvent::default()
                .id(event.seq.to_string())
                .event(event.body.kind())
                .data(serde_json::to_string(&*event).unwrap_or_default()),
        }
    }
}
