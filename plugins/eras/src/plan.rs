//! Model call 1, **plan**: which tables a job needs, and how to use them.

use serde::Deserialize;
use serde_json::{Value, json};
use weft_protocol::Job;
use weft_sdk::{ChatMessage, CompletionRequest, Ctx};

use crate::failure::Failure;

/// The domain, shared by both prompts: the tables and how they relate.
pub const DOMAIN: &str = "The database is a German heating-cost billing system (HeizKV). \
Customers (Kunden) own properties (Objekte); a property has usage units (Nutzeinheiten); \
a unit has metering devices (Geraete); a device has readings (Ablesungen). Table and column \
names are German.";

/// The system prompt of the plan call. Its first words are stable, so
/// scripted models in engine tests can match on them.
pub const PLAN_SYSTEM: &str = "You plan a read-only database lookup for a job. \
Choose the tables the job needs: the table holding the answer and every table needed to \
join to it from what the job names (a customer number, an address …). approach: one \
sentence on how to find the answer. Answer with a JSON object only.";

/// A table list and one sentence.
const MAX_TOKENS: u32 = 150;

/// The plan answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Plan {
    /// The tables to describe and query, in the order the model gave them.
    pub tables: Vec<String>,
    /// How to find the answer, in a sentence.
    pub approach: String,
}

/// The JSON Schema of the plan answer: `tables` are names from `tables`.
pub fn schema(tables: &[String]) -> Value {
    json!({
        "type": "object",
        "properties": {
            "tables": {
                "type": "array",
                "items": {"type": "string", "enum": tables},
                "minItems": 1
            },
            "approach": {"type": "string"}
        },
        "required": ["tables", "approach"],
        "additionalProperties": false
    })
}

/// The schema-constrained plan request for `job` over `tables`.
pub fn request(job: &Job, tables: &[String]) -> CompletionRequest {
    let prompt = format!(
        "{DOMAIN}\nTables: {}\n\nJob: {}",
        tables.join(", "),
        job.job
    );
    CompletionRequest::new([ChatMessage::system(PLAN_SYSTEM), ChatMessage::user(prompt)])
        .max_tokens(MAX_TOKENS)
        .json_schema(&schema(tables))
}

/// Ask the model for a plan and check it: tables it names that do not
/// exist are dropped with a warning, repeats are dropped, and a plan left
/// with no table is a [`Failure::Plan`].
pub(crate) fn make(ctx: &Ctx<'_>, job: &Job, tables: &[String]) -> Result<Plan, Failure> {
    let completion = ctx
        .llm()
        .complete(request(job, tables))
        .map_err(|error| Failure::Llm {
            call: "plan",
            error,
        })?;
    let answer: Plan = serde_json::from_str(&completion.text).map_err(|error| {
        let start: String = completion.text.chars().take(80).collect();
        Failure::Plan(format!("the answer is not a plan ({error}): {start:?}"))
    })?;
    let mut planned: Vec<String> = Vec::with_capacity(answer.tables.len());
    for table in answer.tables {
        if !tables.contains(&table) {
            ctx.log().warn(format!(
                "the plan names {table:?}, which is not a table; dropping it"
            ));
        } else if !planned.contains(&table) {
            planned.push(table);
        }
    }
    if planned.is_empty() {
        return Err(Failure::Plan("the plan names no known table".to_owned()));
    }
    Ok(Plan {
        tables: planned,
        approach: answer.approach,
    })
}
