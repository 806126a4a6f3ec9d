//! The application: every route with auth, rate limits, body limits, CORS
//! and metrics around it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware;
use tower_http::cors::{AllowOrigin, CorsLayer};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::{Api, mcp, middleware as mw, openai, openapi, routes, ui};

impl Api {
    /// Every route, with auth, rate limits, body limits, CORS and metrics.
    /// The router answers requests without a socket, too (e.g. through
    /// `tower::ServiceExt::oneshot`).
    pub fn router(self: &Arc<Self>) -> Router {
        // Layers run outside in: the key check, then the route's role,
        // then the handler with its extractors. No body is read for a
        // caller without a valid key or the route's role.
        let protected = routes::protected()
            .route_layer(middleware::from_fn(require_role))
            .route_layer(middleware::from_fn_with_state(
                Arc::clone(self),
                mw::authenticate,
            ))
            .with_state(Arc::clone(self));
        let open = routes::open().with_state(Arc::clone(self));
        // The OpenAI-compatible surface: the same key check, rate limit
        // and roles, its errors in OpenAI's shape.
        let openai = openai::routes()
            .route_layer(middleware::from_fn(require_role))
            .route_layer(middleware::from_fn_with_state(
                Arc::clone(self),
                mw::authenticate,
            ))
            .layer(middleware::from_fn(openai::in_openai_shape))
            .with_state(Arc::clone(self));
        // MCP over Streamable HTTP: the same key check and rate limit
        // (roles are checked per tool call).
        let mcp = Router::new()
            .nest_service("/mcp", mcp::service(Arc::clone(self)))
            .layer(middleware::from_fn_with_state(
                Arc::clone(self),
                mw::authenticate,
            ));
        let mut router = Router::new()
            .merge(open)
            .merge(mcp)
            .merge(protected)
            .merge(openai)
            .merge(openapi::docs())
            .merge(ui::routes(
                self.config
                    .oidc
                    .as_ref()
                    .and_then(|o| o.config().sign_in.as_ref())
                    .and_then(|s| s.token_origin())
                    .as_deref(),
            ))
            .fallback(|| async {
                ApiError::not_found("no such route (the API is under /api/v1; see /api/v1/docs)")
            })
            // Extractors refuse larger bodies with a 413 in the error shape;
            // a route may raise its own limit (plugin uploads).
            .layer(DefaultBodyLimit::max(self.config.body_limit))
            .layer(middleware::from_fn_with_state(Arc::clone(self), mw::track));
        if let Some(cors) = cors(&self.config.cors_origins) {
            router = router.layer(cors);
        }
        router
    }
}

/// The least role a route needs, by method and route: reads need a
/// viewer, acts an operator (running a graph through
/// `/v1/chat/completions` too), and managing keys, reloading, uploading
/// plugins, resetting usage and stopping the host an admin. Handlers check
/// the same again (with the project); this check runs before any of them
/// reads a body.
pub(crate) fn least_role(method: &Method, route: &str) -> Role {
    const ADMIN: &[(&str, &str)] = &[
        ("*", "/api/v1/keys"),
        ("*", "/api/v1/keys/{id}"),
        ("POST", "/api/v1/organism/reload"),
        ("POST", "/api/v1/organism/config/reload"),
        ("POST", "/api/v1/organism/stop"),
        ("PUT", "/api/v1/plugins/{name}"),
        ("POST", "/api/v1/plugins/{name}/reload"),
        ("POST", "/api/v1/usage/reset"),
        // Where a project's events go, and the secret that signs them.
        ("POST", "/api/v1/webhooks"),
        ("DELETE", "/api/v1/webhooks/{id}"),
    ];
    // A webhook's deliveries carry replies.
    if route.starts_with("/api/v1/webhooks") {
        return Role::Operator;
    }
    if ADMIN
        .iter()
        .any(|(m, r)| *r == route && (*m == "*" || *m == method.as_str()))
    {
        return Role::Admin;
    }
    // The chat socket acts (it injects messages).
    if route == "/api/v1/ws" {
        return Role::Operator;
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        Role::Viewer
    } else {
        Role::Operator
    }
}

/// Refuses a caller below the route's [`least_role`] before the handler
/// (and its body extractors) runs.
async fn require_role(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(who) = request.extensions().get::<Principal>() else {
        return ApiError::unauthorized("this needs an API key").into_response();
    };
    if let Err(e) = who.require(least_role(request.method(), &route)) {
        return e.into_response();
    }
    next.run(request).await
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("x-api-key"),
                openai::THREAD_HEADER,
            ])
            // What a page's script may read of an answer: the thread and
            // run an OpenAI-compatible answer belongs to, when to retry
            // after a 429, and why a key was refused.
            .expose_headers([
                openai::THREAD_HEADER,
                openai::RUN_HEADER,
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(Duration::from_secs(600)),
    )
}
