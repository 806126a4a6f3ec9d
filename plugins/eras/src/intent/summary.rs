//! The sentence that says what a query found, in the question's language:
//! English and German templates (any other language gets the English
//! ones; the output node then phrases the reply in the user's language).
//! Nouns come from the entity's `label` for the language, else its first
//! name with an English plural.

use super::*;

/// The languages with templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// English.
    En,
    /// German.
    De,
}

impl Language {
    /// The templates for an ISO 639-1 code; English for any code without.
    pub fn from_code(code: &str) -> Self {
        match code.trim().to_lowercase().as_str() {
            "de" => Self::De,
            _ => Self::En,
        }
    }

    /// The ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::De => "de",
        }
    }
}

/// How `table`'s rows are named in `language`: singular or plural.
fn noun(
    table: &str,
    plural: bool,
    entities: &BTreeMap<String, Entity>,
    language: Language,
) -> String {
    let entity = entities.get(table);
    if let Some(label) = entity.and_then(|e| e.label.get(language.code())) {
        return if plural { &label.many } else { &label.one }.clone();
    }
    let name = entity
        .and_then(|e| e.names.first().cloned())
        .unwrap_or_else(|| table.to_owned());
    if plural { plural_of(&name) } else { name }
}

/// The filters as a phrase: ` for customer 7 with Ort Berlin`.
fn scope(intent: &Intent, entities: &BTreeMap<String, Entity>, language: Language) -> String {
    let (for_, with, and) = match language {
        Language::En => ("for", "with", "and"),
        Language::De => ("für", "mit", "und"),
    };
    let mut keys = Vec::new();
    let mut others = Vec::new();
    for filter in &intent.filters {
        match filter {
            Filter::Key(id) => keys.push(format!(
                "{} {}",
                noun(&id.table, false, entities, language),
                id.value
            )),
            Filter::Value { column, values, .. } => {
                let or = if language == Language::De {
                    " oder "
                } else {
                    " or "
                };
                others.push(format!("{with} {column} {}", values.join(or)));
            }
            Filter::Compare { column, phrase, .. } => {
                others.push(format!("{with} {column}: {phrase}"));
            }
            Filter::Count { phrase, .. } => others.push(format!("{with} {phrase}")),
            Filter::Period { column, period, .. } => {
                others.push(format!("({column}: {})", period.phrase));
            }
        }
    }
    let mut out = String::new();
    if !keys.is_empty() {
        let _ = write!(out, " {for_} {}", keys.join(&format!(" {and} ")));
    }
    for other in others {
        let _ = write!(out, " {other}");
    }
    out
}

/// A sentence saying what was found, in the vocabulary of the config.
pub fn summary(
    intent: &Intent,
    rows: &Rows,
    entities: &BTreeMap<String, Entity>,
    language: Language,
) -> String {
    let scope = scope(intent, entities, language);
    let target = &intent.target;
    let one = noun(target, false, entities, language);
    let many = noun(target, true, entities, language);
    let first = rows.rows.first().and_then(|r| r.first());
    let column = intent.column.as_deref().unwrap_or_default();
    match (language, intent.aggregate, first) {
        (Language::En, _, None) => format!("No {many} were found{scope}."),
        (Language::De, _, None) => format!("Es wurden keine {many}{scope} gefunden."),
        (_, Aggregate::Count, Some(v)) => {
            let n = render(v, language);
            let plural = n != "1";
            let noun = if plural { &many } else { &one };
            match language {
                Language::En => format!(
                    "There {} {n} {noun}{scope}.",
                    if plural { "are" } else { "is" }
                ),
                Language::De => format!("Es gibt {n} {noun}{scope}."),
            }
        }
        (_, Aggregate::List, Some(_)) => {
            let n = rows.rows.len();
            let noun = if n == 1 { &one } else { &many };
            match language {
                Language::En => format!(
                    "{n} {noun} {} found{scope}.",
                    if n == 1 { "was" } else { "were" }
                ),
                Language::De => format!("{n} {noun}{scope} gefunden."),
            }
        }
        (Language::En, Aggregate::Latest, Some(_)) => {
            format!("The latest {one}{scope}: {}.", facts_of(rows, 0, language))
        }
        (Language::De, Aggregate::Latest, Some(_)) => {
            format!("Neueste(r) {one}{scope}: {}.", facts_of(rows, 0, language))
        }
        (Language::En, aggregate, Some(v)) => format!(
            "The {} of {column} over the {many}{scope} is {}.",
            aggregate.name(),
            render(v, language)
        ),
        (Language::De, aggregate, Some(v)) => {
            let name = match aggregate {
                Aggregate::Sum => "Summe",
                Aggregate::Average => "Durchschnitt",
                Aggregate::Min => "Minimum",
                _ => "Maximum",
            };
            format!(
                "{name} von {column} über die {many}{scope}: {}.",
                render(v, language)
            )
        }
    }
}

/// The answer when the question names a row that does not exist.
pub fn missing(id: &Identifier, entities: &BTreeMap<String, Entity>, language: Language) -> String {
    let one = noun(&id.table, false, entities, language);
    match language {
        Language::En => format!("There is no {one} {}.", id.value),
        Language::De => format!("{one} {} gibt es nicht.", id.value),
    }
}

/// The answer when a constraint of the question cannot be applied: what
/// could and could not be applied, and no figure.
pub fn unapplied_summary(
    intent: &Intent,
    entities: &BTreeMap<String, Entity>,
    language: Language,
) -> String {
    let many = noun(&intent.target, true, entities, language);
    let quoted: Vec<String> = intent
        .unapplied
        .iter()
        .map(|u| match language {
            Language::En => format!("“{u}”"),
            Language::De => format!("„{u}“"),
        })
        .collect();
    let scope = scope(intent, entities, language);
    match language {
        Language::En => {
            let mut out = format!(
                "I could not apply {} to the {many}: nothing in the database matches it, so I \
                 give no figure rather than one without it.",
                quoted.join(" and ")
            );
            if !scope.is_empty() {
                let _ = write!(out, " I could apply:{scope}.");
            }
            out.push_str(" Please rephrase it or name a value that exists.");
            out
        }
        Language::De => {
            let mut out = format!(
                "{} konnte ich auf die {many} nicht anwenden: nichts in der Datenbank passt dazu. \
                 Deshalb nenne ich keine Zahl, statt einer ohne diese Einschränkung.",
                quoted.join(" und ")
            );
            if !scope.is_empty() {
                let _ = write!(out, " Anwenden konnte ich:{scope}.");
            }
            out.push_str(
                " Bitte formulieren Sie es anders oder nennen Sie einen vorhandenen Wert.",
            );
            out
        }
    }
}

fn plural_of(name: &str) -> String {
    if let Some(stem) = name.strip_suffix('y') {
        format!("{stem}ies")
    } else if name.ends_with('s') {
        format!("{name}es")
    } else {
        format!("{name}s")
    }
}

fn facts_of(rows: &Rows, row: usize, language: Language) -> String {
    rows.columns
        .iter()
        .zip(&rows.rows[row])
        .map(|(c, v)| format!("{c} {}", render(v, language)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A cell as [`interpret`] renders it, but SQL NULL reads "none" ("keine")
/// in a sentence.
fn render(value: &Value, language: Language) -> String {
    match (value, language) {
        (Value::Null, Language::En) => "none".to_owned(),
        (Value::Null, Language::De) => "keine".to_owned(),
        (value, _) => interpret::render(value),
    }
}
