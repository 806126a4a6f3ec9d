//! The OpenAPI 3 document, generated from the handlers' annotations, and
//! the docs page (Swagger UI, served from the binary: it works offline).
//!
//! The document carries OpenAPI `links` where one answer names a resource
//! other routes take (an inject's `threadId`, a new key's id, a spawned
//! agent's id): clients and stateful API fuzzers follow them.

use serde_json::{Value, json};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{KeyInfo, Role};
use crate::error::{ErrorBody, ErrorDetail};
use crate::oidc::SignIn;
use crate::reload::ConfigReload;
use crate::routes::agents::{self, Agent, AgentDetail};
use crate::routes::graphs::{
    self, GraphChange, GraphDetail, GraphVersionDetail, GraphVersionView, GraphView, ReloadError,
    ReloadReport, SwitchGraph, VersionChangesView,
};
use crate::routes::instances::{
    self, InstanceMetrics, InstanceView, SpawnRequest, TaskAccepted, TaskRequest, UpdateRequest,
};
use crate::routes::interrupts::{self, InterruptView, ResumeRequest, Resumed};
use crate::routes::keys::{self, KeyCreated, KeyRequest, OidcSignIn, SignInMethods, WhoAmI};
use crate::routes::messages::{
    self, Accepted, InjectRequest, MessageView, MultitaskPolicy, SendRequest,
};
use crate::routes::organism::{self, Health, HostList, HostView, OrganismInfo};
use crate::routes::plugins::{self, Capability, CapabilityDetail, PluginView, SwapView};
use crate::routes::schedules::{self as scheds, FireView, ScheduleRequest, ScheduleView};
use crate::routes::suites::{self, TestRequest, TestView};
use crate::routes::threads::{
    self, ChangedPlugin, DivergenceView, ForkRequest, Forked, Killed, ReplayRequest,
    ReplayVersions, Replayed, ResultView, RunView, ThreadView,
};
use crate::routes::usage::{
    self, BudgetChange, BudgetView, ProjectBudgetChange, ProjectBudgetView, SeriesPointView,
    UsageSeries,
};
use crate::routes::webhooks::{
    self as hooks, AttemptView, DeliveryView, WebhookCreated, WebhookRequest, WebhookView,
};
use crate::routes::{events, sockets};

