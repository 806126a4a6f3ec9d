//! The tools of the operator's MCP servers (WIT `tools`, contract 0.4.0).

use serde::{Deserialize, Serialize};

/// A tool a node may call (WIT `tools.tool`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// The server, as the host's config names it.
    pub server: String,
    /// The tool's name on that server.
    pub name: String,
    /// What the tool does, as the server describes it (may be empty).
    #[serde(default)]
    pub description: String,
    /// The JSON Schema of the tool's arguments.
    pub input_schema: serde_json::Value,
}

/// What a tool answered (WIT `tools.tool-result`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The answer's text parts, joined by newlines.
    pub text: String,
    /// The whole answer as the server sent it: `{"content": [..]}` and,
    /// when the tool gives one, `"structuredContent"`.
    pub content: serde_json::Value,
    /// The tool itself reported an error (`text` says which).
    pub is_error: bool,
}
