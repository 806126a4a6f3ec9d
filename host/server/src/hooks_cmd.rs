//! `weft schedules` and `weft webhooks`: a running server's schedules and
//! webhooks over its REST API (`--server`, `--key`).

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::Common;
use crate::client_cmd::{Client, print_json, text};

/// `weft schedules`.
#[derive(Args, Debug)]
pub struct SchedulesArgs {
    #[command(subcommand)]
    command: Option<ScheduleCommand>,
    /// Print the server's JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum ScheduleCommand {
    /// Lists the schedules (the default).
    List,
    /// Adds a schedule.
    Add {
        /// A cron expression (5 fields, or 6 with seconds first).
        #[arg(long, required_unless_present = "at", conflicts_with = "at")]
        cron: Option<String>,
        /// Once, at this RFC 3339 time.
        #[arg(long)]
        at: Option<String>,
        /// The IANA time zone of `--cron` (default UTC).
        #[arg(long)]
        timezone: Option<String>,
        /// Chat text for the receiving node.
        #[arg(long, required_unless_present = "body", conflicts_with = "body")]
        message: Option<String>,
        /// A JSON body instead of `--message`.
        #[arg(long)]
        body: Option<String>,
        /// The thread every fire continues (a new one per fire by default).
        #[arg(long)]
        thread: Option<String>,
        /// A served graph (default: the active one at each fire).
        #[arg(long)]
        graph: Option<String>,
        /// The receiving node (default: the graph's entry).
        #[arg(long)]
        to: Option<String>,
        /// Missed ticks: skip, latest or all.
        #[arg(long)]
        catch_up: Option<String>,
        /// With --thread, a fire while the thread's run is in flight:
        /// reject (recorded as thread_busy, the default), enqueue,
        /// interrupt or rollback.
        #[arg(long)]
        multitask: Option<weft_engine::Multitask>,
    },
    /// One schedule with its latest fires.
    Show {
        /// Schedule id.
        id: String,
    },
    /// Its ticks pass without firing.
    Pause {
        /// Schedule id.
        id: String,
    },
    /// Fires again from the next tick.
    Resume {
        /// Schedule id.
        id: String,
    },
    /// Removes it.
    Delete {
        /// Schedule id.
        id: String,
    },
}

/// `weft webhooks`.
#[derive(Args, Debug)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    command: Option<WebhookCommand>,
    /// Print the server's JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum WebhookCommand {
    /// Lists the webhooks (the default).
    List,
    /// Adds a webhook; prints its signing secret (shown only now).
    Add {
        /// Where deliveries are POSTed (http or https).
        #[arg(long)]
        url: String,
        /// An event to deliver (repeat for more): run_finished,
        /// run_failed, run_interrupted, budget_warning, budget_exhausted.
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        /// Its project (admin keys of the whole host).
        #[arg(long)]
        project: Option<String>,
    },
    /// A webhook's deliveries and their attempts, newest first.
    Deliveries {
        /// Webhook id.
        id: String,
    },
    /// Removes a webhook and its deliveries.
    Delete {
        /// Webhook id.
        id: String,
    },
}

fn show(json_out: bool, value: &Value, line: impl Fn(&Value) -> String) -> Result<ExitCode> {
    if json_out {
        return print_json(value);
    }
    match value.as_array() {
        Some(items) => items.iter().for_each(|v| println!("{}", line(v))),
        None => println!("{}", line(value)),
    }
    Ok(ExitCode::SUCCESS)
}

fn schedule_line(s: &Value) -> String {
    let when = s["cron"]
        .as_str()
        .map(|c| format!("{c} ({})", text(&s["timezone"])))
        .unwrap_or_else(|| format!("at {}", s["atMs"]));
    format!(
        "{}\t{}\t{}\tnext {}\tfires {}",
        text(&s["id"]),
        if s["paused"] == true {
            "paused"
        } else {
            "active"
        },
        when,
        s["nextMs"],
        s["fires"]
    )
}