#[derive(OpenApi)]
#[openapi(
    info(title = "weft operators' API", description = "Threads, runs, frames, agents, usage and keys of a weft host."),
    paths(
        organism::health, organism::ready, organism::scrape,
        organism::organism, organism::organism_config, organism::organism_stop, organism::hosts,
        graphs::graphs, graphs::active_graph, graphs::switch_graph, graphs::graph,
        graphs::graph_versions, graphs::graph_version, plugins::plugins,
        agents::agents, agents::agent, agents::pause_agent, agents::resume_agent,
        threads::threads, threads::thread, messages::thread_messages, threads::thread_runs,
        threads::thread_frames, threads::result, threads::kill, threads::fork, threads::replay,
        messages::inject, messages::send, threads::frames, usage::usage, usage::usage_threads,
        usage::set_budget, keys::keys, keys::create_key, keys::revoke_key, keys::whoami, keys::sign_in_methods, events::sse,
        sockets::chat, sockets::events,
        instances::spawn, instances::list, instances::detail,
        instances::update, instances::pause, instances::resume,
        instances::terminate, instances::task, instances::project_metrics,
        instances::metrics,
        plugins::capabilities, plugins::capability, messages::messages,
        usage::usage_node, usage::usage_model, graphs::reload,
        plugins::reload_plugin, plugins::upload_plugin, organism::reload_config,
        usage::project_budget, usage::set_project_budget, usage::reset_usage,
        usage::usage_series, interrupts::interrupts, interrupts::resume,
        hooks::create, hooks::list, hooks::detail, hooks::delete, hooks::deliveries,
        scheds::create, scheds::list, scheds::detail, scheds::pause, scheds::resume, scheds::delete,
        suites::start, suites::list, suites::detail,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, Health, HostList, HostView, OrganismInfo, Agent, AgentDetail, GraphView, GraphDetail,
        GraphVersionView, GraphVersionDetail, VersionChangesView, ProjectBudgetView,
        UsageSeries, SeriesPointView,
        SwitchGraph, PluginView, ThreadView, MessageView, RunView, InjectRequest, Accepted, MultitaskPolicy,
        SendRequest, ResultView, Killed, ForkRequest, Forked, ReplayRequest, ReplayVersions, Replayed,
        DivergenceView, ChangedPlugin, BudgetView, BudgetChange,
        KeyRequest, KeyCreated, KeyInfo, Role,
        InstanceView, SpawnRequest, UpdateRequest, TaskRequest, TaskAccepted, InstanceMetrics,
        Capability, CapabilityDetail, GraphChange, ReloadReport, ReloadError, ProjectBudgetChange,
        SwapView, ConfigReload, WhoAmI, SignInMethods, OidcSignIn, SignIn,
        InterruptView, ResumeRequest, Resumed,
        WebhookView, WebhookRequest, WebhookCreated, AttemptView, DeliveryView,
        ScheduleRequest, ScheduleView, FireView, TestRequest, TestView,
    )),
    modifiers(&Security, &Links, &Errors),
)]
struct Doc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer weft_…`"))
                    .build(),
            ),
        );
    }
}

/// `links` between routes: (from method, from path, status, link name, to
/// method, to path, parameters as runtime expressions).
type LinkSpec = (
    HttpMethod,
    &'static str,
    &'static str,
    &'static str,
    HttpMethod,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The routes that take a thread id, and a name for each link to them.
const THREAD_ROUTES: [(&str, HttpMethod, &str); 10] = [
    ("thread", HttpMethod::Get, "/api/v1/threads/{id}"),
    ("result", HttpMethod::Get, "/api/v1/threads/{id}/result"),
    ("messages", HttpMethod::Get, "/api/v1/threads/{id}/messages"),
    ("runs", HttpMethod::Get, "/api/v1/threads/{id}/runs"),
    ("frames", HttpMethod::Get, "/api/v1/threads/{id}/frames"),
    ("send", HttpMethod::Post, "/api/v1/threads/{id}/messages"),
    ("kill", HttpMethod::Post, "/api/v1/threads/{id}/kill"),
    ("fork", HttpMethod::Post, "/api/v1/threads/{id}/fork"),
    ("replay", HttpMethod::Post, "/api/v1/threads/{id}/replay"),
    (
        "budget",
        HttpMethod::Put,
        "/api/v1/usage/threads/{id}/budget",
    ),
];

/// The routes of one agent instance.
const AGENT_ROUTES: [(&str, HttpMethod, &str); 7] = [
    (
        "agent",
        HttpMethod::Get,
        "/api/v1/projects/{project}/agents/{id}",
    ),
    (
        "update",
        HttpMethod::Patch,
        "/api/v1/projects/{project}/agents/{id}",
    ),
    (
        "pause",
        HttpMethod::Post,
        "/api/v1/projects/{project}/agents/{id}/pause",
    ),
    (
        "resume",
        HttpMethod::Post,
        "/api/v1/projects/{project}/agents/{id}/resume",
    ),
    (
        "task",
        HttpMethod::Post,
        "/api/v1/projects/{project}/agents/{id}/tasks",
    ),
    (
        "metrics",
        HttpMethod::Get,
        "/api/v1/projects/{project}/agents/{id}/metrics",
    ),
    (
        "terminate",
        HttpMethod::Delete,
        "/api/v1/projects/{project}/agents/{id}",
    ),
];

fn link_specs() -> Vec<LinkSpec> {
    const THREAD_ID: &[(&str, &str)] = &[("id", "$response.body#/threadId")];
    const AGENT: &[(&str, &str)] = &[
        ("project", "$request.path.project"),
        ("id", "$response.body#/id"),
    ];
    let mut specs = Vec::new();
    // A thread id comes back from an inject, a chat message and a fork.
    for (method, path, status) in [
        (HttpMethod::Post, "/api/v1/inject", "202"),
        (HttpMethod::Post, "/api/v1/threads/{id}/messages", "202"),
        (HttpMethod::Post, "/api/v1/threads/{id}/fork", "201"),
    ] {
        for (name, to_method, to_path) in THREAD_ROUTES {
            specs.push((
                method.clone(),
                path,
                status,
                name,
                to_method,
                to_path,
                THREAD_ID,
            ));
        }
    }
    // A run id comes back from an inject and a chat message: its
    // interrupts, and the answer to one.
    const RUN: &[(&str, &str)] = &[
        ("id", "$response.body#/threadId"),
        ("run", "$response.body#/runId"),
    ];
    for (method, path) in [
        (HttpMethod::Post, "/api/v1/inject"),
        (HttpMethod::Post, "/api/v1/threads/{id}/messages"),
    ] {
        for (name, to_method, to_path) in [
            (
                "interrupts",
                HttpMethod::Get,
                "/api/v1/threads/{id}/runs/{run}/interrupts",
            ),
            (
                "resume",
                HttpMethod::Post,
                "/api/v1/threads/{id}/runs/{run}/resume",
            ),
        ] {
            specs.push((method.clone(), path, "202", name, to_method, to_path, RUN));
        }
    }
    for (name, to_method, to_path) in AGENT_ROUTES {
        let from = "/api/v1/projects/{project}/agents";
        specs.push((
            HttpMethod::Post,
            from,
            "201",
            name,
            to_method,
            to_path,
            AGENT,
        ));
    }
    for (name, to_method, to_path) in [
        ("webhook", HttpMethod::Get, "/api/v1/webhooks/{id}"),
        (
            "deliveries",
            HttpMethod::Get,
            "/api/v1/webhooks/{id}/deliveries",
        ),
        ("delete", HttpMethod::Delete, "/api/v1/webhooks/{id}"),
    ] {
        specs.push((
            HttpMethod::Post,
            "/api/v1/webhooks",
            "201",
            name,
            to_method,
            to_path,
            &[("id", "$response.body#/webhook/id")],
        ));
    }
    specs.push((
        HttpMethod::Post,
        "/api/v1/keys",
        "201",
        "revoke",
        HttpMethod::Delete,
        "/api/v1/keys/{id}",
        &[("id", "$response.body#/key/id")],
    ));
    specs
}

fn operation<'a>(
    openapi: &'a mut utoipa::openapi::OpenApi,
    method: &HttpMethod,
    path: &str,
) -> Option<&'a mut Operation> {
    let item = openapi.paths.paths.get_mut(path)?;
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Patch => item.patch.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
        _ => None,
    }
}

/// Adds the `links` of [`link_specs`], naming targets by their operation id.
struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (method, path, status, name, to_method, to_path, parameters) in link_specs() {
            let Some(target) =
                operation(openapi, &to_method, to_path).and_then(|op| op.operation_id.clone())
            else {
                continue; // a route no longer in the document (a test checks there is none)
            };
            let link = parameters
                .iter()
                .fold(LinkBuilder::new().operation_id(target), |l, (k, v)| {
                    l.parameter(*k, *v)
                })
                .build();
            if let Some(RefOr::T(response)) = operation(openapi, &method, path)
                .and_then(|op| op.responses.responses.get_mut(status))
            {
                let response: &mut Response = response;
                response.links.insert(name.to_owned(), RefOr::T(link));
            }
        }
    }
}

/// A response header: name, whether it is an integer, description.
type Header = (&'static str, bool, &'static str);

/// The error answers shared by many routes, as `components/responses`:
/// (name, status, description, headers).
const SHARED_ERRORS: [(&str, &str, &str, &[Header]); 9] = [
    (
        "BadRequest",
        "400",
        "A path, query, header or body value that does not parse or is out of range \
         (`invalid_request`, `invalid_query`, `invalid_path`, `invalid_payload`; `field` names it).",
        &[],
    ),
    (
        "Unauthorized",
        "401",
        "No API key, or one that is unknown, revoked or expired (`unauthorized`).",
        &[("WWW-Authenticate", false, "`Bearer realm=\"weft\"`")],
    ),
    (
        "Forbidden",
        "403",
        "The key's role or project does not allow this (`forbidden`).",
        &[],
    ),
    (
        "NotFound",
        "404",
        "No such resource, or one of another project (`not_found`).",
        &[],
    ),
    (
        "PayloadTooLarge",
        "413",
        "The body is larger than `api.body_limit` (`payload_too_large`).",
        &[],
    ),
    (
        "UnsupportedMediaType",
        "415",
        "The body is not `application/json` (`unsupported_media_type`).",
        &[],
    ),
    (
        "TooManyRequests",
        "429",
        "The key's rate limit is spent (`rate_limited`) or it has too many streams open \
         (`too_many_streams`).",
        &[("Retry-After", true, "Seconds until a request may succeed.")],
    ),
    (
        "Internal",
        "500",
        "A failure inside the host (`internal`); it is logged.",
        &[],
    ),
    (
        "Unavailable",
        "503",
        "The store failed or cannot take more (`store_error`, `store_locked`, `store_full`, \
         `store_incompatible`, `fenced`), or the host is stopping (`shutting_down`).",
        &[],
    ),
];

