//! From a validated intent to SQL: the join path between tables and the
//! statement with its parameters.

use std::fmt::Write as _;

use super::*;

/// The joins from `from` to `to`: each step `(table, column)` links the
/// previous table to `table` through the shared key `column`. Shortest
/// path, by breadth-first search over the key-column convention.
pub fn join_path(from: &str, to: &str, schema: &[TableColumns]) -> Option<Vec<(String, String)>> {
    let linked = |a: &TableColumns, b: &TableColumns| -> Option<String> {
        // a refers to b, or b refers to a, through b's / a's primary key.
        let refers = |x: &TableColumns, y: &TableColumns| {
            y.1.iter()
                .filter(|c| c.primary_key)
                .find(|pk| x.1.iter().any(|c| c.name == pk.name && !c.primary_key))
                .map(|pk| pk.name.clone())
        };
        refers(a, b).or_else(|| refers(b, a))
    };
    let mut previous: BTreeMap<&str, (&str, String)> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(table) = queue.pop_front() {
        if table == to {
            let mut path = Vec::new();
            let mut at = to;
            while at != from {
                let (before, column) = previous.get(at)?;
                path.push((at.to_owned(), column.clone()));
                at = before;
            }
            path.reverse();
            return Some(path);
        }
        let here = schema.iter().find(|(t, _)| t == table)?;
        for other in schema {
            if other.0 == from || previous.contains_key(other.0.as_str()) {
                continue;
            }
            if let Some(column) = linked(here, other) {
                previous.insert(&other.0, (table, column));
                queue.push_back(&other.0);
            }
        }
    }
    None
}

/// The statement for `intent`, with its parameters.
pub fn build_sql(
    intent: &Intent,
    entities: &BTreeMap<String, Entity>,
    schema: &[TableColumns],
) -> Result<(String, Vec<Value>), String> {
    let target = &intent.target;
    let mut aliases: Vec<String> = vec![target.clone()];
    let mut joins = String::new();
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    let mut join = |table: &str, joins: &mut String| -> Result<(), String> {
        let path = join_path(target, table, schema)
            .ok_or_else(|| format!("{target} cannot be linked to {table}"))?;
        let mut from = target.clone();
        for (table, column) in path {
            if !aliases.contains(&table) {
                let _ = write!(
                    joins,
                    " JOIN \"{table}\" ON \"{table}\".\"{column}\" = \"{from}\".\"{column}\""
                );
                aliases.push(table.clone());
            }
            from = table;
        }
        Ok(())
    };
    for filter in &intent.filters {
        match filter {
            Filter::Key(id) => {
                join(&id.table, &mut joins)?;
                let key = primary_key(&id.table, schema)
                    .ok_or_else(|| format!("{} has no primary key", id.table))?;
                conditions.push(format!("\"{}\".\"{key}\" = ?", id.table));
                params.push(Value::Integer(id.value));
            }
            Filter::Value {
                table,
                column,
                values,
            } => {
                join(table, &mut joins)?;
                let marks = vec!["?"; values.len()].join(", ");
                conditions.push(format!("\"{table}\".\"{column}\" IN ({marks})"));
                params.extend(values.iter().cloned().map(Value::Text));
            }
            Filter::Compare {
                table,
                column,
                bound,
                value,
                ..
            } => {
                join(table, &mut joins)?;
                conditions.push(format!("\"{table}\".\"{column}\" {} ?", bound.operator()));
                params.push(number(*value));
            }
            Filter::Count {
                table,
                bound,
                value,
                ..
            } => {
                conditions.push(format!(
                    "({}) {} ?",
                    count_of(table, target, schema)?,
                    bound.operator()
                ));
                params.push(number(*value));
            }
            Filter::Period {
                table,
                column,
                period,
            } => {
                join(table, &mut joins)?;
                if let Some(from) = &period.from {
                    conditions.push(format!("\"{table}\".\"{column}\" >= ?"));
                    params.push(Value::Text(from.clone()));
                }
                if let Some(to) = &period.to {
                    conditions.push(format!("\"{table}\".\"{column}\" < ?"));
                    params.push(Value::Text(to.clone()));
                }
            }
        }
    }
    let columns = |t: &str| -> String {
        let shown: Vec<String> = entities
            .get(t)
            .map(|e| e.show.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                schema
                    .iter()
                    .find(|(n, _)| n == t)
                    .map(|(_, c)| c.iter().map(|c| c.name.clone()).collect())
                    .unwrap_or_default()
            });
        shown
            .iter()
            .map(|c| format!("\"{t}\".\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let column = intent.column.as_deref().unwrap_or_default();
    let (select, tail) = match intent.aggregate {
        Aggregate::Count => (
            format!("COUNT(DISTINCT \"{target}\".rowid) AS count"),
            String::new(),
        ),
        Aggregate::List => (
            format!("DISTINCT {}", columns(target)),
            format!(" LIMIT {LIST_LIMIT}"),
        ),
        Aggregate::Latest => (
            columns(target),
            format!(" ORDER BY \"{target}\".\"{column}\" DESC LIMIT 1"),
        ),
        Aggregate::Sum => (
            format!("ROUND(SUM(\"{target}\".\"{column}\"), 2) AS total"),
            String::new(),
        ),
        Aggregate::Average => (
            format!("ROUND(AVG(\"{target}\".\"{column}\"), 2) AS average"),
            String::new(),
        ),
        Aggregate::Min => (
            format!("MIN(\"{target}\".\"{column}\") AS minimum"),
            String::new(),
        ),
        Aggregate::Max => (
            format!("MAX(\"{target}\".\"{column}\") AS maximum"),
            String::new(),
        ),
    };
    let mut sql = format!("SELECT {select} FROM \"{target}\"{joins}");
    if !conditions.is_empty() {
        let _ = write!(sql, " WHERE {}", conditions.join(" AND "));
    }
    sql.push_str(&tail);
    Ok((sql, params))
}

/// A number as a SQL value: whole numbers as integers.
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        Value::Integer(value as i64)
    } else {
        Value::Real(value)
    }
}

/// A correlated subquery counting the `counted` rows that belong to the
/// current `target` row, along the key columns from `counted` to `target`.
fn count_of(counted: &str, target: &str, schema: &[TableColumns]) -> Result<String, String> {
    let path = join_path(counted, target, schema)
        .ok_or_else(|| format!("{counted} cannot be linked to {target}"))?;
    let Some(((_, last_column), inner)) = path.split_last() else {
        return Err(format!("{counted} is the target itself"));
    };
    let mut sql = format!("SELECT COUNT(*) FROM \"{counted}\"");
    let mut from = counted.to_owned();
    for (table, column) in inner {
        let _ = write!(
            sql,
            " JOIN \"{table}\" ON \"{table}\".\"{column}\" = \"{from}\".\"{column}\""
        );
        from.clone_from(table);
    }
    let _ = write!(
        sql,
        " WHERE \"{from}\".\"{last_column}\" = \"{target}\".\"{last_column}\""
    );
    Ok(sql)
}

/// The primary-key column of `table`.
pub(super) fn primary_key(table: &str, schema: &[TableColumns]) -> Option<String> {
    schema
        .iter()
        .find(|(t, _)| t == table)?
        .1
        .iter()
        .find(|c| c.primary_key)
        .map(|c| c.name.clone())
}
