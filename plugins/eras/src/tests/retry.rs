//! A failing statement: re-describe, retry with the error, give up.

use serde_json::json;
use weft_protocol::{ExpertFailed, Respond};
use weft_sdk::{Error, Rows, Scope, Value};

use super::{
    BAD_SQL, COUNT_JOB, COUNT_SQL, Scripted, count_handler, job, plan, prompt, routes, sql,
};
use crate::{ColumnInfo, schema_key};

const PLANNED: [&str; 1] = ["Geraete"];

#[test]
fn a_missing_column_redescribes_and_retries_with_the_error() {
    let s = Scripted::build(json!({}), |host| host.on_query(count_handler));
    s.answer(plan(&PLANNED))
        .answer(sql(BAD_SQL, json!([4711])))
        .answer(sql(COUNT_SQL, json!([4711])));
    let output = s.tick(&job(COUNT_JOB));

    assert_eq!(
        s.timeline(),
        [
            "list_tables",
            "llm:plan",
            "describe:Geraete",
            "llm:sql",
            "query_db",
            "describe:Geraete",
            "llm:sql",
            "query_db",
        ]
    );
    let retry = prompt(&s.host, 2);
    assert!(
        retry.contains(&format!("The previous statement failed:\n{BAD_SQL}\n")),
        "{retry}"
    );
    assert!(
        retry.contains("Error: invalid-input: no such column: KundeNr"),
        "{retry}"
    );
    assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
    let respond: Respond = output.messages[0].json().unwrap();
    let result = respond.result.unwrap();
    assert_eq!(result.key_facts, ["Anzahl: 3"]);
    assert_eq!(result.confidence, 0.8, "one retry costs 0.1");
}

#[test]
fn the_redescribe_replaces_stale_cached_columns() {
    let stale =
        json!([{"name": "KundeNr", "type": "INTEGER", "nullable": false, "primary_key": true}]);
    let s = Scripted::build(json!({}), |host| {
        host.on_query(count_handler)
            .with_memory(
                Scope::Thread,
                crate::TABLES_KEY,
                json!(["Geraete"]).to_string(),
            )
            .with_memory(Scope::Thread, schema_key("Geraete"), stale.to_string())
    });
    s.answer(plan(&PLANNED))
        .answer(sql(BAD_SQL, json!([4711])))
        .answer(sql(COUNT_SQL, json!([4711])));
    s.tick(&job(COUNT_JOB));

    assert_eq!(
        s.timeline(),
        [
            "llm:plan",
            "llm:sql",
            "query_db",
            "describe:Geraete",
            "llm:sql",
            "query_db"
        ]
    );
    assert!(prompt(&s.host, 1).contains("- Geraete(KundeNr INTEGER primary key)"));
    assert!(prompt(&s.host, 2).contains("- Geraete(GeraetNr INTEGER primary key, NutzeinheitNr"));
    let cached: Vec<ColumnInfo> = s
        .host
        .memory_json(Scope::Thread, &schema_key("Geraete"))
        .unwrap();
    assert_eq!(cached[0].name, "GeraetNr");
}

#[test]
fn retries_are_bounded_then_the_pa_is_told() {
    let s = Scripted::build(json!({"max_retries": 2}), |host| {
        host.on_query(count_handler)
    });
    s.answer(plan(&PLANNED));
    for _ in 0..3 {
        s.answer(sql(BAD_SQL, json!([4711])));
    }
    let output = s.tick(&job(COUNT_JOB));

    assert_eq!(
        s.timeline(),
        [
            "list_tables",
            "llm:plan",
            "describe:Geraete",
            "llm:sql",
            "query_db",
            "describe:Geraete",
            "llm:sql",
            "query_db",
            "describe:Geraete",
            "llm:sql",
            "query_db",
        ],
        "no describe after the last failure"
    );
    assert_eq!(routes(&output), [("pa", "expert_failed")]);
    let failed: ExpertFailed = output.messages[0].json().unwrap();
    assert_eq!(failed.job, job(COUNT_JOB));
    assert_eq!(
        failed.error,
        format!(
            "no working SQL after 3 tries; last error: invalid-input: no such column: KundeNr \
             (SQL: {BAD_SQL})"
        )
    );
    assert!(
        s.host
            .warnings()
            .iter()
            .any(|w| w.contains("failed: no working SQL"))
    );
}

