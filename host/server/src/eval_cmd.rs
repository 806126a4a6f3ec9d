//! `weft eval`: runs a question set through a graph and prints the
//! accuracy per kind and per language, the latency (median, p90) and the
//! tokens; `--json` prints every question's result for machines.
//!
//! The latency is the time to the answer: from sending the question to the
//! commit of the frame that set the run's reply. Nodes that tick after the
//! reply (`defer: true`, such as the memorizer) are not part of it; the run
//! as a whole, with them, is reported beside it.
//!
//! A question set is JSON Lines, one question per line (blank lines and
//! lines starting with `//` are skipped):
//!
//! ```json
//! {"question": "How many devices does customer 1042 have?", "language": "en",
//!  "kind": "count", "sql": "SELECT COUNT(*) FROM Geraete g JOIN …", "expect": "values"}
//! ```
//!
//! The expected answer is never written into the set: it is computed by
//! `sql` against the database the graph uses, when the set is run. How the
//! reply is judged (`expect`):
//!
//! - `values` (the default): every value of the first [`MAX_ROWS`] rows
//!   the statement returns occurs in the reply (numbers by value, so
//!   `1,413`, `1.413` and `1413` are the same; text ignoring case and
//!   umlaut spelling). The statement must return a row.
//! - `absent`: the statement returns no row (the record does not exist)
//!   and the reply says so in the question's language ([`ABSENT`]).
//! - `not_values`: the reply contains none of the statement's values (the
//!   figure a wrong answer would state, e.g. the unfiltered count) and is
//!   not empty.
//! - `no_lookup`: no `sql`; the expert node (`--expert`) is not run and the
//!   reply is not empty (small talk, questions outside the database).
//!
//! Exit codes: 0 when the set ran (and the accuracy reached
//! `--min-accuracy`), 2 when the accuracy is below it, 1 on an error (an
//! unreadable set, a bad line, a statement that fails, a statement whose
//! result contradicts its `expect`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use weft_engine::{EventBody, Inbound};

use crate::progress::Progress;
use crate::run_cmd::{self, BackendArgs};
use crate::{Common, setup};

/// Rows of an expected result whose values must occur in the reply.
pub const MAX_ROWS: usize = 5;

/// Phrases that say a record does not exist, by language (lowercase).
pub const ABSENT: [(&str, &[&str]); 2] = [
    (
        "en",
        &["there is no", "does not exist", "doesn't exist", "no such"],
    ),
    (
        "de",
        &[
            "gibt es nicht",
            "gibt es kein",
            "existiert nicht",
            "nicht gefunden",
        ],
    ),
];

/// Arguments of `weft eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The graph file.
    #[arg(long, default_value = "graphs/assistant.yaml")]
    graph: PathBuf,
    #[command(flatten)]
    backends: BackendArgs,
    /// The question set (JSON Lines).
    #[arg(long, default_value = "graphs/eval/dev.jsonl")]
    set: PathBuf,
    /// The node whose run means "the database was asked" (for `no_lookup`).
    #[arg(long, default_value = "eras")]
    expert: String,
    /// Ask only the first N questions.
    #[arg(long)]
    limit: Option<usize>,
    /// Exit with 2 when the overall accuracy (0 to 1) is below this.
    #[arg(long, default_value_t = 0.0)]
    min_accuracy: f64,
    /// Print every result and the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// How a reply is judged; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Every expected value occurs in the reply.
    #[default]
    Values,
    /// The record does not exist and the reply says so.
    Absent,
    /// None of the statement's values occurs in the reply.
    NotValues,
    /// The expert is not consulted.
    NoLookup,
}

/// One line of a question set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// The message sent.
    pub question: String,
    /// Its language (ISO 639-1).
    pub language: String,
    /// What it tests (`count`, `relation` …): accuracy is reported per kind.
    pub kind: String,
    /// The statement computing the expected answer.
    #[serde(default)]
    pub sql: Option<String>,
    /// How the reply is judged.
    #[serde(default)]
    pub expect: Expect,
}

/// The result of one question.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The message sent.
    pub question: String,
    /// Its language.
    pub language: String,
    /// Its kind.
    pub kind: String,
    /// Whether the reply was right.
    pub ok: bool,
    /// Why not, when it was not.
    pub why: Option<String>,
    /// The expected values (rendered).
    pub expected: Vec<String>,
    /// The reply.
    pub reply: String,
    /// Time to the answer: until the frame that set the run's reply was
    /// committed (the whole run when it set none), in milliseconds.
    pub latency_ms: f64,
    /// Wall time of the whole run, deferred nodes included, in milliseconds.
    pub run_ms: f64,
    /// Prompt plus completion tokens of the run.
    pub tokens: u64,
}

