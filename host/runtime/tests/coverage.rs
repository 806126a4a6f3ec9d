//! Every test guest has a host test: a guest that no test loads is either
//! dead or an untested promise (wasmtime's test-programs do the same).

use std::path::Path;

#[test]
fn every_test_guest_is_used_by_a_runtime_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guests = root.join("../../tests/guests");
    // The runtime's tests, the engine's (which use guests inside graphs)
    // and the server's (which upload them to a serving host).
    let sources: String = [
        root.join("tests"),
        root.join("../engine/tests"),
        root.join("../server/tests"),
    ]
    .iter()
    .flat_map(|dir| std::fs::read_dir(dir).expect("tests dir"))
    .filter_map(|e| e.ok())
    .filter(|e| e.path().extension().is_some_and(|x| x == "rs") && e.file_name() != "coverage.rs")
    .map(|e| std::fs::read_to_string(e.path()).expect("read test source"))
    .collect();
    let mut unused = Vec::new();
    for entry in std::fs::read_dir(&guests).expect("tests/guests") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !sources.contains(&format!("\"{name}\""))
            && !sources.contains(&format!("\"{name}.wasm\""))
            && !sources.contains(&format!("plugin: {name}"))
        {
            unused.push(name);
        }
    }
    assert!(
        unused.is_empty(),
        "test guests without a host test: {unused:?}"
    );
}
