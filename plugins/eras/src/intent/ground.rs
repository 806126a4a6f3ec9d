//! Grounding: what the words of a question name, found without the model.
//!
//! The question and every configured phrase are normalised the same way
//! ([`text`]). In this order, each step only looking at words no earlier
//! step used:
//!
//! 1. entity names (`entities.<Table>.names`, any plural) and identifiers
//!    (an entity name, an optional number word, a number: `Kunde Nr. 7`);
//! 2. relation cues (`who owns`, `wem gehört`) and aggregate cues
//!    (`how many`, `wie viele` …), of every configured language;
//! 3. column glosses (`entities.<Table>.columns`);
//! 4. numeric comparisons (`more than 3`, `über 500`) and periods
//!    (`in 2024`, `since March 2024`, `seit März`);
//! 5. values of the database's text columns ([`values`]: `Berlin`,
//!    `Wärmezähler`);
//! 6. what is left that still looks like a constraint: a number, or the
//!    words after a marker (`in`, `from`, `aus` …) that matched nothing.
//!    These are [`Grounding::unmatched`]: the answer must say it could not
//!    apply them rather than answer as if they were not there.

use std::collections::BTreeMap;

use super::text::{self, find_all, is_form_of, number};
use super::values::{IndexedValue, matches as value_matches};
use super::{Aggregate, Identifier};
use crate::config::{Entity, Glosses};
use crate::cues::Cues;

/// How a comparison bounds a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// Greater than.
    Above,
    /// Less than.
    Below,
    /// At least (`since 1990` on a number column).
    AtLeast,
    /// Equal (`3 occupants`, `built in 1970`).
    Equal,
}

impl Bound {
    /// The SQL operator.
    pub fn operator(self) -> &'static str {
        match self {
            Self::Above => ">",
            Self::Below => "<",
            Self::AtLeast => ">=",
            Self::Equal => "=",
        }
    }
}

/// A numeric comparison the question names.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The bound.
    pub bound: Bound,
    /// The number.
    pub value: f64,
    /// The glossed `(table, column)` it compares, when the question names one.
    pub column: Option<(String, String)>,
    /// The entity named right after the number (`more than 2 properties`):
    /// the comparison counts its rows per target row.
    pub counted: Option<String>,
    /// The words, normalised, for the answer.
    pub phrase: String,
}

/// A period the question names: dates from `from` (inclusive) to `to`
/// (exclusive), as `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    /// First day in the period, if bounded below.
    pub from: Option<String>,
    /// First day after the period, if bounded above.
    pub to: Option<String>,
    /// The words, normalised, for the answer.
    pub phrase: String,
}

/// A value of the database the question names, and where it occurs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueMatch {
    /// The value as stored.
    pub value: String,
    /// The `(table, column)`s holding it.
    pub places: Vec<(String, String)>,
}

/// What the job's text supports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grounding {
    /// Entity tables mentioned, in order of first mention.
    pub mentioned: Vec<String>,
    /// Identifiers, in order.
    pub identifiers: Vec<Identifier>,
    /// Aggregates whose cue words occur.
    pub aggregates: Vec<Aggregate>,
    /// `(table, column)` whose gloss occurs.
    pub columns: Vec<(String, String)>,
    /// Whether an owner cue occurs (`who owns`): the answer is the owning
    /// entity of the record named, not that record.
    pub owner: bool,
    /// Whether a relation cue occurs (`belongs to`): the answer is the
    /// record the one named belongs to, not that record.
    pub relation: bool,
    /// Database values named.
    pub values: Vec<ValueMatch>,
    /// Numeric comparisons.
    pub comparisons: Vec<Comparison>,
    /// A period.
    pub period: Option<Period>,
    /// Constraints named that match nothing (normalised words).
    pub unmatched: Vec<String>,
    /// The languages whose cue words occur, most matches first.
    pub languages: Vec<String>,
}

/// The words of a question and which of them a step has used.
struct Words {
    words: Vec<String>,
    used: Vec<bool>,
}

impl Words {
    fn free(&self, at: usize, len: usize) -> bool {
        at + len <= self.words.len() && self.used[at..at + len].iter().all(|u| !u)
    }

