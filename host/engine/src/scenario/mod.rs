//! Scenario suites: Markdown files of steps sent to a graph and checks of
//! what came back (the reply, the nodes that ran, the frame count, the
//! UI's buttons), run by `weft test` and `POST /api/v1/tests`.
//!
//! ```markdown
//! # Smoke
//!
//! ## Setup
//! - clear
//!
//! ## Steps
//!
//! ### Greets back
//! - send: hello there
//! - expect reply not empty
//! - expect trace has: reflex or director
//! - expect frames <= 4
//!
//! ### Counts devices
//! - send: how many devices does customer 1042 have?
//! - expect reply matches: \b\d+\b
//! ```
//!
//! The format is described in full in `docs/testing.md`; [`parse`] turns
//! a file into a [`Suite`] or says which line is wrong and why.

mod run;

use regex::Regex;

pub use run::{CheckResult, StepResult, SuiteEvent, SuiteResult, run_suite};

/// A parsed suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The first `# ` heading, else the file's name.
    pub name: String,
    /// The steps in order (setup steps first).
    pub steps: Vec<Step>,
}

/// One step: something sent, then its checks.
#[derive(Debug, Clone)]
pub struct Step {
    /// The `### ` heading above it, else what it sends.
    pub name: String,
    /// What the step does.
    pub action: Action,
    /// What must hold afterwards.
    pub checks: Vec<Check>,
    /// Its line in the file (1-based).
    pub line: usize,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Starts a new thread (nothing is sent).
    Clear,
    /// Sends chat text to the graph's entry node.
    Send(String),
    /// Presses a UI button: `{"action": …}` of kind `action` to `node`.
    Press {
        /// The node that keeps the UI (`ui` unless named).
        node: String,
        /// The button's action, e.g. `go:details`.
        action: String,
    },
}

/// A check of a step's outcome.
#[derive(Debug, Clone)]
pub enum Check {
    /// The reply contains one of the texts (case-insensitive).
    ReplyContains(Vec<String>),
    /// The reply contains none of the texts (case-insensitive).
    ReplyLacks(Vec<String>),
    /// The reply matches the regular expression.
    ReplyMatches(Regex),
    /// The reply is not empty.
    ReplyNotEmpty,
    /// One of the nodes ran in the step's run.
    TraceHas(Vec<String>),
    /// None of the nodes ran.
    TraceLacks(Vec<String>),
    /// The run's frame count compared with a number.
    Frames(Comparison, u32),
    /// The run ended with this status (`completed`, `interrupted` …).
    Status(String),
    /// After the step, the UI offers a button whose action matches one of
    /// the patterns (`*` matches any text).
    Actions(Vec<String>),
}

/// How a count is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Exactly.
    Eq,
    /// At most (`<=`).
    AtMost,
    /// At least (`>=`).
    AtLeast,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or = |items: &[String]| items.join(" or ");
        match self {
            Self::ReplyContains(t) => write!(f, "reply contains: {}", or(t)),
            Self::ReplyLacks(t) => write!(f, "reply not contains: {}", or(t)),
            Self::ReplyMatches(r) => write!(f, "reply matches: {}", r.as_str()),
            Self::ReplyNotEmpty => write!(f, "reply not empty"),
            Self::TraceHas(n) => write!(f, "trace has: {}", or(n)),
            Self::TraceLacks(n) => write!(f, "trace lacks: {}", or(n)),
            Self::Frames(c, n) => {
                let op = match c {
                    Comparison::Eq => ":",
                    Comparison::AtMost => " <=",
                    Comparison::AtLeast => " >=",
                };
                write!(f, "frames{op} {n}")
            }
            Self::Status(s) => write!(f, "status: {s}"),
            Self::Actions(p) => write!(f, "actions: {}", or(p)),
        }
    }
}

/// Why a suite file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct ParseError {
    /// The file (as given).
    pub file: String,
    /// The line (1-based; 0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// The node a `press:` goes to unless it names another (`press ui2: …`).
pub const UI_NODE: &str = "ui";

/// Most steps in one suite.
pub const MAX_STEPS: usize = 500;

