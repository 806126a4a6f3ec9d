//! Routing one `command`: the model call that picks an expert (or `none`)
//! and writes the job, and what the PA sends for each outcome.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weft_protocol::{Command, Intent, Job, MemorizerState, Respond, kind};
use weft_sdk::{ChatMessage, CompletionRequest, Ctx, EventKind, NodeError};

use crate::config::Config;
use crate::state::{self, PendingJob, Turn};

/// The routing answer's `expert` when the PA answers itself.
pub const NONE: &str = "none";

/// The hint given to `output` when the routing answer was unusable.
const FALLBACK_HINT: &str = "Answer the user's message directly and briefly.";

/// The routing answer (the seed's `PARouting`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// A configured expert, or [`NONE`].
    pub expert: String,
    /// The expert's self-contained task; with [`NONE`], the PA's answer.
    pub job: String,
    /// Shown to the user while the work is done.
    pub thinking_message: String,
    /// How the final answer should be phrased.
    pub response_hint: String,
    /// ISO 639-1 code of the answer's language.
    pub language: String,
}

impl Routing {
    /// The route taken when the model's answer is unusable: no expert, no
    /// draft, so `output` answers the message itself.
    pub fn fallback(command: &Command) -> Self {
        Self {
            expert: NONE.to_owned(),
            job: String::new(),
            thinking_message: String::new(),
            response_hint: FALLBACK_HINT.to_owned(),
            language: command.analysis.language.clone(),
        }
    }
}

/// The system prompt of the routing call. Its first words are stable, so
/// scripted models in engine tests can match on them.
pub const ROUTE_SYSTEM: &str = "You are a personal assistant deciding who handles the \
user's message. Answer with a JSON object only. \
expert: the expert whose knowledge the task needs, or \"none\" when you can answer yourself \
(greetings, small talk, general knowledge, questions about this conversation). Any task that \
needs data or tools goes to an expert. \
job: for an expert, the task as one self-contained instruction. Experts are stateless: they \
know nothing about this conversation, so put every fact they need into the job (customer \
numbers, names, dates, places) from what you know. For \"none\", write your answer to the user. \
thinking_message: one short sentence shown to the user while the work is done, in the user's \
language. \
response_hint: how the final answer should be phrased (short, a list, a table, friendly ...). \
language: the ISO 639-1 code of the language to answer in.";

/// The answer is a few short strings; the job is the longest.
const MAX_TOKENS: u32 = 400;

/// The JSON Schema of the routing answer: `expert` is one of the configured
/// experts or [`NONE`].
pub fn schema(config: &Config) -> Value {
    let mut experts: Vec<&str> = config.experts.keys().map(String::as_str).collect();
    experts.push(NONE);
    json!({
        "type": "object",
        "properties": {
            "expert": {"type": "string", "enum": experts},
            "job": {"type": "string"},
            "thinking_message": {"type": "string"},
            "response_hint": {"type": "string"},
            "language": {"type": "string"}
        },
        "required": ["expert", "job", "thinking_message", "response_hint", "language"],
        "additionalProperties": false
    })
}

/// The schema-constrained routing request for `command`.
pub fn request(
    config: &Config,
    command: &Command,
    memory: Option<&MemorizerState>,
    history: &[Turn],
) -> CompletionRequest {
    let mut prompt = String::from("Experts:\n");
    for (name, knows) in &config.experts {
        let _ = writeln!(prompt, "- {name}: {knows}");
    }
    let _ = writeln!(prompt, "- {NONE}: you answer yourself, without tools.");
    prompt.push_str("\nWhat you know about the conversation:\n");
    match memory {
        Some(state) => render_state(&mut prompt, state),
        None => prompt.push_str("nothing yet\n"),
    }
    if !history.is_empty() {
        prompt.push_str("\nRecent requests, oldest first:\n");
        for turn in history {
            let _ = writeln!(prompt, "- {:?} went to {}", turn.request, turn.route);
        }
    }
    let analysis = &command.analysis;
    let _ = write!(
        prompt,
        "\nThe message (intent {}, topic {:?}, language {}, tone {}):\n{}",
        intent_name(analysis.intent),
        analysis.topic,
        analysis.language,
        analysis.tone,
        command.source_text
    );
    CompletionRequest::new([ChatMessage::system(ROUTE_SYSTEM), ChatMessage::user(prompt)])
        .max_tokens(MAX_TOKENS)
        .json_schema(&schema(config))
}

/// The intent's name, as in the analysis schema.
fn intent_name(intent: Intent) -> &'static str {
    match intent {
        Intent::Question => "question",
        Intent::Request => "request",
        Intent::Social => "social",
        Intent::Feedback => "feedback",
        Intent::Other => "other",
    }
}

/// The memorizer's state as short lines, skipping what it does not know.
fn render_state(prompt: &mut String, state: &MemorizerState) {
    let fields = [
        ("user name", state.user_name.as_deref().unwrap_or_default()),
        ("mood", &state.mood),
        ("topic", &state.topic),
        ("situation", &state.situation),
        ("language", &state.language),
        ("preferred style", &state.style_hint),
    ];
    let before = prompt.len();
    for (label, value) in fields {
        if !value.trim().is_empty() {
            let _ = writeln!(prompt, "- {label}: {value}");
        }
    }
    if !state.topic_history.is_empty() {
        let _ = writeln!(
            prompt,
            "- earlier topics: {}",
            state.topic_history.join(", ")
        );
    }
    if !state.facts.is_empty() {
        prompt.push_str("- facts:\n");
        for fact in &state.facts {
            let _ = writeln!(prompt, "  - {fact}");
        }
    }
    if prompt.len() == before {
        prompt.push_str("nothing yet\n");
    }
}

