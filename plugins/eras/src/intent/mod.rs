//! Intent mode, for small models: the model never writes SQL. It fills a
//! structured query intent (which entity, which aggregate, which column)
//! whose choices the expert has already narrowed to what the job's text
//! and the cached schema support; the expert validates it and builds the
//! statement itself.
//!
//! 1. **Grounding.** The job's words are matched against the entity
//!    vocabulary of the config (`entities.<Table>.names`): every mention of
//!    an entity, and every *identifier* (an entity word followed by a
//!    number: `customer 1042`, `device #12`, `unit no. 7`). Aggregate cue
//!    words (`how many`, `latest`, `total` …) and column glosses
//!    (`entities.<Table>.columns`) narrow the rest.
//! 2. **Intent call.** One schema-constrained model call whose enums are
//!    the grounded candidates, so the model chooses among valid options
//!    only. With no grounding at all the model chooses among every entity.
//! 3. **Validation.** The intent is checked against the schema (the column
//!    exists and is numeric for `sum`/`average`…, every filter table joins
//!    to the target); an invalid intent is asked for once more with the
//!    problem in the prompt, then replaced by the grounded default. The
//!    `decided` event says which (`source: model | grounded`).
//! 4. **SQL.** Joins follow the key-column convention of the schema (a
//!    table referring to another carries a column named like the other's
//!    primary key); identifiers filter on the primary key; values are
//!    bound parameters, never spliced into the text.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use weft_protocol::{Interpreted, Job, UiActions, vocabulary};
use weft_sdk::{ChatMessage, CompletionRequest, Ctx, EventKind, Rows, Value};

use crate::catalog::{self, ColumnInfo, TableColumns};
use crate::config::{Config, Entity};
use crate::failure::Failure;
use crate::interpret;

mod query;
mod summary;

pub use query::{build_sql, join_path};
pub use summary::summary;

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

    fn name(self) -> &'static str {
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

    /// Words that ask for this aggregate.
    fn cues(self) -> &'static [&'static str] {
        match self {
            Self::Count => &["how many", "number of", "count"],
            Self::List => &[],
            Self::Latest => &["latest", "last", "most recent", "newest", "current"],
            Self::Sum => &["total", "sum", "altogether", "in all"],
            Self::Average => &["average", "mean"],
            Self::Min => &["lowest", "smallest", "minimum", "least", "oldest"],
            Self::Max => &["highest", "largest", "maximum", "biggest"],
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

/// What the job's text supports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grounding {
    /// Entity tables mentioned, in order of first mention.
    pub mentioned: Vec<String>,
    /// Identifiers, in order.
    pub identifiers: Vec<Identifier>,
    /// Aggregates whose cue words occur.
    pub aggregates: Vec<Aggregate>,
    /// `(table, column)` whose gloss occurs.
    pub columns: Vec<(String, String)>,
}

/// The model's answer, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// The table whose rows the question is about.
    pub target: String,
    /// What to compute.
    pub aggregate: Aggregate,
    /// The column for `latest`, `sum`, `average`, `min`, `max`.
    pub column: Option<String>,
    /// The filters (from the grounding).
    pub filters: Vec<Identifier>,
}

/// The raw answer of the intent call.
#[derive(Deserialize)]
struct Answer {
    target: String,
    aggregate: Aggregate,
    #[serde(default)]
    column: String,
}

