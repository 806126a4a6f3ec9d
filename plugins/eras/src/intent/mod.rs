//! Intent mode, for small models: the model never writes SQL. It fills a
//! structured query intent (which entity, which aggregate, which column)
//! whose choices the expert has already narrowed to what the job's text
//! and the cached schema support; the expert validates it, adds the
//! filters the text names and builds the statement itself.
//!
//! 1. **Grounding** ([`ground()`]). The job's words, normalised ([`text`]:
//!    case, umlauts, plurals in English and German), are matched against
//!    the config: entity names and identifiers (`customer 1042`,
//!    `Kunde Nr. 7`), the cue words of every language in `cues`
//!    (aggregates, relations, comparisons, periods), column glosses, and
//!    the distinct values of the schema's text columns ([`values`]).
//! 2. **Intent call.** One schema-constrained model call whose enums are
//!    the grounded candidates, so the model chooses among valid options
//!    only; when the grounding leaves exactly one valid intent there is no
//!    call at all. With no grounding the model chooses among every entity.
//! 3. **Validation.** The intent is checked against the schema (the column
//!    exists and is numeric for `sum`/`average`…, every identified table
//!    joins to the target); an invalid intent is asked for once more with
//!    the problem in the prompt, then replaced by the grounded default. The
//!    `decided` event says which (`source: model | grounded`).
//! 4. **Filters** ([`resolve`]). Identifiers filter on the primary key,
//!    values on their column (the target's own first, else the nearest
//!    joined table's), comparisons on their glossed column or on a count
//!    of related rows (`more than 2 properties`), periods on the target's
//!    own date column. A constraint no filter can express is *unapplied*: the
//!    expert then runs no query and the answer says what it could not
//!    apply, instead of stating an unfiltered figure as the filtered one.
//! 5. **SQL.** Joins follow the key-column convention of the schema (a
//!    table referring to another carries a column named like the other's
//!    primary key); values are bound parameters, never spliced into the
//!    text. An empty answer for an identified record that does not exist
//!    says so ("there is no customer 99999"), not "0 devices".
//! 6. **Answer** ([`summary()`]) in the question's language (`en` and
//!    `de` templates; others fall back to English).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use weft_protocol::{Interpreted, Job, UiActions};
use weft_sdk::{ChatMessage, CompletionRequest, Ctx, EventKind, Rows, Value};

use crate::catalog::{self, ColumnInfo, TableColumns};
use crate::config::{Config, Entity};
use crate::cues::Cues;
use crate::failure::Failure;
use crate::interpret;

mod ground;
mod query;
mod resolve;
mod summary;
pub mod text;
pub mod values;

pub use ground::{Bound, Comparison, Grounding, Period, ValueMatch, ground};
pub use query::{build_sql, join_path};
pub use resolve::{Filter, resolve};
pub use summary::{Language, summary, unapplied_summary};

/// The system prompt of the intent call. Its first words are stable, so
/// scripted models in engine tests can match on them.
pub const INTENT_SYSTEM: &str = "You turn a question about a database into a query intent. \
target: the kind of record the question asks about. aggregate: count for how many, list to \
show records, latest for the most recent one, sum, average, min or max of a column. column: \
the column to sum, average, compare or order by, or \"\" when none is needed. Answer with a \
JSON object only.";

/// The intent is three short enum values.
const MAX_TOKENS: u32 = 60;

/// Rows a `list` returns at most.
const LIST_LIMIT: u32 = 50;

/// What a question asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// How many target rows match.
    Count,
    /// The matching target rows (the entity's `show` columns).
    List,
    /// The matching row with the highest `column` (the entity's `latest_by`).
    Latest,
    /// Sum of `column`.
    Sum,
    /// Average of `column`.
    Average,
    /// Smallest `column`.
    Min,
    /// Largest `column`.
    Max,
}

impl Aggregate {
    const ALL: [Aggregate; 7] = [
        Self::Count,
        Self::List,
        Self::Latest,
        Self::Sum,
        Self::Average,
        Self::Min,
        Self::Max,
    ];

    /// The name in the intent schema.
    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::List => "list",
            Self::Latest => "latest",
            Self::Sum => "sum",
            Self::Average => "average",
            Self::Min => "min",
            Self::Max => "max",
        }
    }

    /// The cue words of this aggregate in `cues`.
    fn cues(self, cues: &Cues) -> &Vec<String> {
        match self {
            Self::Count => &cues.count,
            Self::List => &cues.list,
            Self::Latest => &cues.latest,
            Self::Sum => &cues.sum,
            Self::Average => &cues.average,
            Self::Min => &cues.min,
            Self::Max => &cues.max,
        }
    }
}

