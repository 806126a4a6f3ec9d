//! The graph catalog: reloading graph files (edited, added, broken: the
//! report says which), switching the active graph, and plugin swaps from a
//! component file, with the relay guest.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use serde_json::json;
use weft_engine::catalog::{GraphChange, ReloadReport};
use weft_engine::{Catalog, CatalogError, Event, EventBody, Inbound, RunStatus};
use weft_runtime::capabilities::llm::Scripted;

const PAIR: &str = r#"
name: pair
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b }] } }
  b: { plugin: guest-relay, config: { reply: true } }
edges:
  - { from: a, to: b }
"#;

/// `PAIR` with `b` configured otherwise and a node `c` added.
const PAIR_EDITED: &str = r#"
name: pair
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b }] } }
  b: { plugin: guest-relay, config: { send: [{ to: c }] } }
  c: { plugin: guest-relay, config: { reply: true } }
edges:
  - { from: a, to: b }
  - { from: b, to: c }
"#;

const SOLO: &str = r#"
name: solo
entry: a
nodes:
  a: { plugin: guest-relay, config: { reply: true } }
"#;

/// A fresh folder for this test's graph files.
fn folder(name: &str) -> PathBuf {
    let dir = temp_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("graph folder");
    dir
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("graph file");
    path
}

async fn catalog() -> (Arc<Catalog>, Arc<weft_engine::Engine>) {
    let engine = engine(Arc::new(Scripted::default())).await;
    (Arc::new(Catalog::new(Arc::clone(&engine))), engine)
}

/// The graph names of a report: edited, added, and the files that failed
/// with their error codes.
fn summary(report: &ReloadReport) -> (Vec<&str>, Vec<&str>, Vec<(String, &'static str)>) {
    (
        report.edited.iter().map(|c| c.name.as_str()).collect(),
        report.added.iter().map(|a| a.name.as_str()).collect(),
        report
            .failed
            .iter()
            .map(|f| {
                let file = f.file.file_name().unwrap().to_string_lossy().into_owned();
                (file, f.error.code())
            })
            .collect(),
    )
}

/// The `graph_changed` events published so far: (graph, change).
fn graph_events(rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let EventBody::GraphChanged { graph, change, .. } = &e.body {
            out.push((graph.clone(), change.clone()));
        }
    }
    out
}

