//! The `tools` capability's way out: an MCP client per configured server
//! (the official Rust SDK, `rmcp`), over Streamable HTTP or a child
//! process's standard input and output.
//!
//! A server is connected at its first use and again after its connection
//! fails (a child process that exited is started again). Every request is
//! bounded by the server's `timeout_ms` and every answer by its
//! `max_result_kb`; tool lists are kept for `list_ttl_s`. Calls are
//! counted per server, tool and outcome for the metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, Tool as McpTool,
};
use rmcp::service::{RoleClient, RunningService, ServiceExt};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::tools::{ToolBox, ToolInfo, ToolResult, ToolStat, not_configured};
use weft_runtime::{CallContext, CapabilityError};

use crate::config::tools::{ServerSettings, Transport};

type Client = RunningService<RoleClient, ClientConfig>;

/// The MCP servers of one host.
pub struct McpTools {
    servers: BTreeMap<String, Server>,
    /// Calls and seconds per (server, tool, outcome), in that order.
    stats: Mutex<BTreeMap<StatKey, Counted>>,
}

type StatKey = (String, String, String);

#[derive(Default)]
struct Counted {
    calls: u64,
    seconds: f64,
}

struct Server {
    settings: ServerSettings,
    /// The connection, made at first use; `None` after it failed.
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// The tool list and when it was read.
    tools: Mutex<Option<(Instant, Vec<ToolInfo>)>>,
}

impl std::fmt::Debug for McpTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpTools")
            .field("servers", &self.servers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl McpTools {
    /// A tool box for `servers` (nothing is connected yet).
    pub fn new(servers: Vec<ServerSettings>) -> Self {
        Self {
            servers: servers
                .into_iter()
                .map(|settings| {
                    (
                        settings.name.clone(),
                        Server {
                            settings,
                            client: tokio::sync::Mutex::new(None),
                            tools: Mutex::new(None),
                        },
                    )
                })
                .collect(),
            stats: Mutex::default(),
        }
    }

    fn count(&self, server: &str, tool: &str, outcome: &str, took: Duration) {
        let mut stats = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = stats
            .entry((server.to_owned(), tool.to_owned(), outcome.to_owned()))
            .or_default();
        entry.calls += 1;
        entry.seconds += took.as_secs_f64();
    }
}

impl Server {
    /// The connection, made now if there is none.
    async fn client(&self) -> Result<Arc<Client>, CapabilityError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref()
            && !client.is_closed()
        {
            return Ok(Arc::clone(client));
        }
        let name = &self.settings.name;
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("weft", env!("CARGO_PKG_VERSION")),
        );
        let connect = async {
            match &self.settings.transport {
                Transport::Http { url, headers } => {
                    let mut custom = HashMap::new();
                    for (k, v) in headers {
                        // Checked when the config was read.
                        if let (Ok(k), Ok(v)) = (
                            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                            reqwest::header::HeaderValue::from_str(v),
                        ) {
                            custom.insert(k, v);
                        }
                    }
                    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                        .custom_headers(custom);
                    let transport = StreamableHttpClientTransport::from_config(config);
                    info.serve(transport).await.map_err(|e| e.to_string())
                }
                Transport::Command {
                    program,
                    args,
                    env,
                    cwd,
                } => {
                    let mut command = tokio::process::Command::new(program);
                    command.args(args).envs(env).kill_on_drop(true);
                    if let Some(cwd) = cwd {
                        command.current_dir(cwd);
                    }
                    let (transport, stderr) = TokioChildProcess::builder(command)
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .map_err(|e| format!("`{program}` could not be started: {e}"))?;
                    if let Some(stderr) = stderr {
                        tokio::spawn(forward_stderr(name.clone(), stderr));
                    }
                    info.serve(transport).await.map_err(|e| e.to_string())
                }
            }
        };
        let client = match tokio::time::timeout(self.settings.timeout, connect).await {
            Ok(Ok(client)) => Arc::new(client),
            Ok(Err(e)) => {
                return Err(CapabilityError::Unavailable(format!(
                    "MCP server `{name}` could not be reached: {e}"
                )));
            }
            Err(_) => {
                return Err(CapabilityError::Unavailable(format!(
                    "MCP server `{name}` did not finish connecting within {} ms",
                    self.settings.timeout.as_millis()
                )));
            }
        };
        tracing::info!(server = %name, "connected to MCP server");
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Forgets the connection (the next request connects again).
    async fn reset(&self) {
        self.client.lock().await.take();
        self.tools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    /// Runs `request` on the connection within the time limit; a failed
    /// connection is forgotten.
    async fn request<T, F, Fut>(&self, what: &str, request: F) -> Result<T, CapabilityError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: std::future::Future<Output = Result<T, rmcp::ServiceError>>,
    {
        let name = &self.settings.name;
        let client = self.client().await?;
        match tokio::time::timeout(self.settings.timeout, request(client)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(rmcp::ServiceError::McpError(e))) => Err(CapabilityError::Failed(format!(
                "MCP server `{name}` refused {what}: {}",
                e.message
            ))),
            Ok(Err(e)) => {
                self.reset().await;
                Err(CapabilityError::Unavailable(format!(
                    "MCP server `{name}` failed during {what}: {e}"
                )))
            }
            Err(_) => Err(CapabilityError::Unavailable(format!(
                "MCP server `{name}` did not answer {what} within {} ms",
                self.settings.timeout.as_millis()
            ))),
        }
    }

    async fn list(&self) -> Result<Vec<ToolInfo>, CapabilityError> {
        if let Some((at, tools)) = self
            .tools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            && at.elapsed() < self.settings.list_ttl
        {
            return Ok(tools.clone());
        }
        let listed = self
            .request("the tool list", |c| async move { c.list_all_tools().await })
            .await?;
        let name = &self.settings.name;
        let mut tools: Vec<ToolInfo> = listed
            .into_iter()
            .map(|t: McpTool| ToolInfo {
                server: name.clone(),
                name: t.name.into_owned(),
                description: t.description.map(|d| d.into_owned()).unwrap_or_default(),
                input_schema: serde_json::Value::Object((*t.input_schema).clone()),
            })
            .collect();
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        let size = serde_json::to_vec(&tools).map_or(0, |v| v.len());
        if size > self.settings.max_result {
            return Err(CapabilityError::LimitExceeded(format!(
                "MCP server `{name}`'s tool list has {size} bytes, over its max_result_kb of {} KiB",
                self.settings.max_result / 1024
            )));
        }
        *self
            .tools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), tools.clone()));
        Ok(tools)
    }

    async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<ToolResult, CapabilityError> {
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let answer = self
            .request(&format!("a call of `{tool}`"), |c| async move {
                c.call_tool(params).await
            })
            .await?;
        let name = &self.settings.name;
        let text = answer
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
            .collect::<Vec<_>>()
            .join("\n");
        let mut content = serde_json::json!({
            "content": serde_json::to_value(&answer.content).unwrap_or_default(),
        });
        if let Some(structured) = &answer.structured_content {
            content["structuredContent"] = structured.clone();
        }
        let size = text.len() + content.to_string().len();
        if size > self.settings.max_result {
            return Err(CapabilityError::LimitExceeded(format!(
                "`{tool}` of MCP server `{name}` answered {size} bytes, over its max_result_kb of {} KiB",
                self.settings.max_result / 1024
            )));
        }
        Ok(ToolResult {
            text,
            content,
            is_error: answer.is_error.unwrap_or(false),
        })
    }
}

