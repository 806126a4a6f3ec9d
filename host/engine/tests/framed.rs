//! `graphs/framed.yaml` end to end with the real plugins and a scripted
//! model: the reflex, director and director + interpreter paths (2, 4 and 6
//! frames, the last through the JavaScript `facts` node), every UI tool,
//! and a `go:` button that makes no LLM call.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};
use weft_engine::{Event, EventBody, Inbound, RunStatus};
use weft_runtime::capabilities::db::InMemoryDb;
use weft_runtime::capabilities::llm::{ScriptRule, Scripted};
use weft_runtime::{Column, Value as Sql};

fn analysis(reflex: bool) -> String {
    json!({"intent": if reflex {"social"} else {"request"}, "topic": "lights", "language": "en",
        "tone": "calm", "complexity": if reflex {"simple"} else {"complex"}, "reflex": reflex})
    .to_string()
}

fn plan(tools: Value) -> String {
    json!({"goal": "g", "steps": ["s"], "present_as": "machine", "tool_sequence": tools,
        "reasoning": "r", "response_hint": "short"})
    .to_string()
}

fn db() -> Arc<InMemoryDb> {
    let col = |name: &str, ty: &str, pk: bool| Column {
        name: name.into(),
        data_type: ty.into(),
        nullable: !pk,
        primary_key: pk,
    };
    Arc::new(InMemoryDb::default().with_table(
        "Kunden",
        vec![
            col("KundenNr", "INTEGER", true),
            col("Nachname", "TEXT", false),
        ],
        vec![
            vec![Sql::Integer(1042), Sql::Text("Schmidt".into())],
            vec![Sql::Integer(1043), Sql::Text("Weber".into())],
        ],
    ))
}

async fn framed(llm: &Arc<Scripted>) -> (Arc<weft_engine::Engine>, Arc<weft_engine::LoadedGraph>) {
    let engine = engine_with(llm.clone(), db()).await;
    let graph = shipped_graph(&engine, "framed.yaml").await;
    (engine, graph)
}

fn events_of(
    events: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    run: &str,
) -> Vec<Arc<Event>> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        if e.run == run {
            out.push(e);
        }
    }
    out
}