#[test]
fn zero_retries_tries_once() {
    let s = Scripted::build(json!({"max_retries": 0}), |host| {
        host.on_query(count_handler)
    });
    s.answer(plan(&PLANNED)).answer(sql(BAD_SQL, json!([4711])));
    let output = s.tick(&job(COUNT_JOB));

    assert_eq!(
        s.timeline(),
        [
            "list_tables",
            "llm:plan",
            "describe:Geraete",
            "llm:sql",
            "query_db"
        ]
    );
    assert_eq!(routes(&output), [("pa", "expert_failed")]);
}

#[test]
fn an_unusable_sql_answer_is_retried_without_describing() {
    let s = Scripted::build(json!({}), |host| host.on_query(count_handler));
    s.answer(plan(&PLANNED))
        .answer(json!("SELECT COUNT(*) FROM Geraete"))
        .answer(sql("SELECT 1", json!([[4711]])))
        .answer(sql(COUNT_SQL, json!([4711])));
    let output = s.tick(&job(COUNT_JOB));

    assert_eq!(
        s.timeline(),
        [
            "list_tables",
            "llm:plan",
            "describe:Geraete",
            "llm:sql",
            "llm:sql",
            "llm:sql",
            "query_db",
        ]
    );
    assert!(prompt(&s.host, 2).contains("Error: the answer is not {sql, params} JSON"));
    assert!(prompt(&s.host, 3).contains("Error: params must be scalars, not [4711]"));
    assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
}

#[test]
fn a_limit_is_retryable_but_an_unavailable_database_is_not() {
    let limited = Scripted::build(json!({"max_retries": 1}), |host| {
        host.on_query(|sql: &str, _: &[Value]| {
            if sql.contains("LIMIT") {
                Ok(Rows::new(["Typ"], [vec!["WMZ".into()]]))
            } else {
                Err(Error::LimitExceeded("more than 1000 rows".into()))
            }
        })
    });
    limited
        .answer(plan(&PLANNED))
        .answer(sql("SELECT Typ FROM Geraete", json!([])))
        .answer(sql("SELECT Typ FROM Geraete LIMIT 50", json!([])));
    let output = limited.tick(&job("List the device types."));
    assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
    assert!(prompt(&limited.host, 2).contains("limit-exceeded: more than 1000 rows"));

    let down = Scripted::build(json!({}), |host| {
        host.on_query(|_: &str, _: &[Value]| Err(Error::Unavailable("database restarting".into())))
    });
    down.answer(plan(&PLANNED))
        .answer(sql(COUNT_SQL, json!([4711])));
    let output = down.tick(&job(COUNT_JOB));
    assert_eq!(routes(&output), [("pa", "expert_failed")]);
    let failed: ExpertFailed = output.messages[0].json().unwrap();
    assert_eq!(
        failed.error,
        "database call query_db failed: unavailable: database restarting"
    );
    assert_eq!(down.host.queries().len(), 1, "not retried");
}

#[test]
fn scalar_params_of_every_kind_reach_the_database() {
    let s = Scripted::build(json!({}), |host| host.on_query(count_handler));
    s.answer(plan(&PLANNED))
        .answer(sql(COUNT_SQL, json!([4711, 2.5, "WMZ", true, null])));
    s.tick(&job(COUNT_JOB));

    assert_eq!(
        s.host.queries()[0].1,
        [
            Value::Integer(4711),
            Value::Real(2.5),
            Value::Text("WMZ".into()),
            Value::Integer(1),
            Value::Null
        ]
    );
}