/// Lists on every operation the error answers the layers around its
/// handler can give, whatever the handler itself documents: 401, 403 and
/// 429 where a key is needed, 400 where it takes parameters or a body, 404
/// where a path names a resource, 413 and 415 where it takes a body, 500
/// everywhere and 503 where it reads the store. A handler's own entry for
/// a status (with its codes) is kept.
struct Errors;

impl Errors {
    fn response(description: &str, headers: &[Header]) -> Response {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build();
        let mut builder = ResponseBuilder::new()
            .description(description)
            .content("application/json", content);
        for (name, integer, about) in headers {
            let kind = if *integer {
                Type::Integer
            } else {
                Type::String
            };
            builder = builder.header(
                *name,
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(kind)))
                    .description(Some(*about))
                    .build(),
            );
        }
        builder.build()
    }

    /// The shared responses an operation can get.
    fn statuses(op: &Operation, open: bool) -> Vec<&'static str> {
        use utoipa::openapi::path::ParameterIn;
        let params = op.parameters.as_deref().unwrap_or_default();
        let json_body = op.request_body.as_ref().is_some_and(
            |b| matches!(b, RefOr::T(b) if b.content.contains_key("application/json")),
        );
        let mut statuses = vec!["Internal"];
        if !open {
            statuses.extend([
                "Unauthorized",
                "Forbidden",
                "TooManyRequests",
                "Unavailable",
            ]);
        }
        if !params.is_empty() || op.request_body.is_some() {
            statuses.push("BadRequest");
        }
        if params
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path)))
        {
            statuses.push("NotFound");
        }
        if op.request_body.is_some() {
            statuses.push("PayloadTooLarge");
        }
        if json_body {
            statuses.push("UnsupportedMediaType");
        }
        statuses
    }
}

