//! Intent mode's pure parts: grounding, candidates, validation, joins and
//! the SQL it builds.

use std::collections::BTreeMap;

use weft_sdk::{Rows, Value};

use crate::catalog::{ColumnInfo, TableColumns};
use crate::config::{Entity, Glosses};
use crate::cues::Cues;
use crate::intent::{
    Aggregate, Filter, Grounding, Identifier, Intent, Language, build_sql, candidates, join_path,
    summary, validate,
};

fn ground(text: &str, entities: &BTreeMap<String, Entity>) -> Grounding {
    crate::intent::ground(text, entities, &Cues::defaults(), &[])
}

fn column(name: &str, data_type: &str, primary_key: bool) -> ColumnInfo {
    ColumnInfo {
        name: name.to_owned(),
        data_type: data_type.to_owned(),
        nullable: false,
        primary_key,
    }
}

/// A library: authors › books › copies › loans (not the Eras schema, so
/// nothing here is tuned to the demo database).
fn schema() -> Vec<TableColumns> {
    vec![
        (
            "Authors".into(),
            vec![
                column("AuthorId", "INTEGER", true),
                column("Name", "TEXT", false),
            ],
        ),
        (
            "Books".into(),
            vec![
                column("BookId", "INTEGER", true),
                column("AuthorId", "INTEGER", false),
                column("Title", "TEXT", false),
                column("Pages", "INTEGER", false),
            ],
        ),
        (
            "Copies".into(),
            vec![
                column("CopyId", "INTEGER", true),
                column("BookId", "INTEGER", false),
            ],
        ),
        (
            "Loans".into(),
            vec![
                column("LoanId", "INTEGER", true),
                column("CopyId", "INTEGER", false),
                column("Date", "TEXT", false),
                column("Fee", "REAL", false),
            ],
        ),
    ]
}

fn entities() -> BTreeMap<String, Entity> {
    let entity = |names: &[&str], latest_by: Option<&str>, columns: &[(&str, &str)]| Entity {
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        latest_by: latest_by.map(str::to_owned),
        columns: columns
            .iter()
            .map(|(c, g)| ((*c).to_owned(), Glosses(vec![(*g).to_owned()])))
            .collect(),
        ..Entity::default()
    };
    BTreeMap::from([
        (
            "Authors".to_owned(),
            entity(&["author", "writer"], None, &[]),
        ),
        (
            "Books".to_owned(),
            entity(&["book", "title"], None, &[("Pages", "pages")]),
        ),
        ("Copies".to_owned(), entity(&["copy"], None, &[])),
        (
            "Loans".to_owned(),
            entity(&["loan"], Some("Date"), &[("Fee", "fee")]),
        ),
    ])
}

#[test]
fn grounding_finds_mentions_identifiers_cues_and_glosses() {
    let g = ground(
        "How many copies do the books of author #7 have?",
        &entities(),
    );
    assert_eq!(g.mentioned, ["Copies", "Books", "Authors"]);
    assert_eq!(
        g.identifiers,
        [Identifier {
            table: "Authors".into(),
            value: 7
        }]
    );
    assert_eq!(g.aggregates, [Aggregate::Count]);

    let g = ground(
        "What is the total fee of the loans of copy no. 12?",
        &entities(),
    );
    assert_eq!(g.identifiers[0].table, "Copies");
    assert_eq!(g.identifiers[0].value, 12);
    assert_eq!(g.aggregates, [Aggregate::Sum]);
    assert_eq!(g.columns, [("Loans".to_owned(), "Fee".to_owned())]);

    let g = ground("good morning!", &entities());
    assert!(g.mentioned.is_empty() && g.identifiers.is_empty() && g.aggregates.is_empty());
}

#[test]
fn identified_entities_are_filters_not_targets() {
    let e = entities();
    let s = schema();
    let c = candidates(&ground("How many books has writer 3 written?", &e), &e, &s);
    assert_eq!(c.targets, ["Books"]);
    assert_eq!(c.aggregates, [Aggregate::Count]);
    // Only an identified entity: the question is about it.
    let c = candidates(&ground("Show author 3", &e), &e, &s);
    assert_eq!(c.targets, ["Authors"]);
    assert_eq!(c.aggregates, [Aggregate::List]);
    // Nothing grounded: every entity is a candidate.
    let c = candidates(&ground("what is there?", &e), &e, &s);
    assert_eq!(c.targets.len(), 4);
}

