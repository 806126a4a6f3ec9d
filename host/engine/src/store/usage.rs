//! Usage as the store reads it back: the aggregates the ledger is rebuilt
//! from, and usage over time for charts.

use serde::{Deserialize, Serialize};

/// Invocation totals the store keeps per project, thread and node (what
/// the ledger is rebuilt from at start-up, pruned threads included).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationTotals {
    /// Project.
    pub project: String,
    /// Thread (`None`: threads pruned since).
    pub thread: Option<String>,
    /// Node.
    pub node: String,
    /// Invocations.
    pub invocations: u64,
    /// Of which failed.
    pub failed: u64,
    /// Fuel consumed.
    pub fuel: u64,
    /// Wall time in microseconds.
    pub duration_us: u64,
}

/// The usage history the ledger is rebuilt from: aggregates computed by
/// the store, never every event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageHistory {
    /// `llm` call totals per project, node and model (since `since_ms`;
    /// the events are kept through pruning: they are what was paid).
    pub calls: Vec<crate::metering::ledger::CallTotals>,
    /// Priced spend per project: all time, and per UTC day for the last
    /// [`SPEND_DAYS`](crate::metering::ledger::SPEND_DAYS) days of usage.
    pub spend: Vec<crate::metering::ledger::DaySpend>,
    /// Invocation totals per project and node (since `since_ms`).
    pub invocations: Vec<InvocationTotals>,
    /// When the reported totals start: the last usage reset (0: never).
    pub since_ms: u64,
}

/// What a usage series is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesKey {
    /// The thread's project.
    Project,
    /// The calling node.
    Node,
    /// The model that answered.
    Model,
}

impl SeriesKey {
    /// The usage events' column.
    pub fn column(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Node => "node",
            Self::Model => "model",
        }
    }
}

/// Which `llm` usage to total per time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesQuery {
    /// Grouped by.
    pub by: SeriesKey,
    /// Bucket width in milliseconds (buckets start at multiples of it
    /// since the Unix epoch: a day's bucket is a UTC day).
    pub bucket_ms: u64,
    /// From this time (Unix milliseconds, included).
    pub since_ms: u64,
    /// To this time (Unix milliseconds, excluded).
    pub until_ms: u64,
    /// Only this project's calls.
    pub project: Option<String>,
}

/// The `llm` usage of one key in one time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPoint {
    /// The bucket's start, Unix milliseconds.
    pub start_ms: u64,
    /// The project, node or model.
    pub key: String,
    /// Calls.
    pub calls: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Priced spend.
    pub cost: f64,
}
