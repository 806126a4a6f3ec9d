//! The SQLite store's settings.

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sync {
    /// fsync on every commit: survives power loss (the default).
    #[default]
    Full,
    /// fsync at WAL checkpoints: survives a crash of the process, not of
    /// the machine.
    Normal,
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Durability of commits.
    pub sync: Sync,
    /// The most jobs committed in one transaction.
    pub max_batch: usize,
    /// Jobs waiting for the writer before callers wait to submit more.
    pub queue: usize,
    /// The largest the database file may grow, in bytes; a commit that
    /// needs more fails with [`StoreError::Full`](weft_engine::StoreError::Full),
    /// like a full disk.
    pub max_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sync: Sync::Full,
            max_batch: 512,
            queue: 8192,
            max_bytes: None,
        }
    }
}