/// The last `updated` event the UI emitted.
fn ui_state(events: &[Arc<Event>]) -> Value {
    events
        .iter()
        .rev()
        .find_map(|e| match (&e.body, e.node.as_deref()) {
            (EventBody::Updated(data), Some("ui")) => Some(data.clone()),
            _ => None,
        })
        .expect("the ui emitted an update")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflex_takes_two_frames_and_streams_the_reply() {
    let llm = Arc::new(Scripted::from_rules([
        ScriptRule::answer(analysis(true)).node("input"),
        ScriptRule::answer("Hello there, nice to see you!").node("output"),
    ]));
    let (engine, graph) = framed(&llm).await;
    let mut events = engine.subscribe();
    let trace = run(&engine, &graph, Inbound::user_text("hi!")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(trace.path(), vec![vec!["input"], vec!["output"]]);
    assert_eq!(
        trace.reply.as_deref(),
        Some("Hello there, nice to see you!")
    );
    let events = events_of(&mut events, &trace.run);
    let streamed: String = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Streaming { delta } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(streamed, "Hello there, nice to see you!");
    assert!(
        events
            .iter()
            .any(|e| matches!(e.body, EventBody::Perceived(_)))
    );
    assert_eq!(trace.tokens().calls, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_director_path_takes_four_frames_and_every_ui_tool_works() {
    let tools = json!([
        {"tool": "create_machine", "args": {"name": "light", "states": [
            {"name": "off", "content": "The light is off", "buttons": [{"label": "On", "action": "go:on"}]},
            {"name": "on", "content": "The light is on", "buttons": [{"label": "Off", "action": "go:off"}]}
        ]}},
        {"tool": "add_state", "args": {"machine": "light", "state": {"name": "dim", "content": "Dimmed"}}},
        {"tool": "transition_machine", "args": {"machine": "light", "to": "dim"}},
        {"tool": "create_machine", "args": {"name": "door", "states": [{"name": "shut"}, {"name": "open"}]}},
        {"tool": "transition_machine", "args": {"machine": "door", "to": "open"}},
        {"tool": "reset_machine", "args": {"machine": "door"}},
        {"tool": "create_machine", "args": {"name": "tmp", "states": [{"name": "x"}]}},
        {"tool": "destroy_machine", "args": {"machine": "tmp"}},
        {"tool": "set_state", "args": {"key": "room", "value": "kitchen"}},
        {"tool": "emit_display", "args": {"title": "Status", "items": ["light dimmed"]}}
    ]);
    let llm = Arc::new(Scripted::from_rules([
        ScriptRule::answer(analysis(false)).node("input"),
        ScriptRule::answer(plan(tools)).node("director"),
        ScriptRule::answer("Done: the light is dimmed.").node("output"),
    ]));
    let (engine, graph) = framed(&llm).await;
    let mut events = engine.subscribe();
    let trace = run(&engine, &graph, Inbound::user_text("dim the kitchen light")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(
        trace.path(),
        vec![
            vec!["input"],
            vec!["director"],
            vec!["thinker"],
            vec!["output", "ui"]
        ]
    );
    assert_eq!(trace.reply.as_deref(), Some("Done: the light is dimmed."));
    assert_eq!(trace.errors().count(), 0, "{}", trace.render());
    let state = ui_state(&events_of(&mut events, &trace.run));
    let ui = &state["state"];
    assert_eq!(state["errors"], json!([]));
    assert_eq!(ui["machines"]["light"]["current"], "dim");
    assert_eq!(ui["machines"]["door"]["current"], "shut");
    assert!(ui["machines"].get("tmp").is_none());
    assert_eq!(ui["state"]["room"], "kitchen");
    assert_eq!(ui["display"][0]["title"], "Status");

    // A button press goes straight to the UI: one frame, no LLM call.
    let calls_before = llm.requests().len();
    let thread = trace.thread.clone();
    let mut events = engine.subscribe();
    let press = run_on(
        &engine,
        &thread,
        Inbound::to(
            "ui",
            "action",
            &json!({"action": "go:on", "machine": "light"}),
        ),
    )
    .await;
    assert_eq!(press.status, RunStatus::Completed);
    assert_eq!(press.path(), vec![vec!["ui"]]);
    assert_eq!(llm.requests().len(), calls_before);
    assert_eq!(press.tokens().calls, 0);
    let state = ui_state(&events_of(&mut events, &press.run));
    assert_eq!(state["state"]["machines"]["light"]["current"], "on");
    let controls = state["state"]["controls"].to_string();
    assert!(controls.contains("go:off"), "{controls}");

    // A button for a state that does not exist is an error in the event, not a crash.
    let mut events = engine.subscribe();
    let bad = run_on(
        &engine,
        &thread,
        Inbound::to("ui", "action", &json!({"action": "go:nowhere"})),
    )
    .await;
    assert_eq!(bad.status, RunStatus::Completed);
    let state = ui_state(&events_of(&mut events, &bad.run));
    assert!(state["errors"][0].as_str().unwrap().contains("nowhere"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_tools_go_through_the_interpreter_and_the_javascript_facts_node_in_six_frames() {
    let tools = json!([
        {"tool": "query_db", "args": {"sql": "SELECT * FROM Kunden"}},
        {"tool": "emit_display", "args": {"title": "Kunden"}}
    ]);
    let interpreted = json!({"summary": "2 customers", "row_count": 2,
        "key_facts": ["Customer 1042: Schmidt", " Customer 1043: Weber", "customer 1043: weber",
            "Total billed: 1234567.5 EUR"], "confidence": 0.9});
    let llm = Arc::new(Scripted::from_rules([
        ScriptRule::answer(analysis(false)).node("input"),
        ScriptRule::answer(plan(tools)).node("director"),
        ScriptRule::answer(interpreted.to_string()).node("interpreter"),
        ScriptRule::answer("There are 2 customers: Schmidt and Weber.").node("output"),
    ]));
    let (engine, graph) = framed(&llm).await;
    let mut events = engine.subscribe();
    let trace = run(&engine, &graph, Inbound::user_text("list the customers")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(
        trace.path(),
        vec![
            vec!["input"],
            vec!["director"],
            vec!["thinker"],
            vec!["interpreter", "ui"],
            vec!["facts", "output"],
            vec!["ui"]
        ]
    );
    assert_eq!(
        trace.reply.as_deref(),
        Some("There are 2 customers: Schmidt and Weber.")
    );
    assert_eq!(trace.errors().count(), 0, "{}", trace.render());
    let events = events_of(&mut events, &trace.run);
    // The JavaScript node trimmed the facts, dropped the repeat, grouped the
    // big number and made a table of the `label: value` facts; it kept them
    // in thread memory and said how many there were.
    let state = ui_state(&events);
    let summary = state["state"]["display"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["title"] == "summary")
        .unwrap_or_else(|| panic!("no summary display in {state}"));
    assert_eq!(summary["columns"], json!(["fact", "value"]));
    assert_eq!(
        summary["rows"],
        json!([
            ["Customer 1042", "Schmidt"],
            ["Customer 1043", "Weber"],
            ["Total billed", "1,234,567.5 EUR"]
        ])
    );
    let facts = trace.records.iter().find(|r| r.node == "facts").unwrap();
    let stored = facts
        .journal
        .iter()
        .find(|j| j.capability.as_str() == "memory" && j.op == "set")
        .unwrap_or_else(|| panic!("facts stored nothing: {:?}", facts.journal));
    assert_eq!(stored.request["key"], "facts.last");
    assert!(
        events.iter().any(|e| matches!(
            (&e.body, e.node.as_deref()),
            (EventBody::Updated(d), Some("facts")) if d["facts"] == 3
        )),
        "no `updated` event from the facts node"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.body, EventBody::ToolCall(d) if d["tool"] == "query_db"))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.body, EventBody::Interpreted(_)))
    );
    // The output was given the interpreter's facts.
    let (_, prompt) = llm
        .requests_by_node()
        .into_iter()
        .find(|(node, _)| node == "output")
        .unwrap();
    let text: String = prompt.messages.iter().map(|m| m.content.clone()).collect();
    assert!(text.contains("Customer 1042: Schmidt"), "{text}");
    // The thinker's query is in the journal with its rows.
    let thinker = trace.records.iter().find(|r| r.node == "thinker").unwrap();
    let query = thinker.journal.iter().find(|j| j.op == "query").unwrap();
    assert_eq!(query.request["sql"], "SELECT * FROM Kunden");
    assert_eq!(query.response["ok"]["rows"].as_array().unwrap().len(), 2);
}
