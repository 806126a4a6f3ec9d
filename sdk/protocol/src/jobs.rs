//! Work handed to a stateless expert, and its report when it fails.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The body of a `job`: a self-contained task for a stateless expert.
///
/// Experts keep no conversation state, so `job` must carry every fact the
/// expert needs (the PA folds in what the memorizer knows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The task, self-contained.
    pub job: String,
    /// The user's message, verbatim.
    pub request: String,
    /// Language of the final answer (ISO 639-1).
    pub language: String,
    /// How the final answer should be phrased.
    pub response_hint: String,
    /// 1 for the first try, 2 for the PA's reformulated retry.
    pub attempt: u32,
}

impl Job {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "job": {"type": "string", "minLength": 1},
                "request": {"type": "string"},
                "language": {"type": "string"},
                "response_hint": {"type": "string"},
                // Bounded like the field: a larger number would pass the
                // host's check and then fail to parse in the expert.
                "attempt": {"type": "integer", "minimum": 1, "maximum": u32::MAX}
            },
            "required": ["job", "request", "language", "response_hint", "attempt"],
            "additionalProperties": false
        })
    }
}

/// The body of `expert_failed`: the job that failed and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpertFailed {
    /// The job as the expert received it.
    pub job: Job,
    /// What went wrong, for the PA's reformulation prompt.
    pub error: String,
}

impl ExpertFailed {
    /// The JSON Schema of the body.
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {"job": Job::schema(), "error": {"type": "string"}},
            "required": ["job", "error"],
            "additionalProperties": false
        })
    }
}