/// Finds entity mentions, identifiers, aggregate cues and column glosses in
/// `text`.
pub fn ground(text: &str, entities: &BTreeMap<String, Entity>) -> Grounding {
    let words = vocabulary::words(text);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut grounding = Grounding::default();
    for (i, word) in words.iter().enumerate() {
        let Some(table) = entities
            .iter()
            .find(|(_, e)| e.names.iter().any(|n| vocabulary::is_word_for(word, n)))
            .map(|(t, _)| t.clone())
        else {
            continue;
        };
        if !grounding.mentioned.contains(&table) {
            grounding.mentioned.push(table.clone());
        }
        // `customer 1042`, `device #12`, `unit no 7`, `unit nr. 7`
        let mut next = i + 1;
        if matches!(words.get(next), Some(&("no" | "nr" | "number" | "id"))) {
            next += 1;
        }
        if let Some(value) = words
            .get(next)
            .and_then(|w| w.trim_start_matches('#').parse::<i64>().ok())
        {
            let id = Identifier { table, value };
            if !grounding.identifiers.contains(&id) {
                grounding.identifiers.push(id);
            }
        }
    }
    let padded = format!(" {} ", words.join(" "));
    for aggregate in Aggregate::ALL {
        if aggregate
            .cues()
            .iter()
            .any(|cue| padded.contains(&format!(" {cue} ")))
        {
            grounding.aggregates.push(aggregate);
        }
    }
    for (table, entity) in entities {
        for (column, gloss) in &entity.columns {
            if padded.contains(&format!(" {} ", gloss.to_lowercase())) {
                grounding.columns.push((table.clone(), column.clone()));
            }
        }
    }
    grounding
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

/// Narrows the choices to what `grounding` supports. The targets are the
/// mentioned entities the text does not identify (`how many *devices* does
/// customer 1042 have`: the customer is a filter); a question naming only
/// identified entities is about them (`where does customer 1042 live`).
pub fn candidates(
    grounding: &Grounding,
    entities: &BTreeMap<String, Entity>,
    schema: &[TableColumns],
) -> Candidates {
    let identified = |t: &&String| grounding.identifiers.iter().any(|i| &i.table == *t);
    let (named, free): (Vec<&String>, Vec<&String>) =
        grounding.mentioned.iter().partition(identified);
    let mut targets: Vec<String> = if free.is_empty() { named } else { free }
        .into_iter()
        .cloned()
        .collect();
    if targets.is_empty() {
        targets = entities.keys().cloned().collect();
    }
    let aggregates = if grounding.aggregates.is_empty() {
        vec![Aggregate::List]
    } else {
        grounding.aggregates.clone()
    };
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
    columns.dedup();
    Candidates {
        targets,
        aggregates,
        columns,
    }
}

/// A numeric column that is neither a key nor a reference.
fn is_measure(column: &ColumnInfo, schema: &[TableColumns]) -> bool {
    let numeric = ["INT", "REAL", "NUM", "FLOA", "DOUB", "DEC"]
        .iter()
        .any(|t| column.data_type.to_uppercase().contains(t));
    numeric && !column.primary_key && !is_reference(&column.name, schema)
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

/// Checks an answer against the schema and the grounding.
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
    Ok(Intent {
        target: target.to_owned(),
        aggregate,
        column,
        filters: grounding.identifiers.clone(),
    })
}

/// Grounds, asks, validates, builds and runs: the answer and its display.
pub(crate) fn answer(
    ctx: &Ctx<'_>,
    config: &Config,
    job: &Job,
    tables: &[String],
) -> Result<(Interpreted, UiActions), Failure> {
    let entities: BTreeMap<String, Entity> = config
        .entities
        .iter()
        .filter(|(t, _)| tables.contains(t))
        .map(|(t, e)| (t.clone(), e.clone()))
        .collect();
    if entities.is_empty() {
        return Err(Failure::Plan(
            "intent mode needs `entities` naming tables of the database".to_owned(),
        ));
    }
    let names: Vec<String> = entities.keys().cloned().collect();
    let schema = catalog::columns(ctx, &names, false)?;
    let grounding = ground(&job.job, &entities);
    let candidates = candidates(&grounding, &entities, &schema);

    let mut problem: Option<String> = None;
    let mut decided = None;
    for _ in 0..2 {
        let completion = ctx
            .llm()
            .complete(request(job, &candidates, &entities, problem.as_deref()))
            .map_err(|error| Failure::Llm {
                call: "intent",
                error,
            })?;
        let checked = serde_json::from_str::<Answer>(&completion.text)
            .map_err(|e| format!("the answer is not an intent ({e})"))
            .and_then(|a| {
                validate(
                    (&a.target, a.aggregate, &a.column),
                    &grounding,
                    &entities,
                    &schema,
                )
            });
        match checked {
            Ok(intent) => {
                decided = Some((intent, "model"));
                break;
            }
            Err(why) => {
                ctx.log().warn(format!("unusable intent: {why}"));
                problem = Some(why);
            }
        }
    }
    let (intent, source) = match decided {
        Some(decided) => decided,
        None => (
            grounded_default(&grounding, &candidates, &entities, &schema)?,
            "grounded",
        ),
    };
    crate::emit(
        ctx,
        EventKind::Decided,
        &json!({
            "target": intent.target,
            "aggregate": intent.aggregate.name(),
            "column": intent.column,
            "filters": intent.filters.iter().map(|f| json!({"table": f.table, "value": f.value})).collect::<Vec<_>>(),
            "source": source,
        }),
    );
    let (sql, params) = build_sql(&intent, &entities, &schema).map_err(Failure::Plan)?;
    crate::announce(
        ctx,
        "Querying the database…",
        "query_db",
        json!({"sql": sql, "params": params.iter().map(Value::to_json).collect::<Vec<_>>()}),
    );
    let rows = ctx.db().query(&sql, &params).map_err(|error| Failure::Db {
        tool: "query_db",
        error,
    })?;
    let mut result = interpret::interpret(&rows, 0, config.max_facts);
    result.summary = summary(&intent, &rows, &entities);
    let display = interpret::display(&job.job, &rows);
    Ok((result, display))
}

/// The intent from the best candidates, when the model's did not hold.
fn grounded_default(
    grounding: &Grounding,
    candidates: &Candidates,
    entities: &BTreeMap<String, Entity>,
    schema: &[TableColumns],
) -> Result<Intent, Failure> {
    let mut last = String::from("no candidate");
    for target in &candidates.targets {
        for &aggregate in &candidates.aggregates {
            let columns = candidates.columns.iter().map(String::as_str).chain([""]);
            for column in columns {
                match validate((target, aggregate, column), grounding, entities, schema) {
                    Ok(intent) => return Ok(intent),
                    Err(why) => last = why,
                }
            }
        }
    }
    Err(Failure::Plan(format!(
        "no valid intent for the question: {last}"
    )))
}
