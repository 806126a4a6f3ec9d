//! docs/errors.md lists every error code the host can produce, and only
//! those: the codes are read from the source (the code arguments of API
//! errors, the `code` of trace errors and events, the `code()` of every
//! error type, the cases of the WIT `error` variant) and compared with the
//! codes in the first column of the page's tables.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The codes the host's source can produce (test code left out).
fn emitted() -> BTreeSet<String> {
    // A code is a string literal where an error's code goes: after an
    // HTTP status (`ApiError::new(StatusCode::X, "code"`, `X => "code"`),
    // as the first argument of `conflict`/`unavailable`, as a `code:`
    // (or `code_to_sender:`) field or `"code":` key, or as an arm of a
    // `fn code`.
    let at = Regex::new(
        r#"(?:StatusCode::[A-Z_]+(?:,|\s*=>)\s*|\b(?:conflict|unavailable)\(\s*|\bcode(?:_to_sender)?:\s*|"code":\s*)"([a-z][a-z0-9_]*)""#,
    )
    .unwrap();
    // Any `ApiError::new(status, "code"`, and the OpenAI-compatible
    // endpoint's codes: `invalid(param, "code"`,
    // a `let code = if … { "a" } else { "b" }` and the arms of `code_of`
    // (weft's codes renamed to OpenAI's).
    let invalid = Regex::new(
        r#"\b(?:invalid|ApiError::new|OpenAiError::new)\(\s*[^,]+,\s*"([a-z][a-z0-9_]*)""#,
    )
    .unwrap();
    let either = Regex::new(
        r#"let code = if [^{]*\{\s*"([a-z][a-z0-9_]*)"\s*\}\s*else\s*\{\s*"([a-z][a-z0-9_]*)""#,
    )
    .unwrap();
    let code_fn = Regex::new(r"(?s)fn code(?:_of)?\([^)]*\)[^{]*\{(.*?)\n\s*\}").unwrap();
    let arm = Regex::new(r#"=>\s*"([a-z][a-z0-9_]*)""#).unwrap();
    let mut files = Vec::new();
    for crate_dir in [
        "host/api/src",
        "host/engine/src",
        "host/runtime/src",
        "host/store/src",
    ] {
        let dir = root().join(crate_dir);
        if dir.exists() {
            sources(&dir, &mut files);
        }
    }
    let mut codes = BTreeSet::new();
    for file in files {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests sit at the end of a file.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for m in at.captures_iter(text) {
            codes.insert(m[1].to_owned());
        }
        for m in invalid.captures_iter(text) {
            codes.insert(m[1].to_owned());
        }
        for m in either.captures_iter(text) {
            codes.insert(m[1].to_owned());
            codes.insert(m[2].to_owned());
        }
        for body in code_fn.captures_iter(text) {
            for m in arm.captures_iter(&body[1]) {
                codes.insert(m[1].to_owned());
            }
        }
    }
    // The capability errors a plugin sees: the cases of `variant error`.
    let wit = std::fs::read_to_string(root().join("wit/types.wit")).unwrap();
    let variant = Regex::new(r"(?s)variant error \{(.*?)\n    \}").unwrap();
    let case = Regex::new(r"(?m)^\s*([a-z][a-z-]*)(?:\(|,)").unwrap();
    let body = &variant
        .captures(&wit)
        .expect("wit/types.wit has `variant error`")[1];
    for m in case.captures_iter(body) {
        codes.insert(m[1].to_owned());
    }
    codes
}

/// The codes docs/errors.md lists: the first cell of each table row.
fn documented() -> BTreeSet<String> {
    let page = std::fs::read_to_string(root().join("docs/errors.md")).unwrap();
    let row = Regex::new(r"(?m)^\| `([a-z][a-z0-9_-]*)` \|").unwrap();
    row.captures_iter(&page).map(|m| m[1].to_owned()).collect()
}

#[test]
fn every_code_the_host_produces_is_documented_and_no_other() {
    let emitted = emitted();
    let documented = documented();
    // Enough found that the patterns still match the source's shape.
    assert!(
        emitted.len() > 50,
        "only {} codes found: {emitted:?}",
        emitted.len()
    );
    let undocumented: Vec<_> = emitted.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "codes the host produces that docs/errors.md does not list: {undocumented:?}"
    );
    let stale: Vec<_> = documented.difference(&emitted).collect();
    assert!(
        stale.is_empty(),
        "codes docs/errors.md lists that the host no longer produces: {stale:?}"
    );
}

#[test]
fn the_plugin_guide_names_only_documented_codes() {
    // docs/plugins.md explains the codes a plugin author meets; each one
    // it puts in backticks after "code" must be in the reference.
    let guide = std::fs::read_to_string(root().join("docs/plugins.md")).unwrap();
    let documented = documented();
    let named = Regex::new(r"`([a-z]+_[a-z_]+)`").unwrap();
    let mut checked = 0;
    for m in named.captures_iter(&guide) {
        let code = &m[1];
        let context =
            &guide[m.get(0).unwrap().start().saturating_sub(120)..m.get(0).unwrap().start()];
        if context.contains("code") {
            assert!(
                documented.contains(code),
                "docs/plugins.md names `{code}`, which docs/errors.md does not list"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "docs/plugins.md names no code");
}
