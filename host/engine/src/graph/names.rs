//! Node names that look alike: warnings for names that hold invisible or
//! direction-changing characters, and for names that differ only in their
//! Unicode form (NFC vs NFD, compatibility forms such as full-width
//! letters) or in such characters. Both kinds load — a name is an opaque
//! key to the engine — but a reader of the file, a log or a trace sees one
//! name where there are two, or a name that reads differently from what it
//! is.

use std::collections::BTreeMap;

use unicode_normalization::UnicodeNormalization;

use super::ProblemKind;
use super::error::{Problems, at};
use super::file::NodeMap;

/// Whether `c` is invisible or changes the direction of the text around
/// it: format characters (zero-width space and joiners, word joiner,
/// byte-order mark, soft hyphen), the bidirectional marks, embeddings,
/// overrides and isolates, and the Arabic letter mark.
pub(crate) fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// The form two names are compared in: compatibility-normalised (NFKC)
/// without hidden characters.
fn skeleton(name: &str) -> String {
    name.nfkc().filter(|c| !is_hidden(*c)).collect()
}

/// Escapes what a reader cannot see, for messages (`a\u{200b}b`).
fn shown(name: &str) -> String {
    name.chars()
        .map(|c| {
            if is_hidden(c) || c.is_control() {
                format!("\\u{{{:04x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Warns on node names with hidden characters and on names that are equal
/// once normalised.
pub(crate) fn check(nodes: &NodeMap, problems: &mut Problems) {
    let mut by_skeleton: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (name, _) in &nodes.0 {
        let raw = name.value.as_str();
        if raw.chars().any(is_hidden) {
            problems.push(
                ProblemKind::HiddenCharacters,
                at(name),
                format!("nodes.{raw}"),
                format!(
                    "node name `{}` holds invisible or direction-changing characters; it reads as `{}`",
                    shown(raw),
                    raw.chars().filter(|c| !is_hidden(*c)).collect::<String>()
                ),
            );
        }
        let twins = by_skeleton.entry(skeleton(raw)).or_default();
        if let Some(first) = twins.first() {
            problems.push(
                ProblemKind::LookalikeNames,
                at(name),
                format!("nodes.{raw}"),
                format!(
                    "node name `{}` is a different string from `{}` but the same name once Unicode-normalised (NFKC) without invisible characters; rename one",
                    shown(raw),
                    shown(first)
                ),
            );
        }
        twins.push(raw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_one_name_share_a_skeleton() {
        let nfc = "K\u{00E4}se";
        let nfd = "Ka\u{0308}se";
        assert_ne!(nfc, nfd);
        assert_eq!(skeleton(nfc), skeleton(nfd));
        assert_eq!(skeleton("pa\u{200B}"), "pa");
        assert_eq!(skeleton("\u{FF50}\u{FF41}"), "pa", "full-width letters");
        assert_ne!(skeleton("pa"), skeleton("PA"), "case is a real difference");
    }

    #[test]
    fn hidden_characters_are_shown_escaped() {
        assert_eq!(shown("a\u{202E}b"), "a\\u{202e}b");
        assert!(is_hidden('\u{2067}') && is_hidden('\u{00AD}') && !is_hidden('a'));
    }
}
