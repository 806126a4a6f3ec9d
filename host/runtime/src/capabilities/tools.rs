//! The `tools` capability (contract 0.4.0): tools of the MCP servers the
//! operator configured, as far as the graph grants them to the node.
//!
//! The host's [`ToolBox`] reaches the servers; this module checks each
//! call against the node's [`ToolGrants`] (an ungranted tool is `denied`,
//! journaled and logged, and never reaches a server), checks the
//! arguments, and journals every answer. What a server answered to a
//! listing is journaled per server (op `server_tools`) apart from the
//! node's filtered list (op `list`), so a replay filters the same answers
//! by the grants the graph has then; a call is journaled as op `call` with
//! its arguments.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;
use wasmtime::component::{HasData, Linker};

use super::{BoxFuture, CapView};
use crate::sandbox::HostState;
use crate::types::{CallContext, Capability, CapabilityError};

/// Longest server or tool name a node may pass, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Largest `arguments` a node may pass, in bytes.
pub const MAX_ARGUMENTS_BYTES: usize = 64 * 1024;

pub use weft_contract::{Tool as ToolInfo, ToolResult};

/// Which tools of a server a graph grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolSet {
    /// Every tool the server offers (`"*"` in a graph file).
    All,
    /// These tools only.
    Only(BTreeSet<String>),
}

impl ToolSet {
    /// Whether `tool` is in the set.
    pub fn contains(&self, tool: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(tools) => tools.contains(tool),
        }
    }
}

/// The tools a graph grants one node: server → tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolGrants {
    servers: BTreeMap<String, ToolSet>,
}

/// Grants of no tool at all.
pub static NO_TOOLS: ToolGrants = ToolGrants {
    servers: BTreeMap::new(),
};

impl ToolGrants {
    /// Grants `tools` of `server` (added to what it already grants there).
    pub fn grant(&mut self, server: impl Into<String>, tools: ToolSet) {
        let entry = self
            .servers
            .entry(server.into())
            .or_insert_with(|| ToolSet::Only(BTreeSet::new()));
        match (entry, tools) {
            (ToolSet::All, _) => {}
            (e, ToolSet::All) => *e = ToolSet::All,
            (ToolSet::Only(have), ToolSet::Only(more)) => have.extend(more),
        }
    }

    /// Whether `tool` of `server` is granted.
    pub fn allows(&self, server: &str, tool: &str) -> bool {
        self.servers.get(server).is_some_and(|s| s.contains(tool))
    }

    /// The servers with at least one granted tool, in name order.
    pub fn servers(&self) -> impl Iterator<Item = (&str, &ToolSet)> {
        self.servers.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether no tool is granted.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

/// The host's way to the MCP servers: what the configured servers offer,
/// and calls. Implementations bound each call in time and in size.
pub trait ToolBox: Send + Sync {
    /// Every tool `server` offers (the capability filters by grant); none
    /// for a server this host's config does not name (a graph may grant
    /// tools of servers some hosts lack).
    fn list<'a>(
        &'a self,
        ctx: &'a CallContext,
        server: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ToolInfo>, CapabilityError>>;

    /// Calls `tool` of `server` with `arguments`.
    fn call<'a>(
        &'a self,
        ctx: &'a CallContext,
        server: &'a str,
        tool: &'a str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> BoxFuture<'a, Result<ToolResult, CapabilityError>>;

    /// The calls made so far, per server, tool and outcome (for metrics;
    /// a tool box that keeps none answers empty).
    fn stats(&self) -> Vec<ToolStat> {
        Vec::new()
    }
}

/// Calls of one tool with one outcome, since the host started.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolStat {
    /// The server.
    pub server: String,
    /// The tool.
    pub tool: String,
    /// `ok`, `tool_error` (the tool reported an error) or the error's code
    /// (`unavailable`, `limit_exceeded`, `failed` …).
    pub outcome: String,
    /// How many calls.
    pub calls: u64,
    /// Their wall time in all, in seconds.
    pub seconds: f64,
}

/// A tool box without servers: every call is `unavailable`.
#[derive(Debug, Default)]
pub struct NoTools;

impl ToolBox for NoTools {
    fn list<'a>(
        &'a self,
        _ctx: &'a CallContext,
        _server: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ToolInfo>, CapabilityError>> {
        Box::pin(async move { Ok(Vec::new()) })
    }