/// Accuracy of one group.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Score {
    /// Questions right.
    pub ok: usize,
    /// Questions asked.
    pub total: usize,
}

impl Score {
    fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.ok as f64 / self.total as f64
        }
    }
}

/// The figures of a run of the set.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// All questions.
    pub overall: Score,
    /// Per kind.
    pub by_kind: BTreeMap<String, Score>,
    /// Per language.
    pub by_language: BTreeMap<String, Score>,
    /// Median latency, in milliseconds.
    pub latency_median_ms: f64,
    /// 90th-percentile latency, in milliseconds.
    pub latency_p90_ms: f64,
    /// Median wall time of the whole runs, in milliseconds.
    pub run_median_ms: f64,
    /// Tokens over all questions.
    pub tokens: u64,
}

/// Reads a question set.
pub fn read_set(path: &Path) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the question set {}", path.display()))?;
    let mut questions = Vec::new();
    for (at, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let question: Question = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a question", path.display(), at + 1))?;
        match (question.expect, &question.sql) {
            (Expect::NoLookup, Some(_)) => {
                bail!("{}:{}: `no_lookup` takes no `sql`", path.display(), at + 1)
            }
            (Expect::NoLookup, None) | (_, Some(_)) => {}
            (_, None) => bail!(
                "{}:{}: `{:?}` needs the `sql` that computes the answer",
                path.display(),
                at + 1,
                question.expect
            ),
        }
        questions.push(question);
    }
    if questions.is_empty() {
        bail!("{} holds no question", path.display());
    }
    Ok(questions)
}

/// A cell of an expected result as text.
fn render(cell: ValueRef<'_>) -> Option<String> {
    match cell {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(r) => Some(format!("{}", (r * 100.0).round() / 100.0)),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(_) => None,
    }
}

/// The rows `sql` returns on `db`, rendered (NULLs left out).
fn expected(db: &Connection, sql: &str) -> Result<Vec<Vec<String>>> {
    let mut statement = db
        .prepare(sql)
        .with_context(|| format!("preparing {sql}"))?;
    let width = statement.column_count();
    let rows = statement
        .query_map([], |row| {
            (0..width)
                .map(|i| row.get_ref(i).map(render))
                .collect::<Result<Vec<_>, _>>()
        })
        .with_context(|| format!("running {sql}"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.into_iter().flatten().collect());
    }
    Ok(out)
}

/// Lowercase with umlauts and ß spelled out.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            c => out.push(c),
        }
    }
    out
}

/// The numbers a text holds, each read both ways (`1.413` is 1413 in
/// German and 1.413 in English).
fn numbers(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        if !chars[at].is_ascii_digit() {
            at += 1;
            continue;
        }
        let start = at;
        while at < chars.len()
            && (chars[at].is_ascii_digit()
                || (matches!(chars[at], '.' | ',')
                    && chars.get(at + 1).is_some_and(char::is_ascii_digit)))
        {
            at += 1;
        }
        let token: String = chars[start..at].iter().collect();
        for (thousands, decimal) in [(',', '.'), ('.', ',')] {
            let plain: String = token
                .chars()
                .filter(|c| *c != thousands)
                .map(|c| if c == decimal { '.' } else { c })
                .collect();
            if let Ok(value) = plain.parse::<f64>() {
                out.push(value);
            }
        }
    }
    out
}

/// Whether `value` occurs in `reply`: a number among its numbers (to two
/// decimals), else the text, ignoring case and umlaut spelling.
fn occurs(value: &str, reply: &str, reply_numbers: &[f64]) -> bool {
    match value.parse::<f64>() {
        Ok(number) if !value.contains(char::is_alphabetic) => reply_numbers
            .iter()
            .any(|n| (n - number).abs() < 0.006 || (n - number).abs() <= number.abs() * 1e-3),
        _ => fold(reply).contains(&fold(value)),
    }
}

/// Judges one reply; `Err` is a broken question, not a wrong answer.
fn judge(
    question: &Question,
    rows: &[Vec<String>],
    reply: &str,
    expert_ran: bool,
) -> Result<Option<String>> {
    let reply_numbers = numbers(reply);
    let cells = || rows.iter().take(MAX_ROWS).flatten();
    Ok(match question.expect {
        Expect::Values => {
            if rows.is_empty() {
                bail!(
                    "{:?}: the statement returns no row; use `expect: absent`",
                    question.question
                );
            }
            cells()
                .find(|v| !occurs(v, reply, &reply_numbers))
                .map(|v| format!("the reply lacks {v:?}"))
        }
        Expect::Absent => {
            if !rows.is_empty() {
                bail!(
                    "{:?}: the statement returns rows, so the record exists",
                    question.question
                );
            }
            let phrases = ABSENT
                .iter()
                .find(|(code, _)| *code == question.language)
                .map_or(ABSENT[0].1, |(_, p)| p);
            let folded = fold(reply);
            (!phrases.iter().any(|p| folded.contains(&fold(p))))
                .then(|| "the reply does not say the record does not exist".to_owned())
        }
        Expect::NotValues => {
            if reply.trim().is_empty() {
                Some("the reply is empty".to_owned())
            } else {
                cells()
                    .find(|v| occurs(v, reply, &reply_numbers))
                    .map(|v| format!("the reply states {v:?}"))
            }
        }
        Expect::NoLookup => {
            if expert_ran {
                Some("the expert was consulted".to_owned())
            } else if reply.trim().is_empty() {
                Some("the reply is empty".to_owned())
            } else {
                None
            }
        }
    })
}

