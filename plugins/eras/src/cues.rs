//! The words that ground a question in intent mode, per language: the cue
//! words of every aggregate, of relations, comparisons and date ranges, and
//! the words that introduce a constraint. They are data, set in the graph's
//! `config.cues` (keyed by ISO 639-1 code); [`Cues::defaults`] holds the
//! English and German sets used when the config names none.
//!
//! Every phrase is matched after the same normalisation as the question
//! (see [`crate::intent::text`]): case, umlauts and `ß` (`ä` = `ae`,
//! `ß` = `ss`) do not matter, and the last word of a phrase matches its
//! plurals too.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The cue words of one language; every list is optional (empty: no cue).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cues {
    /// Asks how many (`how many`, `wie viele`).
    pub count: Vec<String>,
    /// Asks for the records themselves (`list`, `show`, `zeige`).
    pub list: Vec<String>,
    /// Asks for the most recent record (`latest`, `letzte`).
    pub latest: Vec<String>,
    /// Asks for a total (`total`, `Summe`).
    pub sum: Vec<String>,
    /// Asks for an average (`average`, `Durchschnitt`).
    pub average: Vec<String>,
    /// Asks for the smallest value (`lowest`, `kleinste`).
    pub min: Vec<String>,
    /// Asks for the largest value (`highest`, `größte`).
    pub max: Vec<String>,
    /// Asks for the owner of the record named (`who owns`, `wem gehört`):
    /// the answer is the entity marked `owner: true` that joins to it.
    pub owner: Vec<String>,
    /// Asks for the record the one named belongs to (`belongs to`,
    /// `in which`, `gehört zu`): the answer is its parent, the table its
    /// key column refers to.
    pub relation: Vec<String>,
    /// Introduces a lower bound: "more than 3" (`above`, `über`).
    pub above: Vec<String>,
    /// Introduces an upper bound: "less than 3" (`below`, `unter`).
    pub below: Vec<String>,
    /// Introduces the start of a date range: "since March 2024" (`seit`).
    pub since: Vec<String>,
    /// Introduces the end of a date range: "before 2024" (`vor`).
    pub before: Vec<String>,
    /// Introduces a period: "in 2024" (`in`, `im`).
    pub during: Vec<String>,
    /// The twelve month names, January first; more spellings of a month
    /// may follow, separated by `|` (`march|mar`).
    pub months: Vec<String>,
    /// Words that introduce a constraint ("in", "from", "named"): when
    /// the words after one name nothing the expert could match, the
    /// constraint cannot be applied and the answer says so.
    pub markers: Vec<String>,
    /// Words skipped after a marker ("the", "der"), and words that never
    /// constrain anything ("database").
    pub filler: Vec<String>,
    /// Words between an entity and its number: "customer no. 7".
    pub number_words: Vec<String>,
}

fn list(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

impl Cues {
    /// The shipped cue words: `en` and `de`.
    pub fn defaults() -> BTreeMap<String, Cues> {
        BTreeMap::from([
            ("en".to_owned(), Self::english()),
            ("de".to_owned(), Self::german()),
        ])
    }

    /// The English cue words.
    pub fn english() -> Self {
        Self {
            count: list(&["how many", "number of", "count"]),
            list: list(&["list", "show", "which", "what are"]),
            latest: list(&["latest", "last", "most recent", "newest", "current"]),
            sum: list(&["total", "sum", "altogether", "in all"]),
            average: list(&["average", "mean"]),
            min: list(&["lowest", "smallest", "minimum", "least", "oldest"]),
            max: list(&["highest", "largest", "maximum", "biggest"]),
            owner: list(&["who owns", "owner of", "owner", "owns", "whose", "who has"]),
            relation: list(&[
                "belong to",
                "belongs to",
                "part of",
                "in which",
                "to which",
                "of which",
            ]),
            above: list(&["above", "more than", "over", "greater than", "larger than"]),
            below: list(&["below", "less than", "under", "fewer than", "smaller than"]),
            since: list(&["since", "after"]),
            before: list(&["before", "until", "till"]),
            during: list(&["in", "during", "from", "of"]),
            months: list(&[
                "january|jan",
                "february|feb",
                "march|mar",
                "april|apr",
                "may",
                "june|jun",
                "july|jul",
                "august|aug",
                "september|sep|sept",
                "october|oct",
                "november|nov",
                "december|dec",
            ]),
            markers: list(&["in", "from", "with", "named", "called", "at", "of type"]),
            filler: list(&[
                "the", "a", "an", "his", "her", "their", "its", "my", "our", "this", "that", "all",
                "database", "system", "data", "there", "total", "stock",
            ]),
            number_words: list(&["no", "nr", "number", "id", "#"]),
        }
    }

    /// The German cue words.
    pub fn german() -> Self {
        Self {
            count: list(&["wie viele", "wieviele", "anzahl", "zähle"]),
            list: list(&["liste", "zeige", "zeig", "welche", "welcher", "welches"]),
            latest: list(&[
                "letzte", "letzten", "neueste", "neuesten", "aktuelle", "jüngste",
            ]),
            sum: list(&["summe", "insgesamt", "gesamt", "zusammen"]),
            average: list(&["durchschnitt", "durchschnittlich", "mittel", "mittlere"]),
            min: list(&["kleinste", "niedrigste", "minimum", "wenigsten", "älteste"]),
            max: list(&["größte", "höchste", "maximum", "meisten"]),
            owner: list(&[
                "wem gehört",
                "wem gehören",
                "eigentümer",
                "besitzer",
                "inhaber",
            ]),
            relation: list(&[
                "gehört zu",
                "gehören zu",
                "gehört",
                "gehören",
                "in welchem",
                "in welcher",
                "zu welchem",
                "zu welcher",
            ]),
            above: list(&["über", "mehr als", "größer als", "oberhalb"]),
            below: list(&["unter", "weniger als", "kleiner als", "unterhalb"]),
            since: list(&["seit", "ab", "nach"]),
            before: list(&["vor", "bis"]),
            during: list(&["in", "im", "während", "aus", "von"]),
            months: list(&[
                "januar|jan",
                "februar|feb",
                "märz|mrz",
                "april|apr",
                "mai",
                "juni|jun",
                "juli|jul",
                "august|aug",
                "september|sep|sept",
                "oktober|okt",
                "november|nov",
                "dezember|dez",
            ]),
            markers: list(&["in", "aus", "mit", "namens", "vom typ"]),
            filler: list(&[
                "der",
                "die",
                "das",
                "den",
                "dem",
                "des",
                "ein",
                "eine",
                "einem",
                "einer",
                "seinem",
                "seiner",
                "ihrem",
                "ihrer",
                "allen",
                "datenbank",
                "system",
                "daten",
                "insgesamt",
                "bestand",
            ]),
            number_words: list(&["nr", "nummer", "no", "#"]),
        }
    }
}
