//! A client's event stream (for SSE and the events WebSocket): the events
//! its key may see (of one thread, when asked), from the bus, resuming
//! after an event id from the kept history, and a `missed` count instead
//! of silent loss when the client falls behind.

use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::Event as SseEvent;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Deserialize;
use utoipa::IntoParams;
use weft_engine::Event;
use weft_engine::bus::{Delivery, Scope};

use crate::Api;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::events::StreamSlot;

/// Stream filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only this thread's events.
    pub thread: Option<String>,
    /// Resume after this event (the `Last-Event-ID` header wins; `0`: from
    /// the start of this boot, or with a bus from the first event kept; an
    /// id of an earlier boot, or beyond the last event: `reset`).
    pub last_event_id: Option<u64>,
    /// The API key, for clients that cannot set headers (EventSource).
    #[allow(dead_code)] // read by the auth middleware, listed here for the document
    #[serde(rename = "access_token")]
    #[param(rename = "access_token")]
    pub access_token: Option<String>,
}

/// How often an open stream or socket checks that its key is still valid
/// (not revoked, its token not expired).
pub(crate) const REVALIDATE: Duration = Duration::from_secs(5);

/// What a streaming client gets next.
pub(crate) enum Item {
    /// The id it resumed after is not of this boot (or beyond the last
    /// event): what it had is gone; everything kept follows.
    Reset {
        /// The id it gave.
        last: u64,
        /// Where it goes on from (the start of this boot).
        after: u64,
    },
    /// Events it will never get: `missed` of them after `after`.
    Missed {
        /// How many.
        missed: u64,
        /// The last event it got.
        after: u64,
    },
    /// An event.
    Event(Arc<Event>),
    /// Its key was revoked or its token expired: the stream ends.
    Revoked(&'static str),
}

/// One streaming client's position in its key's events: the host's for a
/// key without a project scope, its project's otherwise.
pub(crate) struct Feed {
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
    api: Arc<Api>,
    who: Principal,
    thread: Option<String>,
    live: BoxStream<'static, Delivery>,
    ended: bool,
    revoked: bool,
    /// The id it resumed after, when it was not of this boot.
    reset: Option<u64>,
    /// Events lost that the client has not been told about yet.
    missed: u64,
    /// The last sequence number sent.
    sent: u64,
    check: tokio::time::Interval,
    _slot: StreamSlot,
}

impl Feed {
    /// A feed of `who`'s events (of `thread`, when given), starting after
    /// event `last` (from now, when `None`); 429 when the key has too many
    /// streams open.
    pub(crate) async fn new(
        api: &Arc<Api>,
        who: Principal,
        thread: Option<String>,
        last: Option<u64>,
    ) -> ApiResult<Self> {
        let slot = api.streams.take(&who.key)?;
        let scope = match who.project() {
            None => Scope::All,
            Some(p) => Scope::Project(p.to_owned()),
        };
        let resume = api.bus.subscribe(scope, last).await;
        let mut check = tokio::time::interval(REVALIDATE);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            closing: api.closing.subscribe(),
            api: Arc::clone(api),
            who,
            thread,
            live: resume.items,
            ended: false,
            revoked: false,
            reset: resume.reset,
            missed: resume.missed,
            sent: resume.after,
            check,
            _slot: slot,
        })
    }

    fn wanted(&self, e: &Event) -> bool {
        // Unnumbered events (this host's, while the bus was unreachable)
        // are not in the stream's order: they are never held back.
        if e.seq != 0 && e.seq <= self.sent {
            return false;
        }
        if e.thread.is_empty() {
            // Host events (graph changes, plugin swaps) go to every stream
            // that is not limited to one thread.
            return self.thread.is_none();
        }
        // The subscription holds only the events the key may see.
        self.thread.as_deref().is_none_or(|t| t == e.thread)
    }

    /// The next item for the client: a reset, what it missed, an event, or
    /// the end of a revoked key's stream.
    pub(crate) async fn next_item(&mut self) -> Item {
        loop {
            if let Some(last) = self.reset.take() {
                return Item::Reset {
                    last,
                    after: self.sent,
                };
            }
            if self.missed > 0 {
                let n = std::mem::take(&mut self.missed);
                return Item::Missed {
                    missed: n,
                    after: self.sent,
                };
            }
            let event = tokio::select! {
                received = self.live.next(), if !self.ended => match received {
                    Some(Delivery::Event(e)) => e,
                    Some(Delivery::Missed(n)) => {
                        self.missed = n;
                        continue;
                    }
                    None => {
                        // The host is going away: idle until the client does.
                        self.ended = true;
                        continue;
                    }
                },
                _ = self.check.tick() => {
                    if let Err(why) = self.api.still_valid(&self.who) {
                        return Item::Revoked(why);
                    }
                    continue;
                }
            };
            if !self.wanted(&event) {
                continue;
            }
            if event.seq != 0 {
                self.sent = event.seq;
            }
            return Item::Event(event);
        }
    }

    /// The next item as a server-sent event; `None` once the stream ends.
    pub(crate) async fn next(&mut self) -> Option<SseEvent> {
        if self.revoked {
            return None;
        }
        Some(match self.next_item().await {
            Item::Reset { last, after } => SseEvent::default()
                .id(after.to_string())
                .event("reset")
                .data(reset_data(last, after).to_string()),
            Item::Missed { missed, after } => SseEvent::default()
                .event("missed")
                .data(serde_json::json!({ "missed": missed, "after": after }).to_string()),
            Item::Event(event) => {
                let sse = SseEvent::default()
                    .event(event.body.kind())
                    .data(serde_json::to_string(&*event).unwrap_or_default());
                // An unnumbered event carries no id: the client's
                // `Last-Event-ID` stays the last numbered one.
                if event.seq == 0 {
                    sse
                } else {
                    sse.id(event.seq.to_string())
                }
            }
            Item::Revoked(why) => {
                self.revoked = true;
                SseEvent::default()
                    .event("revoked")
                    .data(serde_json::json!({ "reason": why }).to_string())
            }
        })
    }
}

/// `?thread=` checked like a thread id in a REST request (400 otherwise).
pub(crate) fn checked_thread(thread: Option<String>) -> ApiResult<Option<String>> {
    thread
        .map(|id| {
            crate::ids::ThreadId::parse(id)
                .map(|id| id.as_str().to_owned())
                .map_err(|e| crate::error::ApiError::field("thread", e.to_string()))
        })
        .transpose()
}

/// What a `reset` says.
pub(crate) fn reset_data(last: u64, after: u64) -> serde_json::Value {
    serde_json::json!({
        "lastEventId": last,
        "after": after,
        "reason": "the id is not of this host's current run (it restarted, or the id is unknown): events before it are gone; every event kept since the start follows",
    })
}
