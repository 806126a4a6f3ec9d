//! `weft threads --server …`, `weft usage`, `weft inject`, `weft
//! resume-run`: the common
//! operator calls made against a running `weft serve` over its REST API.
//!
//! The server comes from `--server` (or `WEFT_SERVER`, default
//! `http://127.0.0.1:8080`) and the key from `--key` (or `WEFT_KEY`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use weft_engine::UsageTotals;

use crate::Common;
use crate::store_cmd::{ThreadRow, ThreadsArgs, print_threads};

/// Where `weft serve` listens unless `--server` says otherwise.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// `weft usage`.
#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Also list thread token budgets, most used first.
    #[arg(long)]
    threads: bool,
    /// Print the server's JSON.
    #[arg(long)]
    json: bool,
}

/// `weft inject`.
#[derive(Args, Debug)]
pub struct InjectArgs {
    /// Chat text for the graph's entry node (or use `--body`).
    #[arg(required_unless_present = "body")]
    text: Option<String>,
    /// A JSON message body instead of chat text.
    #[arg(long, conflicts_with = "text")]
    body: Option<String>,
    /// An existing (or new, named) thread; a new thread when absent.
    #[arg(long)]
    thread: Option<String>,
    /// Project of a new thread.
    #[arg(long)]
    project: Option<String>,
    /// The receiving node (default: the graph's entry).
    #[arg(long)]
    to: Option<String>,
    /// Message kind (default `user`).
    #[arg(long)]
    kind: Option<String>,
    /// While a run is in flight on the thread: `reject` (refused),
    /// `enqueue`, `interrupt` or `rollback` (the server's `api.multitask`
    /// when absent).
    #[arg(long)]
    multitask: Option<weft_engine::Multitask>,
    /// Wait for the run to end and print its reply.
    #[arg(long)]
    wait: bool,
    /// With `--wait`, give up after this long (the run goes on).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the server's JSON.
    #[arg(long)]
    json: bool,
}

/// A client of one server, with one key.
pub(crate) struct Client {
    base: Url,
    key: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(common: &Common) -> Result<Self> {
        let server = common.server.as_deref().unwrap_or(DEFAULT_SERVER);
        let base = Url::parse(server)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .with_context(|| {
                format!("--server must be an http:// or https:// URL, not `{server}`")
            })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            base,
            key: common.key.clone(),
            http,
        })
    }

    /// The URL of `/api/v1/` + `segments` (each percent-encoded) with
    /// `query`.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a request and returns the JSON answer, or the server's error
    /// (code and message) as an error.
    pub(crate) async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<Value> {
        let path = url.path().to_owned();
        let mut request = self.http.request(method.clone(), url);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach weft at {}: is `weft serve` running there? (--server or WEFT_SERVER)",
                self.base
            )
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {path}: the answer was cut off"))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null); // 204
            }
            return serde_json::from_str(&text)
                .with_context(|| format!("{method} {path}: the answer is not JSON: {text}"));
        }
        let error: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = error["error"]["code"].as_str().unwrap_or("unknown");
        let message = error["error"]["message"].as_str().unwrap_or(text.as_str());
        let hint = match (status, &self.key) {
            (StatusCode::UNAUTHORIZED, None) => " (pass a key with --key or WEFT_KEY)",
            _ => "",
        };
        bail!("{method} {path}: {status} {code}: {message}{hint}")
    }

    pub(crate) async fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Value> {
        self.call(Method::GET, self.url(segments, query), None)
            .await
    }
}

pub(crate) fn print_json(value: &Value) -> Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

/// `weft threads --server URL`: the server's thread list.
pub async fn threads(common: &Common, args: ThreadsArgs) -> Result<ExitCode> {
    let client = Client::new(common)?;
    let (limit, offset) = (args.limit.to_string(), args.offset.to_string());
    let mut query = vec![("limit", limit.as_str()), ("offset", offset.as_str())];
    for (name, value) in [("status", &args.status), ("node", &args.node)] {
        if let Some(value) = value {
            query.push((name, value));
        }
    }
    let page = client.get(&["threads"], &query).await?;
    if args.json {
        return print_json(&page);
    }
    let rows: Vec<ThreadRow> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| ThreadRow {
            id: text(&t["id"]),
            project: text(&t["project"]),
            status: text(&t["status"]),
            runs: t["runs"].as_u64().unwrap_or(0),
            frames: t["frames"].as_u64().unwrap_or(0),
            forked_from: t["forkedFrom"]
                .as_str()
                .map(|from| format!("{from} @ {}", t["forkedAfter"])),
        })
        .collect();
    print_threads(&rows, page["total"].as_u64());
    Ok(ExitCode::SUCCESS)
}

