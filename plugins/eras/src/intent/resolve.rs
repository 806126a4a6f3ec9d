//! From the grounding to the filters of one target: each constraint the
//! question names becomes a [`Filter`] on a table joined to the target, or
//! is reported as unapplied.

use super::*;

/// One condition of the statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `table`'s primary key equals the identifier's number.
    Key(Identifier),
    /// `table.column` is one of `values` (text values of the database).
    Value {
        /// The table holding the column.
        table: String,
        /// The text column.
        column: String,
        /// The values, as stored.
        values: Vec<String>,
    },
    /// `table.column` compared with a number.
    Compare {
        /// The table holding the column.
        table: String,
        /// The number column.
        column: String,
        /// The comparison.
        bound: Bound,
        /// The number.
        value: f64,
        /// The question's words for it.
        phrase: String,
    },
    /// The number of related `table` rows per target row, compared.
    Count {
        /// The counted table.
        table: String,
        /// The comparison.
        bound: Bound,
        /// The number.
        value: f64,
        /// The question's words for it.
        phrase: String,
    },
    /// `table.column` (a date) within a period.
    Period {
        /// The table holding the column.
        table: String,
        /// The date column.
        column: String,
        /// The period.
        period: Period,
    },
}

impl Filter {
    /// The filter for the `decided` event.
    pub fn to_json(&self) -> Json {
        match self {
            Self::Key(id) => json!({"table": id.table, "value": id.value}),
            Self::Value {
                table,
                column,
                values,
            } => json!({"table": table, "column": column, "values": values}),
            Self::Compare {
                table,
                column,
                bound,
                value,
                ..
            } => json!({"table": table, "column": column, "op": bound.operator(), "value": value}),
            Self::Count {
                table,
                bound,
                value,
                ..
            } => json!({"count_of": table, "op": bound.operator(), "value": value}),
            Self::Period {
                table,
                column,
                period,
            } => json!({"table": table, "column": column, "from": period.from, "to": period.to}),
        }
    }
}

/// The filters of `grounding` for `target`, and the constraints that no
/// filter can express (normalised words):
///
/// - identifiers filter on their table's primary key;
/// - a value filters on the column holding it: the target's own column
///   first, then a glossed column, then the table nearest the target; a
///   value found in no table joined to the target is unapplied;
/// - a comparison filters on its glossed number column, or counts the
///   related rows it names (`more than 2 properties`); one with neither
///   is unapplied;
/// - a period filters on the target's date column (`date`, else
///   `latest_by`); a target without one leaves it unapplied;
/// - words after a marker that matched nothing are unapplied.
pub fn resolve(
    target: &str,
    grounding: &Grounding,
    entities: &BTreeMap<String, Entity>,
    schema: &[TableColumns],
) -> (Vec<Filter>, Vec<String>) {
    let mut filters: Vec<Filter> = grounding
        .identifiers
        .iter()
        .cloned()
        .map(Filter::Key)
        .collect();
    let mut unapplied: Vec<String> = Vec::new();
    let distance = |table: &str| join_path(target, table, schema).map(|p| p.len());

    for value in &grounding.values {
        let best = value
            .places
            .iter()
            .filter_map(|place| distance(&place.0).map(|d| (place, d)))
            .min_by_key(|(place, d)| (!grounding.columns.contains(place), *d));
        match best {
            Some(((table, column), _)) => {
                let existing = filters.iter_mut().find_map(|f| match f {
                    Filter::Value {
                        table: t,
                        column: c,
                        values,
                    } if t == table && c == column => Some(values),
                    _ => None,
                });
                match existing {
                    Some(values) => {
                        if !values.contains(&value.value) {
                            values.push(value.value.clone());
                        }
                    }
                    None => filters.push(Filter::Value {
                        table: table.clone(),
                        column: column.clone(),
                        values: vec![value.value.clone()],
                    }),
                }
            }
            None => unapplied.push(text::normalise(&value.value)),
        }
    }

    for comparison in &grounding.comparisons {
        let numeric = |table: &str, column: &str| {
            schema
                .iter()
                .find(|(t, _)| t == table)
                .and_then(|(_, cols)| cols.iter().find(|c| c.name == column))
                .is_some_and(is_numeric)
        };
        match (&comparison.column, &comparison.counted) {
            (Some((table, column)), _) if distance(table).is_some() && numeric(table, column) => {
                filters.push(Filter::Compare {
                    table: table.clone(),
                    column: column.clone(),
                    bound: comparison.bound,
                    value: comparison.value,
                    phrase: comparison.phrase.clone(),
                });
            }
            (_, Some(counted)) if counted != target && distance(counted).is_some() => {
                filters.push(Filter::Count {
                    table: counted.clone(),
                    bound: comparison.bound,
                    value: comparison.value,
                    phrase: comparison.phrase.clone(),
                });
            }
            _ => unapplied.push(comparison.phrase.clone()),
        }
    }

    if let Some(period) = &grounding.period {
        let date_of = |table: &str| {
            let entity = entities.get(table)?;
            let column = entity.date.clone().or_else(|| entity.latest_by.clone())?;
            let exists = schema
                .iter()
                .any(|(t, cols)| t == table && cols.iter().any(|c| c.name == column));
            exists.then_some(column)
        };
        // Only the target's own date: another table's date would answer
        // a different question (`properties built before 1950` is not
        // `properties of customers since before 1950`).
        match date_of(target).map(|c| (target.to_owned(), c)) {
            Some((table, column)) => filters.push(Filter::Period {
                table,
                column,
                period: period.clone(),
            }),
            None => unapplied.push(period.phrase.clone()),
        }
    }

    unapplied.extend(grounding.unmatched.iter().cloned());
    (filters, unapplied)
}
