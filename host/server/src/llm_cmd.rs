//! `weft llm`: one prompt to the configured model, streamed to stdout.
//!
//! For trying a model or a provider setup by hand: the same backends, routes
//! and schemas as a graph's nodes get.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use weft_runtime::capabilities::llm::{Deltas, LlmCall};
use weft_runtime::{CallContext, ChatMessage, CompletionRequest, Role};

use crate::{Common, setup};

/// Arguments of `weft llm`.
#[derive(Args, Debug)]
pub struct LlmArgs {
    /// A system prompt.
    #[arg(long)]
    system: Option<String>,
    /// Constrain the answer to this JSON Schema (inline JSON, or `@FILE`).
    #[arg(long)]
    schema: Option<String>,
    /// Upper bound on answer tokens.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// The model name to route, as a graph node would name it.
    #[arg(long = "route")]
    route: Option<String>,
    /// The prompt.
    prompt: String,
}

/// Prints deltas as they arrive.
struct Stdout;

impl Deltas for Stdout {
    fn delta(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

pub async fn run(common: &Common, args: LlmArgs) -> Result<ExitCode> {
    let config = setup::config(common)?;
    let backend = setup::llm(common, None, &config)?;
    let json_schema = match &args.schema {
        None => None,
        Some(text) => {
            let text = match text.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading the schema {path}"))?,
                None => text.clone(),
            };
            let schema: serde_json::Value =
                serde_json::from_str(&text).context("--schema is not JSON")?;
            Some(schema.to_string())
        }
    };
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(ChatMessage {
            role: Role::System,
            content: system,
        });
    }
    messages.push(ChatMessage {
        role: Role::User,
        content: args.prompt,
    });
    let request = CompletionRequest {
        messages,
        max_tokens: args.max_tokens,
        json_schema,
        stream: true,
    };
    let ctx = CallContext {
        thread: "cli".to_owned(),
        run: "cli".to_owned(),
        frame: 0,
        node: "cli".to_owned(),
        project: "default".into(),
    };
    let call = LlmCall {
        ctx: &ctx,
        model: args.route.as_deref(),
        deltas: &Stdout,
    };
    let started = Instant::now();
    let completion = backend.complete(call, request).await?;
    println!();
    eprintln!(
        "{}: {} prompt + {} completion tokens in {:.2} s",
        completion.model,
        completion.prompt_tokens,
        completion.completion_tokens,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
