//! [`OpenAiProvider`]: chat completion over the OpenAI HTTP API, as spoken
//! by OpenAI itself and by llama.cpp, vLLM, Ollama, LM Studio and others.

use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tracing::Instrument;
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::{CapabilityError, Completion, CompletionRequest};

use crate::config::OpenAiConfig;
use crate::error::LlmError;
use crate::retry::{Backoff, parse_retry_after};
use crate::sse::SseDecoder;
use crate::stream::StreamState;
use crate::wire::{self, ChatRequest, ChatResponse, StreamOptions, Usage};
use crate::{CallReport, UsageSource, fmt_duration};

/// A chat-completions client for one OpenAI-compatible endpoint, with
/// retries, backoff and timeouts. Cheap to share: wrap it in an `Arc`.
pub struct OpenAiProvider {
    config: OpenAiConfig,
    url: Url,
    client: reqwest::Client,
    backoff: Backoff,
}

impl std::fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the API key; it stays out of logs.
        f.debug_struct("OpenAiProvider")
            .field("name", &self.config.name)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// The result of one HTTP attempt that did not succeed.
enum AttemptError {
    /// Worth another attempt (after `retry_after` if the server said so).
    Retry {
        error: CapabilityError,
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way, or could repeat deltas.
    Final(CapabilityError),
}

/// A successful answer before metering is settled.
struct Answer {
    text: String,
    usage: Option<Usage>,
    model: Option<String>,
}

impl OpenAiProvider {
    /// Builds the provider, reading the API key from `config.api_key_env`.
    ///
    /// Fails when the key variable is missing, the URL is not http(s), a
    /// timeout is zero, or the HTTP client cannot be created.
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let invalid = |reason: String| LlmError::InvalidConfig {
            provider: config.name.clone(),
            reason,
        };
        let endpoint = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        let url = Url::parse(&endpoint)
            .map_err(|e| invalid(format!("base_url `{}` is not a URL: {e}", config.base_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "base_url `{}` must be http or https",
                config.base_url
            )));
        }
        if config.timeout.is_zero() || config.stream_idle_timeout.is_zero() {
            return Err(invalid("timeouts must be greater than zero".into()));
        }
        let mut headers = HeaderMap::new();
        if let Some(var) = &config.api_key_env {
            let key = std::env::var(var)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| LlmError::MissingApiKey {
                    provider: config.name.clone(),
                    var: var.clone(),
                })?;
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                .map_err(|_| invalid(format!("the API key in `{var}` is not a valid header")))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("weft-llm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| LlmError::Client {
                provider: config.name.clone(),
                source,
            })?;
        Ok(Self {
            backoff: Backoff::new(config.backoff_base, config.backoff_max),
            config,
            url,
            client,
        })
    }

    /// The configuration the provider was built from.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// Answers `request` like [`LlmBackend::complete`], and also reports
    /// how: the provider model id, whether usage was reported or estimated,
    /// the number of HTTP attempts and the latency.
    pub async fn complete_detailed(
        &self,
        call: LlmCall<'_>,
        request: CompletionRequest,
    ) -> Result<(Completion, CallReport), CapabilityError> {
        let started = Instant::now();
        let model = self.resolve_model(call.model)?;
        let response_format = match request.json_schema.as_deref() {
            Some(schema) => Some(wire::json_schema_format(
                serde_json::from_str::<Value>(schema).map_err(|e| {
                    CapabilityError::InvalidInput(format!("the JSON schema does not parse: {e}"))
                })?,
            )),
            None => None,
        };
        let body = ChatRequest {
            model: &model,
            messages: &request.messages,
            max_tokens: request.max_tokens,
            stream: request.stream,
            stream_options: request.stream.then_some(StreamOptions {
                include_usage: true,
            }),
            response_format,
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| CapabilityError::Failed(format!("cannot encode the request: {e}")))?;
        let span = tracing::info_span!(
            "weft.llm.openai",
            provider = %self.config.name,
            model = %model,
            stream = request.stream,
            node = %call.ctx.node,
        );
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let attempts = self.attempts(call, &body, request.stream, deadline);
        let (answer, attempts) = match tokio::time::timeout_at(deadline, attempts)
            .instrument(span.clone())
            .await
        {
            Ok(result) => result?,
            Err(_) => return Err(CapabilityError::Unavailable(self.no_answer())),
        };
        let (usage, source) = match answer.usage {
            Some(usage) => (usage, UsageSource::Reported),
            None => {
                let usage = estimate_usage(&request, &answer.text);
                span.in_scope(|| {
                    tracing::warn!(
                        prompt_tokens = usage.prompt_tokens,
                        completion_tokens = usage.completion_tokens,
                        "the provider reported no token usage; it was estimated"
                    );
                });
                (usage, UsageSource::Estimated)
            }
        };
        let answered_by = answer.model.unwrap_or(model);
        let report = CallReport {
            provider: self.config.name.clone(),
            model: answered_by.clone(),
            usage: source,
            attempts,
            latency: started.elapsed(),
        };
        let completion = Completion {
            text: answer.text,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            model: answered_by,
            provider: self.config.name.clone(),
            usage_estimated: report.usage == UsageSource::Estimated,
        };
        Ok((completion, report))
    }

    fn resolve_model(&self, model: Option<&str>) -> Result<String, CapabilityError> {
        match model {
            Some(name) => Ok(self
                .config
                .model_map
                .get(name)
                .cloned()
                .unwrap_or_else(|| name.to_owned())),
            None => self.config.default_model.clone().ok_or_else(|| {
                CapabilityError::InvalidInput(format!(
                    "provider `{}` needs a model: the node names none and no default_model is configured",
                    self.config.name
                ))
            }),
        }
    }

    /// Runs attempts until one succeeds, one fails for good, the retries
    /// are spent, or the next wait would pass `deadline`.
    async fn attempts(
        &self,
        call: LlmCall<'_>,
        body: &[u8],
        stream: bool,
        deadline: tokio::time::Instant,
    ) -> Result<(Answer, u32), CapabilityError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (error, retry_after) = match self.attempt(call, body, stream).await {
                Ok(answer) => return Ok((answer, attempt)),
                Err(AttemptError::Final(error)) => return Err(error),
                Err(AttemptError::Retry { error, retry_after }) => (error, retry_after),
            };
            let give_up = |error: CapabilityError| match error {
                CapabilityError::Unavailable(m) => CapabilityError::Unavailable(format!(
                    "{m} (gave up after {attempt} attempt{})",
                    if attempt == 1 { "" } else { "s" }
                )),
                other => other,
            };
            if attempt > self.config.max_retries {
                return Err(give_up(error));
            }
            let wait = self.backoff.wait(attempt, retry_after);
            if tokio::time::Instant::now() + wait >= deadline {
                return Err(give_up(error));
            }
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, %error, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        call: LlmCall<'_>,
        body: &[u8],
        stream: bool,
    ) -> Result<Answer, AttemptError> {
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, accept)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(response).await);
        }
        let answer = if stream {
            self.read_stream(call, response).await
        } else {
            self.read_json(response).await
        };
        answer.map_err(AttemptError::Final)
    }

    fn transport_error(&self, error: &reqwest::Error) -> AttemptError {
        if error.is_timeout() {
            return AttemptError::Final(CapabilityError::Unavailable(self.no_answer()));
        }
        if error.is_builder() {
            return AttemptError::Final(CapabilityError::Failed(format!(
                "cannot build the request: {}",
                chain(error)
            )));
        }
        AttemptError::Retry {
            error: CapabilityError::Unavailable(format!(
                "provider `{}` is unreachable at {}: {}",
                self.config.name,
                self.url,
                chain(error)
            )),
            retry_after: None,
        }
    }

    async fn status_error(&self, response: reqwest::Response) -> AttemptError {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let message = match response.text().await {
            Ok(body) => wire::error_message(&body),
            Err(e) => format!("(body unreadable: {})", chain(&e)),
        };
        let name = &self.config.name;
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                AttemptError::Final(CapabilityError::Failed(format!(
                    "provider `{name}` rejected the API key ({status}: {message})"
                )))
            }
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                AttemptError::Final(CapabilityError::InvalidInput(format!(
                    "provider `{name}` refused the request: {message}"
                )))
            }
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => AttemptError::Retry {
                error: CapabilityError::Unavailable(format!(
                    "provider `{name}` answered {status}: {message}"
                )),
                retry_after,
            },
            s if s.is_server_error() => AttemptError::Retry {
                error: CapabilityError::Unavailable(format!(
                    "provider `{name}` answered {status}: {message}"
                )),
                retry_after,
            },
            _ => AttemptError::Final(CapabilityError::Failed(format!(
                "provider `{name}` answered {status}: {message}"
            ))),
        }
    }

    async fn read_json(&self, response: reqwest::Response) -> Result<Answer, CapabilityError> {
        let name = &self.config.name;
        let body = response.text().await.map_err(|e| {
            CapabilityError::Unavailable(format!(
                "provider `{name}` broke off its answer: {}",
                chain(&e)
            ))
        })?;
        let parsed: ChatResponse = serde_json::from_str(&body).map_err(|e| {
            CapabilityError::Failed(format!(
                "provider `{name}` sent something that is not a chat completion ({e}): {}",
                wire::excerpt(&body)
            ))
        })?;
        let content = parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| {
                CapabilityError::Failed(format!(
                    "provider `{name}` sent a completion without message content: {}",
                    wire::excerpt(&body)
                ))
            })?;
        Ok(Answer {
            text: content,
            usage: parsed.usage,
            model: parsed.model,
        })
    }

    async fn read_stream(
        &self,
        call: LlmCall<'_>,
        response: reqwest::Response,
    ) -> Result<Answer, CapabilityError> {
        let name = &self.config.name;
        let idle = self.config.stream_idle_timeout;
        let mut bytes = response.bytes_stream();
        let mut decoder = SseDecoder::default();
        let mut state = StreamState::default();
        while !state.done {
            let chunk = match tokio::time::timeout(idle, bytes.next()).await {
                Err(_) => {
                    return Err(CapabilityError::Unavailable(format!(
                        "provider `{name}` sent nothing for {} while streaming",
                        fmt_duration(idle)
                    )));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(CapabilityError::Unavailable(format!(
                        "the stream of provider `{name}` broke off: {}",
                        chain(&e)
                    )));
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            for data in decoder.feed(&chunk) {
                state.event(name, &data, call.deltas)?;
                if state.done {
                    break;
                }
            }
        }
        if !state.done
            && let Some(data) = decoder.finish()
        {
            state.event(name, &data, call.deltas)?;
        }
        if !state.complete() {
            return Err(CapabilityError::Unavailable(format!(
                "the stream of provider `{name}` ended before the answer was complete"
            )));
        }
        Ok(Answer {
            text: state.text,
            usage: state.usage,
            model: state.model,
        })
    }

    fn no_answer(&self) -> String {
        format!(
            "provider `{}` did not answer within {}",
            self.config.name,
            fmt_duration(self.config.timeout)
        )
    }
}

impl LlmBackend for OpenAiProvider {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        // The report is dropped here until calls are metered in a ledger.
        Box::pin(async move { self.complete_detailed(call, request).await.map(|(c, _)| c) })
    }
}

/// Roughly four characters per token, at least one token per side.
fn estimate_usage(request: &CompletionRequest, text: &str) -> Usage {
    let tokens = |chars: usize| u32::try_from(chars / 4).unwrap_or(u32::MAX).max(1);
    let prompt_chars = request
        .messages
        .iter()
        .map(|m| m.content.chars().count())
        .sum();
    Usage {
        prompt_tokens: tokens(prompt_chars),
        completion_tokens: tokens(text.chars().count()),
    }
}

/// An error with its causes, as reqwest's own message rarely says why.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
