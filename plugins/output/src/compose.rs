//! What the reply is made from: the material of each message, the streamed
//! request that phrases it, and the text used when the model cannot.

use weft_protocol::{Command, Respond};
use weft_sdk::{ChatMessage, CompletionRequest};

const SYSTEM_PROMPT: &str = "You write the assistant's reply to the user, in plain text. \
Reply in the language given by its ISO 639-1 code. Use only the material given (the draft, \
the facts, the problems) and never invent facts, numbers or names; when there is no \
material, answer the user's message briefly yourself. Follow the hint on how to answer. \
When something went wrong, say so plainly. Be brief.";

/// Said of an unknown language code.
const ANY_LANGUAGE: &str = "the language of the user's message";

/// One message to answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// Material from the PA, an expert, the thinker or the interpreter.
    Respond(Respond),
    /// A reflex: short social talk straight from `input`.
    Reflex(Command),
}

impl Item {
    /// The item as a block of the prompt.
    fn prompt_block(&self) -> String {
        let mut lines = Vec::new();
        match self {
            Self::Respond(respond) => {
                lines.push(format!("Reply language: {}", language(&respond.language)));
                lines.push(format!("The user wrote: {}", respond.request));
                if let Some(hint) = non_empty(Some(&respond.response_hint)) {
                    lines.push(format!("How to answer: {hint}"));
                }
                if let Some(draft) = non_empty(respond.draft.as_ref()) {
                    lines.push(format!("Draft: {draft}"));
                }
                if let Some(result) = &respond.result {
                    lines.push(format!("Facts: {}", result.summary.trim()));
                    lines.extend(result.key_facts.iter().map(|fact| format!("- {fact}")));
                }
                if let Some(error) = non_empty(respond.error.as_ref()) {
                    lines.push(format!("Problem: {error}"));
                }
            }
            Self::Reflex(command) => {
                lines.push(format!(
                    "Reply language: {}",
                    language(&command.analysis.language)
                ));
                lines.push(format!("The user wrote: {}", command.source_text));
                lines.push(format!("Tone: {}", command.analysis.tone));
                lines.push("This is small talk: reply with one short, friendly sentence.".into());
            }
        }
        lines.join("\n")
    }

    /// What can be said without the model: the draft, the facts and the
    /// problem, or `None` (a reflex, or a respond with no material).
    fn fallback(&self) -> Option<String> {
        let Self::Respond(respond) = self else {
            return None;
        };
        let mut parts = Vec::new();
        if let Some(draft) = non_empty(respond.draft.as_ref()) {
            parts.push(draft.to_owned());
        }
        if let Some(result) = &respond.result {
            let mut facts = Vec::new();
            if let Some(summary) = non_empty(Some(&result.summary)) {
                facts.push(summary.to_owned());
            }
            facts.extend(
                result
                    .key_facts
                    .iter()
                    .filter_map(|fact| non_empty(Some(fact)))
                    .map(|fact| format!("- {fact}")),
            );
            if !facts.is_empty() {
                parts.push(facts.join("\n"));
            }
        }
        if let Some(error) = non_empty(respond.error.as_ref()) {
            parts.push(format!("Something went wrong: {error}"));
        }
        (!parts.is_empty()).then(|| parts.join("\n"))
    }
}

/// The user turn: one block per item; several are numbered parts to combine.
pub fn user_turn(items: &[Item]) -> String {
    match items {
        [item] => item.prompt_block(),
        items => {
            let parts: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(at, item)| format!("Part {}:\n{}", at + 1, item.prompt_block()))
                .collect();
            format!(
                "{}\n\nCombine the parts into one reply.",
                parts.join("\n\n")
            )
        }
    }
}

/// The one streamed request that writes the reply to `items`.
pub fn request(items: &[Item], max_tokens: u32) -> CompletionRequest {
    CompletionRequest::new([
        ChatMessage::system(SYSTEM_PROMPT),
        ChatMessage::user(user_turn(items)),
    ])
    .max_tokens(max_tokens)
    .stream(true)
}

/// The reply built without the model from every item's material, or
/// `None` when there is nothing at all to say.
pub fn fallback(items: &[Item]) -> Option<String> {
    let parts: Vec<String> = items.iter().filter_map(Item::fallback).collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// A language code for the prompt; unknown ones ask for the user's language.
fn language(code: &str) -> &str {
    match code.trim() {
        "" | "unknown" => ANY_LANGUAGE,
        code => code,
    }
}

/// The trimmed text, unless it is absent or blank.
fn non_empty(text: Option<&String>) -> Option<&str> {
    text.map(|text| text.trim()).filter(|text| !text.is_empty())
}