/// `weft schedules …`.
pub async fn schedules(common: &Common, args: SchedulesArgs) -> Result<ExitCode> {
    let client = Client::new(common)?;
    match args.command.unwrap_or(ScheduleCommand::List) {
        ScheduleCommand::List => {
            let list = client.get(&["schedules"], &[]).await?;
            show(args.json, &list, schedule_line)
        }
        ScheduleCommand::Add {
            cron,
            at,
            timezone,
            message,
            body,
            thread,
            graph,
            to,
            catch_up,
            multitask,
        } => {
            let body = body
                .map(|b| serde_json::from_str::<Value>(&b).context("--body is not valid JSON"))
                .transpose()?;
            let mut request = json!({});
            for (name, value) in [
                ("cron", cron.map(Value::from)),
                ("at", at.map(Value::from)),
                ("timezone", timezone.map(Value::from)),
                ("message", message.map(Value::from)),
                ("body", body),
                ("thread", thread.map(Value::from)),
                ("graph", graph.map(Value::from)),
                ("to", to.map(Value::from)),
                ("catchUp", catch_up.map(Value::from)),
                ("multitask", multitask.map(|m| Value::from(m.as_str()))),
            ] {
                if let Some(v) = value {
                    request[name] = v;
                }
            }
            let url = client.url(&["schedules"], &[]);
            let created = client.call(Method::POST, url, Some(request)).await?;
            show(args.json, &created, schedule_line)
        }
        ScheduleCommand::Show { id } => {
            let s = client.get(&["schedules", &id], &[]).await?;
            if args.json {
                return print_json(&s);
            }
            println!("{}", schedule_line(&s));
            for f in s["recent"].as_array().into_iter().flatten() {
                println!(
                    "  tick {}\tthread {}\trun {}\t{}",
                    f["tickMs"],
                    text(&f["threadId"]),
                    text(&f["runId"]),
                    text(&f["error"])
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ScheduleCommand::Pause { id } => {
            let url = client.url(&["schedules", &id, "pause"], &[]);
            let s = client.call(Method::POST, url, None).await?;
            show(args.json, &s, schedule_line)
        }
        ScheduleCommand::Resume { id } => {
            let url = client.url(&["schedules", &id, "resume"], &[]);
            let s = client.call(Method::POST, url, None).await?;
            show(args.json, &s, schedule_line)
        }
        ScheduleCommand::Delete { id } => {
            let url = client.url(&["schedules", &id], &[]);
            client.call(Method::DELETE, url, None).await?;
            println!("schedule {id} removed");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn webhook_line(w: &Value) -> String {
    let events: Vec<String> = w["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    format!(
        "{}\t{}\t{}\t{}",
        text(&w["id"]),
        text(&w["project"]),
        text(&w["url"]),
        events.join(",")
    )
}

/// `weft webhooks …`.
pub async fn webhooks(common: &Common, args: WebhooksArgs) -> Result<ExitCode> {
    let client = Client::new(common)?;
    match args.command.unwrap_or(WebhookCommand::List) {
        WebhookCommand::List => {
            let list = client.get(&["webhooks"], &[]).await?;
            show(args.json, &list, webhook_line)
        }
        WebhookCommand::Add {
            url,
            events,
            project,
        } => {
            let mut request = json!({ "url": url, "events": events });
            if let Some(p) = project {
                request["project"] = json!(p);
            }
            let target = client.url(&["webhooks"], &[]);
            let created = client.call(Method::POST, target, Some(request)).await?;
            if args.json {
                return print_json(&created);
            }
            println!("{}", webhook_line(&created["webhook"]));
            println!("secret {}", text(&created["secret"]));
            eprintln!("keep the secret: it signs every delivery and is not shown again");
            Ok(ExitCode::SUCCESS)
        }
        WebhookCommand::Deliveries { id } => {
            let page = client.get(&["webhooks", &id, "deliveries"], &[]).await?;
            if args.json {
                return print_json(&page);
            }
            for d in page["items"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}\t{} attempts",
                    text(&d["id"]),
                    text(&d["event"]),
                    text(&d["status"]),
                    d["attempts"].as_array().map_or(0, Vec::len)
                );
                for a in d["attempts"].as_array().into_iter().flatten() {
                    println!(
                        "  #{} at {}\t{}\t{} ms\t{}",
                        a["attempt"],
                        a["atMs"],
                        a["statusCode"],
                        a["durationMs"],
                        text(&a["error"])
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        WebhookCommand::Delete { id } => {
            let url = client.url(&["webhooks", &id], &[]);
            client.call(Method::DELETE, url, None).await?;
            println!("webhook {id} removed");
            Ok(ExitCode::SUCCESS)
        }
    }
}