    fn take(&mut self, at: usize, len: usize) {
        for used in &mut self.used[at..at + len] {
            *used = true;
        }
    }

    /// Free occurrences of `phrase` (normalised), first to last.
    fn find(&self, phrase: &str) -> Vec<(usize, usize)> {
        let phrase = text::words(phrase);
        find_all(&self.words, &phrase)
            .into_iter()
            .filter(|&at| self.free(at, phrase.len()))
            .map(|at| (at, phrase.len()))
            .collect()
    }

    /// The first free occurrence of any of `phrases`, longest phrase first.
    fn take_any(&mut self, phrases: &[String]) -> Vec<(usize, usize)> {
        let mut sorted: Vec<&String> = phrases.iter().collect();
        sorted.sort_by_key(|p| std::cmp::Reverse(text::words(p).len()));
        let mut found = Vec::new();
        for phrase in sorted {
            for (at, len) in self.find(phrase) {
                if self.free(at, len) {
                    self.take(at, len);
                    found.push((at, len));
                }
            }
        }
        found
    }

    /// The index of the next word after `at` that is not filler.
    fn next_content(&self, mut at: usize, filler: &[String]) -> Option<usize> {
        while at < self.words.len() && filler.contains(&self.words[at]) {
            at += 1;
        }
        (at < self.words.len()).then_some(at)
    }
}

