//! Reading the event stream for one client: an ordered consumer of its
//! own from where the client resumes, recreated from the last event it
//! got whenever the connection drops, and the events this host delivered
//! alone while the stream was out of reach.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::{Ordered, OrderedConfig};
use async_nats::jetstream::stream::State;
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};
use weft_engine::Event;
use weft_engine::bus::{Delivery, Scope, Subscription};

use crate::Shared;
use crate::publish::{Outgoing, PROJECT};

/// The longest wait between two attempts to reopen a consumer.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The stream's numbers now.
pub(crate) async fn stream_state(shared: &Shared) -> Result<State, String> {
    let mut stream = shared
        .js
        .get_stream(shared.names.stream())
        .await
        .map_err(|e| e.to_string())?;
    let info = stream.info().await.map_err(|e| e.to_string())?;
    Ok(info.state.clone())
}

/// Where a consumer starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// With the next event published.
    New,
    /// At this stream sequence number.
    At(u64),
}

/// A client's subscription (see the module docs).
pub(crate) async fn subscribe(
    shared: Arc<Shared>,
    scope: Scope,
    last: Option<u64>,
) -> Subscription {
    let local = shared.local.subscribe();
    let state = if shared.connected() {
        stream_state(&shared).await.ok()
    } else {
        None
    };
    let (start, after, reset, missed) = match (last, state) {
        (None, Some(s)) => (Start::At(s.last_sequence + 1), s.last_sequence, None, 0),
        (None, None) => (Start::New, 0, None, 0),
        // Out of reach: resume where asked once the stream is back.
        (Some(id), None) => (Start::At(id + 1), id, None, 0),
        (Some(0), Some(s)) => (
            Start::At(s.first_sequence.max(1)),
            0,
            None,
            s.first_sequence.saturating_sub(1),
        ),
        (Some(id), Some(s)) if id <= s.last_sequence => (
            Start::At(id + 1),
            id,
            None,
            s.first_sequence.saturating_sub(id + 1),
        ),
        // Beyond the last event: of a stream since deleted, or made up.
        (Some(id), Some(s)) => (
            Start::At(s.first_sequence.max(1)),
            0,
            Some(id),
            s.first_sequence.saturating_sub(1),
        ),
    };
    let (tx, rx) = mpsc::channel(shared.client_buffer);
    tokio::spawn(follow(shared, scope, start, local, tx));
    let items =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|d| (d, rx)) })
            .boxed();
    Subscription {
        reset,
        missed,
        after,
        items,
    }
}

/// Feeds `tx` until the client goes away.
async fn follow(
    shared: Arc<Shared>,
    scope: Scope,
    mut start: Start,
    mut local: broadcast::Receiver<Outgoing>,
    tx: mpsc::Sender<Delivery>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut messages = match open(&shared, start).await {
            Ok(m) => {
                backoff = Duration::from_millis(100);
                Some(m)
            }
            Err(e) => {
                tracing::debug!(error = %e, "the event stream is out of reach; trying again");
                None
            }
        };
        let retry = tokio::time::sleep(backoff);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                message = async { match messages.as_mut() { Some(m) => m.next().await, None => std::future::pending().await } } => {
                    let message = match message {
                        Some(Ok(m)) => m,
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "the event consumer failed; reopening it");
                            break;
                        }
                        None => break,
                    };
                    let Ok(info) = message.info() else { continue };
                    let seq = info.stream_sequence;
                    start = Start::At(seq + 1);
                    let project = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(PROJECT))
                        .map(|v| v.as_str().to_owned());
                    let mut event: Event = match serde_json::from_slice(&message.payload) {
                        Ok(e) => e,
                        Err(e) => {
                            tracing::warn!(seq, error = %e, "an event on the stream is not one this host understands; skipped");
                            continue;
                        }
                    };
                    event.seq = seq;
                    if scope.shows(&event, project.as_deref())
                        && tx.send(Delivery::Event(Arc::new(event))).await.is_err()
                    {
                        return;
                    }
                }
                received = local.recv() => match received {
                    Ok(out) => {
                        if scope.shows(&out.event, out.project.as_deref())
                            && tx.send(Delivery::Event(out.event)).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        if tx.send(Delivery::Missed(n)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = &mut retry, if messages.is_none() => break,
                () = tx.closed() => return,
            }
        }
        if messages.is_none() {
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// An ordered consumer of the whole stream from `start`.
async fn open(shared: &Shared, start: Start) -> Result<Ordered, String> {
    if !shared.connected() {
        return Err("not connected".to_owned());
    }
    let stream = shared
        .js
        .get_stream(shared.names.stream())
        .await
        .map_err(|e| e.to_string())?;
    let deliver_policy = match start {
        Start::New => DeliverPolicy::New,
        Start::At(seq) => DeliverPolicy::ByStartSequence {
            start_sequence: seq.max(1),
        },
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_subject: shared.client.new_inbox(),
            filter_subject: shared.names.events(),
            deliver_policy,
            ..OrderedConfig::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    consumer.messages().await.map_err(|e| e.to_string())
}
