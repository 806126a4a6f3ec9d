//! Intent mode end to end on a real SQLite database with the Eras schema:
//! the statements the expert builds are executed, so every assertion is on
//! what the database really answered. The model is scripted: questions the
//! grounding decides alone must make no model call at all.

use std::collections::BTreeMap;
use std::rc::Rc;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Value as Json, json};
use weft_protocol::{Job, Respond};
use weft_sdk::testing::TestHost;
use weft_sdk::{Column, Error, EventKind, Message, Rows, Value};

use crate::Eras;
use crate::cues::Cues;
use crate::intent::{self, Aggregate, Bound, Identifier};

/// The Eras tables with a handful of rows, umlauts included.
const DATA: &str = "
CREATE TABLE Kunden (KundenNr INTEGER PRIMARY KEY, Vorname TEXT NOT NULL, Nachname TEXT NOT NULL,
    Ort TEXT NOT NULL, KundeSeit TEXT NOT NULL);
CREATE TABLE Objekte (ObjektNr INTEGER PRIMARY KEY, KundenNr INTEGER NOT NULL, Ort TEXT NOT NULL,
    Baujahr INTEGER NOT NULL, Heizungsart TEXT NOT NULL, Wohnflaeche REAL NOT NULL);
CREATE TABLE Nutzeinheiten (NutzeinheitNr INTEGER PRIMARY KEY, ObjektNr INTEGER NOT NULL,
    Lage TEXT NOT NULL, Flaeche REAL NOT NULL, Personen INTEGER NOT NULL);
CREATE TABLE Geraete (GeraetNr INTEGER PRIMARY KEY, NutzeinheitNr INTEGER NOT NULL,
    Typ TEXT NOT NULL, Seriennummer TEXT NOT NULL, Einbaudatum TEXT NOT NULL);
CREATE TABLE Ablesungen (AblesungNr INTEGER PRIMARY KEY, GeraetNr INTEGER NOT NULL,
    Datum TEXT NOT NULL, Wert REAL NOT NULL, Einheit TEXT NOT NULL);
INSERT INTO Kunden VALUES (1000, 'Anna', 'Meyer', 'Köln', '2015-04-01'),
    (1001, 'Bernd', 'Schulz', 'Köln', '2019-09-15'), (1002, 'Carla', 'Weiß', 'Berlin', '2024-02-01');
INSERT INTO Objekte VALUES (7, 1000, 'Köln', 1965, 'Gas', 320.5), (8, 1000, 'Köln', 1990, 'Fernwärme', 610),
    (9, 1002, 'Berlin', 2001, 'Gas', 150);
INSERT INTO Nutzeinheiten VALUES (5, 7, 'EG links', 80, 2), (6, 7, 'OG rechts', 95, 4),
    (10, 9, 'EG', 120, 5);
INSERT INTO Geraete VALUES (1, 5, 'Wärmezähler', 'S-1', '2018-05-01'),
    (2, 5, 'Kaltwasserzähler', 'S-2', '2018-05-01'), (3, 6, 'Wärmezähler', 'S-3', '2020-01-10'),
    (4, 10, 'Heizkostenverteiler', 'S-4', '2024-06-30');
INSERT INTO Ablesungen VALUES (1, 1, '2023-12-31', 1200, 'kWh'), (2, 1, '2024-12-31', 1500, 'kWh'),
    (3, 3, '2024-12-31', 900, 'kWh'), (4, 4, '2025-03-15', 12, 'Einheiten');
";

/// The eras config of the shipped graph, in intent mode (cues: defaults).
fn config() -> Json {
    json!({
        "mode": "intent",
        "entities": {
            "Kunden": {
                "names": ["customer", "client", "Kunde"],
                "owner": true,
                "date": "KundeSeit",
                "columns": {"Ort": ["city", "Stadt"], "Nachname": ["surname", "Nachname"]},
                "label": {"de": {"one": "Kunde", "many": "Kunden"}}
            },
            "Objekte": {
                "names": ["property", "building", "Objekt", "Liegenschaft"],
                "columns": {"Wohnflaeche": ["living area", "Wohnfläche"], "Baujahr": ["year built", "Baujahr"]},
                "label": {"en": {"one": "property", "many": "properties"}, "de": {"one": "Objekt", "many": "Objekte"}}
            },
            "Nutzeinheiten": {
                "names": ["unit", "apartment", "Nutzeinheit", "Wohnung"],
                "columns": {"Flaeche": ["area", "Fläche"], "Personen": ["occupants", "Personen", "Bewohner"]},
                "label": {"de": {"one": "Nutzeinheit", "many": "Nutzeinheiten"}}
            },
            "Geraete": {
                "names": ["device", "meter", "Gerät", "Zähler"],
                "date": "Einbaudatum",
                "label": {"de": {"one": "Gerät", "many": "Geräte"}}
            },
            "Ablesungen": {
                "names": ["reading", "Ablesung"],
                "latest_by": "Datum",
                "columns": {"Wert": ["value", "Wert"]},
                "label": {"de": {"one": "Ablesung", "many": "Ablesungen"}}
            }
        }
    })
}

