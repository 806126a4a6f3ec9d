//! Putting this host's events on the stream, in order, without ever
//! holding up the engine: events queue in an outbox that one task
//! publishes; what cannot reach the stream is delivered to this host's
//! own clients instead (unnumbered). So is an event larger than the
//! server takes (its `max_payload`, 1 MiB by default: a long run's
//! `frame_trace` carries every journal), which says nothing of the bus
//! being out of reach.

use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use weft_engine::Event;

use crate::{OUTBOX, Shared};

/// The header naming the project of a thread's event.
pub(crate) const PROJECT: &str = "Weft-Project";
/// The header naming the host that published an event.
pub(crate) const HOST: &str = "Weft-Host";

/// An event on its way to the stream.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) event: Arc<Event>,
    pub(crate) project: Option<String>,
}

impl Outgoing {
    pub(crate) fn new(event: &Event, project: Option<&str>) -> Self {
        Self {
            // Unnumbered until the stream numbers it.
            event: Arc::new(Event {
                seq: 0,
                ..event.clone()
            }),
            project: project.map(str::to_owned),
        }
    }
}

/// Starts the publishing task; its outbox.
pub(crate) fn start(shared: Arc<Shared>) -> mpsc::Sender<Outgoing> {
    let (tx, mut rx) = mpsc::channel::<Outgoing>(OUTBOX);
    tokio::spawn(async move {
        let mut acks = FuturesUnordered::new();
        loop {
            tokio::select! {
                next = rx.recv() => {
                    let Some(out) = next else { break };
                    if !shared.connected() {
                        shared.degrade("not connected");
                        let _ = shared.local.send(out);
                        continue;
                    }
                    match publish(&shared, &out).await {
                        Ok(ack) => acks.push(async move { (ack.await, out) }),
                        Err(Refused::TooLarge(e)) => {
                            tracing::warn!(bus = %shared.url, kind = out.event.body.kind(),
                                thread = %out.event.thread, error = %e,
                                "an event is larger than the bus takes (nats-server's max_payload): only this host's clients get it, without an id; raise max_payload in nats-server's config to share such events");
                            let _ = shared.local.send(out);
                        }
                        Err(Refused::Other(e)) => {
                            shared.degrade(&e);
                            let _ = shared.local.send(out);
                        }
                    }
                }
                Some((ack, out)) = acks.next(), if !acks.is_empty() => match ack {
                    Ok(_) => shared.recover(),
                    Err(e) => {
                        // Not confirmed: it may or may not be on the stream.
                        // This host's clients get it either way.
                        shared.degrade(&e.to_string());
                        let _ = shared.local.send(out);
                    }
                },
            }
        }
        // Let the last events reach the stream.
        while let Some((ack, _)) = acks.next().await {
            if let Err(e) = ack {
                tracing::debug!(error = %e, "an event was not confirmed by the bus at shutdown");
            }
        }
    });
    tx
}

type Ack = async_nats::jetstream::context::PublishAckFuture;

/// Why an event did not go to the stream.
enum Refused {
    /// It is larger than the server takes.
    TooLarge(String),
    /// Anything else (the bus is out of reach, most likely).
    Other(String),
}

/// Sends one event to the stream (in order: one task sends them all).
async fn publish(shared: &Shared, out: &Outgoing) -> Result<Ack, Refused> {
    let payload = serde_json::to_vec(&*out.event).map_err(|e| Refused::Other(e.to_string()))?;
    let mut headers = HeaderMap::new();
    headers.insert(HOST, shared.host.as_str());
    if let Some(project) = &out.project {
        headers.insert(PROJECT, project.as_str());
    }
    let subject = shared.names.event(out.event.thread.is_empty());
    shared
        .js
        .publish_with_headers(subject, headers, payload.into())
        .await
        .map_err(|e| match e.kind() {
            PublishErrorKind::MaxPayloadExceeded => Refused::TooLarge(e.to_string()),
            _ => Refused::Other(e.to_string()),
        })
}