/// `weft usage`: totals, per node and per model.
pub async fn usage(common: &Common, args: UsageArgs) -> Result<ExitCode> {
    let client = Client::new(common)?;
    let mut overview = client.get(&["usage"], &[]).await?;
    if args.threads {
        overview["threads"] = client.get(&["usage", "threads"], &[]).await?;
    }
    if args.json {
        return print_json(&overview);
    }
    let totals = |v: &Value| -> Result<UsageTotals> {
        serde_json::from_value(v.clone()).context("the server's usage totals have another shape")
    };
    if let Some(project) = overview["project"].as_str() {
        println!("project {project}");
    }
    println!(
        "{:<20} {:>7} {:>6} {:>10} {:>10} {:>10} {:>9} {:>12}",
        "", "calls", "failed", "prompt", "completion", "cost", "invocs", "fuel"
    );
    let row = |name: &str, t: &UsageTotals| {
        println!(
            "{:<20} {:>7} {:>6} {:>10} {:>10} {:>10.4} {:>9} {:>12}",
            name,
            t.calls,
            t.failed,
            t.prompt_tokens,
            t.completion_tokens,
            t.cost,
            t.invocations,
            t.fuel
        );
    };
    row("total", &totals(&overview["totals"])?);
    for (group, label) in [("byNode", "node"), ("byModel", "model")] {
        if let Some(map) = overview[group].as_object() {
            for (name, t) in map {
                row(&format!("{label} {name}"), &totals(t)?);
            }
        }
    }
    if let Some(threads) = overview["threads"].as_array() {
        println!(
            "\n{:<24} {:>10} {:>10} {:>8}",
            "thread", "used", "limit", "used %"
        );
        for b in threads {
            println!(
                "{:<24} {:>10} {:>10} {:>8}",
                text(&b["threadId"]),
                b["used"],
                b["limit"],
                format!("{:.1}", b["percentUsed"].as_f64().unwrap_or(0.0))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `weft inject`: sends a message; with `--wait`, follows the run to its end.
pub async fn inject(common: &Common, args: InjectArgs) -> Result<ExitCode> {
    let client = Client::new(common)?;
    let body = match &args.body {
        Some(raw) => Some(serde_json::from_str::<Value>(raw).context("--body is not valid JSON")?),
        None => None,
    };
    let mut request = json!({ "text": args.text, "body": body });
    for (name, value) in [
        ("threadId", &args.thread),
        ("project", &args.project),
        ("to", &args.to),
        ("kind", &args.kind),
    ] {
        if let Some(value) = value {
            request[name] = json!(value);
        }
    }
    if let Some(policy) = args.multitask {
        request["multitask"] = json!(policy.as_str());
    }
    let accepted = client
        .call(Method::POST, client.url(&["inject"], &[]), Some(request))
        .await?;
    let thread = text(&accepted["threadId"]);
    if !args.wait {
        if args.json {
            return print_json(&accepted);
        }
        println!(
            "thread {thread} run {} message {}",
            text(&accepted["runId"]),
            text(&accepted["messageId"])
        );
        if accepted["status"] == "queued" {
            eprintln!(
                "queued at position {} behind run {}",
                accepted["position"],
                text(&accepted["behind"])
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let run = text(&accepted["runId"]);
    if accepted["status"] == "queued" {
        eprintln!(
            "thread {thread}: run {run} queued at position {} behind run {}",
            accepted["position"],
            text(&accepted["behind"])
        );
    } else {
        eprintln!("thread {thread}: run {run} accepted");
    }
    wait(&client, &thread, &run, args.timeout, args.json).await
}

/// `weft resume-run`.
#[derive(Args, Debug)]
pub struct ResumeRunArgs {
    /// The thread.
    thread: String,
    /// The run waiting for an answer (`status: interrupted`).
    run: String,
    /// The answer, as JSON (checked against the question's answer schema;
    /// a bare word that is not JSON is taken as a string).
    #[arg(long, required_unless_present_any = ["reject", "list"])]
    value: Option<String>,
    /// Declines the question instead, with this reason.
    #[arg(long, conflicts_with = "value")]
    reject: Option<String>,
    /// Which question (its id); the run's oldest pending one when absent.
    #[arg(long)]
    interrupt: Option<String>,
    /// Only list the run's questions and how each ended.
    #[arg(long, conflicts_with_all = ["value", "reject", "interrupt"])]
    list: bool,
    /// Wait for the run to end (or ask again) and print its reply.
    #[arg(long)]
    wait: bool,
    /// With `--wait`, give up after this long (the run goes on).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the server's JSON.
    #[arg(long)]
    json: bool,
}

/// `weft resume-run`: answers (or declines) the question a run waits on;
/// with `--wait`, follows the run as `inject --wait` does.
pub async fn resume_run(common: &Common, args: ResumeRunArgs) -> Result<ExitCode> {
    let client = Client::new(common)?;
    let run_path = ["threads", args.thread.as_str(), "runs", args.run.as_str()];
    if args.list {
        let list = client
            .get(&[&run_path[..], &["interrupts"]].concat(), &[])
            .await?;
        if args.json {
            return print_json(&list);
        }
        for i in list.as_array().into_iter().flatten() {
            println!(
                "{}\t{}\t{}\t{}",
                text(&i["id"]),
                text(&i["status"]),
                text(&i["question"]),
                i["answer"]
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut request = match (&args.value, &args.reject) {
        (Some(raw), None) => json!({
            "value": serde_json::from_str::<Value>(raw).unwrap_or_else(|_| json!(raw)),
        }),
        (None, Some(reason)) => json!({ "reject": reason }),
        _ => bail!("give exactly one of --value and --reject"),
    };
    if let Some(id) = &args.interrupt {
        request["interrupt"] = json!(id);
    }
    let url = client.url(&[&run_path[..], &["resume"]].concat(), &[]);
    let resumed = client.call(Method::POST, url, Some(request)).await?;
    if !args.wait {
        if args.json {
            return print_json(&resumed);
        }
        let interrupt = &resumed["interrupt"];
        println!(
            "interrupt {} {}; run {} {}",
            text(&interrupt["id"]),
            text(&interrupt["status"]),
            args.run,
            if resumed["resumed"] == true {
                "goes on"
            } else {
                "still waits on other questions"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    wait(&client, &args.thread, &args.run, args.timeout, args.json).await
}

/// The exit code of a `--wait` that found the run waiting for an answer.
const WAITS_FOR_ANSWER: u8 = 4;

/// Follows `run` until it ends or waits for an answer; prints its reply
/// (or its questions) and says how it ended in the exit code.
async fn wait(
    client: &Client,
    thread: &str,
    run_id: &str,
    timeout: Duration,
    json: bool,
) -> Result<ExitCode> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen_frames = 0;
    let result = loop {
        let result = client
            .get(&["threads", thread, "result"], &[("run", run_id)])
            .await?;
        let run = &result["run"];
        let frames = run["frames"].as_u64().unwrap_or(0);
        if frames > seen_frames {
            eprintln!("thread {thread}: {frames} frames committed");
            seen_frames = frames;
        }
        let status = run["status"].as_str().unwrap_or("running");
        // A run is over when its own row says it ended and it no longer
        // holds its thread (a run ends before it frees the thread or hands
        // it to the next queued run); one that waits for a person holds
        // its thread.
        let ended = !matches!(
            status,
            "running" | "queued" | "waiting" | "budget_exhausted"
        );
        if run["id"] == run_id
            && (status == "interrupted" || (ended && result["activeRunId"] != run_id))
        {
            break result;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "thread {thread}: the run had not ended after {} (it goes on; `weft threads --server …` shows it)",
                humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let run = &result["run"];
    let status = text(&run["status"]);
    if status == "interrupted" {
        let questions = client
            .get(&["threads", thread, "runs", run_id, "interrupts"], &[])
            .await?;
        let pending: Vec<&Value> = questions
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["status"] == "pending")
            .collect();
        if json {
            print_json(&json!({ "result": result, "interrupts": pending }))?;
        } else {
            for i in &pending {
                println!("{}", text(&i["question"]));
                eprintln!(
                    "  interrupt {} from {}; answer schema {}",
                    text(&i["id"]),
                    text(&i["node"]),
                    i["answerSchema"]
                );
            }
            eprintln!(
                "thread {thread}: run {run_id} waits for an answer: weft resume-run {thread} {run_id} --value JSON"
            );
        }
        return Ok(ExitCode::from(WAITS_FOR_ANSWER));
    }
    if json {
        return print_json(&result);
    }
    println!("{}", run["reply"].as_str().unwrap_or(""));
    eprintln!("thread {thread}: run {status} after {seen_frames} frames");
    Ok(if status == "completed" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}
