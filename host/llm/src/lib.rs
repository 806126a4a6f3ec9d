//! LLM providers for weft's `llm` capability.
//!
//! [`LocalProvider`] (cargo feature `local`, on by default in the `weft`
//! binary) runs a GGUF model in-process on the CPU with llama.cpp: the
//! embedded default, offline, with grammar-constrained JSON answers.
//! [`OpenAiProvider`] speaks the OpenAI chat-completions API (also served by
//! llama.cpp, vLLM, Ollama and most hosted providers), streamed or not, with
//! JSON-schema answers, retries with jittered backoff, `Retry-After`, and a
//! hard deadline per call. [`Failover`] chains backends so that a provider
//! that is down hands over to the next.
//!
//! Provider failures are mapped to [`CapabilityError`](weft_runtime::CapabilityError)s
//! a node can act on: `unavailable` (down, overloaded, too slow: worth trying
//! later or elsewhere), `invalid_input` (the provider refused the request)
//! and `failed` (rejected key, unparseable answer).

mod config;
mod error;
mod failover;
#[cfg(feature = "local")]
pub mod local;
mod openai;
mod retry;
mod router;
mod sse;
mod stream;
mod wire;

use std::time::Duration;

pub use config::OpenAiConfig;
pub use error::LlmError;
pub use failover::Failover;
#[cfg(feature = "local")]
pub use local::{LocalConfig, LocalProvider};
pub use openai::OpenAiProvider;
pub use router::ModelRouter;

/// Where the token counts of a completion come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageSource {
    /// The provider reported them.
    Reported,
    /// The provider did not; they were estimated at four characters per
    /// token and may be off by a wide margin.
    Estimated,
}

/// How one completion was obtained, for metering and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    /// The provider's configured name.
    pub provider: String,
    /// The provider model id that answered (as the provider reported it,
    /// else as requested).
    pub model: String,
    /// Whether the token counts were reported or estimated.
    pub usage: UsageSource,
    /// HTTP attempts made, retries included (at least 1).
    pub attempts: u32,
    /// Time from the call to the complete answer.
    pub latency: Duration,
}

/// `60s` for whole seconds, else `1500ms`: short enough for error messages.
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