/// The value at `quantile` (0 to 1) of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The figures of `outcomes`.
pub fn summarise(outcomes: &[Outcome]) -> Summary {
    let mut overall = Score::default();
    let mut by_kind: BTreeMap<String, Score> = BTreeMap::new();
    let mut by_language: BTreeMap<String, Score> = BTreeMap::new();
    for o in outcomes {
        for score in [
            &mut overall,
            by_kind.entry(o.kind.clone()).or_default(),
            by_language.entry(o.language.clone()).or_default(),
        ] {
            score.total += 1;
            score.ok += usize::from(o.ok);
        }
    }
    let mut latencies: Vec<f64> = outcomes.iter().map(|o| o.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let mut runs: Vec<f64> = outcomes.iter().map(|o| o.run_ms).collect();
    runs.sort_by(f64::total_cmp);
    Summary {
        overall,
        by_kind,
        by_language,
        latency_median_ms: quantile(&latencies, 0.5),
        latency_p90_ms: quantile(&latencies, 0.9),
        run_median_ms: quantile(&runs, 0.5),
        tokens: outcomes.iter().map(|o| o.tokens).sum(),
    }
}

/// Runs `weft eval`; one line per question goes to stderr (above a
/// progress bar on a terminal).
pub async fn run(common: &Common, args: EvalArgs) -> Result<ExitCode> {
    let mut questions = read_set(&args.set)?;
    if let Some(limit) = args.limit {
        questions.truncate(limit);
    }
    let engine = run_cmd::engine(common, &args.backends).await?;
    let graph = engine
        .load_graph(&args.graph)
        .await
        .with_context(|| format!("loading {}", args.graph.display()))?;
    let db_path = match &args.backends.db {
        Some(path) => path.clone(),
        None => common.data_dir.join("eras.db"),
    };
    // The engine has generated the sample database if it was missing.
    setup::database(common, args.backends.db.as_deref())?;
    let db = Connection::open_with_flags(&db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", db_path.display()))?;

    let mut outcomes = Vec::with_capacity(questions.len());
    let progress = Progress::bar(questions.len() as u64, "eval");
    for (at, question) in questions.iter().enumerate() {
        progress.doing(question.question.clone());
        let rows = match &question.sql {
            Some(sql) => {
                expected(&db, sql).with_context(|| format!("question {:?}", question.question))?
            }
            None => Vec::new(),
        };
        let thread = engine.open_thread(None, &graph);
        let mut events = engine.subscribe();
        let started = Instant::now();
        let finish = engine
            .start_run(&thread, Inbound::user_text(&question.question))
            .await?
            .finish();
        tokio::pin!(finish);
        // When the last frame that set a reply was committed.
        let mut replied: Option<Duration> = None;
        let mut listening = true;
        let trace = loop {
            tokio::select! {
                trace = &mut finish => break trace?,
                event = events.recv(), if listening => match event {
                    Ok(event) if event.thread == thread => {
                        if let EventBody::Frame(record) = &event.body
                            && record.reply.is_some()
                        {
                            replied = Some(started.elapsed());
                        }
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => listening = false,
                },
            }
        };
        let run_ms = started.elapsed().as_secs_f64() * 1000.0;
        let latency_ms = replied.map_or(run_ms, |d| d.as_secs_f64() * 1000.0);
        let reply = trace.reply.clone().unwrap_or_default();
        let expert_ran = trace.records.iter().any(|r| r.node == args.expert);
        let why = judge(question, &rows, &reply, expert_ran)?;
        let outcome = Outcome {
            question: question.question.clone(),
            language: question.language.clone(),
            kind: question.kind.clone(),
            ok: why.is_none(),
            why,
            expected: rows.iter().take(MAX_ROWS).flatten().cloned().collect(),
            reply,
            latency_ms,
            run_ms,
            tokens: trace.tokens().total(),
        };
        progress.line(format!(
            "[{}/{}] {} {:>7.0} ms  {}",
            at + 1,
            questions.len(),
            if outcome.ok { "ok  " } else { "FAIL" },
            outcome.latency_ms,
            outcome.question
        ));
        progress.step("");
        outcomes.push(outcome);
    }
    drop(progress);
    let summary = summarise(&outcomes);
    if args.json {
        let report = serde_json::json!({"summary": summary, "questions": outcomes});
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_report(&outcomes, &summary));
    }
    Ok(if summary.overall.accuracy() + 1e-9 < args.min_accuracy {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The report for people: failures, then the tables.
fn render_report(outcomes: &[Outcome], summary: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for o in outcomes.iter().filter(|o| !o.ok) {
        let reply: String = o.reply.replace('\n', " ").chars().take(160).collect();
        let _ = writeln!(
            out,
            "FAIL [{} {}] {}\n     {}\n     expected {:?}\n     reply: {reply}",
            o.language,
            o.kind,
            o.question,
            o.why.as_deref().unwrap_or_default(),
            o.expected
        );
    }
    let line = |out: &mut String, name: &str, s: &Score| {
        let _ = writeln!(
            out,
            "  {name:<16} {:>3}/{:<3} {:>5.1} %",
            s.ok,
            s.total,
            s.accuracy() * 100.0
        );
    };
    out.push_str("\naccuracy by kind\n");
    for (kind, score) in &summary.by_kind {
        line(&mut out, kind, score);
    }
    out.push_str("accuracy by language\n");
    for (language, score) in &summary.by_language {
        line(&mut out, language, score);
    }
    line(&mut out, "overall", &summary.overall);
    let _ = writeln!(
        out,
        "latency (to the answer) median {:.0} ms, p90 {:.0} ms; whole run median {:.0} ms; {} tokens ({:.0} per question)",
        summary.latency_median_ms,
        summary.latency_p90_ms,
        summary.run_median_ms,
        summary.tokens,
        summary.tokens as f64 / summary.overall.total.max(1) as f64
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(expect: Expect, language: &str) -> Question {
        Question {
            question: "q".into(),
            language: language.into(),
            kind: "k".into(),
            sql: Some("SELECT 1".into()),
            expect,
        }
    }

    #[test]
    fn numbers_match_by_value_whatever_the_separators() {
        let reply = "Es gibt 1.413 Geräte, 140,52 m² und 3 Zähler";
        let found = numbers(reply);
        assert!(occurs("1413", reply, &found));
        assert!(occurs("140.52", reply, &found));
        assert!(occurs("3", reply, &found));
        assert!(!occurs("14", reply, &found));
        assert!(occurs("Geräte", "geraete", &numbers("geraete")));
    }

    #[test]
    fn each_expectation_judges_the_reply() {
        let rows = vec![vec!["16".to_owned()]];
        let q = question(Expect::Values, "en");
        assert_eq!(judge(&q, &rows, "There are 16.", true).unwrap(), None);
        assert!(judge(&q, &rows, "There are 17.", true).unwrap().is_some());
        assert!(
            judge(&q, &[], "x", true).is_err(),
            "an empty expectation is a broken question"
        );

        let q = question(Expect::Absent, "de");
        assert_eq!(
            judge(&q, &[], "Kunde 9 gibt es nicht.", true).unwrap(),
            None
        );
        assert!(judge(&q, &[], "Es gibt 0 Geräte.", true).unwrap().is_some());
        assert!(judge(&q, &rows, "x", true).is_err());

        let q = question(Expect::NotValues, "en");
        assert!(
            judge(&q, &rows, "There are 16 customers.", true)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            judge(&q, &rows, "I could not apply it.", true).unwrap(),
            None
        );

        let q = Question {
            sql: None,
            ..question(Expect::NoLookup, "en")
        };
        assert_eq!(judge(&q, &[], "Hello!", false).unwrap(), None);
        assert!(judge(&q, &[], "Hello!", true).unwrap().is_some());
    }

    #[test]
    fn the_summary_has_accuracy_per_group_and_latency_quantiles() {
        let outcome = |kind: &str, ok: bool, latency_ms: f64| Outcome {
            question: String::new(),
            language: "en".into(),
            kind: kind.into(),
            ok,
            why: None,
            expected: Vec::new(),
            reply: String::new(),
            latency_ms,
            run_ms: latency_ms * 2.0,
            tokens: 10,
        };
        let outcomes: Vec<Outcome> = (1..=10)
            .map(|i| outcome(if i % 2 == 0 { "a" } else { "b" }, i != 3, f64::from(i)))
            .collect();
        let s = summarise(&outcomes);
        assert_eq!((s.overall.ok, s.overall.total), (9, 10));
        assert_eq!((s.by_kind["b"].ok, s.by_kind["b"].total), (4, 5));
        assert_eq!(s.latency_median_ms, 5.0);
        assert_eq!(s.latency_p90_ms, 9.0);
        assert_eq!(s.tokens, 100);
    }
}
