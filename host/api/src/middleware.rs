//! What runs around every handler: the key check with its rate limit
//! (protected routes) and the request metrics (every route).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
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
        .or(from_query);
    let Some(key) = key else {
        return ApiError::unauthorized(
            "this needs an API key: send `Authorization: Bearer KEY` (or `X-Api-Key: KEY`)",
        )
        .into_response();
    };
    let key = key.trim();
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
    if let Err(not_until) = api.limiter.check_key(&principal.key) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        api.metrics.rate_limited();
        return ApiError {
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
        }
        .into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Counts every request by method, matched route and status.
pub(crate) async fn track(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    api.metrics
        .request(method, route, response.status().as_u16(), started.elapsed());
    response
}