impl Modify for Errors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::Ref;
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, _, description, headers) in SHARED_ERRORS {
            components.responses.insert(
                name.to_owned(),
                RefOr::T(Self::response(description, headers)),
            );
        }
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
            ];
            for op in ops.into_iter().flatten() {
                let open = op.security.as_ref().is_none_or(Vec::is_empty);
                for name in Self::statuses(op, open) {
                    let Some((_, status, _, _)) = SHARED_ERRORS.iter().find(|e| e.0 == name) else {
                        continue;
                    };
                    op.responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
}

/// What the types' annotations cannot say, written into the document:
/// bodies that take exactly one of several fields (as `oneOf`, each
/// variant closed, the other fields absent or `null`), and the names a
/// string field or query parameter takes (as `enum`). The handlers check
/// the same; `host/server/tests/schemathesis.rs` sends what the document
/// allows and expects it accepted, and what it forbids and expects it
/// refused.
fn constrain(doc: &mut Value) {
    let null = json!({"type": "null"});
    let schemas = &mut doc["components"]["schemas"];
    // One variant of `base` per required field: that field as `schema`,
    // the others of `exclusive` only as null.
    let variants = |base: &Value, exclusive: &[&str], required: &[(&str, Value)]| -> Value {
        let variants: Vec<Value> = required
            .iter()
            .map(|(field, schema)| {
                let mut v = base.clone();
                if let Some(obj) = v.as_object_mut() {
                    obj.remove("description");
                    obj.insert("additionalProperties".into(), Value::Bool(false));
                    obj.insert("required".into(), json!([field]));
                }
                for other in exclusive {
                    v["properties"][*other] = null.clone();
                }
                v["properties"][*field] = schema.clone();
                v
            })
            .collect();
        json!({"description": base["description"], "oneOf": variants})
    };
    let inject = schemas["InjectRequest"].clone();
    schemas["InjectRequest"] = variants(
        &inject,
        &["text", "body"],
        &[
            (
                "text",
                json!({"type": "string", "description": inject["properties"]["text"]["description"]}),
            ),
            (
                "body",
                json!({"description": inject["properties"]["body"]["description"],
                    "not": {"type": "null"}}),
            ),
        ],
    );
    let budget = schemas["BudgetChange"].clone();
    let tokens = |field: &str| {
        json!({"type": "integer", "minimum": 0, "maximum": u64::MAX,
            "description": budget["properties"][field]["description"]})
    };
    schemas["BudgetChange"] = variants(
        &budget,
        &["raise", "limit"],
        &[("raise", tokens("raise")), ("limit", tokens("limit"))],
    );
    let project = schemas["ProjectBudgetChange"].clone();
    let money = |field: &str| {
        json!({"type": "number", "minimum": 0, "maximum": weft_engine::MAX_MONEY,
            "description": project["properties"][field]["description"]})
    };
    let mut change = variants(
        &project,
        &["raise", "limit", "unlimited", "window"],
        &[
            ("raise", money("raise")),
            ("limit", money("limit")),
            (
                "unlimited",
                json!({"const": true, "description": project["properties"]["unlimited"]["description"]}),
            ),
        ],
    );
    // `window` goes with `limit` only.
    change["oneOf"][1]["properties"]["window"] = json!({
        "type": ["string", "null"], "enum": ["daily", "monthly", "none", null],
        "description": project["properties"]["window"]["description"],
    });
    schemas["ProjectBudgetChange"] = change;
    // An instance's config is its graph node's: only an empty one is taken.
    schemas["SpawnRequest"]["properties"]["config"]["maxProperties"] = json!(0);
    // Names a client may set or filter by.
    schemas["UpdateRequest"]["properties"]["status"]["enum"] =
        json!(["idle", "paused", "terminated", null]);
    let query_enum = |doc: &mut Value, path: &str, name: &str, names: Value| {
        if let Some(params) = doc["paths"][path]["get"]["parameters"].as_array_mut() {
            for p in params.iter_mut().filter(|p| p["name"] == name) {
                p["schema"]["enum"] = names.clone();
            }
        }
    };
    let run_statuses: Vec<&str> = crate::routes::threads::RUN_STATUSES
        .iter()
        .map(|s| s.as_str())
        .collect();
    query_enum(doc, "/api/v1/threads", "status", json!(run_statuses));
    query_enum(
        doc,
        "/api/v1/projects/{project}/agents",
        "status",
        json!(["idle", "working", "waiting", "paused", "terminated"]),
    );
}

/// The document, as served.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(Doc::openapi()).unwrap_or_default();
    constrain(&mut doc);
    doc
}

