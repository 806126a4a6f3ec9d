//! A check on the model's language code: small models often answer `en`
//! for any message. The message's words are counted against short lists
//! of common words per language (config `languages`, ISO 639-1 code →
//! words); when one language has at least [`MIN_HITS`] of its words in
//! the message and more than any other, its code replaces the model's.

use std::collections::BTreeMap;

/// Words of a language a message must use before its code is trusted.
pub const MIN_HITS: usize = 2;

fn list(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The built-in lists: English and German.
pub fn defaults() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([
        (
            "en".to_owned(),
            list(&[
                "the", "a", "an", "is", "are", "was", "were", "how", "many", "much", "what",
                "which", "who", "whom", "whose", "where", "when", "does", "do", "did", "have",
                "has", "of", "in", "to", "and", "or", "my", "me", "show", "list", "there", "with",
                "more", "than", "please", "belong", "belongs", "owns", "live",
            ]),
        ),
        (
            "de".to_owned(),
            list(&[
                "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "ist", "sind",
                "war", "wie", "viele", "viel", "was", "welche", "welcher", "welches", "wer", "wem",
                "wo", "wann", "hat", "haben", "gibt", "es", "von", "im", "und", "oder", "mein",
                "mir", "zeige", "zeig", "liste", "mit", "mehr", "als", "bitte", "gehört",
                "gehören", "zu", "wohnen", "wohnt", "seit", "über", "unter", "alle", "aus",
            ]),
        ),
    ])
}

/// The language `text` is clearly written in, by `languages`' word lists.
pub fn detect(text: &str, languages: &BTreeMap<String, Vec<String>>) -> Option<String> {
    let words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let mut scores: Vec<(usize, &String)> = languages
        .iter()
        .map(|(code, list)| {
            let hits = words
                .iter()
                .filter(|w| list.iter().any(|l| l.to_lowercase() == **w))
                .count();
            (hits, code)
        })
        .collect();
    scores.sort_by_key(|s| std::cmp::Reverse(s.0));
    match scores.as_slice() {
        [(best, code), rest @ ..]
            if *best >= MIN_HITS && rest.first().is_none_or(|(next, _)| next < best) =>
        {
            Some((*code).clone())
        }
        _ => None,
    }
}
