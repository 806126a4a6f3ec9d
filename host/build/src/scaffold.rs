//! `weft new NAME --lang rust|python|js`: a plugin project that builds and
//! passes its tests on the first try.
//!
//! Every project holds the node (a small one that uses `llm`, `memory`,
//! `hud` and `log`), `tests.yaml` (cases `weft plugin test` runs against
//! the built component in the sandbox), `graph.yaml` (a one-node graph for
//! `weft run`), a README and a `.gitignore`. A Rust project also has a
//! native unit test on the SDK's harness (`cargo test`).

use std::path::{Path, PathBuf};

use crate::{BuildError, Lang};

/// One file of a template: its path in the project and its text, with
/// `{{name}}`, `{{lang}}`, `{{lang_name}}` and `{{sdk}}` to fill in.
type File = (&'static str, &'static str);

const COMMON: [File; 4] = [
    ("graph.yaml", include_str!("../templates/common/graph.yaml")),
    ("tests.yaml", include_str!("../templates/common/tests.yaml")),
    (".gitignore", include_str!("../templates/common/gitignore")),
    ("README.md", include_str!("../templates/common/README.md")),
];

const RUST: [File; 2] = [
    ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
];

const PYTHON: [File; 1] = [("app.py", include_str!("../templates/python/app.py"))];

const JS: [File; 1] = [("app.js", include_str!("../templates/js/app.js"))];

/// What a new project needs besides its name and language.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The weft SDK crate a Rust project depends on (a path); required for
    /// Rust.
    pub sdk: Option<PathBuf>,
}

/// Checks that `name` can name a node, a folder and a crate: lowercase
/// letters, digits, `-` and `_`, starting with a letter, at most 40.
pub fn check_name(name: &str) -> Result<(), BuildError> {
    let ok = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(BuildError::BadProject(format!(
            "`{name}` cannot name a plugin: use lowercase letters, digits, `-` and `_`, starting with a letter (at most 40)"
        )))
    }
}

/// Creates the project `dir` (which must not exist, or be empty) for a node
/// called `name` in `lang`; returns the files written, relative to `dir`.
pub fn create(
    dir: &Path,
    name: &str,
    lang: Lang,
    options: &Options,
) -> Result<Vec<PathBuf>, BuildError> {
    check_name(name)?;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| BuildError::io(dir, e))?;
        if entries.next().is_some() {
            return Err(BuildError::BadProject(format!(
                "{} already exists and is not empty; pick another name or folder",
                dir.display()
            )));
        }
    }
    let sdk = match (lang, &options.sdk) {
        (Lang::Rust, Some(sdk)) => {
            let manifest = sdk.join("Cargo.toml");
            let is_sdk = std::fs::read_to_string(&manifest)
                .is_ok_and(|text| text.contains("name = \"weft-sdk\""));
            if !is_sdk {
                return Err(BuildError::BadProject(format!(
                    "{} is not the weft SDK (no weft-sdk Cargo.toml); pass --sdk with the `sdk` folder of a weft checkout",
                    sdk.display()
                )));
            }
            sdk.canonicalize()
                .map_err(|e| BuildError::io(sdk, e))?
                .to_string_lossy()
                .into_owned()
        }
        (Lang::Rust, None) => {
            return Err(BuildError::BadProject(
                "a Rust plugin needs the weft SDK: pass --sdk with the `sdk` folder of a weft checkout".into(),
            ));
        }
        _ => String::new(),
    };
    let lang_name = match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    };
    let own: &[File] = match lang {
        Lang::Rust => &RUST,
        Lang::Python => &PYTHON,
        Lang::Js => &JS,
    };
    let mut written = Vec::new();
    for (path, template) in own.iter().chain(COMMON.iter()) {
        let text = template
            .replace("{{name}}", name)
            .replace("{{lang}}", lang.as_str())
            .replace("{{lang_name}}", lang_name)
            .replace("{{sdk}}", &sdk.replace('\\', "/"));
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
        }
        std::fs::write(&target, text).map_err(|e| BuildError::io(&target, e))?;
        written.push(PathBuf::from(path));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["greeter", "my-node", "n2_x"] {
            check_name(good).unwrap();
        }
        for bad in ["", "Greeter", "2x", "a b", "../x", &"x".repeat(41)] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_python_project_has_the_node_its_cases_and_a_graph() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("hello");
        let files = create(&project, "hello", Lang::Python, &Options::default()).unwrap();
        assert!(files.contains(&PathBuf::from("app.py")));
        let app = std::fs::read_to_string(project.join("app.py")).unwrap();
        assert!(app.contains("name=\"hello\""), "{app}");
        assert!(!app.contains("{{"), "unfilled placeholder in app.py");
        let graph = std::fs::read_to_string(project.join("graph.yaml")).unwrap();
        assert!(graph.contains("plugin: hello"));
        assert_eq!(crate::Project::open(&project).unwrap().lang, Lang::Python);
    }

    #[test]
    fn an_existing_project_is_not_overwritten_and_rust_needs_the_sdk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = create(dir.path(), "x", Lang::Js, &Options::default()).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        let fresh = dir.path().join("r");
        let err = create(&fresh, "r", Lang::Rust, &Options::default()).unwrap_err();
        assert!(err.to_string().contains("--sdk"), "{err}");
        let err = create(
            &fresh,
            "r",
            Lang::Rust,
            &Options {
                sdk: Some(dir.path().into()),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("not the weft SDK"), "{err}");
    }
}
