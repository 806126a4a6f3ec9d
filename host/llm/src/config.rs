//! Configuration of an [`OpenAiProvider`](crate::OpenAiProvider).
//!
//! The struct deserializes from the provider section of a YAML or JSON
//! config file; durations are written in milliseconds (`timeout_ms`, ...)
//! so the file needs no duration syntax.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Where an OpenAI-compatible chat-completions endpoint lives and how
/// patiently to talk to it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The provider's name in logs, reports and error messages.
    pub name: String,
    /// The API root, without `/chat/completions`
    /// (e.g. `http://127.0.0.1:8080/v1`).
    pub base_url: String,
    /// Name of the environment variable holding the API key, sent as
    /// `Authorization: Bearer <key>`. Read once, when the provider is built;
    /// `None` sends no key (local servers).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Provider model id used when the node names no model.
    #[serde(default)]
    pub default_model: Option<String>,
    /// Maps weft model names (a node's `model`, e.g. `small`) to provider
    /// model ids; a name not in the map is sent unchanged.
    #[serde(default)]
    pub model_map: BTreeMap<String, String>,
    /// Upper bound on one `complete` call, retries and backoff included.
    #[serde(rename = "timeout_ms", default = "defaults::timeout", with = "millis")]
    #[schemars(with = "u64")]
    pub timeout: Duration,
    /// Upper bound on establishing a TCP (and TLS) connection.
    #[serde(
        rename = "connect_timeout_ms",
        default = "defaults::connect_timeout",
        with = "millis"
    )]
    #[schemars(with = "u64")]
    pub connect_timeout: Duration,
    /// Longest silence tolerated between two chunks of a streamed answer.
    #[serde(
        rename = "stream_idle_timeout_ms",
        default = "defaults::stream_idle_timeout",
        with = "millis"
    )]
    #[schemars(with = "u64")]
    pub stream_idle_timeout: Duration,
    /// Retries after a 408, 429, 5xx answer or a refused connection
    /// (so at most `max_retries + 1` attempts).
    #[serde(default = "defaults::max_retries")]
    pub max_retries: u32,
    /// First backoff step; step `n` is `backoff_base * 2^n`, fully jittered.
    #[serde(
        rename = "backoff_base_ms",
        default = "defaults::backoff_base",
        with = "millis"
    )]
    #[schemars(with = "u64")]
    pub backoff_base: Duration,
    /// Cap on one backoff wait, `Retry-After` included.
    #[serde(
        rename = "backoff_max_ms",
        default = "defaults::backoff_max",
        with = "millis"
    )]
    #[schemars(with = "u64")]
    pub backoff_max: Duration,
}

impl OpenAiConfig {
    /// A config for `name` at `base_url` with every other setting at its
    /// default: no key, no default model, 60 s timeout, 3 retries.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            base_url: base_url.into(),
            api_key_env: None,
            default_model: None,
            model_map: BTreeMap::new(),
            timeout: defaults::timeout(),
            connect_timeout: defaults::connect_timeout(),
            stream_idle_timeout: defaults::stream_idle_timeout(),
            max_retries: defaults::max_retries(),
            backoff_base: defaults::backoff_base(),
            backoff_max: defaults::backoff_max(),
        }
    }
}

mod defaults {
    use std::time::Duration;

    pub(super) fn timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub(super) fn connect_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub(super) fn stream_idle_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn max_retries() -> u32 {
        3
    }
    pub(super) fn backoff_base() -> Duration {
        Duration::from_millis(250)
    }
    pub(super) fn backoff_max() -> Duration {
        Duration::from_secs(10)
    }
}

/// (De)serializes a [`Duration`] as whole milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }

    /// The other way, for the defaults the config schema shows.
    pub(crate) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_millisecond_durations() {
        let config: OpenAiConfig = serde_json::from_str(
            r#"{"name": "local", "base_url": "http://127.0.0.1:8080/v1",
                "model_map": {"small": "qwen3-4b"}, "timeout_ms": 1500}"#,
        )
        .unwrap();
        assert_eq!(config.timeout, Duration::from_millis(1500));
        assert_eq!(config.max_retries, 3);
        assert_eq!(config.backoff_base, Duration::from_millis(250));
        assert_eq!(config.backoff_max, Duration::from_secs(10));
        assert_eq!(config.model_map["small"], "qwen3-4b");
        let defaults = OpenAiConfig {
            timeout: Duration::from_millis(1500),
            model_map: config.model_map.clone(),
            ..OpenAiConfig::new("local", "http://127.0.0.1:8080/v1")
        };
        assert_eq!(config, defaults);
    }

    #[test]
    fn rejects_unknown_keys() {
        let err = serde_json::from_str::<OpenAiConfig>(
            r#"{"name": "x", "base_url": "http://x", "timeout": 5}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
    }
}
