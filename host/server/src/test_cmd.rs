//! `weft test SUITE.md…`: runs scenario suites (see `docs/testing.md`)
//! against a graph, prints each step as it ends, and exits 2 when a step
//! failed; `--junit FILE` writes JUnit XML for CI systems, `--json` prints
//! the results for machines.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use weft_engine::scenario::{self, Suite, SuiteEvent, SuiteResult};

use crate::Common;
use crate::progress::Progress;
use crate::run_cmd::{self, BackendArgs};

/// Arguments of `weft test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Suite files (Markdown), run in order.
    #[arg(required = true)]
    suites: Vec<PathBuf>,
    /// The graph file.
    #[arg(long, default_value = "graphs/framed.yaml")]
    graph: PathBuf,
    #[command(flatten)]
    backends: BackendArgs,
    /// Also write the results as JUnit XML to this file.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Print the results as JSON instead of the report.
    #[arg(long)]
    json: bool,
}

/// Runs `weft test`: 0 when every step passed, 2 when one failed, 1 when a
/// suite or the graph cannot be used (nothing runs then).
pub async fn run(common: &Common, args: TestArgs) -> Result<ExitCode> {
    // Every suite is read and checked before anything runs.
    let mut suites: Vec<Suite> = Vec::with_capacity(args.suites.len());
    for path in &args.suites {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading suite {}", path.display()))?;
        suites.push(scenario::parse(&path.display().to_string(), &text)?);
    }
    let engine = run_cmd::engine(common, &args.backends).await?;
    let graph = engine
        .load_graph(&args.graph)
        .await
        .with_context(|| format!("loading {}", args.graph.display()))?;

    let total: usize = suites.iter().map(|s| s.steps.len()).sum();
    let progress = Progress::bar(total as u64, "test");
    let mut results = Vec::with_capacity(suites.len());
    for suite in &suites {
        let result = scenario::run_suite(
            &engine,
            &graph,
            weft_engine::DEFAULT_PROJECT,
            suite,
            |_, event| report(&progress, event),
        )
        .await;
        results.push(result);
    }
    drop(progress);
    engine.shutdown().await;

    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&results))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", summary(&results));
    }
    Ok(if results.iter().all(SuiteResult::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// One line per step on stderr as it ends; the failed checks below it.
fn report(progress: &Progress, event: SuiteEvent) {
    match event {
        SuiteEvent::SuiteStart { suite, steps } => {
            progress.line(format!("suite {suite} ({steps} steps)"));
        }
        SuiteEvent::StepStart { name, .. } => progress.doing(name),
        SuiteEvent::StepResult { result, .. } => {
            let mut line = format!(
                "  {} {:>6} ms  {}",
                if result.ok { "ok  " } else { "FAIL" },
                result.duration_ms,
                result.name
            );
            if let Some(error) = &result.error {
                let _ = write!(line, "\n         error: {error}");
            }
            for check in result.checks.iter().filter(|c| !c.ok) {
                let _ = write!(
                    line,
                    "\n         {} — {}",
                    check.check,
                    check.detail.as_deref().unwrap_or_default()
                );
            }
            progress.line(line);
            progress.step("");
        }
        SuiteEvent::SuiteEnd {
            suite,
            passed,
            failed,
            duration_ms,
        } => progress.line(format!(
            "suite {suite}: {passed} passed, {failed} failed ({:.1} s)",
            duration_ms as f64 / 1000.0
        )),
    }
}

/// The closing table: one line per suite and the total.
fn summary(results: &[SuiteResult]) -> String {
    let mut out = String::new();
    let (mut passed, mut failed) = (0, 0);
    for r in results {
        let _ = writeln!(
            out,
            "{:<32} {:>4} passed {:>4} failed {:>8.1} s",
            r.suite,
            r.passed,
            r.failed,
            r.duration_ms as f64 / 1000.0
        );
        passed += r.passed;
        failed += r.failed;
    }
    let _ = writeln!(out, "{:<32} {passed:>4} passed {failed:>4} failed", "total");
    out
}

/// JUnit XML: a `testsuite` per suite, a `testcase` per step, a `failure`
/// naming the checks that failed (or the step's error).
pub fn junit(results: &[SuiteResult]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = results.iter().map(|r| r.steps.len()).sum();
    let failures: usize = results.iter().map(|r| r.failed).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"weft test\" tests=\"{tests}\" failures=\"{failures}\">"
    );
    for r in results {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
            xml(&r.suite),
            r.steps.len(),
            r.failed,
            r.duration_ms as f64 / 1000.0
        );
        for step in &r.steps {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&r.suite),
                xml(&format!("{:03} {}", step.index + 1, step.name)),
                step.duration_ms as f64 / 1000.0
            );
            if step.ok {
                out.push_str("/>\n");
                continue;
            }
            let mut text = String::new();
            if let Some(error) = &step.error {
                let _ = writeln!(text, "error: {error}");
            }
            for c in step.checks.iter().filter(|c| !c.ok) {
                let _ = writeln!(
                    text,
                    "{}: {}",
                    c.check,
                    c.detail.as_deref().unwrap_or_default()
                );
            }
            let first = text.lines().next().unwrap_or_default().to_owned();
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                xml(&first),
                xml(&text)
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// `text` escaped for XML text and attributes; characters XML 1.0 cannot
/// carry (control characters but tab and newlines) are dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_engine::scenario::{CheckResult, StepResult};

    #[test]
    fn junit_escapes_and_names_the_failed_checks() {
        let step = |ok: bool| StepResult {
            index: 0,
            name: "a <b> & \"c\"".into(),
            line: 3,
            ok,
            reply: None,
            status: Some("completed".into()),
            frames: 2,
            run: None,
            checks: vec![CheckResult {
                check: "reply contains: x".into(),
                ok,
                detail: (!ok).then(|| "reply: \"y\u{1}\"".into()),
            }],
            error: None,
            duration_ms: 1500,
        };
        let results = [SuiteResult {
            suite: "S&S".into(),
            passed: 1,
            failed: 1,
            duration_ms: 3000,
            steps: vec![step(true), step(false)],
        }];
        let xml = junit(&results);
        assert!(
            xml.contains("<testsuite name=\"S&amp;S\" tests=\"2\" failures=\"1\" time=\"3.000\">")
        );
        assert!(xml.contains("name=\"001 a &lt;b&gt; &amp; &quot;c&quot;\" time=\"1.500\"/>"));
        assert!(xml.contains("<failure message=\"reply contains: x: reply: &quot;y&quot;\">"));
        assert!(!xml.contains('\u{1}'));
    }
}
