//! The OpenAI-compatible `/v1` surface without a socket, for what needs no
//! graph: its errors are in OpenAI's shape (`{"error": {"message", "type",
//! "param", "code"}}`) wherever they arise (the key check, roles and the
//! rate limit shared with `/api/v1`, the body limit, request validation,
//! unknown models and paths), while `/api/v1` keeps its own shape. Runs
//! through the real binary and OpenAI's Python client are in
//! host/server/tests/openai.rs.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::Host;
use serde_json::{Value, json};
use tower::ServiceExt;
use weft_api::{ApiConfig, Role};

const ADMIN: &str = "weft_openai-oneshot-admin";

fn host(name: &str, config: ApiConfig) -> Host {
    common::host_with("openai", name, ADMIN, config)
}

impl Host {
    fn key(&self, role: Role) -> String {
        self.key_in(role, None)
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body)),
            None => request.body(Body::empty()),
        };
        self.answer(request.unwrap()).await
    }

    async fn chat(&self, key: &str, body: &str) -> (StatusCode, HeaderMap, Value) {
        self.call(
            Method::POST,
            "/v1/chat/completions",
            Some(key),
            Some(body.to_owned()),
        )
        .await
    }
}

/// OpenAI's error shape: exactly its four fields, with `code` and `param`.
#[track_caller]
fn assert_openai_error(
    got: &(StatusCode, HeaderMap, Value),
    status: StatusCode,
    kind: &str,
    code: &str,
    param: Option<&str>,
) {
    let (got_status, _, body) = got;
    assert_eq!(*got_status, status, "{body}");
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{body}"));
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
    assert_eq!(error["type"], kind, "{body}");
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["param"].as_str(), param, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

const HELLO: &str = r#"{"model": "assistant", "messages": [{"role": "user", "content": "Hello"}]}"#;

#[tokio::test]
async fn keys_and_roles_are_checked_with_openai_errors() {
    let host = host("auth", ApiConfig::default());
    for key in [None, Some("weft_not-a-key")] {
        let got = host.call(Method::GET, "/v1/models", key, None).await;
        assert_openai_error(
            &got,
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            None,
        );
        assert!(got.1.contains_key(header::WWW_AUTHENTICATE));
        let got = host
            .call(
                Method::POST,
                "/v1/chat/completions",
                key,
                Some(HELLO.into()),
            )
            .await;
        assert_openai_error(
            &got,
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            None,
        );
    }
    // A viewer lists models but runs nothing.
    let viewer = host.key(Role::Viewer);
    let (status, _, body) = host
        .call(Method::GET, "/v1/models", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"object": "list", "data": []}),
        "no graph served"
    );
    let got = host.chat(&viewer, HELLO).await;
    assert_openai_error(
        &got,
        StatusCode::FORBIDDEN,
        "invalid_request_error",
        "permission_denied",
        None,
    );
    // `/api/v1` keeps its own shape: the renderer is `/v1`'s alone.
    let (status, _, body) = host.call(Method::GET, "/api/v1/organism", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    assert!(body["error"].get("type").is_none(), "{body}");
}

#[tokio::test]
async fn bad_requests_are_400s_naming_the_parameter_before_any_model_lookup() {
    let host = host("validation", ApiConfig::default());
    let operator = host.key(Role::Operator);
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("{", "invalid_json", None),
        (
            r#"{"model": "assistant", "messages": []}"#,
            "empty_array",
            Some("messages"),
        ),
        (
            r#"{"model": "assistant", "messages": [{"role": "user", "content": "hi"}], "frobnicate": true}"#,
            "unknown_parameter",
            Some("frobnicate"),
        ),
        (
            r#"{"model": "assistant", "messages": [{"role": "system", "content": "be brief"}]}"#,
            "invalid_value",
            Some("messages"),
        ),
        (
            r#"{"model": "assistant", "messages": [{"role": "user", "content": ""}]}"#,
            "invalid_value",
            Some("messages[0].content"),
        ),
        (
            r#"{"model": "assistant", "messages": [{"role": "user", "content": "hi"}], "n": 3}"#,
            "unsupported_parameter",
            Some("n"),
        ),
        (
            r#"{"model": "assistant", "messages": [{"role": "user", "content": "hi"}], "metadata": {"thread_id": "a/b"}}"#,
            "invalid_value",
            Some("metadata.thread_id"),
        ),
    ];
    for (body, code, param) in cases {
        let got = host.chat(&operator, body).await;
        assert_openai_error(
            &got,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            *param,
        );
    }
    // The thread header is checked like metadata.thread_id.
    let request = Request::post("/v1/chat/completions")
        .header(header::AUTHORIZATION, format!("Bearer {operator}"))
        .header("x-weft-thread", "tab\there")
        .body(Body::from(HELLO))
        .unwrap();
    let response = host.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let request = Request::post("/v1/chat/completions")
        .header(header::AUTHORIZATION, format!("Bearer {operator}"))
        .header("x-weft-thread", "chat-1")
        .body(Body::from(
            r#"{"model": "assistant", "messages": [{"role": "user", "content": "hi"}], "metadata": {"thread_id": "chat-2"}}"#,
        ))
        .unwrap();
    let response = host.router.clone().oneshot(request).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "two different threads"
    );
}

#[tokio::test]
async fn unknown_models_and_paths_are_404s_in_openai_shape() {
    let host = host("models", ApiConfig::default());
    let operator = host.key(Role::Operator);
    let got = host.chat(&operator, HELLO).await;
    assert_openai_error(
        &got,
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "model_not_found",
        Some("model"),
    );
    let got = host
        .call(Method::GET, "/v1/models/gpt-4o", Some(&operator), None)
        .await;
    assert_openai_error(
        &got,
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "model_not_found",
        Some("model"),
    );
    // The active graph's alias, with no graph active: 503.
    let got = host
        .chat(
            &operator,
            r#"{"model": "weft", "messages": [{"role": "user", "content": "hi"}]}"#,
        )
        .await;
    assert_openai_error(
        &got,
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "no_graph",
        None,
    );
    let got = host
        .call(
            Method::POST,
            "/v1/completions",
            Some(&operator),
            Some("{}".into()),
        )
        .await;
    assert_openai_error(
        &got,
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "unknown_url",
        None,
    );
    let got = host
        .call(Method::DELETE, "/v1/models", Some(&operator), None)
        .await;
    assert_openai_error(
        &got,
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        None,
    );
}

#[tokio::test]
async fn the_rate_limit_and_the_body_limit_are_api_v1s_in_openai_shape() {
    let config = ApiConfig {
        rate_per_minute: 1,
        burst: 1,
        body_limit: 256,
        ..ApiConfig::default()
    };
    let host = host("limits", config);
    let big = format!(
        r#"{{"model": "assistant", "messages": [{{"role": "user", "content": "{}"}}]}}"#,
        "x".repeat(1024)
    );
    let got = host.chat(ADMIN, &big).await;
    assert_openai_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "payload_too_large",
        None,
    );
    let got = host
        .call(Method::GET, "/v1/models", Some(ADMIN), None)
        .await;
    assert_openai_error(
        &got,
        StatusCode::TOO_MANY_REQUESTS,
        "requests",
        "rate_limit_exceeded",
        None,
    );
    let wait: u64 = got.1[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // One limit per key, whichever surface the requests go to.
    let (status, _, _) = host
        .call(Method::GET, "/api/v1/organism", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}
