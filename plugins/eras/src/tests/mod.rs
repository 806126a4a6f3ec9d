//! Native tests of the Eras expert against `weft_sdk::testing::TestHost`.

mod answers;
mod failures;
mod flow;
mod intent;
mod interpret;
mod retry;
mod text;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use serde_json::{Value as Json, json};
use weft_protocol::Job;
use weft_sdk::testing::{TestHost, describe};
use weft_sdk::{
    Capability, Column, CompletionRequest, Error, EventKind, Message, NodeError, Rows, TickOutput,
    Value,
};

use crate::Eras;
use crate::plan::PLAN_SYSTEM;
use crate::sql::SQL_SYSTEM;

/// The sample database: the five HeizKV tables, German columns.
fn database(host: TestHost) -> TestHost {
    let id = |name: &str| Column::new(name, "INTEGER").primary_key();
    let int = |name: &str| Column::new(name, "INTEGER");
    let text = |name: &str| Column::new(name, "TEXT");
    host.table(
        "Kunden",
        [id("KundenNr"), text("Name"), text("Ort")],
        [vec![4711.into(), "Ada Meyer".into(), "Kassel".into()]],
    )
    .table(
        "Objekte",
        [id("ObjektNr"), int("KundenNr"), text("Strasse")],
        [],
    )
    .table(
        "Nutzeinheiten",
        [id("NutzeinheitNr"), int("ObjektNr"), text("Lage")],
        [],
    )
    .table(
        "Geraete",
        [id("GeraetNr"), int("NutzeinheitNr"), text("Typ")],
        [],
    )
    .table(
        "Ablesungen",
        [
            id("AblesungNr"),
            int("GeraetNr"),
            text("Datum"),
            Column::new("Wert", "REAL"),
        ],
        [],
    )
}

/// The tables in the order `list-tables` gives them (sorted).
const TABLES: [&str; 5] = [
    "Ablesungen",
    "Geraete",
    "Kunden",
    "Nutzeinheiten",
    "Objekte",
];

/// A test host whose model answers from a script and records, for every
/// model call, which call it was and how many database calls preceded it,
/// so [`Scripted::timeline`] can interleave model and database calls.
struct Scripted {
    host: Rc<TestHost>,
    marks: Rc<RefCell<Vec<(String, usize)>>>,
    answers: Rc<RefCell<VecDeque<Result<Json, Error>>>>,
}

impl Scripted {
    /// The sample database, every capability granted, `config`, no answers yet.
    fn new(config: Json) -> Self {
        Self::build(config, |host| host)
    }

    /// Like [`Scripted::new`], with `setup` applied to the host first.
    fn build(config: Json, setup: impl FnOnce(TestHost) -> TestHost) -> Self {
        let marks = Rc::new(RefCell::new(Vec::new()));
        let answers: Rc<RefCell<VecDeque<Result<Json, Error>>>> = Rc::default();
        let me: Rc<RefCell<Weak<TestHost>>> = Rc::default();
        let (m, a, w) = (marks.clone(), answers.clone(), me.clone());
        let responder = move |request: &CompletionRequest| {
            let host = w.borrow().upgrade().expect("the host is alive");
            let calls = host.events_of(EventKind::ToolCall).len();
            m.borrow_mut().push((call_name(request).to_owned(), calls));
            let answer = a.borrow_mut().pop_front();
            let answer = answer.unwrap_or_else(|| panic!("unexpected model call: {request:?}"));
            answer.map(|json| json.as_str().map_or(json.to_string(), str::to_owned))
        };
        let host = setup(database(TestHost::for_node::<Eras>().config(config)));
        let host = Rc::new(host.answer_with(responder));
        *me.borrow_mut() = Rc::downgrade(&host);
        Self {
            host,
            marks,
            answers,
        }
    }

    /// Queue an answer: a JSON string is answered verbatim, anything else
    /// as its JSON text.
    fn answer(&self, answer: Json) -> &Self {
        self.answers.borrow_mut().push_back(Ok(answer));
        self
    }

    /// Queue a model error.
    fn fail(&self, error: Error) -> &Self {
        self.answers.borrow_mut().push_back(Err(error));
        self
    }

    fn tick(&self, job: &Job) -> TickOutput {
        let message = Message::new("pa", "job", job);
        self.host
            .tick::<Eras>(&[message])
            .expect("the tick succeeds")
    }

