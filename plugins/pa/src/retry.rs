//! `expert_failed`: reformulate the job once, then give up with an apology.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{Value, json};
use weft_protocol::{ExpertFailed, Job, Respond, kind};
use weft_sdk::{ChatMessage, CompletionRequest, Ctx, EventKind, NodeError};

use crate::config::Config;
use crate::state::{self, PendingJob};

/// The attempt number of the reformulated job; a failure of this attempt
/// (or a later one) is final.
pub const LAST_ATTEMPT: u32 = 2;

/// The draft `output` phrases when the PA gives up (in the answer's language).
pub const APOLOGY: &str =
    "Sorry, I could not find that out right now. Please try again or rephrase the question.";

/// The system prompt of the reformulation call. Its first words are
/// stable, so scripted models in engine tests can match on them.
pub const REFORMULATE_SYSTEM: &str = "An expert could not do a job. Rewrite the job so \
the expert can do it: keep every fact it contains (customer numbers, names, dates, places), \
state the task plainly in one self-contained instruction, and avoid what caused the error. \
Answer with a JSON object {\"job\": \"...\"} only.";

/// One rewritten instruction.
const MAX_TOKENS: u32 = 250;

/// The reformulation answer.
#[derive(Debug, Deserialize)]
struct Reformulated {
    job: String,
}

/// The JSON Schema of the reformulation answer.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {"job": {"type": "string", "minLength": 1}},
        "required": ["job"],
        "additionalProperties": false
    })
}

/// The schema-constrained request that rewrites `failed.job` for `expert`.
pub fn request(config: &Config, expert: &str, failed: &ExpertFailed) -> CompletionRequest {
    let mut prompt = format!("Expert: {expert}");
    if let Some(knows) = config.experts.get(expert) {
        let _ = write!(prompt, " ({knows})");
    }
    let _ = write!(
        prompt,
        "\nThe user's message: {}\nThe failed job: {}\nThe error: {}",
        failed.job.request, failed.job.job, failed.error
    );
    CompletionRequest::new([
        ChatMessage::system(REFORMULATE_SYSTEM),
        ChatMessage::user(prompt),
    ])
    .max_tokens(MAX_TOKENS)
    .json_schema(&schema())
}

/// Handle `failed`, reported by the expert `from`: retry attempt 1 once,
/// give up otherwise.
pub(crate) fn handle(
    ctx: &mut Ctx<'_>,
    config: &Config,
    from: &str,
    failed: ExpertFailed,
) -> Result<(), NodeError> {
    // A remembered job for another user message is stale: its topic is not this one's.
    let pending = state::pending(ctx).filter(|p| p.job.request == failed.job.request);
    if failed.job.attempt >= LAST_ATTEMPT {
        let reason = format!(
            "{from} failed attempt {}: {}",
            failed.job.attempt, failed.error
        );
        return give_up(ctx, config, &failed.job, pending, reason);
    }
    let job_text = match reformulate(ctx, config, from, &failed) {
        Ok(job_text) => job_text,
        Err(why) => {
            let reason = format!("{from} failed: {}; {why}", failed.error);
            return give_up(ctx, config, &failed.job, pending, reason);
        }
    };
    let job = Job {
        job: job_text,
        attempt: LAST_ATTEMPT,
        ..failed.job
    };
    ctx.log().info(format!(
        "{from} failed ({}); retrying with a reformulated job",
        failed.error
    ));
    crate::emit(
        ctx,
        EventKind::Decided,
        &json!({"expert": from, "job": job.job, "language": job.language}),
    );
    ctx.send(from, kind::JOB, &job)?;
    let topic = pending.map(|p| p.topic).or_else(|| state::last_topic(ctx));
    state::set_pending(
        ctx,
        &PendingJob {
            expert: from.to_owned(),
            topic: topic.unwrap_or_default(),
            job,
        },
    );
    Ok(())
}

/// The reformulated job text, or why there is none.
fn reformulate(
    ctx: &Ctx<'_>,
    config: &Config,
    expert: &str,
    failed: &ExpertFailed,
) -> Result<String, String> {
    let completion = ctx
        .llm()
        .complete(request(config, expert, failed))
        .map_err(|error| format!("reformulating the job failed: {error}"))?;
    match serde_json::from_str::<Reformulated>(&completion.text) {
        Ok(answer) if !answer.job.trim().is_empty() => Ok(answer.job),
        Ok(_) => Err("the reformulated job is empty".to_owned()),
        Err(error) => {
            let start: String = completion.text.chars().take(80).collect();
            Err(format!(
                "the reformulation is unusable ({error}): {start:?}"
            ))
        }
    }
}

/// Tell the user the job could not be done: a `respond` with the error and
/// an apologetic draft to `output`, and the topic to `ui`.
fn give_up(
    ctx: &mut Ctx<'_>,
    config: &Config,
    job: &Job,
    pending: Option<PendingJob>,
    reason: String,
) -> Result<(), NodeError> {
    ctx.log()
        .warn(format!("giving up on {:?}: {reason}", job.job));
    let respond = Respond {
        request: job.request.clone(),
        language: job.language.clone(),
        response_hint: job.response_hint.clone(),
        draft: Some(APOLOGY.to_owned()),
        result: None,
        error: Some(reason),
    };
    ctx.send(&config.output, kind::RESPOND, &respond)?;
    let topic = pending
        .map(|p| p.topic)
        .filter(|topic| !topic.is_empty())
        .or_else(|| state::last_topic(ctx));
    match topic {
        Some(topic) => ctx.send(&config.ui, kind::UI, &crate::topic_ui(&topic))?,
        None => ctx
            .log()
            .debug("no topic known for the failed job; not updating the UI"),
    }
    state::clear_pending(ctx);
    Ok(())
}
