//! The OpenAPI 3 document, generated from the handlers' annotations, and
//! the docs page (Swagger UI, served from the binary: it works offline).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{KeyInfo, Role};
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::*;

#[derive(OpenApi)]
#[openapi(
    info(title = "weft operators' API", description = "Threads, runs, frames, agents, usage and keys of a weft host."),
    paths(
        health, ready, crate::metrics::scrape,
        organism, organism_config, organism_stop,
        graphs, active_graph, switch_graph, graph, plugins,
        agents, agent, pause_agent, resume_agent,
        threads, thread, thread_messages, thread_runs, thread_frames, result, kill, fork,
        inject, send, frames, usage, usage_threads, set_budget,
        keys, create_key, revoke_key, crate::events::sse, crate::ws::chat, crate::ws::events,
        crate::instances::spawn, crate::instances::list, crate::instances::detail,
        crate::instances::update, crate::instances::pause, crate::instances::resume,
        crate::instances::terminate, crate::instances::task, crate::instances::project_metrics,
        crate::instances::metrics,
        crate::more::capabilities, crate::more::capability, crate::more::messages,
        crate::more::usage_node, crate::more::usage_model, crate::changes::reload,
        crate::changes::reload_plugin, crate::changes::upload_plugin, crate::changes::reload_config,
        crate::more::project_budget, crate::more::set_project_budget, crate::more::reset_usage,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, Health, OrganismInfo, Agent, AgentDetail, GraphView, GraphDetail,
        SwitchGraph, PluginView, ThreadView, MessageView, RunView, InjectRequest, Accepted,
        SendRequest, ResultView, Killed, ForkRequest, Forked, BudgetView, BudgetChange,
        KeyRequest, KeyCreated, KeyInfo, Role,
        crate::instances::InstanceView, crate::instances::SpawnRequest,
        crate::instances::UpdateRequest, crate::instances::TaskRequest,
        crate::instances::TaskAccepted, crate::instances::InstanceMetrics,
        crate::more::Capability, crate::more::CapabilityDetail, crate::changes::GraphChange,
        crate::changes::ReloadReport, crate::changes::ReloadError, crate::more::ProjectBudgetChange,
        crate::changes::SwapView, crate::changes::ConfigReload,
    )),
    modifiers(&Security),
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

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// `/api/v1/openapi.json` and the docs page at `/api/v1/docs`.
pub(crate) fn docs() -> axum::Router {
    SwaggerUi::new("/api/v1/docs")
        .url("/api/v1/openapi.json", document())
        .into()
}