/// A filter the job's text names: `table`'s primary key equals `value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identifier {
    /// The entity's table.
    pub table: String,
    /// The number as written.
    pub value: i64,
}

/// The model's answer, checked, with the filters the text names.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    /// The table whose rows the question is about.
    pub target: String,
    /// What to compute.
    pub aggregate: Aggregate,
    /// The column for `latest`, `sum`, `average`, `min`, `max`.
    pub column: Option<String>,
    /// The filters (from the grounding, see [`resolve`]).
    pub filters: Vec<Filter>,
    /// Constraints the question names that no filter expresses (its words,
    /// normalised); when there are any, no figure is given.
    pub unapplied: Vec<String>,
}

/// The raw answer of the intent call.
#[derive(Deserialize)]
struct Answer {
    target: String,
    aggregate: Aggregate,
    #[serde(default)]
    column: String,
}

/// The candidates offered to the model, best first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidates {
    /// Target tables.
    pub targets: Vec<String>,
    /// Aggregates.
    pub aggregates: Vec<Aggregate>,
    /// Columns for aggregates that need one (all targets' candidates).
    pub columns: Vec<String>,
}

/// The tables `table` refers to: each has as primary key a column `table`
/// carries as a plain column.
fn parents(table: &str, schema: &[TableColumns]) -> Vec<String> {
    let Some((_, columns)) = schema.iter().find(|(t, _)| t == table) else {
        return Vec::new();
    };
    schema
        .iter()
        .filter(|(other, other_columns)| {
            other != table
                && other_columns.iter().any(|pk| {
                    pk.primary_key && columns.iter().any(|c| c.name == pk.name && !c.primary_key)
                })
        })
        .map(|(other, _)| other.clone())
        .collect()
}

/// Narrows the choices to what `grounding` supports. The targets are the
/// mentioned entities the text does not identify (`how many *devices* does
/// customer 1042 have`: the customer is a filter) and does not count in a
/// comparison (`customers with more than 2 *properties*`); a question
/// naming only identified entities is about them (`where does customer
/// 1042 live`), unless it asks for their owner (`who owns property 7`:
/// the entity marked `owner`) or what they belong to (`which … does unit
/// 7 belong to`: the table the identified one refers to). With no entity
/// named, the tables of the values named are the targets (`how many
/// Wärmezähler`), else every entity.
pub fn candidates(
    grounding: &Grounding,
    entities: &BTreeMap<String, Entity>,
    schema: &[TableColumns],
) -> Candidates {
    let identified = |t: &&String| grounding.identifiers.iter().any(|i| &i.table == *t);
    let counted = |t: &&String| {
        grounding
            .comparisons
            .iter()
            .any(|c| c.counted.as_ref() == Some(*t))
    };
    let (named, free): (Vec<&String>, Vec<&String>) = grounding
        .mentioned
        .iter()
        .filter(|t| !counted(t))
        .partition(identified);
    let mut targets: Vec<String> = free.into_iter().cloned().collect();
    if targets.is_empty() && !named.is_empty() && (grounding.owner || grounding.relation) {
        let owners: Vec<String> = entities
            .iter()
            .filter(|(t, e)| e.owner && !named.contains(t))
            .map(|(t, _)| t.clone())
            .collect();
        for table in &named {
            let related = if grounding.owner && !owners.is_empty() {
                owners.clone()
            } else {
                parents(table, schema)
            };
            for other in related {
                if entities.contains_key(&other) && !targets.contains(&other) {
                    targets.push(other);
                }
            }
        }
    }
    if targets.is_empty() {
        targets = named.into_iter().cloned().collect();
    }
    if targets.is_empty() {
        for value in &grounding.values {
            for (table, _) in &value.places {
                if entities.contains_key(table) && !targets.contains(table) {
                    targets.push(table.clone());
                }
            }
        }
    }
    if targets.is_empty() {
        targets = entities.keys().cloned().collect();
    }
    // `list` is the weakest cue (`show`, `which`): another one wins
    // (`show the latest reading`).
    let mut aggregates: Vec<Aggregate> = grounding
        .aggregates
        .iter()
        .copied()
        .filter(|a| *a != Aggregate::List)
        .collect();
    if aggregates.is_empty() {
        aggregates.push(Aggregate::List);
    }
    let mut columns: Vec<String> = grounding
        .columns
        .iter()
        .filter(|(t, _)| targets.contains(t))
        .map(|(_, c)| c.clone())
        .collect();
    if columns.is_empty() {
        for (table, cols) in schema.iter().filter(|(t, _)| targets.contains(t)) {
            let entity = entities.get(table);
            if let Some(by) = entity.and_then(|e| e.latest_by.clone()) {
                columns.push(by);
            }
            columns.extend(
                cols.iter()
                    .filter(|c| is_measure(c, schema))
                    .map(|c| c.name.clone()),
            );
        }
    }
    let mut seen = Vec::new();
    columns.retain(|c| {
        let new = !seen.contains(c);
        seen.push(c.clone());
        new
    });
    Candidates {
        targets,
        aggregates,
        columns,
    }
}

