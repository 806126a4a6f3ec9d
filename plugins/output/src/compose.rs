//! What the reply is made from: the material of each message, the streamed
//! request that phrases it, and the text used when the model cannot.
//!
//! A single message in German is asked for with a German prompt and German
//! labels ([`Phrases`]); other languages get the English prompt with an
//! instruction to reply in the message's language. The fallback text says
//! "something went wrong" in English or German.

use weft_protocol::{Command, Respond};
use weft_sdk::{ChatMessage, CompletionRequest};

const SYSTEM_PROMPT: &str = "You write the assistant's reply to the user, in plain text. \
Reply in the language given by its ISO 639-1 code. Use only the material given (the draft, \
the facts, the problems) and never invent facts, numbers or names; when there is no \
material, answer the user's message briefly yourself. Follow the hint on how to answer. \
When something went wrong, say so plainly. Be brief.";

/// Said of an unknown language code.
const ANY_LANGUAGE: &str = "the language of the user's message";

/// The fixed words of a prompt and of the fallback in one language.
#[derive(Debug)]
pub struct Phrases {
    /// The system prompt of a message answered directly.
    pub direct: &'static str,
    /// Introduces the material in that prompt.
    pub material: &'static str,
    /// Label of the response hint.
    pub hint: &'static str,
    /// Label of a draft.
    pub draft: &'static str,
    /// Label of an expert's result.
    pub facts: &'static str,
    /// Label of an error.
    pub problem: &'static str,
    /// Starts the fallback's error line.
    pub went_wrong: &'static str,
}

/// English.
pub const ENGLISH: Phrases = Phrases {
    direct: "You are a helpful assistant. Answer the user.",
    material: " Use only this material, and never invent facts, numbers or names:\n",
    hint: "How to answer",
    draft: "Draft",
    facts: "Facts",
    problem: "Problem",
    went_wrong: "Something went wrong",
};

/// German.
pub const GERMAN: Phrases = Phrases {
    direct: "Du bist ein hilfreicher Assistent. Antworte dem Nutzer auf Deutsch.",
    material: " Verwende nur dieses Material und erfinde nie Fakten, Zahlen oder Namen:\n",
    hint: "Wie antworten",
    draft: "Entwurf",
    facts: "Fakten",
    problem: "Problem",
    went_wrong: "Etwas ist schiefgegangen",
};

