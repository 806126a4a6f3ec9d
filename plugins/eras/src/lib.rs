//! The Eras expert: answers one self-contained [`Job`] from the heating-cost
//! billing database (HeizKV: `Kunden` › `Objekte` › `Nutzeinheiten` ›
//! `Geraete` › `Ablesungen`, German column names).
//!
//! It is the seed's `eras_expert`, stateless towards the conversation: the
//! job carries every fact it needs. Per job it plans, then executes,
//! DESCRIBE-first:
//!
//! 1. the table names, from thread memory [`TABLES_KEY`] or `db.list-tables`;
//! 2. llm call **plan** ([`plan`]): which tables, and the approach;
//! 3. the columns of each planned table, from thread memory
//!    ([`schema_key`]) or `db.describe`;
//! 4. llm call **sql** ([`sql`]): one statement with positional params;
//! 5. `db.query`. On a query error (`no such column: X`, say) it describes
//!    the planned tables afresh and asks for the statement again with the
//!    error in the prompt, up to `max_retries` times;
//! 6. a deterministic [`Interpreted`](weft_protocol::Interpreted) summary ([`interpret`]; no third
//!    model call), sent as a `respond` to `output`, and the rows as an
//!    `emit_display` `ui` message to `ui`.
//!
//! On a fresh thread the capability calls are therefore, in order:
//! list-tables, llm(plan), describe (each planned table), llm(sql), query.
//! Every database call is announced with progress text and a `tool_call`
//! event `{tool, args}` (tools named as [`weft_protocol::DATA_TOOLS`]); the
//! plan is a `decided` event `{tables, approach}` and the result an
//! `interpreted` event.
//!
//! With `mode: intent` (for small models) steps 2 to 5 are replaced by
//! [`intent`]: the model fills a grounded, schema-constrained query intent
//! and the expert writes the SQL itself.
//!
//! When the job cannot be done (unusable plan, retries exhausted, database
//! or model unavailable, denied or out of budget) the expert sends
//! `expert_failed` ([`ExpertFailed`]) to the PA, which may reformulate the
//! job, and logs a warning; the tick itself succeeds. HUD and memory are
//! best-effort: their failures are logged, since they only cost a progress
//! line or a cache hit.
//!
//! The peers and limits come from the graph `config` ([`Config`]):
//!
//! ```json
//! { "pa": "pa", "output": "output", "ui": "ui", "max_retries": 3, "max_facts": 10 }
//! ```

#![warn(missing_docs)]

mod catalog;
mod config;
pub mod cues;
mod failure;
pub mod intent;
pub mod interpret;
pub mod plan;
pub mod sql;
#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::json;
use weft_protocol::{ExpertFailed, Job, Respond, UiActions, any_of, kind};
use weft_sdk::{Capability, Ctx, EventKind, Message, Node, NodeError, NodeInfo};

pub use catalog::{ColumnInfo, TABLES_KEY, TableColumns, schema_key};
pub use config::{Config, Entity, Glosses, Mode, Noun, ValueIndex};
pub use cues::Cues;
pub use failure::Failure;

/// The Eras expert node; see the [crate docs](crate).
pub struct Eras;

impl Node for Eras {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "eras",
            env!("CARGO_PKG_VERSION"),
            "Answers self-contained jobs from the heating-cost billing database",
        )
        .input_schema(Job::schema())
        .output_schema(any_of([
            Respond::schema(),
            UiActions::schema(),
            ExpertFailed::schema(),
        ]))
        .capabilities([
            Capability::Llm,
            Capability::Db,
            Capability::Memory,
            Capability::Hud,
            Capability::Log,
        ])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let config: Config = ctx.config()?;
        for message in inbox {
            if message.kind != kind::JOB {
                ctx.ignore(message);
                continue;
            }
            let job: Job = message.json()?;
            handle(ctx, &config, job)?;
        }
        Ok(())
    }
}

/// Do one job and send its answer, or report why it could not be done.
fn handle(ctx: &mut Ctx<'_>, config: &Config, job: Job) -> Result<(), NodeError> {
    match answer(ctx, config, &job) {
        Ok((result, display)) => {
            emit(ctx, EventKind::Interpreted, &result);
            let respond = Respond {
                request: job.request,
                language: job.language,
                response_hint: job.response_hint,
                draft: None,
                result: Some(result),
                error: None,
            };
            ctx.send(&config.output, kind::RESPOND, &respond)?;
            ctx.send(&config.ui, kind::UI, &display)
        }
        Err(failure) => {
            ctx.log()
                .warn(format!("job {:?} failed: {failure}", job.job));
            let error = failure.to_string();
            ctx.send(
                &config.pa,
                kind::EXPERT_FAILED,
                &ExpertFailed { job, error },
            )
        }
    }
}

/// Plan, describe, query and interpret: the answer and its display.
fn answer(
    ctx: &Ctx<'_>,
    config: &Config,
    job: &Job,
) -> Result<(weft_protocol::Interpreted, UiActions), Failure> {
    let tables = catalog::tables(ctx, config)?;
    if config.mode == Mode::Intent {
        return intent::answer(ctx, config, job, &tables);
    }
    let plan = plan::make(ctx, job, &tables)?;
    emit(
        ctx,
        EventKind::Decided,
        &json!({"tables": plan.tables, "approach": plan.approach}),
    );
    let mut columns = catalog::columns(ctx, &plan.tables, false)?;
    let found = sql::run(ctx, config, job, &plan, &mut columns)?;
    let result = interpret::interpret(&found.rows, found.retries, config.max_facts);
    let display = interpret::display(&job.job, &found.rows);
    Ok((result, display))
}

/// Show progress text and emit a `tool_call` event before a database call;
/// HUD failures are logged, not fatal.
fn announce(ctx: &Ctx<'_>, progress: &str, tool: &str, args: serde_json::Value) {
    if let Err(error) = ctx.hud().progress(progress) {
        ctx.log().warn(format!("could not show progress: {error}"));
    }
    emit(
        ctx,
        EventKind::ToolCall,
        &json!({"tool": tool, "args": args}),
    );
}

/// Emit a HUD event; a HUD failure is logged, not fatal.
fn emit(ctx: &Ctx<'_>, kind: EventKind, data: &impl Serialize) {
    if let Err(error) = ctx.hud().emit(kind, data) {
        ctx.log()
            .warn(format!("could not emit a {kind:?} event: {error}"));
    }
}

weft_sdk::export_node!(Eras);