/// Whether a declared SQL type holds numbers.
fn is_numeric(column: &ColumnInfo) -> bool {
    ["INT", "REAL", "NUM", "FLOA", "DOUB", "DEC"]
        .iter()
        .any(|t| column.data_type.to_uppercase().contains(t))
}

/// A numeric column that is neither a key nor a reference.
fn is_measure(column: &ColumnInfo, schema: &[TableColumns]) -> bool {
    is_numeric(column) && !column.primary_key && !is_reference(&column.name, schema)
}

/// Whether `column` is some table's primary-key name (so a reference).
fn is_reference(column: &str, schema: &[TableColumns]) -> bool {
    schema
        .iter()
        .any(|(_, cols)| cols.iter().any(|c| c.primary_key && c.name == column))
}

/// The JSON Schema of the intent answer over `candidates`.
pub fn schema(candidates: &Candidates) -> Json {
    let aggregates: Vec<&str> = candidates.aggregates.iter().map(|a| a.name()).collect();
    let mut columns = candidates.columns.clone();
    columns.push(String::new());
    json!({
        "type": "object",
        "properties": {
            "target": {"type": "string", "enum": candidates.targets},
            "aggregate": {"type": "string", "enum": aggregates},
            "column": {"type": "string", "enum": columns}
        },
        "required": ["target", "aggregate", "column"],
        "additionalProperties": false
    })
}

/// The schema-constrained intent request for `job`.
pub fn request(
    job: &Job,
    candidates: &Candidates,
    entities: &BTreeMap<String, Entity>,
    problem: Option<&str>,
) -> CompletionRequest {
    let mut prompt = String::from("Records:\n");
    for (table, entity) in entities {
        let _ = writeln!(prompt, "- {table}: {}", entity.names.join(", "));
    }
    let _ = write!(prompt, "\nQuestion: {}", job.job);
    if let Some(problem) = problem {
        let _ = write!(prompt, "\n\nYour last answer was wrong: {problem}");
    }
    CompletionRequest::new([
        ChatMessage::system(INTENT_SYSTEM),
        ChatMessage::user(prompt),
    ])
    .max_tokens(MAX_TOKENS)
    .json_schema(&schema(candidates))
}

/// Checks an answer against the schema and the grounding, and resolves
/// the grounding's filters for its target.
pub fn validate(
    answer: (&str, Aggregate, &str),
    grounding: &Grounding,
    entities: &BTreeMap<String, Entity>,
    schema: &[TableColumns],
) -> Result<Intent, String> {
    let (target, aggregate, column) = answer;
    let Some((_, target_columns)) = schema.iter().find(|(t, _)| t == target) else {
        return Err(format!("{target:?} is not one of the records"));
    };
    let column = match aggregate {
        Aggregate::Count | Aggregate::List => None,
        Aggregate::Latest => {
            let by = if column.is_empty() {
                entities.get(target).and_then(|e| e.latest_by.clone())
            } else {
                Some(column.to_owned())
            };
            match by {
                Some(by) if target_columns.iter().any(|c| c.name == by) => Some(by),
                Some(by) => return Err(format!("{target} has no column {by:?}")),
                None => return Err(format!("latest needs a column of {target} to order by")),
            }
        }
        _ => match target_columns.iter().find(|c| c.name == column) {
            Some(c) if is_measure(c, schema) => Some(column.to_owned()),
            Some(_) => {
                return Err(format!(
                    "{column} is not a number column, so it has no {}",
                    aggregate.name()
                ));
            }
            None => {
                return Err(format!(
                    "{} needs a number column of {target}",
                    aggregate.name()
                ));
            }
        },
    };
    for id in &grounding.identifiers {
        if join_path(target, &id.table, schema).is_none() {
            return Err(format!("{target} cannot be linked to {}", id.table));
        }
    }
    let (filters, unapplied) = resolve(target, grounding, entities, schema);
    Ok(Intent {
        target: target.to_owned(),
        aggregate,
        column,
        filters,
        unapplied,
    })
}

