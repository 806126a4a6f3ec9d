//! The operators' dashboard, served by the real `weft serve` (scripted
//! model): its files with their content types and cache headers, and the
//! browser tests of `ui/tests/dashboard.mjs`, which drive Chromium
//! (headless, through playwright-core) over a real socket. Screenshots of
//! every view land in `target/dashboard/`.
//!
//! `cargo xtask test` installs Chromium and builds the dashboard (npm
//! packages included) before this runs.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, root, temp_dir};
use reqwest::header;
use serde_json::json;

const SCRIPT: &str = "graphs/scripts/assistant-demo.json";
/// A bound only a hung browser reaches.
const BROWSER_BOUND: Duration = Duration::from_secs(600);

/// A copy of the built plugins the upload may replace.
fn plugin_copy(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for entry in std::fs::read_dir(root().join("artifacts/plugins")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wasm") {
            std::fs::copy(&path, plugins.join(path.file_name().unwrap())).unwrap();
        }
    }
    plugins
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("WEFT_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "no Chromium at {} (`cargo xtask test` installs Debian's chromium; WEFT_CHROMIUM names another)",
        path.display()
    );
    path
}

/// A stand-in OIDC provider for the browser test: its authorization
/// endpoint signs the person in at once (as an operator of the project
/// `default`) and sends them back with a code; its token endpoint checks
/// the code, the redirect URI, the client and the PKCE verifier (S256)
/// before it answers with a signed token. It serves on its own thread
/// until the test ends.
mod provider {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::{Form, Query, State};
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::{IntoResponse, Redirect, Response};
    use axum::routing::{get, post};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;
    use sha2::{Digest, Sha256};

    pub const CLIENT: &str = "weft-dashboard";
    pub const SECRET: &[u8] = b"weft-dashboard-oidc-secret-0123456789";

    #[derive(Default)]
    struct Codes {
        /// code -> (challenge, redirect URI)
        pending: HashMap<String, (String, String)>,
        issued: u64,
    }

    #[derive(Clone)]
    struct Provider {
        issuer: String,
        codes: Arc<Mutex<Codes>>,
    }

    fn refuse(why: &str) -> Response {
        (
            StatusCode::BAD_REQUEST,
            [(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            )],
            axum::Json(json!({"error": "invalid_request", "error_description": why})),
        )
            .into_response()
    }

    async fn authorize(
        State(p): State<Provider>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        let get = |k: &str| q.get(k).cloned().unwrap_or_default();
        if get("response_type") != "code" || get("client_id") != CLIENT {
            return refuse("response_type or client_id");
        }
        if get("code_challenge_method") != "S256" || get("code_challenge").len() != 43 {
            return refuse("PKCE with S256 is required");
        }
        if !get("scope").split(' ').any(|s| s == "openid") || get("state").is_empty() {
            return refuse("scope or state");
        }
        let redirect = get("redirect_uri");
        if !redirect.starts_with("http://127.0.0.1:") || !redirect.ends_with('/') {
            return refuse("redirect_uri");
        }
        let mut codes = p.codes.lock().unwrap();
        codes.issued += 1;
        let code = format!("code-{}", codes.issued);
        codes
            .pending
            .insert(code.clone(), (get("code_challenge"), redirect.clone()));
        Redirect::to(&format!("{redirect}?code={code}&state={}", get("state"))).into_response()
    }

    async fn token(State(p): State<Provider>, Form(f): Form<HashMap<String, String>>) -> Response {
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        let Some((challenge, redirect)) = p.codes.lock().unwrap().pending.remove(&get("code"))
        else {
            return refuse("unknown or used code");
        };
        if get("grant_type") != "authorization_code"
            || get("client_id") != CLIENT
            || get("redirect_uri") != redirect
        {
            return refuse("grant_type, client_id or redirect_uri");
        }
        if URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes())) != challenge {
            return refuse("the code verifier does not match the challenge");
        }
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let claims = json!({"iss": p.issuer, "aud": "weft", "sub": "grace", "exp": exp,
            "weft_role": "operator", "weft_project": "default"});
        let mut head = Header::new(jsonwebtoken::Algorithm::HS256);
        head.kid = Some("k1".into());
        let jwt = encode(&head, &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        (
            [(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            )],
            axum::Json(json!({"access_token": jwt, "token_type": "Bearer", "expires_in": 3600})),
        )
            .into_response()
    }

    /// Starts the provider; its issuer URL.
    pub fn start() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = Provider {
            issuer: issuer.clone(),
            codes: Arc::default(),
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = Router::new()
                    .route("/authorize", get(authorize))
                    .route("/token", post(token))
                    .with_state(state);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        issuer
    }
}

