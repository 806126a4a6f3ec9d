//! Webhook deliveries: the task that sends the store's outbox to the
//! receivers, signed, retried with backoff; the check that keeps a
//! receiver off private addresses; and the signature.
//!
//! Every delivery is a `POST` of the stored JSON body with
//!
//! - `Content-Type: application/json`,
//! - `Weft-Event: <event>` and `Weft-Delivery: <delivery id>`,
//! - `Weft-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC
//!   keyed with the webhook's secret over `<t>.<body>` (verify it, and
//!   refuse a `t` too far from now to stop replays).
//!
//! A 2xx answer delivers it; anything else (another status, no answer in
//! `timeout`, an address refused) is an attempt that failed, retried after
//! `backoff · 2^(attempt−1)` (at most `max_backoff`) until `max_attempts`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use reqwest::Url;
use sha2::Sha256;
use weft_engine::store::{
    AttemptOutcome, ClaimedDelivery, DeliveryAttempt, DeliveryStatus, WebhookEvent,
};
use weft_engine::{Engine, Event, EventBody, Store};

/// How webhooks are delivered (`webhooks:` in the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Receivers on loopback, private, link-local and other non-public
    /// addresses are allowed (off: refused when the webhook is added and
    /// again at each delivery, after DNS).
    pub allow_private_addresses: bool,
    /// Attempts before a delivery is `failed`.
    pub max_attempts: u32,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// The wait after the first failed attempt; doubled after each.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// How often the outbox is looked at.
    pub tick: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            max_attempts: 8,
            timeout: Duration::from_secs(10),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            tick: Duration::from_millis(500),
        }
    }
}

