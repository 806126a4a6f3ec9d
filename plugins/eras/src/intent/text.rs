//! Text normalisation for grounding: a question, a cue phrase, an entity
//! name and a database value are all compared as normalised words.
//!
//! - lowercase;
//! - umlauts and `ß` spelled out (`ä` → `ae`, `ö` → `oe`, `ü` → `ue`,
//!   `ß` → `ss`), so `Geräte` and `Geraete` are the same word; a few other
//!   accents lose their mark (`é` → `e`);
//! - words are runs of letters and digits (a `#` before a number is kept
//!   apart as its own word, `³` and the like are dropped);
//! - plurals: a word is a form of a name when it is the name or one of its
//!   English (`-s`, `-es`, `-y` → `-ies`) or German (`-e`, `-en`, `-n`,
//!   `-er`, `-ern`, with or without an umlaut in the stem: `Haus` →
//!   `Häuser`) plurals.

/// The normalised words of `text`. A `.` or `,` between digits stays in
/// the number (`3.5`, `3,5`; both read as `3.5`).
pub fn words(text: &str) -> Vec<String> {
    tokens(text).into_iter().map(|(word, _)| word).collect()
}

/// For each of [`words`], whether it was written in lowercase in a text
/// that capitalises other words than its first: such a word is not a
/// proper noun (nor a German noun), so it does not match a capitalised
/// value (`wie groß` is not the surname `Groß`). A text written all in
/// lowercase gives all `false`.
pub fn lowercase_in_capitalised(text: &str) -> Vec<bool> {
    let tokens = tokens(text);
    let capitalises = tokens.iter().skip(1).any(|(_, upper)| *upper);
    tokens
        .iter()
        .map(|(word, upper)| capitalises && !upper && word.starts_with(|c: char| c.is_alphabetic()))
        .collect()
}

/// The normalised words of `text`, each with whether it began with an
/// uppercase letter.
fn tokens(text: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut upper = false;
    for (at, &original) in chars.iter().enumerate() {
        if current.is_empty() {
            upper = original.is_uppercase();
        }
        for ch in original.to_lowercase() {
            match ch {
                'ä' => current.push_str("ae"),
                'ö' => current.push_str("oe"),
                'ü' => current.push_str("ue"),
                'ß' => current.push_str("ss"),
                'á' | 'à' | 'â' => current.push('a'),
                'é' | 'è' | 'ê' | 'ë' => current.push('e'),
                'í' | 'ì' | 'î' | 'ï' => current.push('i'),
                'ó' | 'ò' | 'ô' => current.push('o'),
                'ú' | 'ù' | 'û' => current.push('u'),
                'ç' => current.push('c'),
                'ñ' => current.push('n'),
                '#' => {
                    flush(&mut current, upper, &mut out);
                    out.push(("#".to_owned(), false));
                }
                '.' | ','
                    if !current.is_empty()
                        && current.bytes().all(|b| b.is_ascii_digit())
                        && chars.get(at + 1).is_some_and(char::is_ascii_digit) =>
                {
                    current.push('.');
                }
                c if c.is_alphabetic() || c.is_ascii_digit() => current.push(c),
                _ => flush(&mut current, upper, &mut out),
            }
        }
    }
    flush(&mut current, upper, &mut out);
    out
}

/// The number a normalised word spells (`42`, `3.5`), if it is one.
pub fn number(word: &str) -> Option<f64> {
    let digits = word.bytes().next().is_some_and(|b| b.is_ascii_digit());
    digits.then(|| word.parse().ok()).flatten()
}

fn flush(current: &mut String, upper: bool, out: &mut Vec<(String, bool)>) {
    if !current.is_empty() {
        out.push((std::mem::take(current), upper));
    }
}

/// `text` normalised into one string of words joined by single spaces.
pub fn normalise(text: &str) -> String {
    words(text).join(" ")
}

/// The plural endings recognised, English and German.
const ENDINGS: [&str; 7] = ["s", "es", "e", "en", "n", "er", "ern"];

/// Whether the normalised `word` is the normalised `name` or a plural of it.
pub fn is_form_of(word: &str, name: &str) -> bool {
    if word == name {
        return true;
    }
    if name.len() < 3 {
        return false;
    }
    if let Some(stem) = name.strip_suffix('y')
        && word.strip_suffix("ies") == Some(stem)
    {
        return true;
    }
    ENDINGS.iter().any(|ending| {
        word.strip_suffix(ending)
            .is_some_and(|stem| stem == name || without_umlaut(stem) == name)
    })
}

/// `stem` with its last spelled-out umlaut (`ae`, `oe`, `ue`) turned back
/// into the plain vowel: the singular stem of `Häuser` is `Haus`. Words
/// that had no umlaut are returned unchanged (`au` is not an umlaut).
fn without_umlaut(stem: &str) -> String {
    for (pair, vowel) in [("aeu", "au"), ("ae", "a"), ("oe", "o"), ("ue", "u")] {
        if let Some(at) = stem.rfind(pair) {
            // `eue` in `neue` is not an umlaut; a `ue` after `q` neither.
            if pair == "ue" && (at == 0 || stem[..at].ends_with(['q', 'e', 'a'])) {
                continue;
            }
            let mut out = String::with_capacity(stem.len());
            out.push_str(&stem[..at]);
            out.push_str(vowel);
            out.push_str(&stem[at + pair.len()..]);
            return out;
        }
    }
    stem.to_owned()
}

/// Where the normalised `phrase` (words) occurs in `words`: the start of
/// every occurrence. The phrase's last word matches its plurals too.
pub fn find_all(words: &[String], phrase: &[String]) -> Vec<usize> {
    let Some((last, head)) = phrase.split_last() else {
        return Vec::new();
    };
    if words.len() < phrase.len() {
        return Vec::new();
    }
    (0..=words.len() - phrase.len())
        .filter(|&at| {
            head.iter().zip(&words[at..]).all(|(p, w)| p == w)
                && is_form_of(&words[at + head.len()], last)
        })
        .collect()
}