fn change(graph: &str, change: &str) -> (String, String) {
    (graph.to_owned(), change.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reports_the_graphs_edited_and_the_files_that_broke() {
    let (catalog, engine) = catalog().await;
    let dir = folder("catalog-reload");
    let pair = write(&dir, "pair.yaml", PAIR);
    let solo = write(&dir, "solo.yaml", SOLO);
    for file in [&pair, &solo] {
        catalog.add_graph_file(file).await.expect("served");
    }
    catalog.activate("pair").expect("pair is served");
    let (old_pair, old_solo) = (catalog.get("pair").unwrap(), catalog.get("solo").unwrap());

    // Nothing changed: nothing to report.
    let report = catalog.reload().await;
    assert_eq!(summary(&report), (vec![], vec![], vec![]));

    let mut events = engine.subscribe();
    write(&dir, "pair.yaml", PAIR_EDITED);
    write(&dir, "solo.yaml", "name: solo\nnodes: [");
    let report = catalog.reload().await;
    assert_eq!(
        summary(&report),
        (
            vec!["pair"],
            vec![],
            vec![("solo.yaml".into(), "graph_invalid")]
        )
    );
    let new_pair = catalog.get("pair").unwrap();
    assert_eq!(
        report.edited[0],
        GraphChange {
            name: "pair".into(),
            version_id: new_pair.version_id().into(),
            previous_version_id: old_pair.version_id().into(),
            added: vec!["c".into()],
            removed: vec![],
            changed: vec!["b".into()],
        }
    );
    assert!(
        matches!(&report.failed[0].error, CatalogError::GraphInvalid(_)),
        "{:?}",
        report.failed[0]
    );
    assert_eq!(report.failed[0].file, solo);
    // The broken file's old version keeps serving; the edited graph stays
    // active in its new version and runs.
    assert_eq!(
        catalog.get("solo").unwrap().version_id(),
        old_solo.version_id()
    );
    let active = catalog.active().expect("an active graph");
    assert_eq!(active.version_id(), new_pair.version_id());
    assert_eq!(graph_events(&mut events), [change("pair", "edited")]);
    let trace = run(
        &engine,
        &active,
        Inbound::to("a", "relay", &json!({"n": 1})),
    )
    .await;
    assert_eq!(trace.status, RunStatus::Completed);
    assert_eq!(trace.path(), vec![vec!["a"], vec!["b"], vec!["c"]]);

    // A graph renamed in its file is served under its new name, still active.
    write(&dir, "pair.yaml", &PAIR.replace("name: pair", "name: duo"));
    let report = catalog.reload().await;
    assert_eq!(summary(&report).0, ["duo"]);
    assert!(catalog.get("pair").is_none());
    assert_eq!(catalog.active().unwrap().graph().name(), "duo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_graph_files_are_served_once_and_bad_ones_are_reported() {
    let (catalog, engine) = catalog().await;
    let dir = folder("catalog-added");
    let pair = write(&dir, "pair.yaml", PAIR);
    catalog.add_graph_file(&pair).await.expect("served");
    let mut events = engine.subscribe();

    let solo = write(&dir, "solo.yaml", SOLO);
    let twin = write(&dir, "twin.yaml", PAIR);
    let broken = write(&dir, "broken.yaml", "name: broken\nentry: nobody\n");
    let gone = dir.join("gone.yaml");
    let changed = [pair.clone(), solo.clone(), twin.clone(), broken, gone];
    let report = catalog.reload_files(&changed).await;
    assert_eq!(
        summary(&report),
        (
            vec![],
            vec!["solo"],
            vec![
                ("twin.yaml".into(), "graph_exists"),
                ("broken.yaml".into(), "graph_invalid"),
            ]
        )
    );
    assert_eq!(report.added[0].file, solo);
    assert_eq!(
        report.added[0].version_id,
        catalog.get("solo").unwrap().version_id()
    );
    assert_eq!(graph_events(&mut events), [change("solo", "added")]);

    // Served already: nothing new.
    let report = catalog.reload_files(std::slice::from_ref(&solo)).await;
    assert_eq!(summary(&report), (vec![], vec![], vec![]));
    assert_eq!(catalog.add_graph_file(&solo).await.unwrap(), None);
    let e = catalog.add_graph_file(&twin).await.unwrap_err();
    assert!(
        matches!(&e, CatalogError::GraphExists(name) if name == "pair"),
        "{e}"
    );
    let names: Vec<String> = catalog
        .all()
        .iter()
        .map(|g| g.graph().name().to_owned())
        .collect();
    assert_eq!(names, ["pair", "solo"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_the_active_graph_is_announced_and_unknown_names_are_refused() {
    let (catalog, engine) = catalog().await;
    let dir = folder("catalog-switch");
    for (file, text) in [("pair.yaml", PAIR), ("solo.yaml", SOLO)] {
        catalog
            .add_graph_file(&write(&dir, file, text))
            .await
            .expect("served");
    }
    assert!(catalog.active().is_none());
    let mut events = engine.subscribe();
    catalog.activate("pair").expect("quietly");
    assert!(graph_events(&mut events).is_empty());
    let solo = catalog.switch_active("solo").expect("switched");
    assert_eq!(catalog.active().unwrap().version_id(), solo.version_id());
    assert_eq!(graph_events(&mut events), [change("solo", "activated")]);
    let e = catalog.switch_active("nope").unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        ("not_found", "no graph `nope`".into())
    );
    assert_eq!(catalog.active().unwrap().graph().name(), "solo");
}

/// The component with a custom section appended: the same plugin, another
/// content hash (a new version to swap in).
fn variant(component: &[u8], n: u8) -> Vec<u8> {
    let name = b"weft-test-variant";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.push(n);
    let mut out = component.to_vec();
    out.push(0); // custom section id
    out.push(section.len() as u8);
    out.extend_from_slice(&section);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_swap_loads_the_component_and_serves_new_graph_versions() {
    let (catalog, engine) = catalog().await;
    let dir = folder("catalog-swap");
    catalog
        .add_graph_file(&write(&dir, "pair.yaml", PAIR))
        .await
        .expect("served");
    catalog
        .add_graph_file(&write(&dir, "other.yaml", INPUT_ONLY))
        .await
        .expect("served");
    let before = catalog.get("pair").unwrap();
    let original = catalog.plugin_file("guest-relay").expect("loaded");

    // The version serving already: nothing changes.
    let same = catalog
        .swap_plugin_file(&original, Some("guest-relay"))
        .await
        .expect("swapped");
    assert!(same.swap.unchanged);
    assert_eq!(
        catalog.get("pair").unwrap().version_id(),
        before.version_id()
    );

    // A new version: the graphs that run it get new versions.
    let bytes = std::fs::read(&original).expect("component");
    let file = dir.join("guest-relay.wasm");
    std::fs::write(&file, variant(&bytes, 1)).expect("variant");
    let mut events = engine.subscribe();
    let report = catalog
        .swap_plugin_file(&file, Some("guest-relay"))
        .await
        .expect("swapped");
    assert!(!report.swap.unchanged);
    assert_eq!(report.swap.plugin, "guest-relay");
    assert_eq!(
        report.swap.from.as_deref(),
        Some(before.plugin("a").unwrap().hash_hex())
    );
    assert_eq!(report.swap.graph_names(), ["pair"]);
    let after = catalog.get("pair").unwrap();
    assert_ne!(after.version_id(), before.version_id());
    assert_eq!(after.plugin("a").unwrap().hash_hex(), report.swap.to);
    let swapped = wait_for(&mut events, |e| {
        matches!(e.body, EventBody::PluginSwapped { .. })
    })
    .await;
    assert!(swapped.thread.is_empty(), "a host event");
    let trace = run(&engine, &after, Inbound::to("a", "relay", &json!({"n": 1}))).await;
    assert_eq!(trace.status, RunStatus::Completed);
    assert_eq!(trace.records[0].plugin_hash, report.swap.to);

    // Refusals leave the version serving, each with its code.
    let echo = artifacts_dir().join("../guests/guest-echo.wasm");
    let junk = write(&dir, "junk.wasm", "not a component");
    let missing = dir.join("missing.wasm");
    let cases = [
        (echo.as_path(), Some("guest-relay"), "plugin_rejected"),
        (missing.as_path(), None, "plugin_unreadable"),
        (junk.as_path(), None, ""),
    ];
    for (path, expected, code) in cases {
        let e = catalog
            .swap_plugin_file(path, expected)
            .await
            .expect_err("refused");
        match code {
            "" => assert!(matches!(e, CatalogError::PluginInvalid(_)), "{e:?}"),
            code => assert_eq!(e.code(), code, "{e}"),
        }
    }
    assert_eq!(
        catalog.get("pair").unwrap().version_id(),
        after.version_id()
    );
    for e in [
        catalog.plugin_file("nope").unwrap_err(),
        catalog.upload_plugin("nope", bytes).await.unwrap_err(),
    ] {
        assert_eq!(
            (e.code(), e.to_string()),
            ("not_found", "no plugin `nope`".into())
        );
    }
}
