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
    let server = Server::start_in(
        data.clone(),
        &["--plugins", plugins.to_str().unwrap()],
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
    ] {
        assert!(
            shots.join(format!("{view}.png")).exists(),
            "no screenshot of {view} in {}",
            shots.display()
        );
    }
    server.terminate();
}
