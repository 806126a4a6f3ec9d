//! The real `weft` binary on hostile graph and config files: an alias bomb,
//! a file over the size cap, duplicate keys. Each is refused with exit
//! code 1 and a message naming the limit, without expanding anything.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use common::{temp_dir, text, weft};

/// Ten levels of ten aliases: 10^10 strings if expanded.
fn billion_laughs(prefix: &str, indent: &str) -> String {
    let mut out = String::from(prefix);
    out.push_str(&format!(
        "{indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    ));
    for i in 1..10 {
        let list = vec![format!("*l{}", i - 1); 10].join(", ");
        out.push_str(&format!("{indent}l{i}: &l{i} [{list}]\n"));
    }
    out
}

#[test]
fn graph_validate_refuses_an_alias_bomb_with_exit_1() {
    let data = temp_dir("hostile-bomb");
    let file = data.join("bomb.yaml");
    let bomb = billion_laughs(
        "name: bomb\nentry: input\nnodes:\n  input:\n    plugin: input\n    config:\n",
        "      ",
    );
    std::fs::write(&file, bomb).unwrap();
    let out = weft(&data, &["graph", "validate", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("over the graph loader's limits"),
        "{stdout}"
    );
    assert!(stdout.contains("1 error(s)"), "{stdout}");
}

#[test]
fn graph_validate_refuses_a_file_over_the_size_cap_and_duplicate_keys() {
    let data = temp_dir("hostile-size");
    let huge = data.join("huge.yaml");
    let text_over = format!(
        "name: g\nentry: input\nnodes:\n  input: {{ plugin: input }}\n# {}\n",
        "x".repeat(2 << 20)
    );
    std::fs::write(&huge, text_over).unwrap();
    let out = weft(&data, &["graph", "validate", huge.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("larger than 1024 KiB"), "{stdout}");

    let dup = data.join("dup.yaml");
    std::fs::write(
        &dup,
        "name: g\nentry: input\nnodes:\n  input: { plugin: input }\n  input: { plugin: output }\n",
    )
    .unwrap();
    let out = weft(&data, &["graph", "validate", dup.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("duplicate"), "{stdout}");
}

#[test]
fn a_config_alias_flood_stops_the_command_with_exit_1() {
    let data = temp_dir("hostile-config");
    let config = data.join("weft.yaml");
    let aliases = vec!["*s"; 1001].join(", ");
    std::fs::write(&config, format!("api:\n  cors: [&s lol, {aliases}]\n")).unwrap();
    let out = weft(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "graph",
            "validate",
            "graphs/assistant.yaml",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("over the loader's limits"), "{stderr}");
}
