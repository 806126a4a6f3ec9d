//! The model call that updates the [`MemorizerState`], and the host-side
//! rules applied to its answer (or used instead of it).

use weft_protocol::{Analysis, Command, Intent, MemorizerState};
use weft_sdk::{ChatMessage, CompletionRequest};

/// Most earlier topics kept (the oldest are dropped).
pub const MAX_TOPIC_HISTORY: usize = 10;

/// Most facts kept (the oldest are dropped).
pub const MAX_FACTS: usize = 20;

/// What the analysis says when it knows nothing ([`Analysis::fallback`]).
const UNKNOWN: &str = "unknown";

/// The system prompt of the update call. Its first words are stable, so
/// scripted models in engine tests can match on them.
pub const MEMORIZE_SYSTEM: &str = "You keep notes about a conversation between a user \
and an assistant. Given the current notes and the user's new message, return the updated \
notes as a JSON object: keep what is still true and change what the message changes. \
user_name: the user's name if they said it, else null. mood: one word. topic: the current \
topic. topic_history: the topics so far, oldest first, at most 10. situation: one sentence \
on what is going on. language: the ISO 639-1 code of the user's language. style_hint: how \
the user likes answers (short, detailed ...). facts: what later questions may need \
(customer numbers, names, addresses, dates), one short sentence each, at most 20.";

/// The whole state, with up to 20 short facts.
const MAX_TOKENS: u32 = 600;

/// The schema-constrained request that updates `old` with `command`.
pub fn request(old: &MemorizerState, command: &Command) -> CompletionRequest {
    let notes = serde_json::to_string(old).unwrap_or_else(|_| "{}".to_owned());
    let analysis = &command.analysis;
    let prompt = format!(
        "Current notes:\n{notes}\n\nNew message (intent {}, topic {:?}, language {}, tone {}):\n{}",
        intent_name(analysis.intent),
        analysis.topic,
        analysis.language,
        analysis.tone,
        command.source_text
    );
    CompletionRequest::new([
        ChatMessage::system(MEMORIZE_SYSTEM),
        ChatMessage::user(prompt),
    ])
    .max_tokens(MAX_TOKENS)
    .json_schema(&MemorizerState::schema())
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

/// Parse the model's state and apply the host-side rules ([`tidy`]).
pub fn parse(text: &str) -> Result<MemorizerState, serde_json::Error> {
    let mut state: MemorizerState = serde_json::from_str(text)?;
    tidy(&mut state);
    Ok(state)
}

/// The host-side rules, whatever the model did: blank facts and topics are
/// dropped, repeated facts kept once, and both lists capped to their most
/// recent [`MAX_FACTS`] / [`MAX_TOPIC_HISTORY`] entries.
pub fn tidy(state: &mut MemorizerState) {
    state.topic_history.retain(|topic| !topic.trim().is_empty());
    keep_last(&mut state.topic_history, MAX_TOPIC_HISTORY);
    let mut seen: Vec<String> = Vec::with_capacity(state.facts.len());
    for fact in std::mem::take(&mut state.facts) {
        if !fact.trim().is_empty() && !seen.contains(&fact) {
            seen.push(fact);
        }
    }
    state.facts = seen;
    keep_last(&mut state.facts, MAX_FACTS);
    if state
        .user_name
        .as_deref()
        .is_some_and(|name| name.trim().is_empty())
    {
        state.user_name = None;
    }
}

/// The state kept when the model's answer is unusable: `old`, with the
/// analysis' topic as the current one (appended to the history unless it is
/// already the latest entry) and its language, each only when the analysis
/// knows it (not empty, not `unknown`).
pub fn fallback(mut old: MemorizerState, analysis: &Analysis) -> MemorizerState {
    if known(&analysis.topic) {
        old.topic.clone_from(&analysis.topic);
        if old.topic_history.last() != Some(&analysis.topic) {
            old.topic_history.push(analysis.topic.clone());
        }
    }
    if known(&analysis.language) {
        old.language.clone_from(&analysis.language);
    }
    tidy(&mut old);
    old
}

fn known(value: &str) -> bool {
    let value = value.trim();
    !value.is_empty() && value != UNKNOWN
}

fn keep_last<T>(items: &mut Vec<T>, cap: usize) {
    let excess = items.len().saturating_sub(cap);
    items.drain(..excess);
}