/// The system prompt of the tie-break call of grounded routing.
pub const TIE_SYSTEM: &str = "You pick the expert for the user's message. \
Answer with a JSON object only.";

/// Grounded routing: the experts whose vocabulary the message uses are
/// the candidates. None: the PA answers (small talk, thanks, questions
/// about the assistant). One: that expert, with the user's message as the
/// job. Several: the model picks among them, constrained to their names.
pub(crate) fn grounded(
    ctx: &Ctx<'_>,
    config: &Config,
    command: &Command,
) -> Result<Routing, NodeError> {
    let text = &command.source_text;
    let candidates: Vec<&String> = config
        .vocabulary
        .iter()
        .filter(|(_, words)| weft_protocol::vocabulary::mentions(text, words))
        .map(|(expert, _)| expert)
        .collect();
    let expert = match candidates.as_slice() {
        [] => {
            return Ok(Routing {
                expert: NONE.to_owned(),
                job: String::new(),
                thinking_message: String::new(),
                response_hint: String::new(),
                language: command.analysis.language.clone(),
            });
        }
        [one] => (*one).clone(),
        several => {
            let mut prompt = String::from("Experts:\n");
            for name in several {
                let knows = config.experts.get(*name).map(String::as_str).unwrap_or("");
                let _ = writeln!(prompt, "- {name}: {knows}");
            }
            let _ = write!(prompt, "\nMessage: {text}");
            let request = CompletionRequest::new([
                ChatMessage::system(TIE_SYSTEM),
                ChatMessage::user(prompt),
            ])
            .max_tokens(30)
            .json_schema(&json!({
                "type": "object",
                "properties": {"expert": {"type": "string", "enum": several}},
                "required": ["expert"],
                "additionalProperties": false
            }));
            let completion = ctx.llm().complete(request)?;
            #[derive(Deserialize)]
            struct Pick {
                expert: String,
            }
            match serde_json::from_str::<Pick>(&completion.text) {
                Ok(pick) if several.iter().any(|c| **c == pick.expert) => pick.expert,
                _ => {
                    ctx.log().warn(format!(
                        "unusable tie-break from {}: {:?}; taking {}",
                        completion.model, completion.text, several[0]
                    ));
                    several[0].clone()
                }
            }
        }
    };
    Ok(Routing {
        expert,
        job: text.clone(),
        thinking_message: "Let me look that up…".to_owned(),
        response_hint: String::new(),
        language: command.analysis.language.clone(),
    })
}

/// Ask the model where `command` goes. An unusable answer falls back to
/// [`Routing::fallback`] and an unknown expert to [`NONE`], with warnings;
/// only an `llm` error fails.
pub(crate) fn decide(
    ctx: &Ctx<'_>,
    config: &Config,
    command: &Command,
    history: &[Turn],
) -> Result<Routing, NodeError> {
    if config.routing == crate::config::RoutingMode::Grounded {
        return grounded(ctx, config, command);
    }
    let memory = state::memorizer_state(ctx);
    let completion = ctx
        .llm()
        .complete(request(config, command, memory.as_ref(), history))?;
    let mut routing = match serde_json::from_str::<Routing>(&completion.text) {
        Ok(routing) => routing,
        Err(error) => {
            let start: String = completion.text.chars().take(80).collect();
            ctx.log().warn(format!(
                "unusable routing from {} ({error}): {start:?}; answering without an expert",
                completion.model
            ));
            return Ok(Routing::fallback(command));
        }
    };
    if routing.expert != NONE && !config.is_expert(&routing.expert) {
        ctx.log().warn(format!(
            "the model chose {:?}, which is not a configured expert; answering without one",
            routing.expert
        ));
        routing.expert = NONE.to_owned();
    }
    if routing.language.trim().is_empty() {
        routing.language.clone_from(&command.analysis.language);
    }
    if routing.expert != NONE && routing.job.trim().is_empty() {
        ctx.log().warn(format!(
            "the routing to {} has an empty job; sending the user's message instead",
            routing.expert
        ));
        routing.job.clone_from(&command.source_text);
    }
    Ok(routing)
}

/// Route one `command` and send what the route calls for.
pub(crate) fn handle(
    ctx: &mut Ctx<'_>,
    config: &Config,
    command: Command,
) -> Result<(), NodeError> {
    let history = state::history(ctx, config.history);
    let routing = decide(ctx, config, &command, &history)?;
    if !routing.thinking_message.trim().is_empty() {
        crate::progress(ctx, &routing.thinking_message);
        crate::emit(
            ctx,
            EventKind::Thinking,
            &json!({"message": routing.thinking_message}),
        );
    }
    crate::emit(
        ctx,
        EventKind::Decided,
        &json!({"expert": routing.expert, "job": routing.job, "language": routing.language}),
    );
    let turn = Turn {
        request: command.source_text.clone(),
        route: routing.expert.clone(),
    };
    if routing.expert == NONE {
        let draft = Some(routing.job).filter(|job| !job.trim().is_empty());
        let respond = Respond {
            request: command.source_text,
            language: routing.language,
            response_hint: routing.response_hint,
            draft,
            result: None,
            error: None,
        };
        ctx.send(&config.output, kind::RESPOND, &respond)?;
        ctx.send(
            &config.ui,
            kind::UI,
            &crate::topic_ui(&command.analysis.topic),
        )?;
    } else {
        let job = Job {
            job: routing.job,
            request: command.source_text,
            language: routing.language,
            response_hint: routing.response_hint,
            attempt: 1,
        };
        ctx.send(&routing.expert, kind::JOB, &job)?;
        state::set_pending(
            ctx,
            &PendingJob {
                expert: routing.expert,
                topic: command.analysis.topic,
                job,
            },
        );
    }
    state::push_history(ctx, history, turn, config.history);
    Ok(())
}
