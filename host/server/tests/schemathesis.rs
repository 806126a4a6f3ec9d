//! schemathesis (PyPI, installed by `cargo xtask test`) against the served
//! OpenAPI document: generated valid and invalid requests to every route,
//! checking that none gets a 5xx and every answer matches its documented
//! schema.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::process::Command;

use common::*;

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
    let out = Command::new(&st)
        .current_dir(&data)
        .args(["run", &server.url("/api/v1/openapi.json")])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", server.admin),
        ])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--max-examples", "25", "--generation-deterministic"])
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
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}"
    );
    assert!(report.contains(" passed"), "{report}");
    let status = server.terminate();
    assert!(
        status.success(),
        "the server survived the fuzzing and stopped cleanly"
    );
}
