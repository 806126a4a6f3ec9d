//! The bus of a system of several hosts, on NATS JetStream
//! ([`NatsBus`], a [`SystemBus`]).
//!
//! - **Events** go to one JetStream stream, `<cluster>_events` (subjects
//!   `<cluster>.events.>`), file-backed, keeping the last `history`
//!   events. An event's id is its stream sequence number: global to the
//!   system (every host's events in one order) and kept across restarts
//!   of hosts and of nats-server, so `Last-Event-ID` resumes on any host.
//!   Each stream client reads the stream through an ordered consumer of
//!   its own, from where it resumes; a project key's client gets its
//!   project's events and host events only.
//! - **Changes** (plugin swaps, graph changes, pauses, config reloads)
//!   go on the core subject `<cluster>.changes`; **wake-ups** on
//!   `<cluster>.work`. Neither is kept: a host that was away catches up
//!   from the store (the bus hands it [`Change::Resync`] when it
//!   reconnects).
//!
//! When nats-server is unreachable the host goes on: its events are
//! delivered to its own clients without ids (they are not on the stream,
//! so no one can resume from them), changes and wake-ups reach no other
//! host; the log says so once, and again when the bus is back.

mod feed;
mod names;
mod publish;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::sync::{broadcast, mpsc};
use weft_engine::Event;
use weft_engine::bus::{Broadcast, Change, Scope, Subscription, SystemBus, WakeUps};

pub use names::Names;

/// How long connecting and each JetStream request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Events waiting to be published before this host delivers them on its
/// own.
const OUTBOX: usize = 8192;

/// Where the bus is and how it keeps events.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// The server (`nats://HOST:PORT`).
    pub url: String,
    /// Prefix of the stream and subjects: systems with different names
    /// share a NATS server without seeing each other.
    pub cluster: String,
    /// Events the stream keeps (older ones are deleted; a client resuming
    /// before them is told how many it missed).
    pub history: u64,
    /// Events buffered per streaming client.
    pub client_buffer: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            cluster: "weft".to_owned(),
            history: 100_000,
            client_buffer: 256,
        }
    }
}

/// Why the bus could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The cluster name cannot name a stream and subjects.
    #[error("bus.cluster {0:?}: use letters, digits, `-` and `_` (1 to 64 of them)")]
    InvalidCluster(String),
    /// The URL is not a NATS URL.
    #[error("bus {url}: not a NATS URL (nats://HOST:PORT): {detail}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why.
        detail: String,
    },
    /// nats-server did not answer.
    #[error("bus {url}: cannot connect to nats-server: {detail}")]
    Unreachable {
        /// The URL given.
        url: String,
        /// Why.
        detail: String,
    },
    /// The server runs without JetStream.
    #[error(
        "bus {url}: nats-server answers but has no JetStream (start it with `-js`, or `jetstream {{}}` in its config): {detail}"
    )]
    NoJetStream {
        /// The URL given.
        url: String,
        /// What the server said.
        detail: String,
    },
    /// The event stream could not be created or read.
    #[error("bus {url}: the event stream {stream}: {detail}")]
    Stream {
        /// The URL given.
        url: String,
        /// The stream's name.
        stream: String,
        /// What the server said.
        detail: String,
    },
}

impl BusError {
    /// Stable code for logs and clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCluster(_) => "bus_cluster_invalid",
            Self::InvalidUrl { .. } => "bus_url_invalid",
            Self::Unreachable { .. } => "bus_unreachable",
            Self::NoJetStream { .. } => "bus_no_jetstream",
            Self::Stream { .. } => "bus_stream",
        }
    }
}

/// The bus on NATS JetStream (see the crate docs).
pub struct NatsBus {
    shared: Arc<Shared>,
    outbox: mpsc::Sender<publish::Outgoing>,
}

/// What the bus's tasks share.
pub(crate) struct Shared {
    pub(crate) url: String,
    pub(crate) names: Names,
    pub(crate) host: String,
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) client_buffer: usize,
    /// Events delivered on this host alone (the bus was unreachable).
    pub(crate) local: broadcast::Sender<publish::Outgoing>,
    pub(crate) changes: broadcast::Sender<Broadcast>,
    pub(crate) wakes: broadcast::Sender<String>,
    /// Wake-ups being sent, for [`SystemBus::flush`].
    sending: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set while events cannot reach the stream (logged once).
    degraded: AtomicBool,
}

