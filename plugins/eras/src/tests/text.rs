//! Normalisation: case, umlauts and `ß`, numbers, and plurals in English
//! and German.

use crate::intent::text::{find_all, is_form_of, normalise, number, words};

#[test]
fn umlauts_and_sharp_s_are_spelled_out_and_case_is_ignored() {
    assert_eq!(
        words("Straße, GERÄTE & Zähler: 3,5 m³ #12"),
        ["strasse", "geraete", "zaehler", "3.5", "m", "#", "12"]
    );
    assert_eq!(normalise("Wärmezähler"), normalise("Waermezaehler"));
    assert_eq!(normalise("Köln"), "koeln");
    assert_eq!(number("3.5"), Some(3.5));
    assert_eq!(number("x3"), None);
}

#[test]
fn english_and_german_plurals_are_forms_of_the_name() {
    for (word, name) in [
        ("properties", "property"),
        ("devices", "device"),
        ("boxes", "box"),
        ("geraete", "geraet"),
        ("kunden", "kunde"),
        ("nutzeinheiten", "nutzeinheit"),
        ("zaehler", "zaehler"),
        ("zaehlern", "zaehler"),
        ("haeuser", "haus"),
        ("objekte", "objekt"),
    ] {
        assert!(is_form_of(word, name), "{word} should be a form of {name}");
    }
    for (word, name) in [
        ("community", "unit"),
        ("units", "uni"),
        ("kundenservice", "kunde"),
    ] {
        assert!(!is_form_of(word, name), "{word} is not a form of {name}");
    }
}

#[test]
fn phrases_match_word_by_word_with_a_plural_last_word() {
    let question = words("Wie viele Wohnflächen über 100");
    assert_eq!(find_all(&question, &words("wie viele")), [0]);
    assert_eq!(find_all(&question, &words("Wohnfläche")), [2]);
    assert!(find_all(&question, &words("viele wohnung")).is_empty());
}