/// Every valid intent the candidates allow, best first, without repeats.
fn valid_intents(
    grounding: &Grounding,
    candidates: &Candidates,
    entities: &BTreeMap<String, Entity>,
    schema: &[TableColumns],
) -> (Vec<Intent>, String) {
    let mut valid: Vec<Intent> = Vec::new();
    let mut last = String::from("no candidate");
    let glossed = !grounding.columns.is_empty();
    for target in &candidates.targets {
        for &aggregate in &candidates.aggregates {
            // `latest` orders by the entity's `latest_by` unless the
            // question names a column.
            let columns: Vec<&str> = if aggregate == Aggregate::Latest && !glossed {
                vec![""]
            } else {
                candidates
                    .columns
                    .iter()
                    .map(String::as_str)
                    .chain([""])
                    .collect()
            };
            for column in columns {
                match validate((target, aggregate, column), grounding, entities, schema) {
                    Ok(intent) => {
                        if !valid.contains(&intent) {
                            valid.push(intent);
                        }
                    }
                    Err(why) => last = why,
                }
            }
        }
    }
    (valid, last)
}

/// The language of the answer: the job's, when the question's cue words
/// agree or name none; else the language whose cue words the question
/// uses most; else the config's.
fn answer_language(job: &Job, grounding: &Grounding, config: &Config) -> Language {
    let asked = job.language.trim().to_lowercase();
    let code = match grounding.languages.first() {
        Some(top) if !grounding.languages.contains(&asked) => top.clone(),
        _ if !asked.is_empty() && asked != "unknown" => asked,
        _ => config.language.clone(),
    };
    Language::from_code(&code)
}

/// The entities of the config that name tables of the database.
fn usable_entities(config: &Config, tables: &[String]) -> BTreeMap<String, Entity> {
    config
        .entities
        .iter()
        .filter(|(t, _)| tables.contains(t))
        .map(|(t, e)| (t.clone(), e.clone()))
        .collect()
}

/// Grounds, asks, validates, builds and runs: the answer and its display.
pub(crate) fn answer(
    ctx: &Ctx<'_>,
    config: &Config,
    job: &Job,
    tables: &[String],
) -> Result<(Interpreted, UiActions), Failure> {
    let entities = usable_entities(config, tables);
    if entities.is_empty() {
        return Err(Failure::Plan(
            "intent mode needs `entities` naming tables of the database".to_owned(),
        ));
    }
    let names: Vec<String> = entities.keys().cloned().collect();
    let schema = catalog::columns(ctx, &names, false)?;
    let indexed = values::indexed_columns(&entities, &schema);
    let index = values::load(ctx, &indexed, &config.values)?;
    let grounding = ground(&job.job, &entities, &config.cues, &index);
    let candidates = candidates(&grounding, &entities, &schema);
    let language = answer_language(job, &grounding, config);

    let (valid, last) = valid_intents(&grounding, &candidates, &entities, &schema);
    let (intent, source) = match valid.as_slice() {
        [] => {
            return Err(Failure::Plan(format!(
                "no valid intent for the question: {last}"
            )));
        }
        [only] => (only.clone(), "grounded"),
        _ => ask(
            ctx,
            job,
            &grounding,
            &candidates,
            &entities,
            &schema,
            &valid,
        )?,
    };
    crate::emit(
        ctx,
        EventKind::Decided,
        &json!({
            "target": intent.target,
            "aggregate": intent.aggregate.name(),
            "column": intent.column,
            "filters": intent.filters.iter().map(Filter::to_json).collect::<Vec<_>>(),
            "unapplied": intent.unapplied,
            "language": language.code(),
            "source": source,
        }),
    );
    let empty = Rows::new(Vec::<String>::new(), Vec::<Vec<Value>>::new());
    if !intent.unapplied.is_empty() {
        let result = Interpreted {
            summary: unapplied_summary(&intent, &entities, language),
            row_count: None,
            key_facts: Vec::new(),
            confidence: 0.1,
        };
        return Ok((result, interpret::display(&job.job, &empty)));
    }
    let (sql, params) = build_sql(&intent, &entities, &schema).map_err(Failure::Plan)?;
    let rows = run(ctx, &sql, &params)?;
    if found_nothing(&rows)
        && let Some(missing) = missing_identifier(ctx, &intent, &schema)?
    {
        let result = Interpreted {
            summary: summary::missing(&missing, &entities, language),
            row_count: Some(0),
            key_facts: Vec::new(),
            confidence: 0.9,
        };
        return Ok((result, interpret::display(&job.job, &empty)));
    }
    let mut result = interpret::interpret(&rows, 0, config.max_facts);
    result.summary = summary(&intent, &rows, &entities, language);
    let display = interpret::display(&job.job, &rows);
    Ok((result, display))
}

