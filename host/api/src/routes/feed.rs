//! A client's event stream (for SSE and the events WebSocket): the events
//! its key may see (of one thread, when asked), resuming after an event
//! id from the recent history, and a `missed` count instead of silent loss
//! when the client falls behind.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::response::sse::Event as SseEvent;
use serde::Deserialize;
use tokio::sync::broadcast;
use utoipa::IntoParams;
use weft_engine::Event;

use crate::Api;
use crate::auth::Principal;

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

/// One streaming client's position in the events.
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
        let live = api.events.subscribe();
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

    /// The next item as a server-sent event.
    pub(crate) async fn next(&mut self) -> SseEvent {
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
