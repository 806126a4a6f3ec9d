//! The sentence that says what a query found.

use super::*;

/// A sentence saying what was found, in the vocabulary of the config.
pub fn summary(intent: &Intent, rows: &Rows, entities: &BTreeMap<String, Entity>) -> String {
    let noun = |t: &str, plural: bool| {
        let name = entities
            .get(t)
            .and_then(|e| e.names.first().cloned())
            .unwrap_or_else(|| t.to_owned());
        if plural { plural_of(&name) } else { name }
    };
    let of = intent
        .filters
        .iter()
        .map(|f| format!("{} {}", noun(&f.table, false), f.value))
        .collect::<Vec<_>>()
        .join(" and ");
    let scope = if of.is_empty() {
        String::new()
    } else {
        format!(" for {of}")
    };
    let first = rows.rows.first().and_then(|r| r.first());
    let target = &intent.target;
    match (intent.aggregate, first) {
        (_, None) => format!("No {} were found{scope}.", noun(target, true)),
        (Aggregate::Count, Some(v)) => {
            let n = render(v);
            let plural = n != "1";
            format!(
                "There {} {n} {}{scope}.",
                if plural { "are" } else { "is" },
                noun(target, plural)
            )
        }
        (Aggregate::List, Some(_)) => {
            let n = rows.rows.len();
            format!(
                "{n} {} found{scope}.",
                if n == 1 {
                    format!("{} was", noun(target, false))
                } else {
                    format!("{} were", noun(target, true))
                }
            )
        }
        (Aggregate::Latest, Some(_)) => {
            format!(
                "The latest {}{scope}: {}.",
                noun(target, false),
                facts_of(rows, 0)
            )
        }
        (aggregate, Some(v)) => format!(
            "The {} of {} over the {}{scope} is {}.",
            aggregate.name(),
            intent.column.as_deref().unwrap_or_default(),
            noun(target, true),
            render(v)
        ),
    }
}

fn plural_of(name: &str) -> String {
    if let Some(stem) = name.strip_suffix('y') {
        format!("{stem}ies")
    } else if name.ends_with('s') {
        format!("{name}es")
    } else {
        format!("{name}s")
    }
}

fn facts_of(rows: &Rows, row: usize) -> String {
    rows.columns
        .iter()
        .zip(&rows.rows[row])
        .map(|(c, v)| format!("{c} {}", render(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A cell as [`interpret`] renders it, but SQL NULL reads "none" in a
/// sentence.
fn render(value: &Value) -> String {
    match value {
        Value::Null => "none".to_owned(),
        value => interpret::render(value),
    }
}