/// Parses the suite in `text`; `file` names it in errors and is its name
/// when it has no `# ` heading.
pub fn parse(file: &str, text: &str) -> Result<Suite, ParseError> {
    let err = |line: usize, reason: String| ParseError {
        file: file.to_owned(),
        line,
        reason,
    };
    let mut name: Option<String> = None;
    let mut heading: Option<String> = None;
    let mut steps: Vec<Step> = Vec::new();
    let mut in_code = false;
    for (at, raw) in text.lines().enumerate() {
        let line_no = at + 1;
        let line = raw.trim();
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code || line.is_empty() {
            continue;
        }
        if let Some(title) = line.strip_prefix("# ") {
            name.get_or_insert_with(|| title.trim().to_owned());
            continue;
        }
        if line.starts_with("## ") {
            heading = None;
            continue;
        }
        if let Some(title) = line.strip_prefix("### ") {
            heading = Some(title.trim().to_owned());
            continue;
        }
        let Some(item) = list_item(line) else {
            // Prose between the items.
            continue;
        };
        let (key, value) = split(item);
        let key_lc = key.to_lowercase();
        let action = match key_lc.as_str() {
            "clear" => Some(Action::Clear),
            "send" => {
                let text = value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| err(line_no, "`send:` needs the text to send".into()))?;
                Some(Action::Send(unquote(text).to_owned()))
            }
            _ if key_lc == "press" || key_lc.starts_with("press ") => {
                let node = key_lc
                    .strip_prefix("press")
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(UI_NODE)
                    .to_owned();
                let action = value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| err(line_no, "`press:` needs the button's action".into()))?;
                Some(Action::Press {
                    node,
                    action: unquote(action).to_owned(),
                })
            }
            _ => None,
        };
        if let Some(action) = action {
            if steps.len() == MAX_STEPS {
                return Err(err(line_no, format!("more than {MAX_STEPS} steps")));
            }
            let name = heading.take().unwrap_or_else(|| match &action {
                Action::Clear => "clear".to_owned(),
                Action::Send(text) => text.clone(),
                Action::Press { action, .. } => format!("press {action}"),
            });
            steps.push(Step {
                name,
                action,
                checks: Vec::new(),
                line: line_no,
            });
            continue;
        }
        let check = check(&key_lc, value).map_err(|reason| err(line_no, reason))?;
        let Some(step) = steps.last_mut() else {
            return Err(err(
                line_no,
                format!("`{item}` checks nothing: no `send:` or `press:` before it"),
            ));
        };
        if step.action == Action::Clear {
            return Err(err(
                line_no,
                format!("`{item}` follows `clear`, which runs nothing to check"),
            ));
        }
        step.checks.push(check);
    }
    if in_code {
        return Err(err(0, "a code block (```) is not closed".into()));
    }
    if !steps.iter().any(|s| s.action != Action::Clear) {
        return Err(err(0, "no steps: a suite needs a `- send: …` line".into()));
    }
    let name = name.unwrap_or_else(|| {
        std::path::Path::new(file)
            .file_stem()
            .map_or_else(|| file.to_owned(), |s| s.to_string_lossy().into_owned())
    });
    Ok(Suite { name, steps })
}

/// The text of a list item (`- `, `* ` or `1. `), if the line is one.
fn list_item(line: &str) -> Option<&str> {
    if let Some(rest) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
        return Some(rest.trim());
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        return line[digits..].strip_prefix(". ").map(str::trim);
    }
    None
}

/// `key: value`, `key <= value` and `key >= value`, the comparison kept in
/// the key; `expect ` before the key is optional.
fn split(item: &str) -> (String, Option<&str>) {
    let item = item
        .strip_prefix("expect ")
        .or_else(|| item.strip_prefix("Expect "))
        .unwrap_or(item);
    for op in ["<=", ">="] {
        if let Some((key, value)) = item.split_once(op)
            && !key.contains(':')
        {
            return (format!("{} {op}", key.trim()), Some(value.trim()));
        }
    }
    match item.split_once(':') {
        Some((key, value)) => (key.trim().to_owned(), Some(value.trim())),
        None => (item.trim().to_owned(), None),
    }
}

