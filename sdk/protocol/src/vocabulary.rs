//! Matching words of a message against a configured vocabulary, the way
//! the small-model paths of the shipped nodes ground their choices.

/// The lowercased words of `text`: runs of letters, digits and `#`.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '#'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `word` (lowercase) is `name` or a plural of it: `-s`, `-es`,
/// `-y` → `-ies`. Case-insensitive in `name`.
pub fn is_word_for(word: &str, name: &str) -> bool {
    let name = name.to_lowercase();
    word == name
        || word.strip_suffix('s') == Some(name.as_str())
        || word.strip_suffix("es") == Some(name.as_str())
        || name
            .strip_suffix('y')
            .is_some_and(|stem| word.strip_suffix("ies") == Some(stem))
}

/// Whether any word of `text` is one of `names` (see [`is_word_for`]).
pub fn mentions(text: &str, names: &[String]) -> bool {
    words(text)
        .iter()
        .any(|w| names.iter().any(|n| is_word_for(w, n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_case_match_but_prefixes_do_not() {
        assert!(is_word_for("properties", "property"));
        assert!(is_word_for("devices", "Device"));
        assert!(is_word_for("boxes", "box"));
        assert!(is_word_for("unit", "unit"));
        assert!(!is_word_for("units", "uni"));
        assert!(!is_word_for("community", "unit"));
        assert_eq!(
            words("Customer #1042's devices?"),
            ["customer", "#1042", "s", "devices"]
        );
        assert!(mentions("How many METERS are there", &["meter".to_owned()]));
        assert!(!mentions("Hello there", &["meter".to_owned()]));
    }
}
