//! What runs around every handler: the key check with its rate limit
//! (protected routes) and the request metrics (every route).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Api;
use crate::error::ApiError;

/// Finds the caller's key (`Authorization: Bearer KEY` or `X-Api-Key`),
/// refuses requests without a valid one, and applies the key's rate limit.
pub(crate) async fn authenticate(
    State(api): State<Arc<Api>>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    // Browsers cannot set headers on WebSockets and EventSource: those two
    // may pass the key as `access_token` in the query.
    let streaming = matches!(
        request.uri().path(),
        "/api/v1/ws" | "/api/v1/ws/events" | "/api/v1/events"
    );
    let from_query = streaming
        .then(|| request.uri().query())
        .flatten()
        .and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("access_token="))
        });
    let key = bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or(from_query)
        .map(|k| k.trim().to_owned());
    let Some(key) = key else {
        return ApiError::unauthorized(
            "this needs an API key: send `Authorization: Bearer KEY` (or `X-Api-Key: KEY`)",
        )
        .into_response();
    };
    // The key leaves the URI before anything else sees it: nothing after
    // this (handlers, errors, logs, spans) can show it.
    if streaming {
        redact_query(&mut request);
    }
    let key = key.as_str();
    let principal = match &api.config.oidc {
        // A JWT has three dot-separated parts; API keys have none.
        Some(oidc) if key.matches('.').count() == 2 => match oidc.verify(key) {
            Ok(p) => p,
            Err(why) => return ApiError::unauthorized(why).into_response(),
        },
        _ => match api.keys.verify(key) {
            Some(p) => p,
            None => {
                return ApiError::unauthorized("the API key is not valid (unknown or revoked)")
                    .into_response();
            }
        },
    };
    if let Err(refused) = rate_limit(&api, &principal.key) {
        return refused.into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Removes `access_token` from the request's query.
fn redact_query(request: &mut Request) {
    let uri = request.uri();
    let Some(query) = uri.query() else { return };
    if !query.split('&').any(|p| p.starts_with("access_token=")) {
        return;
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("access_token="))
        .collect();
    let path_and_query = if kept.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    if let Ok(redacted) = axum::http::Uri::from_parts(parts) {
        *request.uri_mut() = redacted;
    }
}

/// Takes one request (or one chat message) from `key`'s rate limit, or
/// says when it may go on (429 `rate_limited`).
pub(crate) fn rate_limit(api: &Api, key: &str) -> Result<(), ApiError> {
    let Err(not_until) = api.limiter.check_key(&key.to_owned()) else {
        return Ok(());
    };
    let wait = not_until.wait_time_from(governor::clock::Clock::now(
        &governor::clock::DefaultClock::default(),
    ));
    api.metrics.rate_limited();
    Err(ApiError {
        retry_after: Some(wait.as_secs().max(1)),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests for this key ({} per minute, bursts of {}); retry in {} ms",
                api.config.rate_per_minute,
                api.config.burst,
                wait.as_millis()
            ),
        )
    })
}

/// The method as a metrics label: one of a fixed set, so that clients
/// cannot add label sets (and memory) with made-up methods.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A request's headers as OpenTelemetry's propagators read them.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

/// Counts every request by method (a fixed set), matched route (the
/// route's pattern, `unmatched` for any other path) and status, and runs
/// it in a `weft.request` span that continues the caller's trace (W3C
/// `traceparent`): a run the request starts is its child, so traces
/// exported over OTLP go from the caller through weft.
pub(crate) async fn track(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let started = Instant::now();
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "weft.request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    // Without a subscriber that wants the span, there is no trace to join.
    if !span.is_disabled() {
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&Headers(request.headers()))
        });
        let _ = span.set_parent(parent);
    }
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    api.metrics
        .request(method, route, response.status().as_u16(), started.elapsed());
    response
}
