//! The MCP server at `/mcp` (Streamable HTTP, on rmcp, the official Rust
//! SDK): MCP clients (agent tools, IDEs, the official SDKs) run weft's
//! graphs as tools and read threads and runs as resources.
//!
//! - **Tools**: one per served graph, named after it. Input: `message`
//!   (the user's text) and an optional `thread` (continue that thread,
//!   with its memory; without one a new thread starts). The result is the
//!   run's reply as text, and `{reply, threadId, runId, status, frames}`
//!   as structured content.
//! - **Resources**: `weft://threads/{id}` (a thread with its runs) and
//!   `weft://runs/{id}` (one run), as JSON; the list names the key's most
//!   recently changed threads.
//!
//! The same key check, roles, projects, rate limits and budgets as
//! `/api/v1` and `/v1`: the middleware runs before rmcp sees the request
//! (viewers list tools and read resources, operators call tools; a
//! project key's threads are in its project). The transport is stateless
//! (no MCP session is kept between requests), so any host of several
//! answers any request.

use std::sync::Arc;

use rmcp::ErrorData as McpError;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    Resource, ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use weft_engine::store::ThreadFilter;
use weft_engine::{DEFAULT_PROJECT, Inbound, LoadedGraph};

use crate::Api;
use crate::auth::{Principal, Role};
use crate::ids::ThreadId;
use crate::openai::run::{RunInfo, Step, Watch};
use crate::routes::access;

/// Threads the resource list names.
const LISTED_THREADS: u64 = 50;

/// The `/mcp` service: a fresh handler per request over the same host.
pub(crate) fn service(api: Arc<Api>) -> StreamableHttpService<Mcp, LocalSessionManager> {
    let config = StreamableHttpServerConfig::default()
        // Stateless: every request stands alone, on any host.
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(api.config.body_limit)
        // The key check guards `/mcp` (a browser on a rebinding name has
        // no key), and operators name their own hosts: any Host is served.
        .disable_allowed_hosts();
    StreamableHttpService::new(
        move || {
            Ok(Mcp {
                api: Arc::clone(&api),
            })
        },
        LocalSessionManager::default().into(),
        config,
    )
}

/// The MCP handler.
#[derive(Clone)]
pub(crate) struct Mcp {
    api: Arc<Api>,
}

/// The caller, as the key check found it.
fn caller(context: &RequestContext<RoleServer>) -> Result<Principal, McpError> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>())
        .cloned()
        .ok_or_else(|| McpError::invalid_request("this needs an API key", None))
}

fn tool_input() -> JsonObject {
    let schema = json!({
        "type": "object",
        "properties": {
            "message": {
                "type": "string",
                "minLength": 1,
                "description": "The user's message to the graph."
            },
            "thread": {
                "type": "string",
                "description": "Continue this thread (the conversation, with its memory); without it a new thread starts. The result names the thread."
            }
        },
        "required": ["message"],
        "additionalProperties": false
    });
    match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

fn tool_output() -> JsonObject {
    let schema = json!({
        "type": "object",
        "properties": {
            "reply": {"type": ["string", "null"], "description": "The run's reply."},
            "threadId": {"type": "string", "description": "The thread: pass it as `thread` to continue."},
            "runId": {"type": "string"},
            "status": {"type": "string", "description": "completed, or frame_limit when the graph's frame limit cut the run off."},
            "frames": {"type": "integer"}
        },
        "required": ["reply", "threadId", "runId", "status", "frames"]
    });
    match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

fn tool(graph: &LoadedGraph) -> Tool {
    let g = graph.graph();
    let description = format!(
        "Runs weft's graph `{}`{} ({} nodes, entry `{}`): sends the message to it, waits for the run to finish and answers with its reply. Pass the returned threadId as `thread` to continue the conversation.",
        g.name(),
        g.version()
            .map(|v| format!(" version {v}"))
            .unwrap_or_default(),
        g.nodes().len(),
        g.entry().name,
    );
    Tool::new(g.name().to_owned(), description, Arc::new(tool_input()))
        .with_raw_output_schema(Arc::new(tool_output()))
}

/// A tool failure the calling model sees (MCP's `isError` result).
fn failed(message: impl Into<String>) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(message.into())]).into()
}

fn json_resource(uri: &str, value: &Value) -> ReadResourceResult {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    ReadResourceResult::new(vec![ResourceContents::TextResourceContents {
        uri: uri.to_owned(),
        mime_type: Some("application/json".into()),
        text,
        meta: None,
    }])
}

