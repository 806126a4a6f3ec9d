//! OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`,
//! and how weft's errors map to it.
//!
//! Codes OpenAI's clients know keep OpenAI's names (`invalid_api_key`,
//! `model_not_found`, `rate_limit_exceeded`, `insufficient_quota`,
//! `unknown_parameter`, `empty_array` …); every other error keeps weft's
//! own code (`thread_busy`, `shutting_down` …). The type follows the
//! status: `invalid_request_error` for 4xx, `requests` for a rate limit,
//! `insufficient_quota` for a spent budget, `server_error` for 5xx.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use weft_engine::EngineError;

use crate::error::ApiError;

/// An error answer of the `/v1` surface.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OpenAiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI's `type`.
    pub kind: &'static str,
    /// Stable code.
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// The request parameter at fault.
    pub param: Option<String>,
    /// Seconds to wait (429 of the rate limit).
    pub retry_after: Option<u64>,
    /// Whether retrying the same request can help (`x-should-retry`, which
    /// OpenAI's SDKs read before their own rules); unset: their rules.
    pub retry: Option<bool>,
}

/// OpenAI's `type` for a status.
fn kind_of(status: StatusCode) -> &'static str {
    if status == StatusCode::TOO_MANY_REQUESTS {
        "requests"
    } else if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    }
}

impl OpenAiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind: kind_of(status),
            code: code.to_owned(),
            message: message.into(),
            param: None,
            retry_after: None,
            retry: None,
        }
    }

    /// 400 about one parameter.
    pub fn invalid(param: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.to_owned()),
            ..Self::new(StatusCode::BAD_REQUEST, code, message)
        }
    }

    /// 404: no graph of this name (nor the alias).
    pub fn model_not_found(model: &str) -> Self {
        Self {
            param: Some("model".into()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!(
                    "the model `{model}` does not exist: a model is a graph this host serves (GET /v1/models lists them)"
                ),
            )
        }
    }

    /// 429: a budget (the thread's tokens or the project's money) is
    /// spent. Retrying does not help until an operator raises it.
    pub fn budget_spent(message: impl Into<String>) -> Self {
        Self {
            kind: "insufficient_quota",
            retry: Some(false),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "insufficient_quota", message)
        }
    }
}

/// weft's codes renamed to the ones OpenAI's clients know.
fn code_of(code: &str) -> &str {
    match code {
        "unauthorized" => "invalid_api_key",
        "rate_limited" => "rate_limit_exceeded",
        "forbidden" => "permission_denied",
        other => other,
    }
}

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        Self {
            param: e.field,
            retry_after: e.retry_after,
            ..Self::new(e.status, code_of(&e.code), e.message)
        }
    }
}

impl From<EngineError> for OpenAiError {
    fn from(e: EngineError) -> Self {
        ApiError::from(e).into()
    }
}

/// The body of every `/v1` error answer.
#[derive(Debug, Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Debug, Serialize)]
struct Detail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

impl OpenAiError {
    /// The error as it goes into a stream: `{"error": {…}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(Body {
            error: Detail {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: &self.code,
            },
        })
        .unwrap_or_default()
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if let Some(retry) = self.retry {
            headers.insert(
                "x-should-retry",
                HeaderValue::from_static(if retry { "true" } else { "false" }),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"weft\""),
            );
        }
        response
    }
}

/// Renders errors raised before a `/v1` handler runs (a missing or wrong
/// key, a role, the rate limit, a body over the limit) in OpenAI's shape,
/// and the router's bare 405 too. The key check and rate limit are the
/// same middleware as `/api/v1`'s; only the shape differs.
pub(crate) async fn in_openai_shape(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if let Some(e) = response.extensions_mut().remove::<ApiError>() {
        return OpenAiError::from(e).into_response();
    }
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        return OpenAiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{path} does not take {method}"),
        )
        .into_response();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(e: OpenAiError) -> (u16, &'static str, String, Option<String>) {
        (e.status.as_u16(), e.kind, e.code, e.param)
    }

    #[test]
    fn weft_errors_map_to_openai_codes_types_and_statuses() {
        let e: OpenAiError = ApiError::unauthorized("the API key is not valid").into();
        assert_eq!(
            parts(e),
            (401, "invalid_request_error", "invalid_api_key".into(), None)
        );
        let e: OpenAiError = ApiError::forbidden("this needs the Operator role").into();
        assert_eq!(
            parts(e),
            (
                403,
                "invalid_request_error",
                "permission_denied".into(),
                None
            )
        );
        let limited = ApiError {
            retry_after: Some(7),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down")
        };
        let e: OpenAiError = limited.into();
        assert_eq!(e.retry_after, Some(7));
        assert_eq!(
            parts(e),
            (429, "requests", "rate_limit_exceeded".into(), None)
        );
        let e: OpenAiError = EngineError::ThreadBusy {
            thread: "t".into(),
            run: "t.run-1".into(),
        }
        .into();
        assert_eq!(
            parts(e),
            (409, "invalid_request_error", "thread_busy".into(), None)
        );
        let e: OpenAiError = EngineError::ShuttingDown.into();
        assert_eq!(
            parts(e),
            (503, "server_error", "shutting_down".into(), None)
        );
        let e: OpenAiError = ApiError::field("threadId", "bad id").into();
        assert_eq!(
            parts(e),
            (
                400,
                "invalid_request_error",
                "invalid_request".into(),
                Some("threadId".into())
            )
        );
        let e = OpenAiError::model_not_found("gpt-4o");
        assert_eq!(
            parts(e.clone()),
            (
                404,
                "invalid_request_error",
                "model_not_found".into(),
                Some("model".into())
            )
        );
        assert!(e.message.contains("`gpt-4o`"), "{}", e.message);
        let e = OpenAiError::budget_spent("the thread's token budget is spent");
        assert_eq!(e.retry, Some(false));
        assert_eq!(
            parts(e),
            (429, "insufficient_quota", "insufficient_quota".into(), None)
        );
    }

    #[test]
    fn the_body_has_exactly_openais_four_fields() {
        let body = OpenAiError::invalid("messages", "empty_array", "no messages").body();
        let error = body["error"].as_object().expect("an object");
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message", "param", "type"]);
        assert_eq!(error["param"], "messages");
        assert_eq!(error["type"], "invalid_request_error");
        // A missing param is null, as OpenAI sends it, not left out.
        let body = OpenAiError::new(StatusCode::CONFLICT, "thread_busy", "busy").body();
        assert!(body["error"]["param"].is_null());
        assert!(body["error"].get("param").is_some());
    }

    #[test]
    fn the_response_carries_retry_after_and_should_retry() {
        let e = OpenAiError {
            retry_after: Some(3),
            ..OpenAiError::from(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "slow down",
            ))
        };
        let response = e.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert!(response.headers().get("x-should-retry").is_none());
        let response = OpenAiError::budget_spent("spent").into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-should-retry"], "false");
        let response = OpenAiError::from(ApiError::unauthorized("no key")).into_response();
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