/// Why a receiver's URL is refused.
pub(crate) fn check_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "a webhook URL is http:// or https://, not `{}:`",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{raw}` names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a webhook URL carries no credentials; the signature authenticates".into());
    }
    Ok(url)
}

/// Whether `ip` is an address anyone on the internet could reach.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

/// How long a receiver's name may take to resolve.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The addresses `url` resolves to, refused when one is not public and
/// `allow_private` is off.
pub(crate) async fn resolve(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((bare, port)))
            .await
            .map_err(|_| format!("resolving `{host}` took longer than {LOOKUP_TIMEOUT:?}"))?
            .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("`{host}` resolves to no address"));
    }
    if !allow_private && let Some(private) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(format!(
            "`{host}` resolves to {}, a private or loopback address (allowed only with `webhooks.allow_private_addresses: true`)",
            private.ip()
        ));
    }
    Ok(addrs)
}

/// The `Weft-Signature` header's value for `body` at `t` (Unix seconds).
pub fn signature(secret: &str, t: u64, body: &str) -> String {
    // An HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// Sends due deliveries every `config.tick`, until the engine is dropped
/// or stops.
pub(crate) fn spawn_deliverer(engine: &Arc<Engine>, config: WebhookConfig) {
    if engine.store().is_none() || tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let engine = Arc::downgrade(engine);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(engine) = engine.upgrade() else {
                return;
            };
            if engine.is_stopping() {
                return;
            }
            let Some(store) = engine.store().cloned() else {
                return;
            };
            drop(engine);
            deliver_due(&store, &config).await;
        }
    });
}

/// Writes the outbox deliveries of a budget warning or exhaustion of
/// `project` (other events are not webhooks' or are written by the store
/// with the status change they report). In the background: the event
/// stream does not wait for the store.
pub(crate) fn enqueue_budget_event(api: &crate::Api, event: &Event, project: &str) {
    let (kind, data) = match &event.body {
        EventBody::BudgetWarning(data) => ("budget_warning", data),
        EventBody::BudgetExhausted(data) => ("budget_exhausted", data),
        _ => return,
    };
    let Some(store) = api.engine.store().cloned() else {
        return;
    };
    let scope = data["scope"].as_str().unwrap_or("thread");
    let percent = data["percent"].as_u64().unwrap_or(100);
    let frame = event
        .frame
        .map_or_else(|| "-".to_owned(), |f| f.to_string());
    let mut body = serde_json::json!({
        "threadId": event.thread,
        "runId": event.run,
        "node": event.node,
    });
    if let (Some(b), Some(d)) = (body.as_object_mut(), data.as_object()) {
        b.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let webhook_event = WebhookEvent {
        project: project.to_owned(),
        event: kind.to_owned(),
        // One delivery per run, frame, scope and threshold, whichever
        // host reports it.
        key: format!("{kind}/{}/{frame}/{scope}/{percent}", event.run),
        data: body,
        at_ms: now_ms(),
    };
    tokio::spawn(async move {
        if let Err(error) = store.enqueue_webhook_event(webhook_event).await {
            tracing::warn!(%error, "writing a budget event to the webhook outbox failed");
        }
    });
}

/// The wall clock, Unix milliseconds.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Claims and sends what is due now; returns how many were tried.
pub(crate) async fn deliver_due(store: &Arc<dyn Store>, config: &WebhookConfig) -> usize {
    let lease = config.timeout + Duration::from_secs(30);
    let claimed = match store
        .claim_deliveries(now_ms(), lease.as_millis() as u64, 32)
        .await
    {
        Ok(c) => c,
        Err(error) => {
            tracing::warn!(%error, "reading the webhook outbox failed");
            return 0;
        }
    };
    let n = claimed.len();
    futures_util::stream::iter(claimed)
        .for_each_concurrent(8, |claimed| async move {
            let outcome = attempt(&claimed, config).await;
            let (id, status) = (outcome.delivery.clone(), outcome.status);
            if let Err(error) = store.record_attempt(outcome).await {
                tracing::warn!(delivery = id, %error, "recording a webhook attempt failed");
            } else if status == DeliveryStatus::Failed {
                tracing::warn!(delivery = id, "a webhook delivery failed for good");
            }
        })
        .await;
    n
}

/// One attempt at `claimed`, and what follows from it.
async fn attempt(claimed: &ClaimedDelivery, config: &WebhookConfig) -> AttemptOutcome {
    let started = Instant::now();
    let at_ms = now_ms();
    let number = claimed.attempts + 1;
    let result = send(claimed, config).await;
    let (status_code, error) = match result {
        Ok(code) if (200..300).contains(&code) => (Some(code), None),
        Ok(code) => (
            Some(code),
            Some(format!("the receiver answered HTTP {code}")),
        ),
        Err(e) => (None, Some(e)),
    };
    let status = if error.is_none() {
        DeliveryStatus::Delivered
    } else if number >= config.max_attempts {
        DeliveryStatus::Failed
    } else {
        DeliveryStatus::Pending
    };
    let wait = config
        .backoff
        .saturating_mul(1u32 << (number - 1).min(20))
        .min(config.max_backoff);
    AttemptOutcome {
        delivery: claimed.delivery.id.clone(),
        attempt: DeliveryAttempt {
            attempt: number,
            at_ms,
            status_code,
            error,
            duration_ms: started.elapsed().as_millis() as u64,
        },
        status,
        next_ms: at_ms + wait.as_millis() as u64,
    }
}

/// POSTs the delivery to the addresses its URL resolves to now (checked
/// again: DNS may have changed since the webhook was added).
async fn send(claimed: &ClaimedDelivery, config: &WebhookConfig) -> Result<u16, String> {
    let url = check_url(&claimed.url)?;
    let addrs = resolve(&url, config.allow_private_addresses).await?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        // Straight to the address checked: no proxy from the environment.
        .no_proxy()
        .resolve_to_addrs(&host, &addrs)
        .user_agent(concat!("weft-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let t = now_ms() / 1000;
    let body = claimed.delivery.body.clone();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("weft-event", &claimed.delivery.event)
        .header("weft-delivery", &claimed.delivery.id)
        .header("weft-signature", signature(&claimed.secret, t, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_the_timestamp_and_the_body() {
        // Computed independently (Python:
        // hmac.new(b"whsec_test", b"1700000000.{}", sha256).hexdigest()).
        assert_eq!(
            signature("whsec_test", 1_700_000_000, "{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn only_http_urls_without_credentials_are_taken() {
        assert!(check_url("https://example.com/hook").is_ok());
        assert!(check_url("http://127.0.0.1:9/x").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "not a url",
            "https://u:p@example.com/",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
