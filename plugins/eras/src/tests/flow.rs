//! The happy path: plan, describe, query, answer; and the cache.

use serde_json::json;
use weft_protocol::{Interpreted, Respond, UiActions};
use weft_sdk::{EventKind, Scope, Value};

use super::{
    COUNT_JOB, COUNT_SQL, Scripted, TABLES, count_handler, job, plan, prompt, routes, sql,
};
use crate::{ColumnInfo, TABLES_KEY, schema_key};

const PLANNED: [&str; 4] = ["Kunden", "Objekte", "Nutzeinheiten", "Geraete"];

/// A host scripted for one successful count.
fn counting() -> Scripted {
    let s = Scripted::build(json!({}), |host| host.on_query(count_handler));
    s.answer(plan(&PLANNED))
        .answer(sql(COUNT_SQL, json!([4711])));
    s
}

#[test]
fn a_fresh_thread_lists_plans_describes_then_queries() {
    let s = counting();
    s.tick(&job(COUNT_JOB));

    assert_eq!(
        s.timeline(),
        [
            "list_tables",
            "llm:plan",
            "describe:Kunden",
            "describe:Objekte",
            "describe:Nutzeinheiten",
            "describe:Geraete",
            "llm:sql",
            "query_db",
        ]
    );
    assert_eq!(
        s.host.queries(),
        [(COUNT_SQL.to_owned(), vec![Value::Integer(4711)])]
    );
}

#[test]
fn the_answer_goes_to_output_and_the_rows_to_ui() {
    let s = counting();
    let output = s.tick(&job(COUNT_JOB));

    assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
    let respond: Respond = output.messages[0].json().unwrap();
    let result = Interpreted {
        summary: "The query returned one value: Anzahl: 3.".into(),
        row_count: Some(1),
        key_facts: vec!["Anzahl: 3".into()],
        confidence: 0.9,
    };
    assert_eq!(
        respond,
        Respond {
            request: "Wie viele Geräte hat Kunde 4711?".into(),
            language: "de".into(),
            response_hint: "short".into(),
            draft: None,
            result: Some(result.clone()),
            error: None,
        }
    );
    let ui: UiActions = output.messages[1].json().unwrap();
    assert_eq!(
        serde_json::to_value(ui).unwrap(),
        json!({"actions": [{"tool": "emit_display", "args": {
            "title": COUNT_JOB, "columns": ["Anzahl"], "rows": [[3]]
        }}]})
    );
    assert_eq!(
        s.host.events_of(EventKind::Interpreted),
        [serde_json::to_value(result).unwrap()]
    );
}

#[test]
fn every_database_call_is_announced() {
    let s = counting();
    s.tick(&job(COUNT_JOB));

    assert_eq!(
        s.host.progress(),
        [
            "Listing the database's tables…",
            "Reading the columns of Kunden…",
            "Reading the columns of Objekte…",
            "Reading the columns of Nutzeinheiten…",
            "Reading the columns of Geraete…",
            "Querying the database…",
        ]
    );
    let calls = s.host.events_of(EventKind::ToolCall);
    assert_eq!(calls[0], json!({"tool": "list_tables", "args": {}}));
    assert_eq!(
        calls[1],
        json!({"tool": "describe_table", "args": {"table": "Kunden"}})
    );
    assert_eq!(
        calls[5],
        json!({"tool": "query_db", "args": {"sql": COUNT_SQL, "params": [4711]}})
    );
    assert_eq!(
        s.host.events_of(EventKind::Decided),
        [json!({"tables": PLANNED, "approach": plan(&PLANNED)["approach"]})]
    );
}

#[test]
fn the_plan_is_constrained_to_the_real_tables() {
    let s = counting();
    s.tick(&job(COUNT_JOB));

    let requests = s.host.llm_requests();
    assert_eq!(requests.len(), 2);
    let schema: serde_json::Value =
        serde_json::from_str(requests[0].json_schema.as_deref().unwrap()).unwrap();
    assert_eq!(
        schema["properties"]["tables"]["items"]["enum"],
        json!(TABLES)
    );
    assert_eq!(schema["required"], json!(["tables", "approach"]));
    let plan_prompt = prompt(&s.host, 0);
    assert!(
        plan_prompt.contains(&format!("Job: {COUNT_JOB}")),
        "{plan_prompt}"
    );
    assert!(plan_prompt.contains(&TABLES.join(", ")), "{plan_prompt}");
}

