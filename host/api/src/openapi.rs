//! The OpenAPI 3 document, generated from the handlers' annotations, and
//! the docs page (Swagger UI, served from the binary: it works offline).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{KeyInfo, Role};
use crate::error::{ErrorBody, ErrorDetail};
use crate::reload::ConfigReload;
use crate::routes::agents::{self, Agent, AgentDetail};
use crate::routes::graphs::{
    self, GraphChange, GraphDetail, GraphView, ReloadError, ReloadReport, SwitchGraph,
};
use crate::routes::instances::{
    self, InstanceMetrics, InstanceView, SpawnRequest, TaskAccepted, TaskRequest, UpdateRequest,
};
use crate::routes::keys::{self, KeyCreated, KeyRequest};
use crate::routes::messages::{self, Accepted, InjectRequest, MessageView, SendRequest};
use crate::routes::organism::{self, Health, OrganismInfo};
use crate::routes::plugins::{self, Capability, CapabilityDetail, PluginView, SwapView};
use crate::routes::threads::{self, ForkRequest, Forked, Killed, ResultView, RunView, ThreadView};
use crate::routes::usage::{self, BudgetChange, BudgetView, ProjectBudgetChange};
use crate::routes::{events, sockets};

#[derive(OpenApi)]
#[openapi(
    info(title = "weft operators' API", description = "Threads, runs, frames, agents, usage and keys of a weft host."),
    paths(
        organism::health, organism::ready, organism::scrape,
        organism::organism, organism::organism_config, organism::organism_stop,
        graphs::graphs, graphs::active_graph, graphs::switch_graph, graphs::graph, plugins::plugins,
        agents::agents, agents::agent, agents::pause_agent, agents::resume_agent,
        threads::threads, threads::thread, messages::thread_messages, threads::thread_runs,
        threads::thread_frames, threads::result, threads::kill, threads::fork,
        messages::inject, messages::send, threads::frames, usage::usage, usage::usage_threads,
        usage::set_budget, keys::keys, keys::create_key, keys::revoke_key, events::sse,
        sockets::chat, sockets::events,
        instances::spawn, instances::list, instances::detail,
        instances::update, instances::pause, instances::resume,
        instances::terminate, instances::task, instances::project_metrics,
        instances::metrics,
        plugins::capabilities, plugins::capability, messages::messages,
        usage::usage_node, usage::usage_model, graphs::reload,
        plugins::reload_plugin, plugins::upload_plugin, organism::reload_config,
        usage::project_budget, usage::set_project_budget, usage::reset_usage,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, Health, OrganismInfo, Agent, AgentDetail, GraphView, GraphDetail,
        SwitchGraph, PluginView, ThreadView, MessageView, RunView, InjectRequest, Accepted,
        SendRequest, ResultView, Killed, ForkRequest, Forked, BudgetView, BudgetChange,
        KeyRequest, KeyCreated, KeyInfo, Role,
        InstanceView, SpawnRequest, UpdateRequest, TaskRequest, TaskAccepted, InstanceMetrics,
        Capability, CapabilityDetail, GraphChange, ReloadReport, ReloadError, ProjectBudgetChange,
        SwapView, ConfigReload,
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