    fn call<'a>(
        &'a self,
        _ctx: &'a CallContext,
        server: &'a str,
        _tool: &'a str,
        _arguments: serde_json::Map<String, serde_json::Value>,
    ) -> BoxFuture<'a, Result<ToolResult, CapabilityError>> {
        Box::pin(async move { Err(not_configured(server)) })
    }
}

/// The error of a server the host's config does not name.
pub fn not_configured(server: &str) -> CapabilityError {
    CapabilityError::Unavailable(format!(
        "no MCP server `{server}` is configured on this host (config `tools.servers`)"
    ))
}

/// Per-invocation state of the `tools` capability.
pub(crate) struct ToolsState {
    pub backend: Arc<dyn ToolBox>,
    pub grants: ToolGrants,
}

struct HasTools;
impl HasData for HasTools {
    type Data<'a> = CapView<'a, ToolsState>;
}

/// Adds the `tools` interface to `linker` (contract 0.4.0 and later).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use crate::bindings::v0_4;
    v0_4::weft::node::tools::add_to_linker::<HostState, HasTools>(linker, |s| CapView {
        state: &mut s.tools,
        shared: &mut s.shared,
    })
}

/// A server or tool name: 1 to [`MAX_NAME_BYTES`] bytes, no control
/// characters.
fn check_name(what: &str, text: &str) -> Result<(), CapabilityError> {
    if text.is_empty() || text.len() > MAX_NAME_BYTES || text.chars().any(char::is_control) {
        return Err(CapabilityError::InvalidInput(format!(
            "a {what} name has 1 to {MAX_NAME_BYTES} bytes and no control characters"
        )));
    }
    Ok(())
}

