//! `webhooks:`: how `weft serve` delivers a project's webhooks.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// `webhooks:`: deliveries of the webhooks projects add
/// (`POST /api/v1/webhooks`): which receivers are allowed, how long one
/// has to answer, and how failed deliveries are retried.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSection {
    /// Allow receivers on loopback, private, link-local and other
    /// non-public addresses (off: such a URL is refused when the webhook
    /// is added, and a delivery whose host resolves to one fails).
    pub allow_private_addresses: bool,
    /// Attempts before a delivery is `failed` (1 to 100).
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: u32,
    /// Milliseconds a receiver has to answer (100 to 120000).
    #[schemars(range(min = 100, max = 120_000))]
    pub timeout_ms: u64,
    /// Milliseconds before the second attempt; doubled after each failed
    /// one (at least 100).
    #[schemars(range(min = 100))]
    pub backoff_ms: u64,
    /// The longest wait between attempts, in milliseconds (at least
    /// `backoff_ms`).
    pub max_backoff_ms: u64,
}

impl Default for WebhookSection {
    fn default() -> Self {
        let d = weft_api::WebhookConfig::default();
        Self {
            allow_private_addresses: d.allow_private_addresses,
            max_attempts: d.max_attempts,
            timeout_ms: d.timeout.as_millis() as u64,
            backoff_ms: d.backoff.as_millis() as u64,
            max_backoff_ms: d.max_backoff.as_millis() as u64,
        }
    }
}

impl WebhookSection {
    /// The delivery settings, or what is out of range.
    pub fn settings(&self) -> Result<weft_api::WebhookConfig, String> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err(format!(
                "webhooks.max_attempts is 1 to 100, not {}",
                self.max_attempts
            ));
        }
        if !(100..=120_000).contains(&self.timeout_ms) {
            return Err(format!(
                "webhooks.timeout_ms is 100 to 120000, not {}",
                self.timeout_ms
            ));
        }
        if self.backoff_ms < 100 || self.max_backoff_ms < self.backoff_ms {
            return Err(format!(
                "webhooks.backoff_ms is at least 100 and max_backoff_ms at least backoff_ms (got {} and {})",
                self.backoff_ms, self.max_backoff_ms
            ));
        }
        Ok(weft_api::WebhookConfig {
            allow_private_addresses: self.allow_private_addresses,
            max_attempts: self.max_attempts,
            timeout: Duration::from_millis(self.timeout_ms),
            backoff: Duration::from_millis(self.backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
            ..weft_api::WebhookConfig::default()
        })
    }
}
