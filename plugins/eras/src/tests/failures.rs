//! Jobs that cannot be done become `expert_failed` for the PA, not tick errors.

use serde_json::json;
use weft_protocol::ExpertFailed;
use weft_sdk::testing::TestHost;
use weft_sdk::{Capability, Error, Message, TickOutput};

use super::{COUNT_JOB, Scripted, job, plan, routes};
use crate::Eras;

/// The only message sent: `expert_failed` to the PA, for the job as received.
fn only_failure(output: &TickOutput) -> String {
    assert_eq!(routes(output), [("pa", "expert_failed")]);
    let failed: ExpertFailed = output.messages[0].json().unwrap();
    assert_eq!(failed.job, job(COUNT_JOB));
    failed.error
}

#[test]
fn an_unusable_plan_is_reported_without_touching_the_tables() {
    for answer in [json!("Geraete, I think"), json!({"approach": "count"})] {
        let s = Scripted::new(json!({}));
        s.answer(answer);
        let output = s.tick(&job(COUNT_JOB));

        let error = only_failure(&output);
        assert!(
            error.starts_with("could not plan the lookup: the answer is not a plan"),
            "{error}"
        );
        assert_eq!(s.timeline(), ["list_tables", "llm:plan"]);
        assert!(
            s.host
                .warnings()
                .iter()
                .any(|w| w.contains("could not plan"))
        );
    }
}

#[test]
fn a_plan_naming_only_unknown_tables_is_reported() {
    let s = Scripted::new(json!({}));
    s.answer(plan(&["Rechnungen", "Rechnungen"]));
    let output = s.tick(&job(COUNT_JOB));

    assert_eq!(
        only_failure(&output),
        "could not plan the lookup: the plan names no known table"
    );
    assert!(s.host.warnings()[0].contains("\"Rechnungen\""));
}

#[test]
fn unknown_and_repeated_tables_are_dropped_from_a_plan() {
    let s = Scripted::build(json!({}), |host| host.on_query(super::count_handler));
    s.answer(plan(&["Rechnungen", "Geraete", "Geraete"]))
        .answer(super::sql(
            "SELECT COUNT(*) AS Anzahl FROM Geraete",
            json!([]),
        ));
    let output = s.tick(&job(COUNT_JOB));

    assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
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
}

#[test]
fn a_denied_database_is_reported() {
    let host = TestHost::for_node::<Eras>().grant_only([
        Capability::Llm,
        Capability::Memory,
        Capability::Hud,
        Capability::Log,
    ]);
    let output = host
        .tick::<Eras>(&[Message::new("pa", "job", &job(COUNT_JOB))])
        .unwrap();

    assert_eq!(
        only_failure(&output),
        "database call list_tables failed: denied(db)"
    );
    assert!(host.llm_requests().is_empty());
}

#[test]
fn an_empty_database_is_reported() {
    let host = TestHost::for_node::<Eras>();
    let output = host
        .tick::<Eras>(&[Message::new("pa", "job", &job(COUNT_JOB))])
        .unwrap();

    assert_eq!(
        only_failure(&output),
        "the database has no tables this expert may use"
    );
}

#[test]
fn a_model_error_is_reported_for_either_call() {
    let budget = Error::BudgetExhausted("thread token budget spent".into());
    let s = Scripted::new(json!({}));
    s.fail(budget.clone());
    assert_eq!(
        only_failure(&s.tick(&job(COUNT_JOB))),
        "the plan model call failed: budget-exhausted: thread token budget spent"
    );

    let s = Scripted::new(json!({}));
    s.answer(plan(&["Geraete"])).fail(budget);
    assert_eq!(
        only_failure(&s.tick(&job(COUNT_JOB))),
        "the sql model call failed: budget-exhausted: thread token budget spent"
    );
    assert!(s.host.queries().is_empty());
}

#[test]
fn a_failed_describe_is_reported() {
    let s = Scripted::build(json!({}), |host| {
        host.with_memory(
            weft_sdk::Scope::Thread,
            crate::TABLES_KEY,
            r#"["Geraete", "Verträge"]"#,
        )
    });
    s.answer(plan(&["Verträge"]));
    let output = s.tick(&job(COUNT_JOB));

    assert_eq!(
        only_failure(&output),
        "database call describe_table failed: invalid-input: no such table: Verträge"
    );
}

#[test]
fn without_hud_and_memory_the_job_is_still_done() {
    let s = Scripted::build(json!({}), |host| {
        host.grant_only([Capability::Llm, Capability::Db, Capability::Log])
            .on_query(super::count_handler)
    });
    s.answer(plan(&["Geraete"])).answer(super::sql(
        "SELECT COUNT(*) AS Anzahl FROM Geraete",
        json!([]),
    ));
    let output = s.tick(&job(COUNT_JOB));

    assert_eq!(routes(&output), [("output", "respond"), ("ui", "ui")]);
    assert!(s.host.denied().contains(&Capability::Hud));
    assert!(s.host.denied().contains(&Capability::Memory));
    assert!(
        s.host
            .warnings()
            .iter()
            .any(|w| w.contains("could not cache"))
    );
}