impl Mcp {
    async fn run_tool(
        &self,
        who: &Principal,
        graph: Arc<LoadedGraph>,
        arguments: &JsonObject,
    ) -> Result<CallToolResponse, McpError> {
        for key in arguments.keys() {
            if key != "message" && key != "thread" {
                return Err(McpError::invalid_params(
                    format!("unknown argument `{key}`: message, thread"),
                    None,
                ));
            }
        }
        let message = match arguments.get("message") {
            Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
            _ => {
                return Err(McpError::invalid_params(
                    "`message` is required: the user's text",
                    None,
                ));
            }
        };
        let asked = match arguments.get("thread") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(ThreadId::parse(t.clone()).map_err(|e| {
                McpError::invalid_params(format!("`thread` is not a thread id: {e}"), None)
            })?),
            Some(_) => {
                return Err(McpError::invalid_params("`thread` is a string", None));
            }
        };
        if let Some(id) = &asked
            && let Err(e) = access::may_use(&self.api, who, id.as_str()).await
        {
            return Ok(failed(e.message));
        }
        let project = who.project().unwrap_or(DEFAULT_PROJECT);
        let thread =
            self.api
                .engine
                .open_thread_in(project, asked.as_ref().map(ThreadId::as_str), &graph);
        let events = self.api.engine.subscribe();
        let handle = match self
            .api
            .engine
            .start_run(&thread, Inbound::user_text(&message))
            .await
        {
            Ok(handle) => handle,
            Err(e) => return Ok(failed(format!("the run did not start: {e}"))),
        };
        self.api.metrics.run_started();
        let info = RunInfo {
            thread: thread.clone(),
            run: handle.run.clone(),
            graph: graph.graph().name().to_owned(),
            version: graph.version_id().to_owned(),
            created: 0,
        };
        let mut watch = Watch::new(Arc::clone(&self.api), info, events, handle);
        let ended = loop {
            if let Step::Ended(result) = watch.next().await {
                break result;
            }
        };
        let trace = match ended {
            Ok(trace) => trace,
            Err(e) => return Ok(failed(format!("{} ({})", e.message, e.code))),
        };
        let reply = trace.reply.clone();
        let structured = json!({
            "reply": reply,
            "threadId": thread,
            "runId": trace.run,
            "status": trace.status.as_str(),
            "frames": trace.frames,
        });
        let mut result =
            CallToolResult::success(vec![ContentBlock::text(reply.unwrap_or_default())]);
        result.structured_content = Some(structured);
        Ok(result.into())
    }

    async fn thread_resource(&self, who: &Principal, id: &str) -> Result<Value, McpError> {
        let t = access::visible(&self.api, who, id)
            .await
            .map_err(|e| McpError::resource_not_found(e.message, None))?;
        let runs = match self.api.engine.store() {
            Some(store) => store
                .runs(id)
                .await
                .map_err(|e| McpError::internal_error(e.to_string(), None))?,
            None => Vec::new(),
        };
        Ok(json!({
            "id": t.id,
            "project": t.project,
            "status": t.status,
            "graphVersion": t.graph_version,
            "frames": t.frames,
            "createdMs": t.created_ms,
            "updatedMs": t.updated_ms,
            "runs": runs,
        }))
    }

    async fn run_resource(&self, who: &Principal, run: &str) -> Result<Value, McpError> {
        let missing = || McpError::resource_not_found(format!("no run `{run}`"), None);
        let (thread, _) = run.rsplit_once(".run-").ok_or_else(missing)?;
        let thread = self.thread_resource(who, thread).await?;
        thread["runs"]
            .as_array()
            .and_then(|runs| runs.iter().find(|r| r["id"] == run))
            .map(|r| {
                let mut r = r.clone();
                r["threadId"] = thread["id"].clone();
                r
            })
            .ok_or_else(missing)
    }
}

impl ServerHandler for Mcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("weft", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "weft runs agent graphs. Each tool is a graph: call it with a message (and a thread to continue a conversation). Threads and runs are resources (weft://threads/{id}, weft://runs/{id}).",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        caller(&context)?;
        let mut graphs = self.api.catalog.all();
        graphs.sort_by(|a, b| a.graph().name().cmp(b.graph().name()));
        Ok(ListToolsResult::with_all_items(
            graphs.iter().map(|g| tool(g)).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let who = caller(&context)?;
        let Some(graph) = self.api.catalog.get(&request.name) else {
            return Err(McpError::invalid_params(
                format!("no tool `{}`: each served graph is a tool", request.name),
                None,
            ));
        };
        if let Err(e) = who.require(Role::Operator) {
            return Ok(failed(e.message));
        }
        let arguments = request.arguments.unwrap_or_default();
        self.run_tool(&who, graph, &arguments).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let who = caller(&context)?;
        let Some(store) = self.api.engine.store() else {
            return Ok(ListResourcesResult::default());
        };
        let filter = ThreadFilter {
            project: who.project().map(str::to_owned),
            ..ThreadFilter::default()
        };
        let page = store
            .threads(filter, LISTED_THREADS, 0)
            .await
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok(ListResourcesResult::with_all_items(
            page.items
                .into_iter()
                .map(|t| {
                    Resource::new(format!("weft://threads/{}", t.id), t.id.clone())
                        .with_description(format!(
                            "thread of project {}: {} run(s), {} frame(s), last run {}",
                            t.project, t.runs, t.frames, t.status
                        ))
                        .with_mime_type("application/json")
                })
                .collect(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        caller(&context)?;
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("weft://threads/{id}", "thread")
                .with_description("A thread with its runs (JSON).")
                .with_mime_type("application/json"),
            ResourceTemplate::new("weft://runs/{id}", "run")
                .with_description("One run of a thread (JSON).")
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let who = caller(&context)?;
        let uri = request.uri.as_str();
        let value = if let Some(id) = uri.strip_prefix("weft://threads/") {
            self.thread_resource(&who, id).await?
        } else if let Some(id) = uri.strip_prefix("weft://runs/") {
            self.run_resource(&who, id).await?
        } else {
            return Err(McpError::resource_not_found(
                format!("no resource `{uri}`: weft://threads/{{id}} or weft://runs/{{id}}"),
                None,
            ));
        };
        Ok(json_resource(uri, &value).into())
    }
}