/// A config file naming the test provider for sign-in.
fn oidc_config(dir: &Path, issuer: &str) -> PathBuf {
    use base64::Engine as _;
    let jwks = dir.join("jwks.json");
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(provider::SECRET);
    std::fs::write(
        &jwks,
        json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": k}]}).to_string(),
    )
    .unwrap();
    let config = json!({"api": {"oidc": {
        "issuer": issuer,
        "audience": "weft",
        "jwks_file": jwks,
        "sign_in": {
            "client_id": provider::CLIENT,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "scopes": "openid profile",
        },
    }}});
    // JSON is YAML.
    let path = dir.join("weft.yaml");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// The page and its assets, as the binary serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_from_the_binary_with_its_content_types_and_cache_headers() {
    let server = Server::start("dashboard-files", &[], &["--script", SCRIPT]);
    let http = reqwest::Client::new();
    let page = http.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("not built"),
        "this weft was compiled before the dashboard was built: run `cargo xtask setup`, then test again"
    );
    // Every script and style the page names is in the binary: nothing comes
    // from elsewhere.
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .collect();
    assert!(!assets.is_empty(), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for asset in &assets {
        let answer = http.get(server.url(asset)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{asset}");
        let kind = answer.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = if asset.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else if asset.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            panic!("an unexpected asset {asset}")
        };
        assert_eq!(kind, expected, "{asset}");
        assert_eq!(
            answer.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable",
            "{asset}"
        );
        let body = answer.text().await.unwrap();
        assert!(!body.contains("https://fonts."), "{asset} fetches fonts");
    }
    let missing = http
        .get(server.url("/assets/none.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // The API is where it was.
    let api = http
        .get(server.url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    server.terminate();
}

/// Sign in, chat, the run in the list, its timeline and host calls, fork,
/// pause and resume, a budget, a plugin upload, a viewer key; axe-core on
/// every view; screenshots at 1280×800 and at phone width.
#[test]
fn the_dashboard_works_in_a_real_browser() {
    let chromium = chromium();
    let ui = root().join("ui");
    assert!(
        ui.join("node_modules/playwright-core").is_dir(),
        "the dashboard's npm packages are missing: run `cargo xtask setup`"
    );
    let data = temp_dir("dashboard-browser");
    let plugins = plugin_copy(&data);
    let issuer = provider::start();
    let config = oidc_config(&data, &issuer);
    let server = Server::start_in(
        data.clone(),
        &[
            "--plugins",
            plugins.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &["--script", SCRIPT],
    );
    let shots = root().join("target/dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let out = data.join("browser.out");
    // Steps and failures (with the page's own message) in one file, shown
    // when the test fails.
    let log = std::fs::File::create(&out).unwrap();
    let mut child = Command::new("node")
        .arg("tests/dashboard.mjs")
        .current_dir(&ui)
        .env("WEFT_URL", &server.base)
        .env("WEFT_ADMIN_KEY", &server.admin)
        .env("WEFT_CHROMIUM", &chromium)
        .env("WEFT_SCREENSHOTS", &shots)
        .env("WEFT_PLUGIN_FILE", plugins.join("weft-plugin-output.wasm"))
        .env("WEFT_OIDC_ISSUER", &issuer)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("running node (install Node.js)");
    let deadline = Instant::now() + BROWSER_BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the browser tests hung for 10 minutes:\n{}\nserver log:\n{}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let printed = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        status.success(),
        "the browser tests failed ({status}):\n{printed}\nserver log:\n{}",
        server.log()
    );
    assert!(printed.contains("all dashboard checks passed"), "{printed}");
    for view in [
        "overview",
        "chat",
        "threads",
        "timeline",
        "invocation",
        "agents",
        "plugins",
        "viewer-overview",
        "phone-overview",
        "phone-timeline",
        "oidc-threads",
    ] {
        assert!(
            shots.join(format!("{view}.png")).exists(),
            "no screenshot of {view} in {}",
            shots.display()
        );
    }
    server.terminate();
}
