//! Running a suite against a graph on an engine: each step is a run on
//! the suite's thread (a `clear` opens a new one), its checks judged on
//! the run's trace and the UI events it emitted; progress is reported step
//! by step.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::broadcast::error::TryRecvError;

use super::{Action, Check, Comparison, Suite};
use crate::events::{Event, EventBody};
use crate::{Engine, FrameTrace, Inbound, LoadedGraph};

/// One check's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The check as written (normalised).
    pub check: String,
    /// Whether it held.
    pub ok: bool,
    /// What was found instead, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One step's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// Its position in the suite (0-based).
    pub index: usize,
    /// The step's name (its heading, else what it sends).
    pub name: String,
    /// Its line in the file.
    pub line: usize,
    /// Whether it ran and every check held.
    pub ok: bool,
    /// The reply, if any.
    pub reply: Option<String>,
    /// The run's status, frames and id (none for `clear`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Frames the run took.
    pub frames: u32,
    /// The run's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Each check's verdict, in order.
    pub checks: Vec<CheckResult>,
    /// Why the step could not run, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time of the step.
    pub duration_ms: u64,
}

/// A suite's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteResult {
    /// The suite's name.
    pub suite: String,
    /// Steps that passed.
    pub passed: usize,
    /// Steps that failed.
    pub failed: usize,
    /// Wall time of the suite.
    pub duration_ms: u64,
    /// Every step's outcome, in order.
    pub steps: Vec<StepResult>,
}

impl SuiteResult {
    /// Whether every step passed.
    pub fn ok(&self) -> bool {
        self.failed == 0
    }
}

/// Progress while a suite runs.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SuiteEvent {
    /// The suite starts: its name and step count.
    SuiteStart {
        /// The suite's name.
        suite: String,
        /// How many steps it has.
        steps: usize,
    },
    /// A step starts.
    StepStart {
        /// The suite's name.
        suite: String,
        /// The step's position (0-based).
        index: usize,
        /// The step's name.
        name: String,
    },
    /// A step ended.
    StepResult {
        /// The suite's name.
        suite: String,
        /// The step's outcome.
        result: Box<StepResult>,
    },
    /// The suite ended.
    SuiteEnd {
        /// The suite's name.
        suite: String,
        /// Steps that passed.
        passed: usize,
        /// Steps that failed.
        failed: usize,
        /// Wall time of the suite.
        duration_ms: u64,
    },
}