/// The intent call, with one retry; the first valid intent when the model's
/// answers do not hold.
fn ask(
    ctx: &Ctx<'_>,
    job: &Job,
    grounding: &Grounding,
    candidates: &Candidates,
    entities: &BTreeMap<String, Entity>,
    schema: &[TableColumns],
    valid: &[Intent],
) -> Result<(Intent, &'static str), Failure> {
    let mut problem: Option<String> = None;
    for _ in 0..2 {
        let completion = ctx
            .llm()
            .complete(request(job, candidates, entities, problem.as_deref()))
            .map_err(|error| Failure::Llm {
                call: "intent",
                error,
            })?;
        let checked = serde_json::from_str::<Answer>(&completion.text)
            .map_err(|e| format!("the answer is not an intent ({e})"))
            .and_then(|a| {
                if candidates.targets.contains(&a.target)
                    && candidates.aggregates.contains(&a.aggregate)
                {
                    Ok(a)
                } else {
                    Err(format!(
                        "{}/{} is not one of the options",
                        a.target,
                        a.aggregate.name()
                    ))
                }
            })
            .and_then(|a| {
                validate(
                    (&a.target, a.aggregate, &a.column),
                    grounding,
                    entities,
                    schema,
                )
            });
        match checked {
            Ok(intent) => return Ok((intent, "model")),
            Err(why) => {
                ctx.log().warn(format!("unusable intent: {why}"));
                problem = Some(why);
            }
        }
    }
    let first = valid
        .first()
        .cloned()
        .ok_or_else(|| Failure::Plan("no valid intent for the question".to_owned()))?;
    Ok((first, "grounded"))
}

/// Announce and run one statement.
fn run(ctx: &Ctx<'_>, sql: &str, params: &[Value]) -> Result<Rows, Failure> {
    crate::announce(
        ctx,
        "Querying the database…",
        "query_db",
        json!({"sql": sql, "params": params.iter().map(Value::to_json).collect::<Vec<_>>()}),
    );
    ctx.db().query(sql, params).map_err(|error| Failure::Db {
        tool: "query_db",
        error,
    })
}

/// Whether `rows` say "nothing": no row, or one row whose first value is
/// 0 or NULL (a count of 0, the sum over no rows).
fn found_nothing(rows: &Rows) -> bool {
    match rows.rows.first().and_then(|r| r.first()) {
        None => true,
        Some(Value::Null | Value::Integer(0)) => rows.rows.len() == 1,
        Some(Value::Real(r)) => *r == 0.0 && rows.rows.len() == 1,
        Some(_) => false,
    }
}

/// The first identifier of `intent` naming a row that does not exist.
fn missing_identifier(
    ctx: &Ctx<'_>,
    intent: &Intent,
    schema: &[TableColumns],
) -> Result<Option<Identifier>, Failure> {
    for filter in &intent.filters {
        let Filter::Key(id) = filter else {
            continue;
        };
        let Some(key) = query::primary_key(&id.table, schema) else {
            continue;
        };
        let sql = format!(
            "SELECT COUNT(*) AS count FROM \"{}\" WHERE \"{key}\" = ?",
            id.table
        );
        let rows = run(ctx, &sql, &[Value::Integer(id.value)])?;
        if matches!(
            rows.rows.first().and_then(|r| r.first()),
            Some(Value::Integer(0))
        ) {
            return Ok(Some(id.clone()));
        }
    }
    Ok(None)
}
