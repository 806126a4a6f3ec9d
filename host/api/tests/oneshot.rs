//! The router without a socket: requests go through
//! `tower::ServiceExt::oneshot`, for what needs no graph and no store
//! (auth refusals, paging and filter errors, unknown threads and plugins,
//! the error shape, and that every documented route is routed). What needs
//! a socket or a running graph is tested against the real binary
//! (host/server/tests).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::Host;
use serde_json::{Value, json};
use weft_api::{ApiConfig, Role};

const ADMIN: &str = "weft_oneshot-admin-key";

fn host_with(name: &str, config: ApiConfig) -> Host {
    common::host_with("oneshot", name, ADMIN, config)
}

fn host(name: &str) -> Host {
    host_with(name, ApiConfig::default())
}

impl Host {
    /// A new key with `role` (in `project`, when given).
    fn key(&self, role: Role, project: Option<&str>) -> String {
        self.key_in(role, project)
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        self.answer(request).await
    }

    /// `method uri` with `key` and a JSON `body`.
    async fn send(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        let (status, _, body) = self.call(request.unwrap()).await;
        (status, body)
    }

    async fn get(&self, uri: &str, key: &str) -> (StatusCode, Value) {
        self.send(Method::GET, uri, Some(key), None).await
    }
}

/// The one error shape, with `code` (and `field`, when one is at fault).
#[track_caller]
fn assert_error(got: (StatusCode, Value), status: StatusCode, code: &str, field: Option<&str>) {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "{body}");
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(error.get("field").and_then(Value::as_str), field, "{body}");
    let keys: Vec<&String> = error.keys().collect();
    assert!(
        keys.iter()
            .all(|k| ["code", "message", "field"].contains(&k.as_str())),
        "{body}"
    );
}

#[tokio::test]
async fn health_and_readiness_need_no_key() {
    let host = host("health");
    for uri in ["/health", "/ready"] {
        let (status, body) = host.send(Method::GET, uri, None, None).await;
        assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("ok")));
        // Which host answered (its id in leases and `/api/v1/hosts`).
        assert!(
            body["host"].as_str().is_some_and(|h| !h.is_empty()),
            "{body}"
        );
    }
    let (status, body) = host.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    for metric in [
        "weft_runs_in_flight",
        "weft_instances_idle",
        "weft_instances_reused",
        "weft_ticks_queued",
    ] {
        assert!(text.contains(metric), "{metric} missing: {body}");
    }
}

#[tokio::test]
async fn requests_without_a_valid_key_are_refused_with_401() {
    let host = host("auth");
    let request = Request::get("/api/v1/organism")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = host.call(request).await;
    assert_error(
        (status, body),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        None,
    );
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer realm=\"weft\"");
    let (status, body) = host
        .send(
            Method::GET,
            "/api/v1/organism",
            Some("weft_not-a-key"),
            None,
        )
        .await;
    assert_error(
        (status, body.clone()),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        None,
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid")
    );
    // The key may come as `X-Api-Key` or a lower-case `bearer`; in the
    // query only for the streams.
    for (name, value) in [
        ("x-api-key", ADMIN.to_owned()),
        ("authorization", format!("bearer {ADMIN}")),
    ] {
        let request = Request::get("/api/v1/organism")
            .header(name, value)
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = host.call(request).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(body["activeGraph"], Value::Null);
        assert_eq!(body["graphs"], 0);
    }
    let uri = format!("/api/v1/organism?access_token={ADMIN}");
    let (status, body) = host.send(Method::GET, &uri, None, None).await;
    assert_error(
        (status, body),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        None,
    );
}