/// `/api/v1/openapi.json` and the docs page at `/api/v1/docs`.
pub(crate) fn docs() -> axum::Router {
    SwaggerUi::new("/api/v1/docs")
        .external_url_unchecked("/api/v1/openapi.json", document())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients generate one function per operation id.
    #[test]
    fn every_operation_id_is_unique() {
        let doc = document();
        let mut seen = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap_or(&serde_json::Map::new()) {
            for (method, op) in item.as_object().into_iter().flatten() {
                if let Some(id) = op["operationId"].as_str() {
                    assert!(seen.insert(id.to_owned()), "{method} {path}: `{id}` again");
                }
            }
        }
        assert!(seen.len() > 50);
    }

    /// Every link of [`link_specs`] is in the document: its source answer
    /// and its target operation exist, and its parameters are the target's.
    #[test]
    fn every_link_joins_two_documented_routes() {
        let doc = document();
        let mut found = 0;
        for (method, path, status, name, to_method, to_path, parameters) in link_specs() {
            let name_of = |m: &HttpMethod| {
                serde_json::to_value(m)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_lowercase))
                    .expect("a method is a string")
            };
            let (method, to_method) = (name_of(&method), name_of(&to_method));
            let link = &doc["paths"][path][&method]["responses"][status]["links"][name];
            let target = &doc["paths"][to_path][&to_method];
            assert!(
                link.is_object(),
                "{method} {path} {status}: no link `{name}`"
            );
            assert_eq!(link["operationId"], target["operationId"], "{name}");
            let declared: Vec<&str> = target["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            for (param, _) in parameters {
                assert!(declared.contains(param), "{to_path} takes no `{param}`");
            }
            found += 1;
        }
        // Thread routes from three answers, run routes (interrupts,
        // resume) from two, agent routes from one, a webhook's three
        // routes, and the key's revoke.
        assert_eq!(
            found,
            THREAD_ROUTES.len() * 3 + 2 * 2 + AGENT_ROUTES.len() + 3 + 1
        );
    }
}