/// The phrases for an ISO 639-1 code: German for `de`, else English.
pub fn phrases(language: &str) -> &'static Phrases {
    match language.trim().to_lowercase().as_str() {
        "de" => &GERMAN,
        _ => &ENGLISH,
    }
}

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
                material(respond, &ENGLISH, &mut lines);
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

    /// The language code of the item.
    fn language(&self) -> &str {
        match self {
            Self::Respond(respond) => &respond.language,
            Self::Reflex(command) => &command.analysis.language,
        }
    }

    /// The item's material and instructions (for the system prompt) and
    /// the user's message (the user turn).
    fn direct(&self) -> (String, String) {
        let mut lines = Vec::new();
        let phrases = phrases(self.language());
        let request = match self {
            Self::Respond(respond) => {
                material(respond, phrases, &mut lines);
                &respond.request
            }
            Self::Reflex(command) => &command.source_text,
        };
        let language = self.language().trim();
        if language.len() == 2 && language != "en" && !std::ptr::eq(phrases, &GERMAN) {
            lines.push(format!(
                "Reply in the language with ISO 639-1 code {language}."
            ));
        }
        (lines.join("\n"), request.clone())
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
            let went_wrong = phrases(&respond.language).went_wrong;
            parts.push(format!("{went_wrong}: {error}"));
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
///
/// A single item is asked chat-natively: its material (facts, draft,
/// problem) and hint go into the system prompt and the user's message is
/// the user turn. Several items are combined in one described turn.
pub fn request(items: &[Item], max_tokens: u32) -> CompletionRequest {
    let messages = match items {
        [item] => {
            // The user's own words are the user turn, which small models
            // follow far better than a described conversation.
            let phrases = phrases(item.language());
            let (material, request) = item.direct();
            let mut system = String::from(phrases.direct);
            if !material.is_empty() {
                system.push_str(phrases.material);
                system.push_str(&material);
            }
            [ChatMessage::system(system), ChatMessage::user(request)]
        }
        items => [
            ChatMessage::system(SYSTEM_PROMPT),
            ChatMessage::user(user_turn(items)),
        ],
    };
    CompletionRequest::new(messages)
        .max_tokens(max_tokens)
        .stream(true)
}

/// The reply built without the model from every item's material, or
/// `None` when there is nothing at all to say.
pub fn fallback(items: &[Item]) -> Option<String> {
    let parts: Vec<String> = items.iter().filter_map(Item::fallback).collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// The hint, draft, facts and problem of `respond`, one line each,
/// labelled in `phrases`' language.
fn material(respond: &Respond, phrases: &Phrases, lines: &mut Vec<String>) {
    if let Some(hint) = non_empty(Some(&respond.response_hint)) {
        lines.push(format!("{}: {hint}", phrases.hint));
    }
    if let Some(draft) = non_empty(respond.draft.as_ref()) {
        lines.push(format!("{}: {draft}", phrases.draft));
    }
    if let Some(result) = &respond.result {
        lines.push(format!("{}: {}", phrases.facts, result.summary.trim()));
        lines.extend(result.key_facts.iter().map(|fact| format!("- {fact}")));
    }
    if let Some(error) = non_empty(respond.error.as_ref()) {
        lines.push(format!("{}: {error}", phrases.problem));
    }
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

/// Phrases of the prompt's scaffolding that a reply must not repeat.
const SCAFFOLDING: [&str; 9] = [
    "the user wrote",
    "facts:",
    "reply language",
    "how to answer:",
    "part 1:",
    "material:",
    "fakten:",
    "wie antworten:",
    "entwurf:",
];

/// Words that negate what a sentence says, in English and German
/// (lowercase; any word ending in `n't` counts too).
const NEGATIONS: &[&str] = &[
    "no", "not", "none", "nothing", "never", "nobody", "neither", "nor", "cannot", "without",
    "kein", "keine", "keinen", "keinem", "keiner", "keines", "nicht", "nichts", "nie", "niemals",
    "niemand", "ohne", "weder",
];

/// Whether `text` holds a negating word.
fn negates(text: &str) -> bool {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .any(|word| NEGATIONS.contains(&word) || word.ends_with("n't") || word.ends_with("n’t"))
}

/// The numbers of `text`, each with whether the sentence it is in holds a
/// negation.
fn figures(text: &str) -> Vec<(String, bool)> {
    sentences(text)
        .into_iter()
        .flat_map(|sentence| {
            let negated = negates(sentence);
            numbers(sentence).into_iter().map(move |n| (n, negated))
        })
        .collect()
}

/// The sentences of `text`: split after `!`, `?`, `;`, a line break, and
/// a `.` that does not sit inside a number (`1.413`, `3.5`).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_digit = chars.peek().is_some_and(|(_, n)| n.is_ascii_digit());
        if matches!(c, '!' | '?' | ';' | '\n') || (c == '.' && !next_is_digit) {
            out.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&text[start..]);
    out
}

/// Checks a model-written reply against the material: it may not repeat
/// the prompt's scaffolding, invent a number the material does not hold,
/// leave out a number of an expert's summary (the answer itself), or
/// drop or add a negation where the summary states figures ("there is no
/// customer 99999" rewritten as a statement about customer 99999 keeps
/// every number and says the opposite). Small models fail these often;
/// the caller then sends the material.
pub fn check(reply: &str, items: &[Item]) -> Result<(), String> {
    let lower = reply.to_lowercase();
    if let Some(phrase) = SCAFFOLDING.iter().find(|p| lower.contains(*p)) {
        return Err(format!("the reply repeats the prompt ({phrase:?})"));
    }
    let material = format!(
        "{}\n{}",
        user_turn(items),
        items
            .iter()
            .map(|i| i.direct().0)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let known = numbers(&material);
    if let Some(invented) = numbers(reply).into_iter().find(|n| !known.contains(n)) {
        return Err(format!(
            "the reply has the number {invented}, which the material does not"
        ));
    }
    let said = numbers(reply);
    for item in items {
        let Item::Respond(respond) = item else {
            continue;
        };
        let Some(result) = &respond.result else {
            continue;
        };
        if let Some(missing) = numbers(&result.summary)
            .into_iter()
            .find(|n| !said.contains(n))
        {
            return Err(format!(
                "the reply leaves out {missing}, which is part of the answer"
            ));
        }
        // A figure must keep its polarity: what a sentence of the summary
        // says about a number ("there is no customer 99999"), a sentence
        // of the reply with that number must say too. Sentences without
        // figures ("nothing changed") may be reworded freely.
        let claims = figures(reply);
        for (number, negated) in figures(&result.summary) {
            let mut in_reply = claims.iter().filter(|(n, _)| *n == number);
            if negated && !in_reply.clone().any(|(_, neg)| *neg) {
                return Err(format!(
                    "the reply drops the answer's negation about {number}"
                ));
            }
            if !negated && items.len() == 1 && in_reply.all(|(_, neg)| *neg) {
                return Err(format!(
                    "the reply negates what the answer states about {number}"
                ));
            }
        }
    }
    Ok(())
}

/// The numbers in `text` (digits, with inner `.` or `,`), as written.
fn numbers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let inner_separator = (c == '.' || c == ',')
            && !current.is_empty()
            && chars.peek().is_some_and(|n| n.is_ascii_digit());
        if c.is_ascii_digit() || inner_separator {
            current.push(c);
        } else if !current.is_empty() {
            found.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        found.push(current);
    }
    found
}
