//! Problems found while loading a graph file, and the error that lists them.

use std::fmt;

use serde_saphyr::Spanned;

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The graph still loads; the problem is reported in [`crate::Graph::warnings`].
    Warning,
    /// The graph does not load.
    Error,
}

/// What kind of mistake a [`Problem`] is, so callers and tests can match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// The file is not YAML, or not shaped like a graph file (unknown field,
    /// wrong type, missing field, duplicate key).
    Syntax,
    /// The resolver knows no plugin by that name or path.
    UnknownPlugin,
    /// An edge names a node the graph does not have.
    UnknownNode,
    /// `entry` names a node the graph does not have.
    EntryNotANode,
    /// A grant is not a capability name.
    UnknownCapability,
    /// A grant the plugin did not request in its `describe`.
    UngrantedCapability,
    /// A node no message can ever reach.
    Unreachable,
    /// A limit or `max_frames` out of range.
    InvalidLimit,
    /// A node's `config` is not a mapping.
    InvalidConfig,
    /// A node's `tools` is not a mapping of MCP server names to lists of
    /// tool names, or it names tools without the `tools` grant.
    InvalidTools,
    /// A node is granted the `tools` capability but no tool (a warning):
    /// its tool list is empty.
    NoTools,
    /// The same edge is listed twice (a warning).
    DuplicateEdge,
    /// An edge from a node to itself (a warning): the node receives its own
    /// messages in the next frame, a loop that runs until `max_frames`
    /// unless the node ends it.
    SelfEdge,
    /// A node name holds invisible or direction-changing characters (a
    /// warning).
    HiddenCharacters,
    /// Two node names are different strings but equal once
    /// Unicode-normalised without invisible characters (a warning).
    LookalikeNames,
    /// The file is over one of the loader's limits: larger than
    /// [`MAX_GRAPH_BYTES`](crate::graph::MAX_GRAPH_BYTES), nested deeper than
    /// [`MAX_GRAPH_DEPTH`](crate::graph::MAX_GRAPH_DEPTH), or with more
    /// aliases, anchors, nodes or alias expansions than the parser's budget
    /// allows (an alias bomb). Nothing further is checked.
    Limit,
}

/// A position in the graph file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl Location {
    /// Converts a parser location, dropping the "unknown" sentinel (line 0).
    pub(crate) fn from_yaml(loc: serde_saphyr::Location) -> Option<Self> {
        (loc.line() > 0).then(|| Self {
            line: loc.line(),
            column: loc.column(),
        })
    }
}

/// One mistake in a graph file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// What kind of mistake.
    pub kind: ProblemKind,
    /// The file, as the caller named it (or `<string>`).
    pub file: String,
    /// Line and column, when the parser knows them.
    pub location: Option<Location>,
    /// Path to the offending value, like `nodes.pa.grants[1]`; empty for the whole file.
    pub path: String,
    /// What is wrong, for people.
    pub message: String,
}

impl fmt::Display for Problem {
    /// `file:line:col: [warning: ]path: message`, like a compiler diagnostic.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        f.write_str(": ")?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Collects problems for one file.
pub(super) struct Problems {
    pub file: String,
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn push(
        &mut self,
        kind: ProblemKind,
        location: Option<Location>,
        path: String,
        message: String,
    ) {
        let severity = match kind {
            ProblemKind::DuplicateEdge
            | ProblemKind::SelfEdge
            | ProblemKind::HiddenCharacters
            | ProblemKind::LookalikeNames
            | ProblemKind::NoTools => Severity::Warning,
            _ => Severity::Error,
        };
        self.list.push(Problem {
            severity,
            kind,
            file: self.file.clone(),
            location,
            path,
            message,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|p| p.severity == Severity::Error)
    }
}

/// The error of a file with exactly one problem.
pub(super) fn one(
    file: &str,
    kind: ProblemKind,
    location: Option<Location>,
    message: String,
) -> GraphError {
    let mut problems = Problems {
        file: file.to_owned(),
        list: Vec::new(),
    };
    problems.push(kind, location, String::new(), message);
    GraphError::Invalid {
        problems: problems.list,
    }
}

/// Where a parsed value was written.
pub(super) fn at<T>(value: &Spanned<T>) -> Option<Location> {
    Location::from_yaml(value.referenced)
}

/// Why a graph file did not load.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The file could not be read.
    #[error("{file}: cannot read graph file: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file has at least one error; every problem found (warnings
    /// included) is listed, in file order, one per line.
    #[error("{}", Report(.problems))]
    Invalid {
        /// Every problem found, sorted by location.
        problems: Vec<Problem>,
    },
}

impl GraphError {
    /// The problems, if the file was read at all.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Io { .. } => &[],
            Self::Invalid { problems } => problems,
        }
    }
}

/// Display helper: one problem per line.
struct Report<'a>(&'a [Problem]);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
