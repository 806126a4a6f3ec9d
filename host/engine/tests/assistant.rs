//! `graphs/assistant-large.yaml` (model routing, model-written SQL) end to end with the real plugins, the generated
//! Eras database on SQLite and a scripted model: PA direct (3 frames), PA +
//! ErasExpert (4), the expert's DESCRIBE-first order and its retry after an
//! unknown column (from the journal), the PA's reformulated retry, memory
//! across turns, and 100 concurrent threads.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use common::*;
use serde_json::json;
use weft_engine::{Engine, FrameRecord, Inbound, LoadedGraph, RunStatus};
use weft_runtime::capabilities::db::Database;
use weft_runtime::capabilities::llm::{ScriptRule, Scripted};
use weft_runtime::{CallContext, Capability, Value};

const COUNT_SQL: &str = "SELECT COUNT(*) AS Anzahl FROM Geraete g JOIN Nutzeinheiten n ON \
g.NutzeinheitNr = n.NutzeinheitNr JOIN Objekte o ON n.ObjektNr = o.ObjektNr WHERE o.KundenNr = ?";
const BAD_SQL: &str = "SELECT COUNT(*) AS Anzahl FROM Geraete g JOIN Nutzeinheiten n ON \
g.NutzeinheitNr = n.NutzeinheitNr JOIN Objekte o ON n.ObjektNr = o.ObjektNr WHERE o.KundeNr = ?";

/// The sample database, generated once per test process.
fn eras_db() -> &'static PathBuf {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let path = temp_path("eras.db");
        weft_db::eras::ensure(&path, &weft_db::eras::ErasSpec::default()).expect("eras db");
        path
    })
}

fn sqlite() -> Arc<weft_db::SqliteDb> {
    Arc::new(weft_db::SqliteDb::open(eras_db(), weft_db::SqliteDbConfig::default()).unwrap())
}

async fn assistant(llm: &Arc<Scripted>) -> (Arc<Engine>, Arc<LoadedGraph>) {
    let engine = engine_with(llm.clone(), sqlite()).await;
    let graph = shipped_graph(&engine, "assistant-large.yaml").await;
    (engine, graph)
}

fn analysis() -> ScriptRule {
    ScriptRule::answer(
        json!({"intent": "question", "topic": "devices", "language": "en", "tone": "neutral",
            "complexity": "complex", "reflex": false})
        .to_string(),
    )
    .node("input")
    .repeat()
}

fn memorizer(facts: &[&str]) -> ScriptRule {
    ScriptRule::answer(
        json!({"user_name": null, "mood": "neutral", "topic": "devices", "topic_history": [],
            "situation": "asking about a customer", "language": "en", "style_hint": "short",
            "facts": facts})
        .to_string(),
    )
    .node("memorizer")
}

fn route(expert: &str, job: &str) -> ScriptRule {
    ScriptRule::answer(
        json!({"expert": expert, "job": job, "thinking_message": "Let me look that up…",
            "response_hint": "one sentence", "language": "en"})
        .to_string(),
    )
    .node("pa")
    .contains("deciding who handles")
}

fn eras_plan() -> ScriptRule {
    ScriptRule::answer(
        json!({"tables": ["Objekte", "Nutzeinheiten", "Geraete"], "approach": "join and count"})
            .to_string(),
    )
    .node("eras")
    .contains("You plan a read-only database lookup")
}

fn eras_sql(sql: &str, customer: i64) -> ScriptRule {
    ScriptRule::answer(json!({"sql": sql, "params": [customer]}).to_string())
        .node("eras")
        .contains("You write one read-only SQLite SELECT")
}

/// Devices of a customer, straight from the database.
async fn device_count(customer: i64) -> i64 {
    let ctx = CallContext {
        thread: "t".into(),
        run: "r".into(),
        frame: 0,
        node: "test".into(),
        project: "default".into(),
    };
    let rows = sqlite()
        .query(&ctx, COUNT_SQL, &[Value::Integer(customer)], 10)
        .await
        .unwrap();
    match rows.rows[0][0] {
        Value::Integer(n) => n,
        ref other => panic!("{other:?}"),
    }
}