/// A SQL value as the host's.
fn value(cell: ValueRef<'_>) -> Value {
    match cell {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Run `sql` with `params` on `db`, as the host's db capability would.
fn query(db: &Connection, sql: &str, params: &[Value]) -> Result<Rows, Error> {
    let mut statement = db
        .prepare(sql)
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
    let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
    let bound: Vec<rusqlite::types::Value> = params
        .iter()
        .map(|p| match p {
            Value::Null => rusqlite::types::Value::Null,
            Value::Integer(i) => rusqlite::types::Value::Integer(*i),
            Value::Real(r) => rusqlite::types::Value::Real(*r),
            Value::Text(t) => rusqlite::types::Value::Text(t.clone()),
            Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
        })
        .collect();
    let width = columns.len();
    let rows = statement
        .query_map(rusqlite::params_from_iter(bound), |row| {
            (0..width)
                .map(|i| row.get_ref(i).map(value))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| Error::InvalidInput(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Failed(e.to_string()))?;
    Ok(Rows::new(columns, rows))
}

/// A host whose database is [`DATA`] and whose model answers `answers` in
/// order (none: any model call fails the test).
fn host(answers: &[Json]) -> TestHost {
    let db = Connection::open_in_memory().unwrap();
    db.execute_batch(DATA).unwrap();
    let mut host = TestHost::for_node::<Eras>().config(config());
    for table in [
        "Kunden",
        "Objekte",
        "Nutzeinheiten",
        "Geraete",
        "Ablesungen",
    ] {
        let mut info = db
            .prepare(&format!(
                "SELECT name, type, pk FROM pragma_table_info('{table}')"
            ))
            .unwrap();
        let columns: Vec<Column> = info
            .query_map([], |r| {
                let column = Column::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?);
                Ok(if r.get::<_, i64>(2)? > 0 {
                    column.primary_key()
                } else {
                    column
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        host = host.table(table, columns, []);
    }
    let db = Rc::new(db);
    let mut host = host.on_query(move |sql, params| query(&db, sql, params));
    for answer in answers {
        host = host.answer(answer.to_string());
    }
    host
}

fn job(text: &str, language: &str) -> Job {
    Job {
        job: text.to_owned(),
        request: text.to_owned(),
        language: language.to_owned(),
        response_hint: String::new(),
        attempt: 1,
    }
}

/// Ask `text` and return the answer sent to output and the `decided` event.
fn ask(host: &TestHost, text: &str, language: &str) -> (Respond, Json) {
    let output = host
        .tick::<Eras>(&[Message::new("pa", "job", &job(text, language))])
        .expect("the tick succeeds");
    let respond = output
        .messages
        .iter()
        .find(|m| m.kind == "respond")
        .unwrap_or_else(|| panic!("no respond for {text:?}: {:?}", output.messages));
    let decided = host.events_of(EventKind::Decided);
    let decided = decided.last().cloned().unwrap_or(Json::Null);
    (respond.json().unwrap(), decided)
}

fn summary(respond: &Respond) -> &str {
    &respond.result.as_ref().expect("a result").summary
}

/// The statements run that are not the value index.
fn statements(host: &TestHost) -> Vec<(String, Vec<Value>)> {
    host.queries()
        .into_iter()
        .filter(|(sql, _)| !sql.contains("SELECT DISTINCT"))
        .collect()
}

#[test]
fn german_cue_words_and_umlauts_ground_a_count() {
    let host = host(&[]);
    let (respond, decided) = ask(&host, "Wie viele Geräte hat Kunde 1000?", "de");
    assert_eq!(decided["target"], "Geraete");
    assert_eq!(decided["aggregate"], "count");
    assert_eq!(decided["source"], "grounded");
    assert_eq!(summary(&respond), "Es gibt 3 Geräte für Kunde 1000.");
    assert!(host.llm_requests().is_empty(), "no model call was needed");

    // Spelled without umlauts, or with them, and in the plural: the same.
    let host2 = self::host(&[]);
    let (respond, _) = ask(&host2, "wieviele Zaehler hat der kunde 1000", "de");
    assert_eq!(summary(&respond), "Es gibt 3 Geräte für Kunde 1000.");
}

#[test]
fn a_german_relation_question_lists_the_related_records() {
    let host = host(&[]);
    let (respond, decided) = ask(&host, "Welche Objekte gehören zu Kunde 1000?", "de");
    assert_eq!(decided["target"], "Objekte");
    assert_eq!(summary(&respond), "2 Objekte für Kunde 1000 gefunden.");
}

#[test]
fn an_owner_question_targets_the_owner_not_the_record_named() {
    let host = host(&[]);
    let (respond, decided) = ask(&host, "Who owns property 9?", "en");
    assert_eq!(decided["target"], "Kunden");
    let result = respond.result.unwrap();
    assert_eq!(result.row_count, Some(1));
    assert!(result.key_facts[0].contains("KundenNr: 1002"), "{result:?}");

    // "belongs to" names the parent: the property of a unit.
    let host = self::host(&[]);
    let (respond, decided) = ask(&host, "Zu welchem Objekt gehört Nutzeinheit 10?", "de");
    assert_eq!(decided["target"], "Objekte");
    assert!(
        respond.result.unwrap().key_facts[0].contains("ObjektNr: 9"),
        "the unit's property"
    );
}

#[test]
fn a_value_of_a_text_column_becomes_a_filter() {
    let host = host(&[]);
    let (respond, decided) = ask(&host, "How many customers live in Köln?", "en");
    assert_eq!(
        decided["filters"],
        json!([{"table": "Kunden", "column": "Ort", "values": ["Köln"]}])
    );
    assert_eq!(summary(&respond), "There are 2 customers with Ort Köln.");
    // Spelled "Koeln" in German: the same value, bound as a parameter.
    let host = self::host(&[]);
    let (respond, _) = ask(&host, "Wie viele Kunden wohnen in Koeln?", "de");
    assert_eq!(summary(&respond), "Es gibt 2 Kunden mit Ort Köln.");
    let (sql, params) = statements(&host).remove(0);
    assert!(sql.ends_with("WHERE \"Kunden\".\"Ort\" IN (?)"), "{sql}");
    assert_eq!(params, [Value::Text("Köln".into())]);

    // A value alone names its table: device types.
    let host = self::host(&[]);
    let (respond, _) = ask(&host, "Wie viele Wärmezähler gibt es?", "de");
    assert_eq!(summary(&respond), "Es gibt 2 Geräte mit Typ Wärmezähler.");
}

#[test]
fn numeric_comparisons_filter_on_the_glossed_column_or_count_related_rows() {
    let host = host(&[]);
    let (respond, _) = ask(&host, "How many units have more than 3 occupants?", "en");
    assert_eq!(
        summary(&respond),
        "There are 2 units with Personen: more than 3."
    );
    let host = self::host(&[]);
    let (respond, _) = ask(
        &host,
        "Wie viele Objekte haben eine Wohnfläche unter 400?",
        "de",
    );
    assert_eq!(
        summary(&respond),
        "Es gibt 2 Objekte mit Wohnflaeche: unter 400."
    );
    // `more than 1 property`: a count of related rows per customer.
    let host = self::host(&[]);
    let (respond, decided) = ask(&host, "Which customers have more than 1 property?", "en");
    assert_eq!(decided["target"], "Kunden");
    let result = respond.result.unwrap();
    assert_eq!(result.row_count, Some(1));
    assert!(result.key_facts[0].contains("KundenNr: 1000"), "{result:?}");
}

#[test]
fn a_year_filters_on_the_targets_date_column() {
    let host = host(&[]);
    let (respond, decided) = ask(&host, "How many readings were taken in 2024?", "en");
    assert_eq!(decided["filters"][0]["from"], "2024-01-01");
    assert_eq!(decided["filters"][0]["to"], "2025-01-01");
    assert_eq!(summary(&respond), "There are 2 readings (Datum: in 2024).");
    let host = self::host(&[]);
    let (respond, _) = ask(&host, "Wie viele Kunden gibt es seit März 2019?", "de");
    assert_eq!(
        summary(&respond),
        "Es gibt 2 Kunden (KundeSeit: seit maerz 2019)."
    );
}

#[test]
fn a_record_that_does_not_exist_is_said_to_not_exist() {
    let host = host(&[]);
    let (respond, _) = ask(&host, "How many devices does customer 4242 have?", "en");
    assert_eq!(summary(&respond), "There is no customer 4242.");
    let host = self::host(&[]);
    let (respond, _) = ask(&host, "Wie viele Geräte hat Kunde 4242?", "de");
    assert_eq!(summary(&respond), "Kunde 4242 gibt es nicht.");
    // A customer that exists with no readings is a true zero, not missing.
    let host = self::host(&[]);
    let (respond, _) = ask(&host, "How many devices does customer 1001 have?", "en");
    assert_eq!(summary(&respond), "There are 0 devices for customer 1001.");
}

#[test]
fn a_constraint_that_cannot_be_applied_is_never_dropped_silently() {
    let host = host(&[]);
    let (respond, decided) = ask(&host, "How many customers live in Springfield?", "en");
    assert_eq!(decided["unapplied"], json!(["in springfield"]));
    let result = respond.result.unwrap();
    assert!(
        result
            .summary
            .starts_with("I could not apply “in springfield” to the customers"),
        "{}",
        result.summary
    );
    assert_eq!(result.row_count, None, "no figure is given");
    assert!(!result.summary.contains('3'), "{}", result.summary);
    assert!(statements(&host).is_empty(), "no unfiltered count was run");

    // A period on a target without a date is not moved to another table's
    // date (the customers' `KundeSeit`): it is reported.
    let host = self::host(&[]);
    let (_, decided) = ask(&host, "How many properties were built before 1950?", "en");
    assert_eq!(decided["unapplied"], json!(["before 1950"]));
    // With a gloss for the year column it is a comparison on it.
    let host = self::host(&[]);
    let (respond, _) = ask(
        &host,
        "How many properties have a Baujahr before 1990?",
        "en",
    );
    assert_eq!(
        summary(&respond),
        "There is 1 property with Baujahr: before 1990."
    );

    // What could be applied is said too, in German for a German question.
    let host = self::host(&[]);
    let (respond, _) = ask(&host, "Wie viele Geräte hat Kunde 1000 aus Hamburg?", "de");
    let text = summary(&respond);
    assert!(text.starts_with("„aus hamburg“ konnte ich"), "{text}");
    assert!(
        text.contains("Anwenden konnte ich: für Kunde 1000."),
        "{text}"
    );
}

#[test]
fn the_model_chooses_only_when_the_grounding_leaves_several_intents() {
    // Two measure columns of units: the model picks one.
    let answer = json!({"target": "Nutzeinheiten", "aggregate": "average", "column": "Flaeche"});
    let host = host(&[answer]);
    let (respond, decided) = ask(
        &host,
        "What is the average of the units of property 7?",
        "en",
    );
    assert_eq!(decided["source"], "model");
    assert_eq!(host.llm_requests().len(), 1);
    assert_eq!(
        summary(&respond),
        "The average of Flaeche over the units for property 7 is 87.5."
    );
}

#[test]
fn the_answer_language_follows_the_question_when_the_job_misnames_it() {
    // The job says English, but only German cue words occur.
    let host = host(&[]);
    let (respond, decided) = ask(&host, "Wie viele Kunden gibt es?", "en");
    assert_eq!(decided["language"], "de");
    assert_eq!(summary(&respond), "Es gibt 3 Kunden.");
}

#[test]
fn grounding_reads_comparisons_periods_and_values() {
    let entities: BTreeMap<String, crate::Entity> =
        serde_json::from_value(config()["entities"].clone()).unwrap();
    let values = [intent::values::IndexedValue {
        table: "Kunden".into(),
        column: "Ort".into(),
        value: "Düsseldorf".into(),
    }];
    let g = intent::ground(
        "Welche Kunden aus DÜSSELDORF haben mehr als 2 Objekte seit 2020?",
        &entities,
        &Cues::defaults(),
        &values,
    );
    assert_eq!(g.values[0].value, "Düsseldorf");
    assert_eq!(g.comparisons[0].bound, Bound::Above);
    assert_eq!(g.comparisons[0].counted.as_deref(), Some("Objekte"));
    assert_eq!(
        g.period.as_ref().unwrap().from.as_deref(),
        Some("2020-01-01")
    );
    assert_eq!(g.aggregates, [Aggregate::List]);
    assert!(g.unmatched.is_empty(), "{:?}", g.unmatched);
    assert_eq!(g.languages[0], "de");

    let g = intent::ground(
        "Wie viele Häuser hat Kunde Nr. 7?",
        &entities,
        &Cues::defaults(),
        &[],
    );
    assert_eq!(g.mentioned, ["Kunden"], "Haus is not a configured name");
    assert_eq!(
        g.identifiers,
        [Identifier {
            table: "Kunden".into(),
            value: 7
        }]
    );
}

/// The eras config of `graphs/assistant.yaml`.
fn shipped() -> crate::Config {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../graphs/assistant.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let graph: Json = serde_saphyr::from_str(&text).unwrap();
    serde_json::from_value(graph["nodes"]["eras"]["config"].clone()).unwrap()
}

#[test]
fn the_shipped_graph_spells_out_the_default_cues_and_grounds_german() {
    let config = shipped();
    assert_eq!(
        config.cues,
        Cues::defaults(),
        "the graph lists the built-in cue words"
    );
    let g = intent::ground(
        "Wie viele Zähler hat Kunde Nr. 1042 in Nutzeinheit 3?",
        &config.entities,
        &config.cues,
        &[],
    );
    assert_eq!(g.aggregates, [Aggregate::Count]);
    assert_eq!(g.mentioned, ["Geraete", "Kunden", "Nutzeinheiten"]);
    assert_eq!(g.identifiers.len(), 2);
    assert!(g.unmatched.is_empty(), "{:?}", g.unmatched);
    let g = intent::ground(
        "Wem gehört das Haus 12?",
        &config.entities,
        &config.cues,
        &[],
    );
    assert!(g.owner);
    assert_eq!(g.identifiers[0].table, "Objekte");
}

#[test]
fn a_lowercase_word_in_a_capitalised_question_is_not_a_capitalised_value() {
    let entities: BTreeMap<String, crate::Entity> =
        serde_json::from_value(config()["entities"].clone()).unwrap();
    let values = [intent::values::IndexedValue {
        table: "Kunden".into(),
        column: "Nachname".into(),
        value: "Groß".into(),
    }];
    let ground = |text: &str| intent::ground(text, &entities, &Cues::defaults(), &values);
    // `wie groß` is "how large", not the surname.
    assert!(
        ground("Wie groß ist die Wohnfläche von Kunde 1000?")
            .values
            .is_empty()
    );
    assert_eq!(ground("Wie viele Objekte hat Kunde Groß?").values.len(), 1);
    // A question typed all in lowercase still matches.
    assert_eq!(ground("wie viele objekte hat kunde gross").values.len(), 1);
}

#[test]
fn the_longest_gloss_wins_and_list_yields_to_a_stronger_cue() {
    let host = host(&[]);
    let (respond, decided) = ask(
        &host,
        "How many properties have a living area above 300?",
        "en",
    );
    assert_eq!(
        decided["filters"][0]["column"], "Wohnflaeche",
        "not the units' `area`"
    );
    assert_eq!(
        summary(&respond),
        "There are 2 properties with Wohnflaeche: above 300."
    );
    // `show` (list) and `latest`: the latest one, with no model call.
    let host = self::host(&[]);
    let (respond, decided) = ask(&host, "Show the latest reading of device 1", "en");
    assert_eq!(decided["aggregate"], "latest");
    assert!(summary(&respond).starts_with("The latest reading for device 1: "));
}

#[test]
fn a_model_answer_outside_the_options_is_not_taken() {
    // Asked to choose between the units' two number columns, the model
    // answers with a table that is not an option, twice: the first valid
    // option is taken instead.
    let wrong = json!({"target": "Kunden", "aggregate": "count", "column": ""});
    let host = host(&[wrong.clone(), wrong]);
    let (respond, decided) = ask(
        &host,
        "What is the average of the units of property 7?",
        "en",
    );
    assert_eq!(decided["source"], "grounded");
    assert_eq!(host.llm_requests().len(), 2);
    assert!(
        summary(&respond).starts_with("The average of "),
        "{respond:?}"
    );
}
