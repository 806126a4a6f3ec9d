//! schemathesis (PyPI, installed by `cargo xtask test`) against the served
//! OpenAPI document: generated valid and invalid requests to every route,
//! checking that none gets a 5xx, every answer's status, content type,
//! headers and body are the documented ones, valid requests are accepted
//! and invalid ones refused (see [`SETTINGS`] for the exceptions); then the stateful phase, which follows the document's `links`
//! (an inject's thread to its result, messages, kill and fork; a spawned
//! agent to its routes; a new key to its revocation) and also checks that
//! what a POST created can be read, and a revoked key is gone.
//!
//! Each run draws a seed and prints it; `WEFT_SCHEMATHESIS_SEED=N` replays
//! that run. Bounded by `--max-examples` (25 per operation and per
//! stateful scenario; `WEFT_SCHEMATHESIS_EXAMPLES` sets another).

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::hash::{BuildHasher, Hasher};
use std::process::Command;

use common::*;

/// schemathesis's settings. Every check runs on every operation (status
/// codes and content types the document lists, response schemas and
/// headers, valid data accepted and invalid data refused, auth not
/// ignored, methods the document does not list refused) except:
///
/// - valid data accepted (`positive_data_acceptance`) on the routes whose
///   body is checked against what the active graph and its plugins
///   declare, which a static document cannot carry: an inject's `body` (and
///   `to`) against the receiving node's input schema, an instance task's
///   `body` against its plugin's, a spawn's `plugin`/`graph`/`node` against
///   the served graphs; a plugin upload's body (a component); the two
///   WebSocket routes, which no plain HTTP request can open. Invalid data
///   is still refused there, and every other check runs.
const SETTINGS: &str = r#"
# Longer stateful scenarios than the default 6 steps, so that chains like
# inject -> send -> kill -> fork -> result are reached.
[phases.stateful]
max-steps = 12

# A WebSocket route cannot answer a plain HTTP request with 2xx, and a
# plugin upload's body must be a component.
[[operations]]
include-path = "/api/v1/ws/events"
include-method = "GET"
[operations.checks.positive_data_acceptance]
enabled = false

[[operations]]
include-path = "/api/v1/ws"
include-method = "GET"
[operations.checks.positive_data_acceptance]
enabled = false

[[operations]]
include-path = "/api/v1/plugins/{name}"
include-method = "PUT"
[operations.checks.positive_data_acceptance]
enabled = false

[[operations]]
include-path = "/api/v1/inject"
include-method = "POST"
[operations.checks.positive_data_acceptance]
enabled = false

[[operations]]
include-path = "/api/v1/projects/{project}/agents/{id}/tasks"
include-method = "POST"
[operations.checks.positive_data_acceptance]
enabled = false

[[operations]]
include-path = "/api/v1/projects/{project}/agents"
include-method = "POST"
[operations.checks.positive_data_acceptance]
enabled = false
"#;

#[test]
fn schemathesis_finds_no_server_errors_and_no_schema_violations() {
    let st = root().join(".tools/venv/bin/st");
    assert!(
        st.exists(),
        "schemathesis is missing at {}: run `cargo xtask test` (it installs it)",
        st.display()
    );
    let data = temp_dir("schemathesis");
    // Every request counts: no rate limit in the way of the fuzzer.
    let config = data.join("weft.yaml");
    std::fs::write(
        &config,
        "api: { rate_per_minute: 1000000, burst: 100000 }\n",
    )
    .unwrap();
    let server = Server::start_in(
        data.clone(),
        &["--config", config.to_str().unwrap()],
        &["--script", "graphs/scripts/assistant-demo.json"],
    );
    let seed = seed();
    let examples = std::env::var("WEFT_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    println!(
        "schemathesis seed: {seed} (replay: WEFT_SCHEMATHESIS_SEED={seed} cargo test --release -p weft --test schemathesis)"
    );
    let settings = data.join("schemathesis.toml");
    std::fs::write(&settings, SETTINGS).unwrap();
    let out = Command::new(&st)
        .current_dir(&data)
        .args(["--config-file", settings.to_str().unwrap()])
        .args(["run", &server.url("/api/v1/openapi.json")])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", server.admin),
        ])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        // Every check (schemathesis enables all by default), with the
        // exceptions SETTINGS names and justifies.
        .args(["--max-examples", &examples, "--seed", &seed.to_string()])
        // Replaying a seed must not depend on examples stored by earlier runs.
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "20", "--no-color"])
        // Stopping the host, and the two endless streams, are tested elsewhere.
        .args(["--exclude-path", "/api/v1/organism/stop"])
        .args(["--exclude-path", "/api/v1/events"])
        .args(["--exclude-path", "/api/v1/ws"])
        .output()
        .expect("running schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary, for the test log.
    let summary: String = report
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
    // What the stateful phase covered (scenarios, links followed).
    let stateful: String = report
        .lines()
        .skip_while(|l| !l.contains("Stateful ("))
        .take(6)
        .collect::<Vec<_>>()
        .join("\n");
    println!("{stateful}");
    assert!(
        out.status.success(),
        "schemathesis found problems (seed {seed}; replay with WEFT_SCHEMATHESIS_SEED={seed}):\n{report}"
    );
    assert!(report.contains(" passed"), "{report}");
    // The stateful phase ran: the document's links gave it scenarios.
    assert!(report.contains("Stateful"), "no stateful phase:\n{report}");
    let status = server.terminate();
    assert!(
        status.success(),
        "the server survived the fuzzing and stopped cleanly"
    );
}

/// `WEFT_SCHEMATHESIS_SEED`, else a fresh one.
fn seed() -> u64 {
    match std::env::var("WEFT_SCHEMATHESIS_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WEFT_SCHEMATHESIS_SEED is not a number: {text:?}")),
        // Hashing nothing with a new RandomState gives a random number.
        Err(_) => {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                >> 32
        }
    }
}