#[tokio::test]
async fn roles_and_projects_are_refused_with_403_and_404() {
    let host = host("roles");
    let viewer = host.key(Role::Viewer, None);
    let operator = host.key(Role::Operator, None);
    let acme = host.key(Role::Admin, Some("acme"));
    for (method, uri, body) in [
        (Method::GET, "/api/v1/keys", None),
        (Method::POST, "/api/v1/organism/stop", None),
        (Method::POST, "/api/v1/organism/reload", None),
        (Method::POST, "/api/v1/plugins/nope/reload", None),
        (Method::POST, "/api/v1/threads/t-1/kill", None),
        (Method::POST, "/api/v1/inject", Some(json!({"text": "hi"}))),
    ] {
        let got = host.send(method, uri, Some(&viewer), body).await;
        assert_error(got, StatusCode::FORBIDDEN, "forbidden", None);
    }
    let got = host
        .send(Method::GET, "/api/v1/keys", Some(&operator), None)
        .await;
    assert_error(got, StatusCode::FORBIDDEN, "forbidden", None);
    // A key of one project learns nothing of another.
    for uri in [
        "/api/v1/usage/nodes/a",
        "/api/v1/usage/projects/other/budget",
        "/api/v1/projects/other/agents",
        "/api/v1/agents?project=other",
    ] {
        assert_error(
            host.get(uri, &acme).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }
    // A key cannot revoke itself.
    let (_, keys) = host.get("/api/v1/keys", ADMIN).await;
    let own = keys[0]["id"].as_str().unwrap().to_owned();
    let got = host
        .send(
            Method::DELETE,
            &format!("/api/v1/keys/{own}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_error(got, StatusCode::CONFLICT, "own_key", None);
}

#[tokio::test]
async fn bad_paging_and_filters_are_400s_naming_the_field() {
    let host = host("paging");
    for (uri, code, field) in [
        ("/api/v1/threads?limit=0", "invalid_request", Some("limit")),
        (
            "/api/v1/threads?limit=501",
            "invalid_request",
            Some("limit"),
        ),
        ("/api/v1/threads?limit=ten", "invalid_query", None),
        ("/api/v1/threads?offset=-1", "invalid_query", None),
        ("/api/v1/threads?colour=red", "invalid_query", None),
        (
            "/api/v1/threads/t-1/messages?limit=0",
            "invalid_request",
            Some("limit"),
        ),
        (
            "/api/v1/messages?limit=501",
            "invalid_request",
            Some("limit"),
        ),
        (
            "/api/v1/projects/p/agents?limit=0",
            "invalid_request",
            Some("limit"),
        ),
        ("/api/v1/frames?last=0", "invalid_request", Some("last")),
        ("/api/v1/frames?last=101", "invalid_request", Some("last")),
    ] {
        let got = host.get(uri, ADMIN).await;
        assert_error(got, StatusCode::BAD_REQUEST, code, field);
    }
}

#[tokio::test]
async fn status_filters_parse_into_the_engines_statuses() {
    let host = host("status");
    let (status, body) = host.get("/api/v1/threads?status=sleeping", ADMIN).await;
    assert_error(
        (status, body.clone()),
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("status"),
    );
    assert_eq!(
        body["error"]["message"],
        "unknown status `sleeping`; one of running, completed, killed, preempted, \
         rolled_back, frame_limit, store_failed, interrupted, suspended, budget_exhausted, waiting"
    );
    // A known status passes the filter (this host keeps no store).
    for s in [
        "running",
        "waiting",
        "budget_exhausted",
        "completed",
        "store_failed",
    ] {
        let got = host
            .get(&format!("/api/v1/threads?status={s}"), ADMIN)
            .await;
        assert_error(
            got,
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            None,
        );
    }
    let got = host
        .get("/api/v1/projects/p/agents?status=sleeping", ADMIN)
        .await;
    assert_error(
        got,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("status"),
    );
    for s in ["idle", "working", "waiting", "paused", "terminated"] {
        let (status, page) = host
            .get(&format!("/api/v1/projects/p/agents?status={s}"), ADMIN)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(
            page,
            json!({"items": [], "total": 0, "limit": 50, "offset": 0})
        );
    }
}

#[tokio::test]
async fn unknown_threads_graphs_and_plugins_are_404s() {
    let host = host("unknown");
    for uri in [
        "/api/v1/threads/nope",
        "/api/v1/threads/nope/messages",
        "/api/v1/threads/nope/runs",
        "/api/v1/threads/nope/frames",
        "/api/v1/threads/nope/result",
        "/api/v1/graphs/nope",
        "/api/v1/capabilities/nope",
        "/api/v1/usage/nodes/nope",
    ] {
        assert_error(
            host.get(uri, ADMIN).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }
    let (status, body) = host.get("/api/v1/threads/nope", ADMIN).await;
    assert_eq!(
        (status, &body["error"]["message"]),
        (StatusCode::NOT_FOUND, &json!("no thread `nope`"))
    );
    for (method, uri, body) in [
        (Method::POST, "/api/v1/threads/nope/kill", None),
        (
            Method::POST,
            "/api/v1/threads/nope/fork",
            Some(json!({"after": 0})),
        ),
        (
            Method::PUT,
            "/api/v1/usage/threads/nope/budget",
            Some(json!({"raise": 5})),
        ),
        (Method::POST, "/api/v1/plugins/nope/reload", None),
    ] {
        let got = host.send(method, uri, Some(ADMIN), body).await;
        assert_error(got, StatusCode::NOT_FOUND, "not_found", None);
    }
    let request = Request::put("/api/v1/plugins/nope")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::from(vec![0u8; 16]))
        .unwrap();
    let (status, _, body) = host.call(request).await;
    assert_error(
        (status, body.clone()),
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_eq!(body["error"]["message"], "no plugin `nope`");
    let got = host
        .send(
            Method::PUT,
            "/api/v1/graphs/active",
            Some(ADMIN),
            Some(json!({"name": "nope"})),
        )
        .await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found", Some("name"));
    // With no graph active, nothing runs.
    for uri in ["/api/v1/graphs/active", "/api/v1/agents"] {
        let got = host.get(uri, ADMIN).await;
        assert_error(got, StatusCode::SERVICE_UNAVAILABLE, "no_graph", None);
    }
}

#[tokio::test]
async fn thread_ids_are_checked_before_anything_runs() {
    let host = host("thread-ids");
    let message = "a thread id has 1 to 128 characters, no `/` and no control characters";
    let long = "x".repeat(129);
    for id in ["", "a/b", "tab\there", long.as_str()] {
        let (status, body) = host
            .send(
                Method::POST,
                "/api/v1/inject",
                Some(ADMIN),
                Some(json!({"text": "hi", "threadId": id})),
            )
            .await;
        assert_error(
            (status, body.clone()),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("threadId"),
        );
        assert_eq!(body["error"]["message"], message, "{id:?}");
    }
    let uri = format!("/api/v1/threads/{long}/messages");
    let (status, body) = host
        .send(Method::POST, &uri, Some(ADMIN), Some(json!({"text": "hi"})))
        .await;
    assert_error(
        (status, body.clone()),
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("threadId"),
    );
    assert_eq!(body["error"]["message"], message);
    // A valid id goes on (to find no active graph here).
    let got = host
        .send(
            Method::POST,
            "/api/v1/inject",
            Some(ADMIN),
            Some(json!({"text": "hi", "threadId": "t-1"})),
        )
        .await;
    assert_error(got, StatusCode::SERVICE_UNAVAILABLE, "no_graph", None);
}

#[tokio::test]
async fn every_bad_request_gets_the_one_error_shape() {
    let host = host("shape");
    assert_error(
        host.get("/api/v1/nothing-here", ADMIN).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    for (body, content_type, status, code) in [
        (
            "{\"text\": ",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "{\"text\": 5}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "{\"text\": \"x\", \"extra\": 1}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "{\"text\": \"x\"}",
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ] {
        let request = Request::post("/api/v1/inject")
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        let (got, _, value) = host.call(request).await;
        assert_error((got, value), status, code, None);
    }
    let got = host
        .send(Method::POST, "/api/v1/inject", Some(ADMIN), Some(json!({})))
        .await;
    assert_error(
        got,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("text"),
    );
    let huge = json!({"text": "x".repeat(2 << 20)});
    let got = host
        .send(Method::POST, "/api/v1/inject", Some(ADMIN), Some(huge))
        .await;
    assert_error(
        got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    );
    let got = host
        .send(
            Method::POST,
            "/api/v1/keys",
            Some(ADMIN),
            Some(json!({"name": "k", "role": "superuser"})),
        )
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "invalid_request", None);
    let got = host
        .send(
            Method::POST,
            "/api/v1/organism/config/reload",
            Some(ADMIN),
            None,
        )
        .await;
    assert_error(got, StatusCode::CONFLICT, "no_config_file", None);
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let config = ApiConfig {
        rate_per_minute: 1,
        burst: 1,
        ..ApiConfig::default()
    };
    let host = host_with("rate", config);
    let (status, _) = host.get("/api/v1/organism", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    let request = Request::get("/api/v1/organism")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = host.call(request).await;
    assert_error(
        (status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        None,
    );
    let wait: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

/// Every operation of the OpenAPI document is routed: asked without a key,
/// each answers something other than the router's own 404 or 405.
#[tokio::test]
async fn every_documented_route_is_routed() {
    let host = host("routes");
    let (status, doc) = host
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let uri: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { "x" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let methods = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()));
        for method in methods {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = host.send(method.clone(), &uri, None, None).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            let fallback = body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("no such route"));
            assert!(!fallback, "{method} {path} is documented but not routed");
        }
    }
    assert!(operations >= 57, "{operations} operations");
    // The probe tells an unrouted path apart.
    let (status, body) = host
        .send(Method::GET, "/api/v1/not-documented", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no such route")
    );
}
