//! [`EngineError`]: why the engine refused a request.

use crate::store::StoreError;

/// Why the engine refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No thread with this id.
    #[error("no thread `{0}`")]
    UnknownThread(String),
    /// A run is already in flight on the thread.
    #[error("thread `{thread}` is busy with run `{run}`")]
    ThreadBusy {
        /// The thread.
        thread: String,
        /// The run in flight.
        run: String,
    },
    /// The message names a node the thread's graph does not have.
    #[error("the graph `{graph}` has no node `{node}`")]
    UnknownNode {
        /// The graph.
        graph: String,
        /// The node asked for.
        node: String,
    },
    /// The message body does not fit the receiving node's input schema.
    #[error("invalid payload for node `{node}`: {message}")]
    InvalidPayload {
        /// The receiving node.
        node: String,
        /// The validation message.
        message: String,
    },
    /// No run with this id is in flight.
    #[error("no run `{0}` is in flight")]
    UnknownRun(String),
    /// An answer to an interrupt for a run that waits on none (it never
    /// asked, or the question was answered, rejected or timed out already).
    #[error("run `{run}` is not waiting for an answer: {why}")]
    NotInterrupted {
        /// The run.
        run: String,
        /// Why not (its status, or the interrupt's).
        why: String,
    },
    /// The run never raised an interrupt with this id.
    #[error("run `{run}` has no interrupt `{interrupt}`")]
    UnknownInterrupt {
        /// The run.
        run: String,
        /// The id given.
        interrupt: String,
    },
    /// An answer that does not satisfy the interrupt's answer schema.
    #[error("the answer to interrupt `{interrupt}` does not match its answer schema: {message}")]
    InvalidAnswer {
        /// The interrupt.
        interrupt: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// A budget change with an invalid amount.
    #[error("invalid budget: {0}")]
    InvalidBudget(String),
    /// A budget raise whose new limit would pass the largest one: the
    /// amount is valid, the budget's current limit is what refuses it.
    #[error("{0}")]
    BudgetOverflow(String),
    /// The store refused or failed (see [`StoreError`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A graph version could not be rebuilt (resume, replay, fork).
    #[error("graph version `{version}`: {message}")]
    GraphVersion {
        /// The version id.
        version: String,
        /// What is missing or wrong.
        message: String,
    },
    /// A double-texting policy this host cannot carry out (`rollback`
    /// without a store).
    #[error("{0}")]
    PolicyUnavailable(String),
    /// The engine is shutting down and takes no new runs.
    #[error("the host is shutting down and takes no new runs")]
    ShuttingDown,
    /// A plugin version was refused: it does not fit a graph that runs it
    /// (the message says which, and why).
    #[error("{0}")]
    PluginRejected(String),
    /// The run's task died (a bug in the engine, never a plugin's fault).
    #[error("run `{run}` failed inside the engine: {message}")]
    Internal {
        /// The run.
        run: String,
        /// What happened.
        message: String,
    },
}

impl EngineError {
    /// A stable code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownThread(_) => "unknown_thread",
            Self::ThreadBusy { .. } => "thread_busy",
            Self::UnknownNode { .. } => "unknown_node",
            Self::InvalidPayload { .. } => "invalid_payload",
            Self::UnknownRun(_) => "unknown_run",
            Self::NotInterrupted { .. } => "run_not_interrupted",
            Self::UnknownInterrupt { .. } => "unknown_interrupt",
            Self::InvalidAnswer { .. } => "invalid_answer",
            Self::InvalidBudget(_) => "invalid_budget",
            Self::BudgetOverflow(_) => "budget_overflow",
            Self::Store(e) => e.code(),
            Self::GraphVersion { .. } => "graph_version",
            Self::PolicyUnavailable(_) => "policy_unavailable",
            Self::ShuttingDown => "shutting_down",
            Self::PluginRejected(_) => "plugin_rejected",
            Self::Internal { .. } => "internal",
        }
    }
}
