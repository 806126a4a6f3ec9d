//! CORS (`api.cors`): a page on an allowed origin may call every method
//! the API has, send the headers it reads (keys, `Last-Event-ID`,
//! `X-Weft-Thread`) and read the headers it answers with (`X-Weft-Thread`,
//! `X-Weft-Run`, `Retry-After`, `WWW-Authenticate`); another origin gets
//! no CORS header at all, and without `api.cors` nothing is added.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use weft_api::{ApiConfig, Role};

const PAGE: &str = "https://chat.example.org";

fn host(name: &str, origins: &[&str]) -> common::Host {
    let config = ApiConfig {
        cors_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        ..ApiConfig::default()
    };
    common::host_with("cors", name, "cors-admin-key-0123456789", config)
}

/// A preflight from `origin` for `method` on `path`, asking to send `headers`.
fn preflight(origin: &str, method: &str, path: &str, headers: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri(path)
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, headers)
        .body(Body::empty())
        .unwrap()
}

fn listed(value: Option<&header::HeaderValue>) -> Vec<String> {
    value
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::test]
async fn an_allowed_origin_may_use_every_method_and_the_weft_headers() {
    let host = host("allowed", &[PAGE]);
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let (status, headers, _) = host
            .answer(preflight(
                PAGE,
                method,
                "/api/v1/projects/p/agents/a",
                "authorization,content-type,x-weft-thread,last-event-id,x-api-key",
            ))
            .await;
        assert!(status.is_success(), "preflight for {method}: {status}");
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            PAGE,
            "preflight for {method}"
        );
        let methods = listed(headers.get(header::ACCESS_CONTROL_ALLOW_METHODS));
        assert!(
            methods.contains(&method.to_ascii_lowercase()),
            "{method} not in {methods:?}"
        );
        let allowed = listed(headers.get(header::ACCESS_CONTROL_ALLOW_HEADERS));
        for h in [
            "authorization",
            "content-type",
            "x-weft-thread",
            "last-event-id",
            "x-api-key",
        ] {
            assert!(allowed.contains(&h.to_owned()), "{h} not in {allowed:?}");
        }
    }

    // An answer (here a refusal: no key) lets the page read the headers
    // it needs.
    let request = Request::builder()
        .uri("/v1/models")
        .header(header::ORIGIN, PAGE)
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = host.answer(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], PAGE);
    let exposed = listed(headers.get(header::ACCESS_CONTROL_EXPOSE_HEADERS));
    for h in [
        "x-weft-thread",
        "x-weft-run",
        "retry-after",
        "www-authenticate",
    ] {
        assert!(exposed.contains(&h.to_owned()), "{h} not in {exposed:?}");
    }

    // With a key, the answer is the API's as usual.
    let key = host.key_in(Role::Viewer, None);
    let request = Request::builder()
        .uri("/v1/models")
        .header(header::ORIGIN, PAGE)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = host.answer(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], PAGE);
    assert_eq!(body["object"], "list", "{body}");
}

#[tokio::test]
async fn another_origin_and_a_host_without_cors_get_no_cors_headers() {
    let open = host("other", &[PAGE]);
    let (_, headers, _) = open
        .answer(preflight(
            "https://elsewhere.example.com",
            "POST",
            "/v1/chat/completions",
            "authorization,content-type",
        ))
        .await;
    assert!(
        headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
        "{headers:?}"
    );

    let closed = host("closed", &[]);
    let request = Request::builder()
        .uri("/v1/models")
        .header(header::ORIGIN, PAGE)
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = closed.answer(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
        "{headers:?}"
    );
}
