//! The runtime's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong loading or invoking a plugin.
///
/// Load-time variants name the file; invocation-time variants name the node.
/// None of them take the host down: the caller records the error and serves on.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The file could not be read.
    #[error("{path}: cannot read plugin file: {source}")]
    Io {
        /// The plugin file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly component (not wasm at all, a core
    /// module, truncated or otherwise malformed).
    #[error("{path}: {reason}")]
    InvalidComponent {
        /// The plugin file.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// The component does not implement the `weft:node` world.
    #[error("{path}: not a weft node: {reason}")]
    WrongWorld {
        /// The plugin file.
        path: PathBuf,
        /// What the component exports instead.
        reason: String,
    },
    /// The component was built for a contract version this host does not load.
    #[error("{path}: built for contract weft:node@{found}, but this host supports {}", supported_list(.supported))]
    IncompatibleContract {
        /// The plugin file.
        path: PathBuf,
        /// The version the component was built against.
        found: String,
        /// The versions this host loads.
        supported: Vec<&'static str>,
    },
    /// The component imports something the host does not provide.
    #[error("{path}: cannot be linked: {reason}")]
    Link {
        /// The plugin file.
        path: PathBuf,
        /// The linker's explanation.
        reason: String,
    },
    /// The component's `describe` returned something unusable.
    #[error("{path}: invalid describe output: {reason}")]
    InvalidDescribe {
        /// The plugin file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The on-disk artifact cache failed.
    #[error("component cache at {path}: {reason}")]
    Cache {
        /// Cache file or directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The engine could not be configured.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
    /// A fresh instance could not be created (pool exhausted, start trap …).
    #[error("node `{node}`: instantiation failed: {reason}")]
    Instantiation {
        /// Node name.
        node: String,
        /// Why.
        reason: String,
    },
    /// The invocation used up its CPU fuel.
    #[error("node `{node}` ran out of fuel (limit {limit} units)")]
    OutOfFuel {
        /// Node name.
        node: String,
        /// Fuel granted to the invocation.
        limit: u64,
    },
    /// The invocation ran past its wall-clock deadline.
    #[error("node `{node}` exceeded its deadline of {limit:?}")]
    DeadlineExceeded {
        /// Node name.
        node: String,
        /// The deadline.
        limit: Duration,
    },
    /// The instance tried to grow its memory past the cap.
    #[error("node `{node}` exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// Node name.
        node: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The tick's output was larger than allowed.
    #[error(
        "node `{node}` produced {size} bytes of output (messages, reply and memory writes), over the limit of {limit}"
    )]
    OutputTooLarge {
        /// Node name.
        node: String,
        /// Output size.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The guest trapped (a panic, `unreachable`, a bad memory access …).
    /// `message` carries the guest's own words when it printed any (a Rust
    /// panic message, a Python traceback).
    #[error("node `{node}` trapped: {message}")]
    Trap {
        /// Node name.
        node: String,
        /// The guest's message, or the trap description.
        message: String,
        /// The wasm backtrace, when available.
        backtrace: Option<String>,
    },
}

fn supported_list(v: &[&str]) -> String {
    v.iter()
        .map(|v| format!("weft:node@{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl RuntimeError {
    /// A short, stable code for traces and API responses.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::InvalidComponent { .. } => "invalid_component",
            Self::WrongWorld { .. } => "wrong_world",
            Self::IncompatibleContract { .. } => "incompatible_contract",
            Self::Link { .. } => "link",
            Self::InvalidDescribe { .. } => "invalid_describe",
            Self::Cache { .. } => "cache",
            Self::Config(_) => "config",
            Self::Instantiation { .. } => "instantiation",
            Self::OutOfFuel { .. } => "out_of_fuel",
            Self::DeadlineExceeded { .. } => "deadline_exceeded",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::Trap { .. } => "trap",
        }
    }
}