/// `arguments` as a JSON object (empty text: no arguments).
fn parse_arguments(
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, CapabilityError> {
    if text.len() > MAX_ARGUMENTS_BYTES {
        return Err(CapabilityError::LimitExceeded(format!(
            "a tool's arguments are at most {MAX_ARGUMENTS_BYTES} bytes (got {})",
            text.len()
        )));
    }
    if text.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(CapabilityError::InvalidInput(format!(
            "a tool's arguments are a JSON object, not {}",
            kind_of(&other)
        ))),
        Err(e) => Err(CapabilityError::InvalidInput(format!(
            "a tool's arguments are not JSON: {e}"
        ))),
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl CapView<'_, ToolsState> {
    /// The granted tools of every granted server that answers, by server
    /// then name; each server's answer journaled (op `server_tools`).
    async fn granted_tools(&mut self) -> Result<Vec<ToolInfo>, CapabilityError> {
        let servers: Vec<(String, ToolSet)> = self
            .state
            .grants
            .servers()
            .map(|(s, t)| (s.to_owned(), t.clone()))
            .collect();
        let mut tools = Vec::new();
        let mut failed = Vec::new();
        for (server, set) in &servers {
            let answer = self.state.backend.list(&self.shared.call, server).await;
            let answer = self.shared.record(
                Capability::Tools,
                "server_tools",
                json!({ "server": server }),
                answer,
            );
            match answer {
                Ok(list) => {
                    let mut list: Vec<ToolInfo> =
                        list.into_iter().filter(|t| set.contains(&t.name)).collect();
                    list.sort_by(|a, b| a.name.cmp(&b.name));
                    tools.extend(list);
                }
                Err(e) => {
                    tracing::warn!(
                        thread = %self.shared.call.thread,
                        node = %self.shared.call.node,
                        server = %server,
                        error = %e,
                        "MCP server left out of a node's tool list"
                    );
                    failed.push((server.clone(), e));
                }
            }
        }
        if tools.is_empty() && !failed.is_empty() && failed.len() == servers.len() {
            let (server, e) = failed.swap_remove(0);
            return Err(match e {
                CapabilityError::LimitExceeded(_) => e,
                other => CapabilityError::Unavailable(format!(
                    "no granted MCP server answered (`{server}`: {other})"
                )),
            });
        }
        Ok(tools)
    }

    /// Calls a granted tool; `denied` (logged) when the graph does not
    /// grant it.
    async fn call_granted(
        &mut self,
        server: &str,
        name: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<ToolResult, CapabilityError> {
        if !self.state.grants.allows(server, name) {
            tracing::warn!(
                thread = %self.shared.call.thread,
                node = %self.shared.call.node,
                server,
                tool = name,
                "denied: tool not granted to node"
            );
            return Err(CapabilityError::Denied(Capability::Tools));
        }
        self.state
            .backend
            .call(&self.shared.call, server, name, arguments)
            .await
    }
}

/// The `tools` host functions, for each contract version's bindings that
/// have them.
macro_rules! host {
    ($wit:path, $err:path) => {
        const _: () = {
            use $err as WitError;
            use $wit as wit;

            impl wit::Host for CapView<'_, ToolsState> {
                #[tracing::instrument(name = "weft.tools.list", skip_all)]
                async fn list_tools(&mut self) -> Result<Vec<wit::Tool>, WitError> {
                    self.shared.admit(Capability::Tools, "list")?;
                    let result = self.granted_tools().await;
                    let tools = self
                        .shared
                        .record(Capability::Tools, "list", json!({}), result)?;
                    Ok(tools
                        .into_iter()
                        .map(|t| wit::Tool {
                            server: t.server,
                            name: t.name,
                            description: t.description,
                            input_schema: t.input_schema.to_string(),
                        })
                        .collect())
                }

                // The GenAI semantic conventions of OpenTelemetry for a
                // tool's execution.
                #[tracing::instrument(name = "weft.tools.call", skip_all, fields(gen_ai.operation.name = "execute_tool", gen_ai.tool.name = %name, weft.tool.server = %server, error.type = tracing::field::Empty))]
                async fn call_tool(
                    &mut self,
                    server: String,
                    name: String,
                    arguments: String,
                ) -> Result<wit::ToolResult, WitError> {
                    self.shared.admit(Capability::Tools, "call")?;
                    let parsed = check_name("server", &server)
                        .and_then(|()| check_name("tool", &name))
                        .and_then(|()| parse_arguments(&arguments));
                    let (request, result) = match parsed {
                        Ok(args) => {
                            let request = json!({
                                "server": server,
                                "name": name,
                                "arguments": args,
                            });
                            (request, self.call_granted(&server, &name, args).await)
                        }
                        Err(e) => (
                            json!({ "server": server, "name": name, "bytes": arguments.len() }),
                            Err(e),
                        ),
                    };
                    match &result {
                        Ok(r) if r.is_error => {
                            tracing::Span::current().record("error.type", "tool_error");
                        }
                        Err(e) => {
                            tracing::Span::current().record("error.type", e.code());
                        }
                        Ok(_) => {}
                    }
                    let r = self
                        .shared
                        .record(Capability::Tools, "call", request, result)?;
                    Ok(wit::ToolResult {
                        text: r.text,
                        content: r.content.to_string(),
                        is_error: r.is_error,
                    })
                }
            }
        };
    };
}
host!(
    crate::bindings::v0_4::weft::node::tools,
    crate::bindings::v0_4::wit::Error
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_name_servers_and_tools() {
        let mut g = ToolGrants::default();
        g.grant("files", ToolSet::Only(["read".to_owned()].into()));
        g.grant("clock", ToolSet::All);
        g.grant("files", ToolSet::Only(["list".to_owned()].into()));
        assert!(g.allows("files", "read") && g.allows("files", "list"));
        assert!(!g.allows("files", "write"));
        assert!(g.allows("clock", "anything"));
        assert!(!g.allows("other", "read"));
        g.grant("files", ToolSet::All);
        assert!(g.allows("files", "write"));
        assert!(NO_TOOLS.is_empty() && !NO_TOOLS.allows("files", "read"));
    }

    #[test]
    fn arguments_are_an_object() {
        assert!(parse_arguments("").unwrap().is_empty());
        assert_eq!(parse_arguments(r#"{"a":1}"#).unwrap()["a"], 1);
        assert!(matches!(
            parse_arguments("[1]"),
            Err(CapabilityError::InvalidInput(m)) if m.contains("an array")
        ));
        assert!(matches!(
            parse_arguments("{"),
            Err(CapabilityError::InvalidInput(m)) if m.contains("not JSON")
        ));
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_ARGUMENTS_BYTES));
        assert!(matches!(
            parse_arguments(&big),
            Err(CapabilityError::LimitExceeded(_))
        ));
        assert!(check_name("tool", "").is_err());
        assert!(check_name("tool", "a\nb").is_err());
        assert!(check_name("tool", "get_weather").is_ok());
    }
}