/// Runs `suite` on a new thread of `graph` in `project`; `progress` hears
/// each step start and end, with the thread the suite is on. A step that
/// cannot run (a message the graph refuses, a stopped engine) fails with
/// its error and the suite goes on.
pub async fn run_suite(
    engine: &Engine,
    graph: &Arc<LoadedGraph>,
    project: &str,
    suite: &Suite,
    mut progress: impl FnMut(&str, SuiteEvent),
) -> SuiteResult {
    let started = Instant::now();
    let mut thread = engine.open_thread_in(project, None, graph);
    progress(
        &thread,
        SuiteEvent::SuiteStart {
            suite: suite.name.clone(),
            steps: suite.steps.len(),
        },
    );
    let mut results = Vec::with_capacity(suite.steps.len());
    for (index, step) in suite.steps.iter().enumerate() {
        if step.action == Action::Clear {
            thread = engine.open_thread_in(project, None, graph);
        }
        progress(
            &thread,
            SuiteEvent::StepStart {
                suite: suite.name.clone(),
                index,
                name: step.name.clone(),
            },
        );
        let step_started = Instant::now();
        let mut result = StepResult {
            index,
            name: step.name.clone(),
            line: step.line,
            ok: true,
            reply: None,
            status: None,
            frames: 0,
            run: None,
            checks: Vec::new(),
            error: None,
            duration_ms: 0,
        };
        let inbound = match &step.action {
            Action::Clear => None,
            Action::Send(text) => Some(Inbound::user_text(text)),
            Action::Press { node, action } => Some(Inbound::to(
                node,
                "action",
                &serde_json::json!({ "action": action }),
            )),
        };
        if let Some(inbound) = inbound {
            let mut events = engine.subscribe();
            match run_step(engine, &thread, inbound).await {
                Ok(trace) => {
                    let buttons = buttons(&mut events, &thread, &trace.run);
                    result.reply = trace.reply.clone();
                    result.status = Some(trace.status.as_str().to_owned());
                    result.frames = trace.frames;
                    result.run = Some(trace.run.clone());
                    result.checks = step
                        .checks
                        .iter()
                        .map(|c| judge(c, &trace, &buttons))
                        .collect();
                    result.ok = result.checks.iter().all(|c| c.ok);
                }
                Err(error) => {
                    result.ok = false;
                    result.error = Some(error);
                }
            }
        }
        result.duration_ms = millis(step_started);
        progress(
            &thread,
            SuiteEvent::StepResult {
                suite: suite.name.clone(),
                result: Box::new(result.clone()),
            },
        );
        results.push(result);
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    let outcome = SuiteResult {
        suite: suite.name.clone(),
        passed: results.len() - failed,
        failed,
        duration_ms: millis(started),
        steps: results,
    };
    progress(
        &thread,
        SuiteEvent::SuiteEnd {
            suite: suite.name.clone(),
            passed: outcome.passed,
            failed: outcome.failed,
            duration_ms: outcome.duration_ms,
        },
    );
    outcome
}

async fn run_step(engine: &Engine, thread: &str, inbound: Inbound) -> Result<FrameTrace, String> {
    let handle = engine
        .start_run(thread, inbound)
        .await
        .map_err(|e| e.to_string())?;
    handle.finish().await.map_err(|e| e.to_string())
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The buttons the UI offered at the end of the run: the `controls` of
/// the last `updated` event of the run carrying a UI state. `None` when
/// the run emitted none (the previous step's buttons are not carried
/// over: a check of buttons needs a step that changed them).
fn buttons(
    events: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    thread: &str,
    run: &str,
) -> Option<Vec<String>> {
    let mut last = None;
    loop {
        match events.try_recv() {
            Ok(event) => {
                if event.thread != thread || event.run != run {
                    continue;
                }
                if let EventBody::Updated(body) = &event.body
                    && let Some(controls) =
                        body.pointer("/state/controls").and_then(|c| c.as_array())
                {
                    last = Some(
                        controls
                            .iter()
                            .filter_map(|c| c.get("action").and_then(|a| a.as_str()))
                            .map(str::to_owned)
                            .collect(),
                    );
                }
            }
            Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty | TryRecvError::Closed) => return last,
        }
    }
}

fn judge(check: &Check, trace: &FrameTrace, buttons: &Option<Vec<String>>) -> CheckResult {
    let reply = trace.reply.as_deref().unwrap_or_default();
    let reply_lc = reply.to_lowercase();
    let ran = |node: &str| trace.records.iter().any(|r| r.node == node);
    let ran_nodes = || {
        let mut nodes: Vec<&str> = trace.records.iter().map(|r| r.node.as_str()).collect();
        nodes.dedup();
        format!("ran: {}", nodes.join(", "))
    };
    let shown = || format!("reply: {:?}", clip(reply));
    let (ok, detail) = match check {
        Check::ReplyContains(texts) => (
            texts.iter().any(|t| reply_lc.contains(&t.to_lowercase())),
            shown(),
        ),
        Check::ReplyLacks(texts) => (
            !texts.iter().any(|t| reply_lc.contains(&t.to_lowercase())),
            shown(),
        ),
        Check::ReplyMatches(regex) => (regex.is_match(reply), shown()),
        Check::ReplyNotEmpty => (!reply.trim().is_empty(), shown()),
        Check::TraceHas(nodes) => (nodes.iter().any(|n| ran(n)), ran_nodes()),
        Check::TraceLacks(nodes) => (!nodes.iter().any(|n| ran(n)), ran_nodes()),
        Check::Frames(comparison, n) => (
            match comparison {
                Comparison::Eq => trace.frames == *n,
                Comparison::AtMost => trace.frames <= *n,
                Comparison::AtLeast => trace.frames >= *n,
            },
            format!("frames: {}", trace.frames),
        ),
        Check::Status(status) => (
            trace.status.as_str() == status,
            format!("status: {}", trace.status.as_str()),
        ),
        Check::Actions(patterns) => match buttons {
            Some(actions) => (
                actions
                    .iter()
                    .any(|a| patterns.iter().any(|p| wildcard(p, a))),
                format!("buttons: {}", actions.join(", ")),
            ),
            None => (false, "the run changed no UI state".to_owned()),
        },
    };
    CheckResult {
        check: check.to_string(),
        ok,
        detail: (!ok).then_some(detail),
    }
}

/// At most 300 characters of `text`, for messages.
fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(300).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Whether `text` matches `pattern`, where `*` matches any run of
/// characters (case-insensitive).
fn wildcard(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.to_lowercase(), text.to_lowercase());
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards_match_any_run_of_characters() {
        assert!(wildcard("go:*", "go:red"));
        assert!(wildcard("GO:RED", "go:red"));
        assert!(wildcard("*red", "go:red"));
        assert!(wildcard("g*:*d", "go:red"));
        assert!(!wildcard("go:*", "reset"));
        assert!(!wildcard("go:red", "go:reds"));
        assert!(!wildcard("a*b*a", "ab"));
    }
}
