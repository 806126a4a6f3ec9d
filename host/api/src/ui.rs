//! The operators' dashboard: the files `npm run build` leaves in `ui/dist`,
//! embedded at compile time (see `build.rs`) and served at `/` (the page)
//! and `/assets/…` (scripts and styles, named by their content hash, so
//! cached for good). Nothing is fetched from elsewhere: it works offline.
//! A binary built before the UI answers `/` with a page saying how to
//! build it.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;

include!(concat!(env!("OUT_DIR"), "/ui_files.rs"));

/// What the page may load and connect to: this host only, and the OIDC
/// provider's token endpoint (`connect`) when sign-in is configured.
fn csp(connect: Option<&str>) -> HeaderValue {
    let extra = connect.map(|o| format!(" {o}")).unwrap_or_default();
    let text = format!(
        "default-src 'self'; connect-src 'self'{extra}; img-src 'self' data:; \
         style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

/// The answer to `/` in a binary built without the dashboard.
const NOT_BUILT: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>weft dashboard not built</title></head><body>\
<main><h1>The dashboard is not built into this binary</h1>\
<p>This <code>weft</code> was compiled before the dashboard was built. \
Build it with <code>cargo xtask setup</code> (or <code>npm ci &amp;&amp; npm run build</code> \
in <code>ui/</code>), then rebuild and restart <code>weft serve</code>.</p>\
<p>The API works without it: see <a href=\"/api/v1/docs\">/api/v1/docs</a>.</p>\
</main></body></html>\n";

/// `/` and `/assets/{path}`; the page may also connect to `connect` (an
/// origin).
pub(crate) fn routes(connect: Option<&str>) -> Router {
    let policy = csp(connect);
    Router::new()
        .route("/", get(move || index(policy.clone())))
        .route("/assets/{*path}", get(asset))
}

fn file(name: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The content type of a built file, by its extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn page(status: StatusCode, body: &'static [u8], policy: HeaderValue) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page names the current assets: always ask again.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn index(policy: HeaderValue) -> Response {
    match file("index.html") {
        Some(body) => page(StatusCode::OK, body, policy),
        None => page(StatusCode::OK, NOT_BUILT.as_bytes(), policy),
    }
}

async fn asset(Path(path): Path<String>) -> Response {
    let name = format!("assets/{path}");
    let Some(body) = file(&name) else {
        return ApiError::not_found(format!("no dashboard file `/{name}`")).into_response();
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&name)),
    );
    // Asset names carry their content's hash: a new build has new names.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's typed client is generated from `ui/openapi.json`; this
    /// keeps that copy equal to the served document, so an API change
    /// reaches the page's type check. `WEFT_WRITE_OPENAPI=1` rewrites it.
    #[test]
    fn the_dashboard_schema_is_the_served_document() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/openapi.json");
        let served = crate::openapi::document();
        if std::env::var_os("WEFT_WRITE_OPENAPI").is_some() {
            let text = serde_json::to_string_pretty(&served).expect("serializes");
            std::fs::write(path, text + "\n").expect("ui/openapi.json is writable");
            return;
        }
        let text = std::fs::read_to_string(path).expect("ui/openapi.json is there");
        let copy: serde_json::Value = serde_json::from_str(&text).expect("ui/openapi.json is JSON");
        assert!(
            copy == served,
            "ui/openapi.json differs from the served API document: run \
             `WEFT_WRITE_OPENAPI=1 cargo test -p weft-api --lib dashboard_schema`, then \
             `npm run check` in ui/ and fix what the page's type check finds"
        );
    }

    #[test]
    fn the_policy_names_the_token_endpoint_only_when_given() {
        let plain = csp(None);
        assert!(plain.to_str().unwrap().contains("connect-src 'self';"));
        let with = csp(Some("https://id.example:8443"));
        assert!(
            with.to_str()
                .unwrap()
                .contains("connect-src 'self' https://id.example:8443;")
        );
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type("assets/index-abc.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("assets/index-abc.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("assets/x"), "application/octet-stream");
    }
}
