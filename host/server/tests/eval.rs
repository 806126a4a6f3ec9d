//! `weft eval` on the real binary: the shipped dev set through the
//! assistant graph with a scripted model, the expected answers computed by
//! SQL on the generated database.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use common::{temp_dir, text, weft};

#[test]
fn eval_runs_the_dev_set_and_reports_accuracy_latency_and_tokens() {
    let data = temp_dir("eval");
    let out = weft(
        &data,
        &[
            "eval",
            "--json",
            "--script",
            "graphs/scripts/assistant-demo.json",
            "--set",
            "graphs/eval/dev.jsonl",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    let summary = &report["summary"];
    let total = summary["overall"]["total"].as_u64().unwrap();
    assert!(total >= 80, "the dev set has {total} questions");
    for language in ["en", "de"] {
        assert!(summary["by_language"][language]["total"].as_u64().unwrap() >= 40);
    }
    let questions = report["questions"].as_array().unwrap();
    let failed: Vec<&serde_json::Value> = questions.iter().filter(|q| q["ok"] != true).collect();
    // The grounding decides these questions alone: with the scripted model
    // every one is answered right.
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(
        summary["latency_p90_ms"].as_f64().unwrap()
            >= summary["latency_median_ms"].as_f64().unwrap()
    );
    // The answer comes before the run ends: the memorizer is deferred, so
    // a latency equal to the run (no reply event seen) fails here.
    for q in questions {
        let (answer, run) = (
            q["latency_ms"].as_f64().unwrap(),
            q["run_ms"].as_f64().unwrap(),
        );
        assert!(answer > 0.0 && answer < run, "{q}");
    }
    assert!(
        summary["run_median_ms"].as_f64().unwrap()
            >= summary["latency_median_ms"].as_f64().unwrap()
    );
    assert!(summary["tokens"].as_u64().unwrap() > 0);

    // A set whose statement contradicts its expectation is an error (1);
    // an accuracy below --min-accuracy exits with 2.
    let broken = data.join("broken.jsonl");
    std::fs::write(
        &broken,
        r#"{"question": "How many customers are there?", "language": "en", "kind": "count", "sql": "SELECT 1 WHERE 0", "expect": "values"}"#,
    )
    .unwrap();
    let out = weft(
        &data,
        &[
            "eval",
            "--script",
            "graphs/scripts/assistant-demo.json",
            "--set",
            broken.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("returns no row"),
        "{}",
        text(&out.stderr)
    );

    let wrong = data.join("wrong.jsonl");
    std::fs::write(
        &wrong,
        r#"{"question": "How many customers are there?", "language": "en", "kind": "count", "sql": "SELECT COUNT(*) + 1 FROM Kunden"}"#,
    )
    .unwrap();
    let out = weft(
        &data,
        &[
            "eval",
            "--script",
            "graphs/scripts/assistant-demo.json",
            "--set",
            wrong.to_str().unwrap(),
            "--min-accuracy",
            "0.9",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("the reply lacks \"401\""),
        "{}",
        text(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(&data);
}