impl Shared {
    pub(crate) fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Notes that events cannot reach the stream (logged once per outage).
    pub(crate) fn degrade(&self, why: &str) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(bus = %self.url, reason = why,
                "the bus is unreachable: this host keeps running and delivers its events to its own clients only, without ids, until it returns");
        }
    }

    /// Notes that events reach the stream again.
    pub(crate) fn recover(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!(bus = %self.url, "the bus is back: events go to the stream again");
        }
    }
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("url", &self.shared.url)
            .field("cluster", &self.shared.names.cluster())
            .field("host", &self.shared.host)
            .finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects to nats-server, checks that it has JetStream and creates
    /// (or updates) the event stream. Refused with a [`BusError`] naming
    /// the bus when any of it fails. Call inside a Tokio runtime.
    pub async fn connect(config: NatsConfig) -> Result<Arc<Self>, BusError> {
        let names = Names::new(&config.cluster)?;
        let url = config.url.clone();
        if !url.starts_with("nats://") && !url.starts_with("tls://") {
            return Err(BusError::InvalidUrl {
                url,
                detail: "the scheme must be nats:// or tls://".to_owned(),
            });
        }
        let host = host_id();
        let changes = broadcast::Sender::new(256);
        let resync = changes.clone();
        let host_for_events = host.clone();
        let url_for_events = url.clone();
        let was_down = Arc::new(AtomicBool::new(false));
        let client = async_nats::ConnectOptions::new()
            .name(format!("weft {host}"))
            .connection_timeout(TIMEOUT)
            .event_callback(move |event| {
                let resync = resync.clone();
                let host = host_for_events.clone();
                let url = url_for_events.clone();
                let was_down = Arc::clone(&was_down);
                async move {
                    match event {
                        async_nats::Event::Disconnected => {
                            was_down.store(true, Ordering::Relaxed);
                            tracing::warn!(bus = %url, "disconnected from the bus; reconnecting");
                        }
                        async_nats::Event::Connected if was_down.swap(false, Ordering::Relaxed) => {
                            tracing::info!(bus = %url, "reconnected to the bus; catching up from the store");
                            let _ = resync.send(Broadcast {
                                origin: host,
                                change: Change::Resync,
                            });
                        }
                        other => tracing::debug!(bus = %url, event = %other, "bus connection"),
                    }
                }
            })
            .connect(url.as_str())
            .await
            .map_err(|e| {
                let detail = e.to_string();
                if matches!(e.kind(), async_nats::ConnectErrorKind::ServerParse) {
                    BusError::InvalidUrl {
                        url: url.clone(),
                        detail,
                    }
                } else {
                    BusError::Unreachable {
                        url: url.clone(),
                        detail,
                    }
                }
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(TIMEOUT);
        check_jetstream(&client, &url).await?;
        js.create_or_update_stream(names.stream_config(config.history))
            .await
            .map_err(|e| BusError::Stream {
                url: url.clone(),
                stream: names.stream(),
                detail: e.to_string(),
            })?;
        let shared = Arc::new(Shared {
            url,
            names,
            host,
            client,
            js,
            client_buffer: config.client_buffer.max(1),
            local: broadcast::Sender::new(config.client_buffer.max(16)),
            changes,
            wakes: broadcast::Sender::new(1024),
            sending: std::sync::Mutex::new(Vec::new()),
            degraded: AtomicBool::new(false),
        });
        let outbox = publish::start(Arc::clone(&shared));
        spawn_listeners(&shared).await?;
        // A round trip on the same connection: once the server answers,
        // it has registered the subscriptions above (it reads a
        // connection's commands in order), so a change or wake-up another
        // host sends after `connect` returns reaches this one.
        feed::stream_state(&shared)
            .await
            .map_err(|detail| BusError::Stream {
                url: shared.url.clone(),
                stream: shared.names.stream(),
                detail,
            })?;
        tracing::info!(bus = %shared.url, cluster = shared.names.cluster(), host = %shared.host, "connected to the bus");
        Ok(Arc::new(Self { shared, outbox }))
    }

    /// The stream's last sequence number (0 when empty), asked of the
    /// server.
    pub async fn last_seq(&self) -> Result<u64, BusError> {
        feed::stream_state(&self.shared)
            .await
            .map(|s| s.last_sequence)
            .map_err(|detail| BusError::Stream {
                url: self.shared.url.clone(),
                stream: self.shared.names.stream(),
                detail,
            })
    }
}

/// Asks the server for its JetStream account info (`$JS.API.INFO`): no
/// answer, or an error, means no JetStream for this account.
async fn check_jetstream(client: &async_nats::Client, url: &str) -> Result<(), BusError> {
    let no_jetstream = |detail: String| BusError::NoJetStream {
        url: url.to_owned(),
        detail,
    };
    let reply = tokio::time::timeout(TIMEOUT, client.request("$JS.API.INFO", Vec::new().into()))
        .await
        .map_err(|_| no_jetstream(format!("no answer to $JS.API.INFO within {TIMEOUT:?}")))?
        .map_err(|e| no_jetstream(e.to_string()))?;
    let info: serde_json::Value = serde_json::from_slice(&reply.payload)
        .map_err(|e| no_jetstream(format!("an answer that is not JSON: {e}")))?;
    match info.get("error") {
        Some(error) => Err(no_jetstream(
            error
                .get("description")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("an error")
                .to_owned(),
        )),
        None => Ok(()),
    }
}

/// Forwards the changes and wake-ups subjects into this host's channels.
async fn spawn_listeners(shared: &Arc<Shared>) -> Result<(), BusError> {
    let unreachable = |e: async_nats::SubscribeError| BusError::Unreachable {
        url: shared.url.clone(),
        detail: e.to_string(),
    };
    let mut changes = shared
        .client
        .subscribe(shared.names.changes())
        .await
        .map_err(unreachable)?;
    let mut wakes = shared
        .client
        .subscribe(shared.names.work())
        .await
        .map_err(unreachable)?;
    let to_changes = shared.changes.clone();
    tokio::spawn(async move {
        while let Some(message) = changes.next().await {
            match serde_json::from_slice::<Broadcast>(&message.payload) {
                Ok(b) => {
                    let _ = to_changes.send(b);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a change on the bus is not one this host understands; skipped")
                }
            }
        }
    });
    let to_wakes = shared.wakes.clone();
    tokio::spawn(async move {
        while let Some(message) = wakes.next().await {
            match std::str::from_utf8(&message.payload) {
                Ok(thread) => {
                    let _ = to_wakes.send(thread.to_owned());
                }
                Err(_) => tracing::warn!("a wake-up on the bus names no thread; skipped"),
            }
        }
    });
    Ok(())
}

/// A new host id: 16 hex digits, random.
fn host_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the time still tells hosts apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos as u64).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SystemBus for NatsBus {
    fn describe(&self) -> String {
        self.shared.url.clone()
    }

    fn host_id(&self) -> &str {
        &self.shared.host
    }

    fn publish(&self, event: &Event, project: Option<&str>) {
        let out = publish::Outgoing::new(event, project);
        if let Err(e) = self.outbox.try_send(out) {
            // The stream is far behind (or the bus is gone): this host's
            // clients still get the event.
            self.shared
                .degrade("the events waiting for the bus fill its outbox");
            let out = match e {
                mpsc::error::TrySendError::Full(o) | mpsc::error::TrySendError::Closed(o) => o,
            };
            let _ = self.shared.local.send(out);
        }
    }

    fn subscribe(&self, scope: Scope, last: Option<u64>) -> BoxFuture<'_, Subscription> {
        Box::pin(feed::subscribe(Arc::clone(&self.shared), scope, last))
    }

    fn broadcast(&self, change: Change) {
        let message = Broadcast {
            origin: self.shared.host.clone(),
            change,
        };
        let payload = match serde_json::to_vec(&message) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "a change could not be encoded for the bus");
                return;
            }
        };
        let client = self.shared.client.clone();
        let subject = self.shared.names.changes();
        let connected = self.shared.connected();
        let local = self.shared.changes.clone();
        tokio::spawn(async move {
            if !connected {
                tracing::warn!(
                    "the bus is unreachable: other hosts catch up on this change from the store when it returns"
                );
            }
            if let Err(e) = client.publish(subject, payload.into()).await {
                tracing::warn!(error = %e, "a change did not reach the bus; other hosts catch up from the store");
                let _ = local.send(message);
            }
        });
    }

    fn broadcasts(&self) -> broadcast::Receiver<Broadcast> {
        self.shared.changes.subscribe()
    }

    fn work_arrived(&self, thread: &str) {
        if !self.shared.connected() {
            // This host at least looks at once; the others poll the store.
            let _ = self.shared.wakes.send(thread.to_owned());
            return;
        }
        let client = self.shared.client.clone();
        let subject = self.shared.names.work();
        let payload = thread.to_owned().into_bytes();
        let sending = tokio::spawn(async move {
            if let Err(e) = client.publish(subject, payload.into()).await {
                tracing::debug!(error = %e, "a wake-up did not reach the bus; hosts poll the store");
            }
        });
        let mut pending = self
            .shared
            .sending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.retain(|h| !h.is_finished());
        pending.push(sending);
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let pending = std::mem::take(
                &mut *self
                    .shared
                    .sending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            let sent = async {
                for handle in pending {
                    let _ = handle.await;
                }
                let _ = self.shared.client.flush().await;
            };
            if tokio::time::timeout(std::time::Duration::from_secs(2), sent)
                .await
                .is_err()
            {
                tracing::warn!("the bus did not take this host's last messages in 2 s");
            }
        })
    }

    fn wake_ups(&self) -> WakeUps {
        WakeUps::new(self.shared.wakes.subscribe())
    }
}
