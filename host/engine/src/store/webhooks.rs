//! Webhooks as the store keeps them: a project's subscriptions, and the
//! durable outbox of deliveries with every attempt.
//!
//! A delivery is written in the same transaction as what it reports: a
//! run's status change writes one per matching subscription (a trigger in
//! the store), so a crash between the change and the delivery loses
//! nothing. Events that are not stored otherwise (budget warnings) are
//! written by [`Store::enqueue_webhook_event`](super::Store::enqueue_webhook_event),
//! idempotently per event key, so several hosts seeing one event write one
//! delivery.

use serde::{Deserialize, Serialize};

/// The events a webhook can subscribe to.
pub const WEBHOOK_EVENTS: [&str; 5] = [
    "run_finished",
    "run_failed",
    "run_interrupted",
    "budget_warning",
    "budget_exhausted",
];

/// A subscription: deliveries of `events` of `project` to `url`, signed
/// with `secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Id (`wh_…`).
    pub id: String,
    /// The project whose events it gets.
    pub project: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The events it gets (of [`WEBHOOK_EVENTS`]).
    pub events: Vec<String>,
    /// The HMAC-SHA256 key (`whsec_…`).
    pub secret: String,
    /// Creation, Unix ms.
    pub created_ms: u64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; tried again at `next_ms`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
}

impl DeliveryStatus {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// 1 for the first.
    pub attempt: u32,
    /// When it was made, Unix ms.
    pub at_ms: u64,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why it failed (no answer, a non-2xx status, a refused address).
    pub error: Option<String>,
    /// How long it took, ms.
    pub duration_ms: u64,
}

/// A delivery from the outbox, with its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredDelivery {
    /// Id: the webhook's id and the event's key, so one event is one
    /// delivery per webhook however often it is reported.
    pub id: String,
    /// The webhook.
    pub webhook: String,
    /// The event (of [`WEBHOOK_EVENTS`]).
    pub event: String,
    /// The body POSTed (JSON text), the same on every attempt.
    pub body: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When it was written, Unix ms.
    pub created_ms: u64,
    /// When it is tried next (pending).
    pub next_ms: u64,
    /// Its attempts, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

/// A delivery claimed for an attempt: the delivery, and where and how to
/// send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The delivery (attempts left out).
    pub delivery: StoredDelivery,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The webhook's URL.
    pub url: String,
    /// The webhook's secret.
    pub secret: String,
}

/// What an attempt did, and what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The delivery.
    pub delivery: String,
    /// The attempt.
    pub attempt: DeliveryAttempt,
    /// `Delivered`, `Failed` (no attempts left), or `Pending` again.
    pub status: DeliveryStatus,
    /// When a pending delivery is tried again, Unix ms.
    pub next_ms: u64,
}

/// An event for webhooks that no stored status change reports (budget
/// warnings and exhaustion).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// Its project.
    pub project: String,
    /// The event (of [`WEBHOOK_EVENTS`]).
    pub event: String,
    /// Names the event: one delivery per webhook and key.
    pub key: String,
    /// The event's data (the body's `data`).
    pub data: serde_json::Value,
    /// When it happened, Unix ms.
    pub at_ms: u64,
}

impl WebhookEvent {
    /// The body delivered for this event to `webhook`.
    pub fn body(&self, delivery: &str) -> String {
        serde_json::json!({
            "id": delivery,
            "type": self.event,
            "createdMs": self.at_ms,
            "project": self.project,
            "data": self.data,
        })
        .to_string()
    }
}

/// The id of the delivery of the event `key` to `webhook`.
pub fn delivery_id(webhook: &str, key: &str) -> String {
    format!("{webhook}/{key}")
}