/// A value in backticks or double quotes, without them.
fn unquote(value: &str) -> &str {
    for q in ['`', '"'] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// `A or B or C`, each unquoted.
fn alternatives(value: &str) -> Vec<String> {
    value
        .split(" or ")
        .map(|v| unquote(v.trim()).to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

fn check(key: &str, value: Option<&str>) -> Result<Check, String> {
    let needs = |what: &str| -> Result<&str, String> {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("`{key}` needs {what}"))
    };
    let list = |what: &str| -> Result<Vec<String>, String> {
        let items = alternatives(needs(what)?);
        if items.is_empty() {
            return Err(format!("`{key}` needs {what}"));
        }
        Ok(items)
    };
    let number = |what: &str| -> Result<u32, String> {
        let v = needs(what)?;
        v.parse()
            .map_err(|_| format!("`{key}` needs a whole number, not `{v}`"))
    };
    Ok(match key {
        "reply contains" | "response contains" => Check::ReplyContains(list("a text")?),
        "reply not contains" | "reply lacks" | "response not contains" => {
            Check::ReplyLacks(list("a text")?)
        }
        "reply matches" | "response matches" => {
            let pattern = unquote(needs("a regular expression")?);
            let regex = regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("`{pattern}` is not a regular expression: {e}"))?;
            Check::ReplyMatches(regex)
        }
        "reply not empty" | "response not empty" => Check::ReplyNotEmpty,
        "trace has" => Check::TraceHas(list("a node name")?),
        "trace lacks" | "trace has no" => Check::TraceLacks(list("a node name")?),
        "frames" => Check::Frames(Comparison::Eq, number("a frame count")?),
        "frames <=" => Check::Frames(Comparison::AtMost, number("a frame count")?),
        "frames >=" => Check::Frames(Comparison::AtLeast, number("a frame count")?),
        "status" => Check::Status(needs("a run status")?.to_owned()),
        "actions" | "action_match" | "action match" => Check::Actions(list("an action pattern")?),
        other => {
            return Err(format!(
                "unknown line `{other}`: a step is `send:`, `press:` or `clear`; a check is \
                 `reply contains:`, `reply not contains:`, `reply matches:`, `reply not empty`, \
                 `trace has:`, `trace lacks:`, `frames:` (or `<=`, `>=`), `status:` or `actions:`"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = r"# Smoke

Some prose.

## Setup
- clear

## Steps

### Greets back
- send: hello there
- expect reply not empty
- expect reply contains: hello or `hi`
- trace has: reflex or director
- expect frames <= 4

### A number
1. send: how many?
2. reply matches: \b\d+\b
3. frames >= 2
4. status: completed

```
- send: not a step (in a code block)
```

- press: go:red
- actions: go:* or reset
";

    #[test]
    fn a_suite_parses_into_steps_and_checks() {
        let suite = parse("smoke.md", SUITE).unwrap();
        assert_eq!(suite.name, "Smoke");
        let names: Vec<_> = suite.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["clear", "Greets back", "A number", "press go:red"]);
        assert_eq!(suite.steps[1].action, Action::Send("hello there".into()));
        let checks: Vec<String> = suite.steps[1]
            .checks
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            checks,
            [
                "reply not empty",
                "reply contains: hello or hi",
                "trace has: reflex or director",
                "frames <= 4"
            ]
        );
        assert_eq!(suite.steps[2].checks.len(), 3);
        assert_eq!(
            suite.steps[3].action,
            Action::Press {
                node: "ui".into(),
                action: "go:red".into()
            }
        );
        assert_eq!(suite.steps[3].line, 27);
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        let cases = [
            (
                "- send: hi\n- expect reply sings: x\n",
                2,
                "unknown line `reply sings`",
            ),
            (
                "- reply contains: x\n",
                1,
                "no `send:` or `press:` before it",
            ),
            ("- send:\n", 1, "`send:` needs the text"),
            ("- send: x\n- frames: many\n", 2, "whole number, not `many`"),
            (
                "- send: x\n- reply matches: (\n",
                2,
                "is not a regular expression",
            ),
            ("- clear\n- reply not empty\n", 2, "follows `clear`"),
            ("# Nothing\n", 0, "no steps"),
            ("- send: x\n```\n", 0, "not closed"),
        ];
        for (text, line, reason) in cases {
            let e = parse("s.md", text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.reason.contains(reason), "{text}: {e}");
            assert!(e.to_string().starts_with(&format!("s.md:{line}: ")), "{e}");
        }
    }

    #[test]
    fn a_suite_without_a_title_is_named_after_its_file() {
        let suite = parse("suites/fast.md", "- send: hi\n").unwrap();
        assert_eq!(suite.name, "fast");
    }
}
