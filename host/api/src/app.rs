//! The application: every route with auth, rate limits, body limits, CORS
//! and metrics around it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;
use crate::{Api, middleware as mw, openapi, routes};

impl Api {
    /// Every route, with auth, rate limits, body limits, CORS and metrics.
    /// The router answers requests without a socket, too (e.g. through
    /// `tower::ServiceExt::oneshot`).
    pub fn router(self: &Arc<Self>) -> Router {
        let protected = routes::protected()
            .route_layer(middleware::from_fn_with_state(
                Arc::clone(self),
                mw::authenticate,
            ))
            .with_state(Arc::clone(self));
        let open = routes::open().with_state(Arc::clone(self));
        let mut router = Router::new()
            .merge(open)
            .merge(protected)
            .merge(openapi::docs())
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
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("x-api-key"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}