#[test]
fn the_sql_prompt_has_the_planned_tables_columns_and_the_job() {
    let s = counting();
    s.tick(&job(COUNT_JOB));

    let sql_prompt = prompt(&s.host, 1);
    assert!(
        sql_prompt.contains("- Kunden(KundenNr INTEGER primary key, Name TEXT, Ort TEXT)"),
        "{sql_prompt}"
    );
    assert!(
        sql_prompt
            .contains("- Geraete(GeraetNr INTEGER primary key, NutzeinheitNr INTEGER, Typ TEXT)"),
        "{sql_prompt}"
    );
    assert!(
        !sql_prompt.contains("Ablesungen("),
        "unplanned tables are left out"
    );
    assert!(
        sql_prompt.contains(&format!("Job: {COUNT_JOB}")),
        "{sql_prompt}"
    );
    assert!(!sql_prompt.contains("previous statement"), "{sql_prompt}");
    let schema: serde_json::Value =
        serde_json::from_str(s.host.llm_requests()[1].json_schema.as_deref().unwrap()).unwrap();
    assert_eq!(schema["required"], json!(["sql", "params"]));
}

#[test]
fn tables_and_planned_columns_are_cached_in_thread_memory() {
    let s = counting();
    s.tick(&job(COUNT_JOB));

    let tables: Vec<String> = s.host.memory_json(Scope::Thread, TABLES_KEY).unwrap();
    assert_eq!(tables, TABLES);
    let kunden: Vec<ColumnInfo> = s
        .host
        .memory_json(Scope::Thread, &schema_key("Kunden"))
        .unwrap();
    assert_eq!(kunden[0].name, "KundenNr");
    assert!(kunden[0].primary_key);
    assert_eq!(kunden[2].data_type, "TEXT");
    assert_eq!(s.host.memory(Scope::Thread, "eras.schema.Ablesungen"), None);
}

#[test]
fn a_second_job_on_the_thread_uses_the_cache() {
    let s = counting();
    s.tick(&job(COUNT_JOB));
    s.answer(plan(&["Kunden"])).answer(sql(
        "SELECT Name FROM Kunden WHERE KundenNr = ?",
        json!([4711]),
    ));
    s.tick(&job("Name of customer 4711."));

    let timeline = s.timeline();
    assert_eq!(
        timeline[8..],
        ["llm:plan", "llm:sql", "query_db"],
        "{timeline:?}"
    );
    assert!(prompt(&s.host, 3).contains("- Kunden(KundenNr INTEGER primary key"));
}

#[test]
fn a_job_planning_an_uncached_table_describes_only_that_one() {
    let s = counting();
    s.tick(&job(COUNT_JOB));
    s.answer(plan(&["Geraete", "Ablesungen"]))
        .answer(sql("SELECT COUNT(*) AS Anzahl FROM Ablesungen", json!([])));
    s.tick(&job("Count all readings."));

    assert_eq!(
        s.timeline()[8..],
        ["llm:plan", "describe:Ablesungen", "llm:sql", "query_db"]
    );
}

#[test]
fn a_corrupt_cache_entry_is_described_again() {
    let s = Scripted::build(json!({}), |host| {
        host.on_query(count_handler)
            .with_memory(Scope::Thread, TABLES_KEY, r#"["Kunden"]"#)
            .with_memory(Scope::Thread, "eras.schema.Kunden", "{oops")
    });
    s.answer(plan(&["Kunden"]))
        .answer(sql("SELECT COUNT(*) AS Anzahl FROM Kunden", json!([])));
    s.tick(&job("Count the customers."));

    assert_eq!(
        s.timeline(),
        ["llm:plan", "describe:Kunden", "llm:sql", "query_db"]
    );
    let cached: Vec<ColumnInfo> = s
        .host
        .memory_json(Scope::Thread, &schema_key("Kunden"))
        .unwrap();
    assert_eq!(cached.len(), 3);
}

#[test]
fn configured_tables_narrow_the_plan() {
    let config = json!({"tables": ["Kunden", "Objekte", "Rechnungen"]});
    let s = Scripted::build(config, |host| host.on_query(count_handler));
    s.answer(plan(&["Kunden"]))
        .answer(sql("SELECT COUNT(*) AS Anzahl FROM Kunden", json!([])));
    s.tick(&job("Count the customers."));

    let schema: serde_json::Value =
        serde_json::from_str(s.host.llm_requests()[0].json_schema.as_deref().unwrap()).unwrap();
    assert_eq!(
        schema["properties"]["tables"]["items"]["enum"],
        json!(["Kunden", "Objekte"])
    );
    assert!(s.host.warnings()[0].contains("Rechnungen"));
}

#[test]
fn configured_peers_receive_the_answer() {
    let config = json!({"output": "speaker", "ui": "screen"});
    let s = Scripted::build(config, |host| host.on_query(count_handler));
    s.answer(plan(&PLANNED))
        .answer(sql(COUNT_SQL, json!([4711])));
    let output = s.tick(&job(COUNT_JOB));

    assert_eq!(routes(&output), [("speaker", "respond"), ("screen", "ui")]);
}
