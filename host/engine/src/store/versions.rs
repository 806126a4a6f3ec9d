//! Graph versions and plugin blobs as the store keeps them: what a run is
//! pinned to, so that it resumes and replays on exactly what ran.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A graph bound to plugin versions: what a run is pinned to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphVersion {
    /// Hash of the graph's content hash and every node's plugin hash (hex).
    pub id: String,
    /// The graph's name.
    pub name: String,
    /// SHA-256 of the graph file's text (hex).
    pub graph_hash: String,
    /// The file it was loaded from (the base for relative plugin paths).
    pub file: String,
    /// The file's text.
    pub source: String,
    /// Each node's plugin version.
    pub plugins: BTreeMap<String, PluginPin>,
}

/// A graph version with the time the store first kept it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredGraphVersion {
    /// The version.
    #[serde(flatten)]
    pub version: GraphVersion,
    /// When it was first kept (first served or first run), Unix
    /// milliseconds. A version served again later keeps its first time.
    pub created_ms: u64,
}

/// The plugin version a node of a graph version runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginPin {
    /// SHA-256 of the component (hex).
    pub hash: String,
    /// The resolved file, when the graph names the plugin by file (it is
    /// named by its `describe` name otherwise).
    pub file: Option<String>,
}

/// A plugin component, kept by content hash so that runs resume and frames
/// replay on exactly the version that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginBlob {
    /// SHA-256 of the component (hex).
    pub hash: String,
    /// Its `describe` name.
    pub name: String,
    /// Its `describe` version.
    pub version: String,
    /// The WIT contract version it was built for.
    pub contract: String,
    /// The file it was loaded from.
    pub path: String,
    /// The component's bytes.
    pub bytes: Vec<u8>,
}