/// Logs what a server process writes to its standard error.
async fn forward_stderr(server: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(server = %server, "{line}");
    }
}

impl ToolBox for McpTools {
    fn list<'a>(
        &'a self,
        _ctx: &'a CallContext,
        server: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ToolInfo>, CapabilityError>> {
        Box::pin(async move {
            let Some(s) = self.servers.get(server) else {
                return Ok(Vec::new());
            };
            s.list().await
        })
    }

    fn call<'a>(
        &'a self,
        _ctx: &'a CallContext,
        server: &'a str,
        tool: &'a str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> BoxFuture<'a, Result<ToolResult, CapabilityError>> {
        Box::pin(async move {
            let Some(s) = self.servers.get(server) else {
                return Err(not_configured(server));
            };
            let start = Instant::now();
            let result = s.call(tool, arguments).await;
            let outcome = match &result {
                Ok(r) if r.is_error => "tool_error",
                Ok(_) => "ok",
                Err(e) => e.code(),
            };
            self.count(server, tool, outcome, start.elapsed());
            result
        })
    }

    fn stats(&self) -> Vec<ToolStat> {
        let stats = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stats
            .iter()
            .map(|((server, tool, outcome), counted)| ToolStat {
                server: server.clone(),
                tool: tool.clone(),
                outcome: outcome.clone(),
                calls: counted.calls,
                seconds: counted.seconds,
            })
            .collect()
    }
}
