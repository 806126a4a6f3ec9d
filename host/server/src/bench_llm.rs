//! `weft bench llm`: the local model's load time and speeds.
//!
//! Each measured request starts with a different first line so that the
//! prompt-prefix cache cannot help, except in the pass that measures it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::Common;

/// Arguments of `weft bench llm`.
#[derive(Args, Debug)]
pub struct LlmBenchArgs {
    /// Measured requests per pass.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Tokens to generate per request (free text).
    #[arg(long, default_value_t = 128)]
    tokens: u32,
    /// Inference threads.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Print a JSON line in `bench/`'s format instead of a table.
    #[arg(long)]
    json: bool,
}

#[cfg(not(feature = "local"))]
pub async fn run(_: &Common, _: LlmBenchArgs) -> Result<ExitCode> {
    anyhow::bail!(
        "this weft was built without the `local` feature: there is no local model to measure"
    )
}

#[cfg(feature = "local")]
pub async fn run(common: &Common, args: LlmBenchArgs) -> Result<ExitCode> {
    use anyhow::{Context, bail};
    use weft_llm::LocalProvider;
    use weft_llm::local::{LocalConfig, Timings};
    use weft_runtime::capabilities::llm::{LlmCall, NoDeltas};
    use weft_runtime::{CallContext, ChatMessage, CompletionRequest, Role};

    if args.runs == 0 || args.tokens == 0 || args.threads == 0 {
        bail!("--runs, --tokens and --threads must be at least 1");
    }
    let config = LocalConfig {
        path: common.model_path(),
        threads: args.threads,
        ..LocalConfig::default()
    };
    let provider = tokio::task::spawn_blocking(move || LocalProvider::load(config))
        .await?
        .context("loading the local model (--model)")?;
    let info = provider.info().clone();
    let ctx = CallContext {
        thread: "bench".to_owned(),
        run: "bench".to_owned(),
        frame: 0,
        node: "bench".to_owned(),
        project: "default".into(),
    };
    let call = LlmCall {
        ctx: &ctx,
        model: None,
        deltas: &NoDeltas,
    };
    let request = |salt: u32, max_tokens: u32, schema: Option<&str>| CompletionRequest {
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: format!("Session {salt}. {SYSTEM}"),
            },
            ChatMessage {
                role: Role::User,
                content: USER.to_owned(),
            },
        ],
        max_tokens,
        json_schema: schema.map(str::to_owned),
        stream: false,
    };
    // Warm-up: first-touch of the weights, grammar compilation.
    provider
        .complete_timed(call, request(0, 8, Some(SCHEMA)))
        .await?;

    let mut free = Vec::new();
    let mut constrained = Vec::new();
    let mut cached = Vec::new();
    let mut returning = Vec::new();
    let mut prompt_tokens = 0;
    for i in 0..args.runs {
        let (c, _, t) = provider
            .complete_timed(call, request(1000 + i, args.tokens, None))
            .await?;
        prompt_tokens = c.prompt_tokens;
        free.push(t);
        let (_, _, t) = provider
            .complete_timed(call, request(2000 + i, 200, Some(SCHEMA)))
            .await?;
        constrained.push(t);
        // Same prompt again: only the last token is evaluated.
        let (_, _, t) = provider
            .complete_timed(call, request(2000 + i, 1, Some(SCHEMA)))
            .await?;
        cached.push(t);
        // The first prompt again, after another caller's: a node whose
        // system prompt is still in one of the cache's slots.
        let (_, _, t) = provider
            .complete_timed(call, request(1000 + i, 1, None))
            .await?;
        returning.push(t);
    }

    let rate = |n: u32, d: Duration| f64::from(n) / d.as_secs_f64().max(1e-9);
    let sum = |ts: &[Timings], f: fn(&Timings) -> (u32, Duration)| {
        ts.iter().fold((0, Duration::ZERO), |(n, d), t| {
            let (tn, td) = f(t);
            (n + tn, d + td)
        })
    };
    let (pn, pd) = sum(&free, |t| (t.prompt_evaluated, t.prompt));
    let (gn, gd) = sum(&free, |t| (t.generated, t.generation));
    let (cn, cd) = sum(&constrained, |t| (t.generated, t.generation));
    let (_, hit) = sum(&cached, |t| (t.prompt_evaluated, t.prompt));
    let (_, back) = sum(&returning, |t| (t.prompt_evaluated, t.prompt));
    let per_run_ms = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(args.runs);
    if args.json {
        use crate::bench_compare::round;
        let line = serde_json::json!({
            "system": "weft",
            "version": env!("CARGO_PKG_VERSION"),
            "workload": "local_llm",
            "model": info.model,
            "params_m": round(info.params as f64 / 1e6, 0),
            "threads": info.threads,
            "runs": args.runs,
            "load_ms": round(info.load_time.as_secs_f64() * 1e3, 1),
            "prompt_tokens": prompt_tokens,
            "prompt_tok_s": round(rate(pn, pd), 1),
            "generation_tok_s": round(rate(gn, gd), 1),
            "schema_generation_tok_s": round(rate(cn, cd), 1),
            "prompt_ms": round(per_run_ms(pd), 1),
            "cached_prompt_ms": round(per_run_ms(hit), 1),
            "returning_prompt_ms": round(per_run_ms(back), 1),
        });
        println!("{line}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "local model {} ({:.0} M parameters, {:.1} MiB), {} thread(s), context {}",
        info.model,
        info.params as f64 / 1e6,
        info.size as f64 / (1024.0 * 1024.0),
        info.threads,
        info.context
    );
    println!("{:<44} {:>12}", "metric", "value");
    println!(
        "{:<44} {:>9.1} ms",
        "load (file to ready context)",
        info.load_time.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>8.1} tok/s",
        format!("prompt ({prompt_tokens} tokens, cold cache)"),
        rate(pn, pd)
    );
    println!(
        "{:<44} {:>8.1} tok/s",
        format!("generation (free text, {} tokens)", args.tokens),
        rate(gn, gd)
    );
    println!(
        "{:<44} {:>8.1} tok/s",
        "generation (JSON-Schema grammar)",
        rate(cn, cd)
    );
    println!(
        "{:<44} {:>9.1} ms  (vs {:.1} ms cold)",
        "same prompt again (prefix cache)",
        per_run_ms(hit),
        per_run_ms(pd)
    );
    println!(
        "{:<44} {:>9.1} ms  (vs {:.1} ms cold)",
        "a prompt again after another (cache slots)",
        per_run_ms(back),
        per_run_ms(pd)
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "local")]
const SYSTEM: &str = "You are the routing assistant of a heating-cost billing service. \
Customers own properties; a property has usage units; a unit has metering devices (heat \
meters, hot and cold water meters, heat cost allocators); each device has readings taken \
on site, remotely or estimated. You read the user's request and decide which records are \
needed, which filters identify them and what should be counted, summed or listed. Answer \
precisely and briefly.";

#[cfg(feature = "local")]
const USER: &str = "Please describe, in a few sentences, what a heat cost allocator is, how \
its readings are taken once a year, and why a tenant's bill depends on the readings of all \
the units of the property. Then explain how a remote reading differs from an estimated one.";

#[cfg(feature = "local")]
const SCHEMA: &str = r#"{"type":"object","properties":{"table":{"type":"string","enum":["customers","properties","units","devices","readings"]},"aggregate":{"type":"string","enum":["count","list","sum","average","latest"]},"reason":{"type":"string"}},"required":["table","aggregate","reason"],"additionalProperties":false}"#;