#[test]
fn joins_follow_key_columns_over_several_tables() {
    let path = join_path("Loans", "Authors", &schema()).unwrap();
    assert_eq!(
        path,
        [
            ("Copies".to_owned(), "CopyId".to_owned()),
            ("Books".to_owned(), "BookId".to_owned()),
            ("Authors".to_owned(), "AuthorId".to_owned()),
        ]
    );
    assert_eq!(join_path("Books", "Books", &schema()).unwrap(), []);
    let mut island = schema();
    island.push(("Staff".into(), vec![column("StaffId", "INTEGER", true)]));
    assert!(join_path("Staff", "Books", &island).is_none());
}

#[test]
fn validation_refuses_what_the_schema_cannot_answer() {
    let e = entities();
    let s = schema();
    let g = ground("average of the books of author 2", &e);
    let error = validate(("Books", Aggregate::Average, "Title"), &g, &e, &s).unwrap_err();
    assert!(error.contains("not a number column"), "{error}");
    let error = validate(("Books", Aggregate::Sum, ""), &g, &e, &s).unwrap_err();
    assert!(error.contains("needs a number column"), "{error}");
    let error = validate(("Authors", Aggregate::Latest, ""), &g, &e, &s).unwrap_err();
    assert!(error.contains("order by"), "{error}");
    let ok = validate(("Books", Aggregate::Average, "Pages"), &g, &e, &s).unwrap();
    assert_eq!(ok.column.as_deref(), Some("Pages"));
    // `latest` falls back to the entity's `latest_by`.
    let g = ground("latest loan of copy 4", &e);
    let ok = validate(("Loans", Aggregate::Latest, ""), &g, &e, &s).unwrap();
    assert_eq!(ok.column.as_deref(), Some("Date"));
}

#[test]
fn the_sql_joins_filters_on_keys_and_binds_values() {
    let intent = Intent {
        target: "Loans".into(),
        aggregate: Aggregate::Count,
        column: None,
        filters: vec![Filter::Key(Identifier {
            table: "Authors".into(),
            value: 7,
        })],
        unapplied: Vec::new(),
    };
    let (sql, params) = build_sql(&intent, &entities(), &schema()).unwrap();
    assert_eq!(
        sql,
        "SELECT COUNT(DISTINCT \"Loans\".rowid) AS count FROM \"Loans\" \
         JOIN \"Copies\" ON \"Copies\".\"CopyId\" = \"Loans\".\"CopyId\" \
         JOIN \"Books\" ON \"Books\".\"BookId\" = \"Copies\".\"BookId\" \
         JOIN \"Authors\" ON \"Authors\".\"AuthorId\" = \"Books\".\"AuthorId\" \
         WHERE \"Authors\".\"AuthorId\" = ?"
    );
    assert_eq!(params, [Value::Integer(7)]);

    let latest = Intent {
        target: "Loans".into(),
        aggregate: Aggregate::Latest,
        column: Some("Date".into()),
        filters: vec![Filter::Key(Identifier {
            table: "Copies".into(),
            value: 4,
        })],
        unapplied: Vec::new(),
    };
    let (sql, _) = build_sql(&latest, &entities(), &schema()).unwrap();
    assert!(
        sql.ends_with("ORDER BY \"Loans\".\"Date\" DESC LIMIT 1"),
        "{sql}"
    );
}

#[test]
fn the_summary_states_the_answer_in_the_vocabulary() {
    let intent = Intent {
        target: "Books".into(),
        aggregate: Aggregate::Count,
        column: None,
        filters: vec![Filter::Key(Identifier {
            table: "Authors".into(),
            value: 7,
        })],
        unapplied: Vec::new(),
    };
    let rows = Rows {
        columns: vec!["count".into()],
        rows: vec![vec![Value::Integer(3)]],
        truncated: false,
    };
    assert_eq!(
        summary(&intent, &rows, &entities(), Language::En),
        "There are 3 books for author 7."
    );
    let none = Rows {
        rows: Vec::new(),
        ..rows
    };
    assert_eq!(
        summary(&intent, &none, &entities(), Language::En),
        "No books were found for author 7."
    );
}