/// Everything `node` sent to the model, concatenated.
fn prompts_of(llm: &Scripted, node: &str) -> String {
    llm.requests_by_node()
        .into_iter()
        .filter(|(n, _)| n == node)
        .flat_map(|(_, r)| r.messages.into_iter().map(|m| m.content))
        .collect()
}

/// The db and llm calls of a record, as `op` or `op(table)`, in order.
fn db_llm_calls(record: &FrameRecord) -> Vec<String> {
    record
        .journal
        .iter()
        .filter(|j| matches!(j.capability, Capability::Db | Capability::Llm))
        .map(|j| {
            let failed = if j.response.get("err").is_some() {
                "!"
            } else {
                ""
            };
            match j.request.get("table").and_then(|t| t.as_str()) {
                Some(t) => format!("{}({t}){failed}", j.op),
                None => format!("{}{failed}", j.op),
            }
        })
        .collect()
}

fn record<'a>(trace: &'a weft_engine::FrameTrace, node: &str, nth: usize) -> &'a FrameRecord {
    trace
        .records
        .iter()
        .filter(|r| r.node == node)
        .nth(nth)
        .unwrap_or_else(|| panic!("no record {nth} of {node}:\n{}", trace.render()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pa_answers_directly_in_three_frames_and_the_memorizer_follows() {
    let llm = Arc::new(Scripted::from_rules([
        analysis(),
        memorizer(&[]),
        route("none", "Say hello and offer help with heating bills."),
        ScriptRule::answer("Hello! How can I help with your heating bill?").node("output"),
    ]));
    let (engine, graph) = assistant(&llm).await;
    let trace = run(&engine, &graph, Inbound::user_text("hello, who are you?")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(
        trace.path(),
        vec![
            vec!["input"],
            vec!["pa"],
            vec!["output", "ui"],
            vec!["memorizer"]
        ]
    );
    assert_eq!(
        trace.reply.as_deref(),
        Some("Hello! How can I help with your heating bill?")
    );
    assert_eq!(trace.errors().count(), 0, "{}", trace.render());
    // The PA's direct answer was the output's draft.
    let output_prompt = prompts_of(&llm, "output");
    assert!(output_prompt.contains("offer help with heating bills"));
    assert_eq!(llm.remaining(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_talk_goes_to_the_python_expert_which_remembers_the_name() {
    let llm = Arc::new(Scripted::from_rules([
        analysis(),
        memorizer(&[]),
        route("smalltalk", "Greet the user."),
        ScriptRule::answer("Nice to meet you, Ada!").node("smalltalk"),
        ScriptRule::answer("Nice to meet you, Ada! How can I help?").node("output"),
        memorizer(&[]),
        route("smalltalk", "Thank the user."),
        ScriptRule::answer("You're welcome, Ada.").node("smalltalk"),
        ScriptRule::answer("You're welcome, Ada.").node("output"),
    ]));
    let (engine, graph) = assistant(&llm).await;
    let trace = run(&engine, &graph, Inbound::user_text("Hello, I'm Ada!")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(
        trace.path(),
        vec![
            vec!["input"],
            vec!["pa"],
            vec!["smalltalk"],
            vec!["output"],
            vec!["memorizer"]
        ]
    );
    assert_eq!(trace.errors().count(), 0, "{}", trace.render());
    assert_eq!(
        trace.reply.as_deref(),
        Some("Nice to meet you, Ada! How can I help?")
    );
    // The Python node's draft reached the output's prompt.
    assert!(prompts_of(&llm, "output").contains("Nice to meet you, Ada!"));
    let smalltalk = record(&trace, "smalltalk", 0);
    assert!(smalltalk.plugin_hash.len() == 64 && smalltalk.fuel_used > 0);
    let wrote_name = smalltalk
        .journal
        .iter()
        .any(|j| j.op == "set" && j.request["key"] == "smalltalk.name");
    assert!(wrote_name, "{:?}", smalltalk.journal);

    // Next turn on the same thread: the name comes from memory, and the
    // prompt says the user was greeted already.
    let again = run_on(&engine, &trace.thread, Inbound::user_text("thanks")).await;
    assert_eq!(again.status, RunStatus::Completed, "{}", again.render());
    let prompt = llm
        .requests_by_node()
        .into_iter()
        .filter(|(node, _)| node == "smalltalk")
        .nth(1)
        .map(|(_, request)| {
            request
                .messages
                .iter()
                .map(|m| m.content.clone())
                .collect::<String>()
        })
        .expect("a second smalltalk call");
    assert!(
        prompt.contains("name is Ada") && prompt.contains("already greeted"),
        "{prompt}"
    );
    assert_eq!(llm.remaining(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pa_asks_the_eras_expert_which_describes_before_it_queries() {
    let expected = device_count(1042).await;
    let llm = Arc::new(Scripted::from_rules([
        analysis(),
        memorizer(&["customer 1042"]),
        route("eras", "Count the metering devices of customer 1042."),
        eras_plan(),
        eras_sql(COUNT_SQL, 1042),
        ScriptRule::answer(format!("Customer 1042 has {expected} devices.")).node("output"),
    ]));
    let (engine, graph) = assistant(&llm).await;
    let trace = run(
        &engine,
        &graph,
        Inbound::user_text("how many devices does customer 1042 have?"),
    )
    .await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(
        trace.path(),
        vec![
            vec!["input"],
            vec!["pa"],
            vec!["eras"],
            vec!["output", "ui"],
            vec!["memorizer"]
        ]
    );
    let eras = record(&trace, "eras", 0);
    assert_eq!(
        db_llm_calls(eras),
        [
            "list-tables",
            "complete",
            "describe(Objekte)",
            "describe(Nutzeinheiten)",
            "describe(Geraete)",
            "complete",
            "query"
        ]
    );
    let query = eras.journal.iter().find(|j| j.op == "query").unwrap();
    assert_eq!(query.response["ok"]["rows"][0][0]["value"], json!(expected));
    // The fact reached the output, and the reply came back.
    let output_prompt = prompts_of(&llm, "output");
    assert!(
        output_prompt.contains(&format!("Anzahl: {expected}")),
        "{output_prompt}"
    );
    assert_eq!(
        trace.reply.as_deref(),
        Some(format!("Customer 1042 has {expected} devices.").as_str())
    );

    // Second question on the same thread: the schemas are cached in thread
    // memory (no describe), and the PA's prompt carries the memorizer's facts.
    llm.push(route(
        "eras",
        "Count the metering devices of customer 1042 again.",
    ));
    llm.push(eras_plan());
    llm.push(eras_sql(COUNT_SQL, 1042));
    llm.push(memorizer(&["customer 1042"]));
    llm.push(ScriptRule::answer("Still the same.").node("output"));
    let again = run_on(&engine, &trace.thread, Inbound::user_text("and now?")).await;
    assert_eq!(again.status, RunStatus::Completed, "{}", again.render());
    assert_eq!(
        db_llm_calls(record(&again, "eras", 0)),
        ["complete", "complete", "query"]
    );
    let pa_prompts: Vec<String> = llm
        .requests_by_node()
        .into_iter()
        .filter(|(n, _)| n == "pa")
        .map(|(_, r)| r.messages.into_iter().map(|m| m.content).collect())
        .collect();
    assert!(pa_prompts.last().unwrap().contains("customer 1042"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expert_re_describes_and_retries_after_an_unknown_column() {
    let expected = device_count(1043).await;
    let llm = Arc::new(Scripted::from_rules([
        analysis(),
        memorizer(&[]),
        route("eras", "Count the metering devices of customer 1043."),
        eras_plan(),
        eras_sql(BAD_SQL, 1043),
        eras_sql(COUNT_SQL, 1043),
        ScriptRule::answer("done").node("output"),
    ]));
    let (engine, graph) = assistant(&llm).await;
    let trace = run(
        &engine,
        &graph,
        Inbound::user_text("devices of customer 1043?"),
    )
    .await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(trace.frames, 5);
    let eras = record(&trace, "eras", 0);
    assert_eq!(
        db_llm_calls(eras),
        [
            "list-tables",
            "complete",
            "describe(Objekte)",
            "describe(Nutzeinheiten)",
            "describe(Geraete)",
            "complete",
            "query!",
            "describe(Objekte)",
            "describe(Nutzeinheiten)",
            "describe(Geraete)",
            "complete",
            "query"
        ]
    );
    let failed = eras.journal.iter().find(|j| j.op == "query").unwrap();
    assert!(failed.response.to_string().contains("no such column"));
    // The retry's prompt carried the database's error.
    let sql_prompts: Vec<String> = llm
        .requests_by_node()
        .into_iter()
        .filter(|(n, r)| n == "eras" && r.messages[0].content.contains("SQLite SELECT"))
        .map(|(_, r)| r.messages.into_iter().map(|m| m.content).collect())
        .collect();
    assert_eq!(sql_prompts.len(), 2);
    assert!(
        sql_prompts[1].contains("no such column"),
        "{}",
        sql_prompts[1]
    );
    let last = eras.journal.iter().rev().find(|j| j.op == "query").unwrap();
    assert_eq!(last.response["ok"]["rows"][0][0]["value"], json!(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pa_reformulates_once_when_the_expert_fails_then_gives_up() {
    // First job: the plan is unusable, so the expert reports a failure; the
    // PA reformulates, and the second attempt succeeds.
    let llm = Arc::new(Scripted::from_rules([
        analysis(),
        memorizer(&[]),
        route("eras", "Devices of the customer we talked about."),
        ScriptRule::answer("this is not a plan")
            .node("eras")
            .contains("You plan a read-only"),
        ScriptRule::answer(
            json!({"job": "Count the metering devices of customer 1042."}).to_string(),
        )
        .node("pa")
        .contains("An expert could not do a job"),
        eras_plan(),
        eras_sql(COUNT_SQL, 1042),
        // The reply must keep the answer's number and invent none: output checks it.
        ScriptRule::answer("There are 3 devices.").node("output"),
    ]));
    let (engine, graph) = assistant(&llm).await;
    let trace = run(&engine, &graph, Inbound::user_text("how many devices?")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(
        trace.path(),
        vec![
            vec!["input"],
            vec!["pa"],
            vec!["eras"],
            vec!["pa"],
            vec!["eras"],
            vec!["output", "ui"],
            vec!["memorizer"]
        ]
    );
    let retry = record(&trace, "pa", 1);
    assert_eq!(retry.inbox[0].kind, "expert_failed");
    assert_eq!(retry.sent[0].to, "eras");
    assert_eq!(trace.reply.as_deref(), Some("There are 3 devices."));

    // When the reformulated job fails too, the PA gives up with an apology.
    let llm = Arc::new(Scripted::from_rules([
        analysis(),
        memorizer(&[]),
        route("eras", "Devices?"),
        ScriptRule::answer("no plan").node("eras").repeat(),
        ScriptRule::answer(json!({"job": "Count devices."}).to_string())
            .node("pa")
            .contains("An expert could not do a job"),
        ScriptRule::answer("Sorry, I could not find that out.").node("output"),
    ]));
    let (engine, graph) = assistant(&llm).await;
    let trace = run(&engine, &graph, Inbound::user_text("how many devices?")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(trace.frames, 8);
    let gave_up = record(&trace, "pa", 2);
    assert!(
        gave_up
            .sent
            .iter()
            .any(|s| s.to == "output" && s.kind == "respond")
    );
    let output_prompt = prompts_of(&llm, "output");
    assert!(output_prompt.contains("Problem"), "{output_prompt}");
    assert_eq!(
        trace.reply.as_deref(),
        Some("Sorry, I could not find that out.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_threads_at_once_all_get_their_own_right_answer() {
    const THREADS: i64 = 100;
    let mut rules = vec![analysis(), memorizer(&[]).repeat(), eras_plan().repeat()];
    let mut expected = Vec::new();
    for i in 0..THREADS {
        let customer = 1000 + i * 3;
        let devices = device_count(customer).await;
        expected.push((customer, devices));
        let tag = format!("customer {customer}");
        rules.push(
            route("eras", &format!("Count the metering devices of {tag}."))
                .contains(format!("devices does {tag} have")),
        );
        rules.push(eras_sql(COUNT_SQL, customer).contains(tag.clone()));
        rules.push(
            ScriptRule::answer(format!("{tag}: {devices} devices"))
                .node("output")
                .contains(format!("devices does {tag} have")),
        );
    }
    let llm = Arc::new(Scripted::from_rules(rules));
    let (engine, graph) = assistant(&llm).await;
    let mut handles = Vec::new();
    for (customer, _) in &expected {
        let thread = engine.open_thread(None, &graph);
        let text = format!("how many devices does customer {customer} have?");
        handles.push(
            engine
                .start_run(&thread, Inbound::user_text(&text))
                .await
                .unwrap(),
        );
    }
    for (handle, (customer, devices)) in handles.into_iter().zip(expected) {
        let trace = handle.finish().await.unwrap();
        assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
        assert_eq!(trace.frames, 5, "{}", trace.render());
        assert_eq!(
            trace.reply.as_deref(),
            Some(format!("customer {customer}: {devices} devices").as_str())
        );
        let eras = record(&trace, "eras", 0);
        let query = eras.journal.iter().find(|j| j.op == "query").unwrap();
        assert_eq!(query.request["params"][0]["value"], json!(customer));
        assert_eq!(query.response["ok"]["rows"][0][0]["value"], json!(devices));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_that_tries_to_write_gets_typed_errors_and_changes_nothing() {
    let before = device_count(1042).await;
    let attack = [
        "DELETE FROM Geraete",
        "ATTACH DATABASE '/tmp/weft-attack.db' AS x",
        "PRAGMA writable_schema = 1",
        "SELECT 1; DELETE FROM Geraete",
        "WITH x AS (SELECT 1) DELETE FROM Geraete",
        "UPDATE Kunden SET Nachname = 'x'",
    ];
    let mut tools: Vec<serde_json::Value> = attack
        .iter()
        .map(|sql| json!({"tool": "query_db", "args": {"sql": sql}}))
        .collect();
    tools.push(json!({"tool": "query_db", "args": {"sql": "SELECT count(*) AS n FROM Kunden WHERE Nachname = 'a;b'"}}));
    let plan = json!({"goal": "g", "steps": [], "present_as": "text", "tool_sequence": tools,
        "reasoning": "r", "response_hint": "short"});
    let llm = Arc::new(Scripted::from_rules([
        analysis(),
        ScriptRule::answer(plan.to_string()).node("director"),
        ScriptRule::answer(
            json!({"summary": "nothing changed", "row_count": 0, "key_facts": [], "confidence": 0.5})
                .to_string(),
        )
        .node("interpreter"),
        ScriptRule::answer("I can only read the database.").node("output"),
    ]));
    let engine = engine_with(llm.clone(), sqlite()).await;
    let graph = shipped_graph(&engine, "framed.yaml").await;
    let trace = run(&engine, &graph, Inbound::user_text("delete everything")).await;
    assert_eq!(trace.status, RunStatus::Completed, "{}", trace.render());
    assert_eq!(
        trace.frames, 6,
        "input, director, thinker, interpreter, facts and output, ui"
    );
    let thinker = record(&trace, "thinker", 0);
    let queries: Vec<_> = thinker.journal.iter().filter(|j| j.op == "query").collect();
    assert_eq!(queries.len(), attack.len() + 1);
    for (q, sql) in queries.iter().zip(attack) {
        assert_eq!(q.request["sql"], sql);
        assert_eq!(
            q.response["err"]["code"], "invalid_input",
            "{sql}: {}",
            q.response
        );
    }
    // A semicolon inside a string literal is just text.
    assert!(queries.last().unwrap().response.get("ok").is_some());
    assert_eq!(
        trace.reply.as_deref(),
        Some("I can only read the database.")
    );
    assert_eq!(device_count(1042).await, before);
    assert!(!std::path::Path::new("/tmp/weft-attack.db").exists());
}