/// Everything the cues of all languages say for one list, normalised.
fn all(cues: &BTreeMap<String, Cues>, pick: impl Fn(&Cues) -> &Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = cues
        .values()
        .flat_map(|c| pick(c).iter().map(|p| text::normalise(p)))
        .filter(|p| !p.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Finds what `text` names; see the [module docs](self).
pub fn ground(
    question: &str,
    entities: &BTreeMap<String, Entity>,
    cues: &BTreeMap<String, Cues>,
    values: &[IndexedValue],
) -> Grounding {
    let words = text::words(question);
    let mut w = Words {
        used: vec![false; words.len()],
        words,
    };
    let mut g = Grounding::default();
    let number_words = all(cues, |c| &c.number_words);
    let filler = all(cues, |c| &c.filler);
    g.languages = languages(&w.words, cues);
    let mut mentions: Vec<(usize, String)> = Vec::new();

    // 1. Entities and identifiers.
    for at in 0..w.words.len() {
        if w.used[at] {
            continue;
        }
        let Some(table) = entities
            .iter()
            .find(|(_, e)| {
                e.names
                    .iter()
                    .any(|n| is_form_of(&w.words[at], &text::normalise(n)))
            })
            .map(|(t, _)| t.clone())
        else {
            continue;
        };
        w.take(at, 1);
        mentions.push((at, table.clone()));
        if !g.mentioned.contains(&table) {
            g.mentioned.push(table.clone());
        }
        let mut next = at + 1;
        while next < w.words.len() && number_words.contains(&w.words[next]) {
            next += 1;
        }
        if let Some(value) = w.words.get(next).and_then(|n| n.parse::<i64>().ok()) {
            w.take(at, next + 1 - at);
            let id = Identifier { table, value };
            if !g.identifiers.contains(&id) {
                g.identifiers.push(id);
            }
        }
    }

    // 2. Relation and aggregate cues.
    g.owner = !w.take_any(&all(cues, |c| &c.owner)).is_empty();
    g.relation = !w.take_any(&all(cues, |c| &c.relation)).is_empty();
    for aggregate in Aggregate::ALL {
        let phrases = all(cues, |c| aggregate.cues(c));
        if !w.take_any(&phrases).is_empty() {
            g.aggregates.push(aggregate);
        }
    }

    // 3. Column glosses, remembering where each is.
    let mut glossed: Vec<((String, String), usize)> = Vec::new();
    let mut glosses: Vec<(Vec<String>, (String, String))> = entities
        .iter()
        .flat_map(|(table, entity)| {
            entity
                .columns
                .iter()
                .flat_map(move |(column, Glosses(list))| {
                    list.iter()
                        .map(move |gloss| (text::words(gloss), (table.clone(), column.clone())))
                })
        })
        .filter(|(words, _)| !words.is_empty())
        .collect();
    // Longest first: `living area` before `area`.
    glosses.sort_by_key(|(words, _)| std::cmp::Reverse(words.len()));
    for (gloss, key) in glosses {
        for (at, len) in w.find(&gloss.join(" ")) {
            if w.free(at, len) {
                w.take(at, len);
                glossed.push((key.clone(), at));
                if !g.columns.contains(&key) {
                    g.columns.push(key.clone());
                }
            }
        }
    }
    let nearest_gloss = |at: usize| {
        glossed
            .iter()
            .min_by_key(|(_, g)| g.abs_diff(at))
            .map(|(c, _)| c.clone())
    };

    // 4. Comparisons and periods.
    for (bound, pick) in [
        (
            Bound::Above,
            (|c: &Cues| &c.above) as fn(&Cues) -> &Vec<String>,
        ),
        (Bound::Below, |c: &Cues| &c.below),
    ] {
        for phrase in all(cues, pick) {
            for (at, len) in w.find(&phrase) {
                let Some(n_at) = w.next_content(at + len, &filler) else {
                    continue;
                };
                let Some(value) = number(&w.words[n_at]).filter(|_| w.free(n_at, 1)) else {
                    continue;
                };
                w.take(at, n_at + 1 - at);
                let counted = mentions
                    .iter()
                    .find(|(m, _)| *m == n_at + 1)
                    .map(|(_, t)| t.clone());
                g.comparisons.push(Comparison {
                    bound,
                    value,
                    column: if counted.is_some() {
                        None
                    } else {
                        nearest_gloss(n_at)
                    },
                    phrase: w.words[at..=n_at + usize::from(counted.is_some())].join(" "),
                    counted,
                });
            }
        }
    }
    g.period = period(&mut w, cues, &filler, &glossed, &mut g.comparisons);
    // A bare number next to a glossed column: `3 occupants`.
    for at in 0..w.words.len() {
        if !w.free(at, 1) {
            continue;
        }
        let Some(value) = number(&w.words[at]) else {
            continue;
        };
        let beside = glossed
            .iter()
            .find(|(_, g)| *g == at + 1 || *g + 1 == at)
            .map(|(c, _)| c.clone());
        if let Some(column) = beside {
            w.take(at, 1);
            g.comparisons.push(Comparison {
                bound: Bound::Equal,
                value,
                column: Some(column),
                counted: None,
                phrase: w.words[at].clone(),
            });
        }
    }

    // 5. Database values.
    let lowercase = text::lowercase_in_capitalised(question);
    for (at, len, found) in value_matches(&w.words, &w.used, &lowercase, values) {
        w.take(at, len);
        match g.values.iter_mut().find(|v| v.value == found.value) {
            Some(known) => {
                if !known.places.contains(&found.place) {
                    known.places.push(found.place.clone());
                }
            }
            None => g.values.push(ValueMatch {
                value: found.value.clone(),
                places: vec![found.place.clone()],
            }),
        }
    }

    // 6. What is left that looks like a constraint.
    let markers = all(cues, |c| &c.markers);
    for at in 0..w.words.len() {
        if !w.free(at, 1) {
            continue;
        }
        if number(&w.words[at]).is_some() {
            let from = at.saturating_sub(1);
            let to = (at + 2).min(w.words.len());
            g.unmatched.push(w.words[from..to].join(" "));
            w.take(at, 1);
        }
    }
    for marker in &markers {
        for (at, len) in w.find(marker) {
            let Some(first) = w.next_content(at + len, &filler) else {
                continue;
            };
            if !w.free(first, 1) {
                continue;
            }
            let mut end = first + 1;
            while end < w.words.len() && end < first + 3 && w.free(end, 1) {
                end += 1;
            }
            g.unmatched.push(w.words[at..end].join(" "));
            w.take(at, end - at);
        }
    }
    g
}

/// The languages whose cue words occur in `words`, most matches first.
fn languages(words: &[String], cues: &BTreeMap<String, Cues>) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = cues
        .iter()
        .map(|(language, c)| {
            let phrases = [
                &c.count,
                &c.list,
                &c.latest,
                &c.sum,
                &c.average,
                &c.min,
                &c.max,
                &c.owner,
                &c.relation,
                &c.above,
                &c.below,
                &c.since,
                &c.before,
                &c.filler,
            ];
            let hits = phrases
                .iter()
                .flat_map(|list| list.iter())
                .filter(|p| !find_all(words, &text::words(p)).is_empty())
                .count();
            (hits, language)
        })
        .filter(|(hits, _)| *hits > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().map(|(_, l)| l.clone()).collect()
}

/// A year the question can mean (1900 to 2099).
fn year(word: &str) -> Option<i32> {
    let year: i32 = word.parse().ok()?;
    (word.len() == 4 && (1900..2100).contains(&year)).then_some(year)
}

/// The month (1 to 12) a word names in any language.
fn month(word: &str, cues: &BTreeMap<String, Cues>) -> Option<u32> {
    cues.values().find_map(|c| {
        c.months.iter().zip(1..).find_map(|(spellings, n)| {
            spellings
                .split('|')
                .any(|s| text::normalise(s) == word)
                .then_some(n)
        })
    })
}

/// Finds a period (`in 2024`, `seit März 2024`, `before 2023`); a year
/// next to a glossed number column is a comparison on it instead
/// (`built before 1970`).
fn period(
    w: &mut Words,
    cues: &BTreeMap<String, Cues>,
    filler: &[String],
    glossed: &[((String, String), usize)],
    comparisons: &mut Vec<Comparison>,
) -> Option<Period> {
    let cue_lists: [(&str, Vec<String>); 3] = [
        ("since", all(cues, |c| &c.since)),
        ("before", all(cues, |c| &c.before)),
        ("during", all(cues, |c| &c.during)),
    ];
    let mut found: Option<Period> = None;
    for at in 0..w.words.len() {
        if !w.free(at, 1) {
            continue;
        }
        // The cue before the date, if any.
        let (kind, start) = match cue_lists.iter().find(|(_, l)| l.contains(&w.words[at])) {
            Some((kind, _)) => match w.next_content(at + 1, filler) {
                Some(next) => (*kind, next),
                None => continue,
            },
            None => ("during", at),
        };
        if !w.free(start, 1) {
            continue;
        }
        let (month, year, end) = match (
            month(&w.words[start], cues),
            w.words.get(start + 1).and_then(|y| year(y)),
            year(&w.words[start]),
        ) {
            (Some(m), Some(y), _) => (Some(m), Some(y), start + 2),
            (Some(m), None, _) => (Some(m), None, start + 1),
            (None, _, Some(y)) => (None, Some(y), start + 1),
            _ => continue,
        };
        if end > start + 1 && !w.free(start + 1, 1) {
            continue;
        }
        // A bare month word with no cue is too weak ("may").
        if kind == "during" && start == at && year.is_none() {
            continue;
        }
        let phrase = w.words[at..end].join(" ");
        w.take(at, end - at);
        if let (None, Some(y)) = (month, year)
            && let Some(column) = glossed
                .iter()
                .min_by_key(|(_, g)| g.abs_diff(start))
                .map(|(c, _)| c.clone())
        {
            let bound = match kind {
                "since" => Bound::AtLeast,
                "before" => Bound::Below,
                _ => Bound::Equal,
            };
            comparisons.push(Comparison {
                bound,
                value: f64::from(y),
                column: Some(column),
                counted: None,
                phrase,
            });
            continue;
        }
        let year = year.unwrap_or_else(|| current_year_for(month.unwrap_or(1)));
        let first = format!("{year:04}-{:02}-01", month.unwrap_or(1));
        let after = match month {
            Some(12) => format!("{:04}-01-01", year + 1),
            Some(m) => format!("{year:04}-{:02}-01", m + 1),
            None => format!("{:04}-01-01", year + 1),
        };
        let (from, to) = match kind {
            "since" => (Some(first), None),
            "before" => (None, Some(first)),
            _ => (Some(first), Some(after)),
        };
        if found.is_none() {
            found = Some(Period { from, to, phrase });
        }
    }
    found
}

/// The year of the most recent `month` up to today: "since March" in
/// February means last year's March.
fn current_year_for(month: u32) -> i32 {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    let (year, now_month) = civil_from_days(i64::try_from(days).unwrap_or(0));
    if month > now_month { year - 1 } else { year }
}

/// The (year, month) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).unwrap_or(1970),
        u32::try_from(month).unwrap_or(1),
    )
}
