//! Tracing spans nest as `weft.run{thread, run}` › `weft.frame{frame}` ›
//! `weft.node{node, plugin}`, so a trace backend shows a run as one tree.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use weft_engine::{Inbound, RunStatus};
use weft_runtime::capabilities::llm::Scripted;

const CHAIN: &str = r#"
name: spans
entry: a
nodes:
  a: { plugin: guest-relay, config: { send: [{ to: b }] } }
  b: { plugin: guest-relay, config: { reply: true } }
edges:
  - { from: a, to: b }
"#;

/// A span as recorded: its name, its fields, and its parent's index.
#[derive(Debug, Clone)]
struct Seen {
    name: &'static str,
    fields: BTreeMap<String, String>,
    parent: Option<usize>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

/// Each span's index in the recording, kept in the span's extensions.
struct Index(usize);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Index>().map(|i| i.0));
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut seen = self.0.lock().unwrap();
        seen.push(Seen {
            name: span.name(),
            fields,
            parent,
        });
        span.extensions_mut().insert(Index(seen.len() - 1));
    }
}

#[test]
fn a_run_is_one_tree_of_run_frame_and_node_spans() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let trace = rt.block_on(async {
        let engine = engine(Arc::new(Scripted::default())).await;
        let graph = graph(&engine, "spans.yaml", CHAIN).await;
        run(
            &engine,
            &graph,
            Inbound::to("a", "relay", &json!({ "n": 1 })),
        )
        .await
    });
    assert_eq!(trace.status, RunStatus::Completed);

    let seen = recorder.0.lock().unwrap().clone();
    let runs: Vec<usize> = (0..seen.len())
        .filter(|&i| seen[i].name == "weft.run")
        .collect();
    assert_eq!(runs.len(), 1, "{seen:#?}");
    let run = &seen[runs[0]];
    assert_eq!(run.fields.get("thread"), Some(&trace.thread));
    assert_eq!(run.fields.get("run"), Some(&trace.run));

    let frames: Vec<usize> = (0..seen.len())
        .filter(|&i| seen[i].name == "weft.frame")
        .collect();
    assert_eq!(frames.len(), 2, "{seen:#?}");
    for (k, &f) in frames.iter().enumerate() {
        assert_eq!(seen[f].parent, Some(runs[0]), "frame under the run");
        assert_eq!(seen[f].fields.get("frame"), Some(&k.to_string()));
    }

    let nodes: Vec<&Seen> = seen.iter().filter(|s| s.name == "weft.node").collect();
    assert_eq!(nodes.len(), 2, "{seen:#?}");
    for (node, (&frame, name)) in nodes.iter().zip(frames.iter().zip(["a", "b"])) {
        assert_eq!(node.parent, Some(frame), "node under its frame");
        assert_eq!(node.fields.get("node").map(String::as_str), Some(name));
        assert_eq!(
            node.fields.get("plugin").map(String::as_str),
            Some("guest-relay")
        );
    }
}