    /// Every capability call that matters, in order: `list_tables`,
    /// `describe:<table>`, `query_db` and `llm:plan` / `llm:sql`.
    fn timeline(&self) -> Vec<String> {
        let tools: Vec<String> = self
            .host
            .events_of(EventKind::ToolCall)
            .into_iter()
            .map(|event| match event["tool"].as_str().unwrap() {
                "describe_table" => {
                    format!("describe:{}", event["args"]["table"].as_str().unwrap())
                }
                tool => tool.to_owned(),
            })
            .collect();
        let marks = self.marks.borrow();
        let mut marks = marks.iter().peekable();
        let mut out = Vec::new();
        for (index, tool) in tools.into_iter().enumerate() {
            while let Some((call, _)) = marks.next_if(|(_, before)| *before <= index) {
                out.push(format!("llm:{call}"));
            }
            out.push(tool);
        }
        out.extend(marks.map(|(call, _)| format!("llm:{call}")));
        out
    }
}

/// Which call a request is, by its system prompt.
fn call_name(request: &CompletionRequest) -> &'static str {
    match request.messages[0].content.as_str() {
        PLAN_SYSTEM => "plan",
        SQL_SYSTEM => "sql",
        other => panic!("unknown system prompt {other:?}"),
    }
}

fn job(text: &str) -> Job {
    Job {
        job: text.to_owned(),
        request: "Wie viele Geräte hat Kunde 4711?".to_owned(),
        language: "de".to_owned(),
        response_hint: "short".to_owned(),
        attempt: 1,
    }
}

const COUNT_JOB: &str = "Count the devices of customer 4711.";

/// The plan answer naming `tables`.
fn plan(tables: &[&str]) -> Json {
    json!({"tables": tables, "approach": "Join Kunden to Geraete through Objekte and Nutzeinheiten."})
}

/// The sql answer.
fn sql(sql: &str, params: Json) -> Json {
    json!({"sql": sql, "params": params})
}

/// The statement that counts the devices (right columns).
const COUNT_SQL: &str = "SELECT COUNT(*) AS Anzahl FROM Geraete g JOIN Nutzeinheiten n ON \
g.NutzeinheitNr = n.NutzeinheitNr JOIN Objekte o ON n.ObjektNr = o.ObjektNr WHERE o.KundenNr = ?";

/// The same with a column that does not exist.
const BAD_SQL: &str = "SELECT COUNT(*) AS Anzahl FROM Geraete WHERE KundeNr = ?";

/// A query handler: statements naming `KundeNr` fail like SQLite would,
/// anything else counts 3 devices.
fn count_handler(sql: &str, _: &[Value]) -> Result<Rows, Error> {
    if sql.contains("KundeNr ") || sql.contains("KundeNr=") {
        return Err(Error::InvalidInput("no such column: KundeNr".into()));
    }
    Ok(Rows::new(["Anzahl"], [vec![Value::Integer(3)]]))
}

/// The user turn of the `index`th model request.
fn prompt(host: &TestHost, index: usize) -> String {
    host.llm_requests()[index]
        .messages
        .last()
        .unwrap()
        .content
        .clone()
}

/// The messages sent as (to, kind) pairs, in order.
fn routes(output: &TickOutput) -> Vec<(&str, &str)> {
    let pairs = output.messages.iter();
    pairs.map(|m| (m.to.as_str(), m.kind.as_str())).collect()
}

#[test]
fn describe_declares_the_job_schema_and_capabilities() {
    let info = describe::<Eras>();
    assert_eq!(info.name, "eras");
    assert_eq!(info.input_schema, Job::schema());
    assert_eq!(
        info.capabilities,
        [
            Capability::Llm,
            Capability::Db,
            Capability::Memory,
            Capability::Hud,
            Capability::Log
        ]
    );
}

#[test]
fn a_bad_config_is_invalid_input_before_any_call() {
    for config in [
        json!({"max_retries": -1}),
        json!({"pa": ["pa"]}),
        json!({"retries": 3}),
    ] {
        let host = TestHost::for_node::<Eras>().config(config.clone());
        let error = host
            .tick::<Eras>(&[Message::new("pa", "job", &job(COUNT_JOB))])
            .unwrap_err();
        assert!(
            matches!(&error, NodeError::InvalidInput(text) if text.contains("bad config")),
            "{config}: {error:?}"
        );
        assert!(host.llm_requests().is_empty());
    }
}

#[test]
fn other_kinds_are_skipped_with_a_warning() {
    let host = TestHost::for_node::<Eras>();
    let stray = Message::new("pa", "command", &json!({"text": "hi"}));
    let output = host.tick::<Eras>(&[stray]).unwrap();

    assert!(output.messages.is_empty());
    assert!(host.llm_requests().is_empty());
    assert_eq!(host.warnings().len(), 1);
}
