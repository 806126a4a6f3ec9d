//! The host's config file (`weft.yaml`, `--config FILE`).
//!
//! ```yaml
//! llm:
//!   providers:
//!     - { kind: local, name: local, path: models/SmolLM2-135M-Instruct.Q4_1.gguf, threads: 1 }
//!     - { kind: openai, name: ollama, base_url: "http://127.0.0.1:11434/v1", default_model: "smollm2:135m" }
//!     - { kind: openai, name: openai, base_url: "https://api.openai.com/v1", api_key_env: OPENAI_API_KEY }
//!   models:            # a node's `model` -> providers in priority order (failover)
//!     small: [ollama]
//!     large: [openai, ollama]
//!   default: [ollama]  # models without a route of their own
//! budget:
//!   thread_tokens: 100000            # per thread
//!   project_money: { limit: 5.0, window: daily }   # per project and UTC day (daily | monthly | none)
//!   projects:                        # overrides for single projects
//!     acme: { limit: 50.0, window: monthly }
//! prices:
//!   - { prefix: gpt-4o-mini, prompt_per_million: 0.15, completion_per_million: 0.6 }
//! store:
//!   path: data/weft.db               # default: weft.db in the data folder (--store overrides)
//!   sync: full                       # full (survives power loss) | normal (survives a crash)
//!   max_size_mb: 10240               # commits beyond this fail with store_full
//!   retention: { max_age: 30d, every: 1h }   # prune finished threads in the background
//! runtime:
//!   instances: 10000                 # plugin instances live at once; more ticks wait for a slot
//!   max_idle_instances: 256          # kept between ticks for nodes with `instance: reuse`
//! tools:                             # MCP servers whose tools graphs may grant to nodes
//!   servers:
//!     clock: { command: weft, args: [tools-server] }
//!     search: { url: "http://127.0.0.1:9000/mcp", timeout_ms: 10000 }
//! bus:                               # several hosts on one NATS JetStream server (`weft serve`)
//!   url: nats://127.0.0.1:4222       # --bus overrides
//!   cluster: weft                    # prefix of the stream and subjects
//!   history: 100000                  # events kept for clients that resume
//! ```
//!
//! Every key is checked: an unknown key, a route to a provider that is not
//! defined or a missing API key variable is an error naming it.
//!
//! The file is read like a graph file: at most [`MAX_CONFIG_BYTES`], parsed
//! within the graph loader's budget (nesting, aliases, anchors, values; see
//! [`weft_engine::graph::yaml_options`]) with duplicate keys an error, and
//! each way it can fail is a [`ConfigError`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::Deserialize;
use weft_engine::{BudgetConfig, Price, PriceTable};
use weft_llm::{Failover, ModelRouter, OpenAiConfig, OpenAiProvider};
use weft_runtime::capabilities::llm::LlmBackend;

mod api;
pub mod tools;
mod webhooks;
pub use api::ApiSection;
pub use tools::ToolsSection;
pub use webhooks::WebhookSection;

/// A weft config file (`--config FILE`, `WEFT_CONFIG`): model providers
/// and routes, budgets, prices, the store, the operators' API, the
/// runtime and the bus of several hosts. Every section is optional.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "weft config file")]
pub struct Config {
    /// Model providers and routes.
    #[serde(default)]
    pub llm: LlmSection,
    /// Token budgets per thread, money budgets per project.
    #[serde(default)]
    pub budget: BudgetConfig,
    /// Prices per million tokens (finite, at least 0).
    #[serde(default, deserialize_with = "prices")]
    #[schemars(with = "Vec<Price>")]
    pub prices: Vec<Price>,
    /// The durable store.
    #[serde(default)]
    pub store: StoreSection,
    /// The operators' API of `weft serve`.
    #[serde(default)]
    pub api: ApiSection,
    /// The WebAssembly runtime.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// The bus shared by several hosts (`weft serve`; none: this host's own).
    #[serde(default)]
    pub bus: Option<BusSection>,
    /// Traces exported over OTLP (`weft serve`; none: not exported).
    #[serde(default)]
    pub telemetry: Option<TelemetrySection>,
    /// How webhooks are delivered (`weft serve`).
    #[serde(default)]
    pub webhooks: WebhookSection,
    /// The MCP servers whose tools graphs may grant to nodes (the `tools`
    /// capability).
    #[serde(default)]
    pub tools: ToolsSection,
}

/// `telemetry:`: OpenTelemetry traces of `weft serve`, exported over OTLP
/// (HTTP with protobuf) in batches: a span per API request (continuing the
/// caller's `traceparent`), run, frame, node invocation and host call, with
/// the GenAI attributes on `llm` calls.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// The OTLP/HTTP endpoint of a collector, e.g. `http://127.0.0.1:4318`
    /// (traces go to `/v1/traces` under it).
    pub otlp_endpoint: String,
    /// The `service.name` of the spans (default `weft`).
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Milliseconds an export may take before it is dropped (default
    /// 10000); the spans are batched, so the runs never wait for it.
    #[serde(default = "default_export_timeout_ms")]
    pub export_timeout_ms: u64,
}

fn default_service_name() -> String {
    "weft".to_owned()
}

fn default_export_timeout_ms() -> u64 {
    10_000
}

/// `bus:`: NATS JetStream, for several hosts forming one system.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BusSection {
    /// The NATS server (`nats://HOST:PORT`); `--bus` wins.
    pub url: String,
    /// Prefix of the stream and subjects (letters, digits, `-`, `_`):
    /// systems with different names share a NATS server unseen.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// Events the stream keeps for clients that resume.
    #[serde(default = "default_bus_history")]
    pub history: u64,
}

fn default_cluster() -> String {
    "weft".to_owned()
}

fn default_bus_history() -> u64 {
    100_000
}

/// The WebAssembly runtime.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSection {
    /// Plugin instances live at once: ticks running, and ticks waiting on
    /// a host call (a model answer). A tick beyond this waits for a slot.
    /// Each slot reserves about 8 GiB of address space, not memory (see
    /// [`weft_runtime::PoolConfig::instances`]): 10,000 is about as many as
    /// a process has room for.
    pub instances: u32,
    /// Most instances kept idle between ticks for nodes with
    /// `instance: reuse` (all nodes and projects together); beyond it the
    /// least recently used is dropped. 0 keeps none (every tick fresh).
    pub max_idle_instances: usize,
}

/// The default `runtime.instances`: 10,000 runs waiting on a model at once.
pub const DEFAULT_INSTANCES: u32 = 10_000;

impl Default for RuntimeSection {
    fn default() -> Self {
        Self {
            instances: DEFAULT_INSTANCES,
            max_idle_instances: weft_runtime::RuntimeConfig::default().max_idle_instances,
        }
    }
}

impl Config {
    /// What operators may see of the config: names, routes, limits and
    /// prices; no keys, no key variables, no URLs with credentials.
    pub fn public(&self) -> serde_json::Value {
        let providers: Vec<serde_json::Value> = self
            .llm
            .providers
            .iter()
            .map(|p| match p {
                ProviderConfig::Openai(c) => serde_json::json!({
                    "kind": "openai", "name": c.name,
                    "baseUrl": strip_credentials(&c.base_url),
                    "defaultModel": c.default_model,
                }),
                ProviderConfig::Local(_) => serde_json::json!({
                    "kind": "local", "name": p.name(),
                }),
            })
            .collect();
        serde_json::json!({
            "llm": { "providers": providers, "models": self.llm.models, "default": self.llm.default },
            "budget": self.budget,
            "prices": self.prices,
            "store": {
                "sync": format!("{:?}", self.store.sync).to_lowercase(),
                "maxSizeMb": self.store.max_size_mb,
                "retention": self.store.retention.as_ref().map(|r| serde_json::json!({
                    "maxAgeSeconds": r.max_age.as_secs(), "everySeconds": r.every.as_secs()
                })),
            },
            "api": {
                "ratePerMinute": self.api.rate_per_minute, "burst": self.api.burst,
                "bodyLimitKb": self.api.body_limit_kb, "cors": self.api.cors,
                "eventHistory": self.api.event_history,
                "streamsPerKey": self.api.streams_per_key,
                "uploadLimitKb": self.api.upload_limit_kb,
                "headerReadTimeoutMs": self.api.header_read_timeout_ms,
                "bodyReadTimeoutMs": self.api.body_read_timeout_ms,
                "maxConnections": self.api.max_connections,
                "oidc": self.api.oidc.as_ref().map(|o| serde_json::json!({
                    "issuer": o.issuer, "audience": o.audience,
                    "roleClaim": o.role_claim, "projectClaim": o.project_claim,
                })),
            },
            "bus": self.bus.as_ref().map(|b| serde_json::json!({
                "url": strip_credentials(&b.url), "cluster": b.cluster, "history": b.history,
            })),
            // Servers by name, with where they are but no headers, token
            // variables, arguments or environment (any may hold a secret).
            "tools": {
                "builtin": self.tools.builtin,
                "servers": self.tools.servers.iter().map(|(name, s)| (name.clone(), serde_json::json!({
                    "url": s.url.as_deref().map(strip_credentials),
                    "command": s.command,
                    "timeoutMs": s.timeout_ms,
                    "maxResultKb": s.max_result_kb,
                }))).collect::<serde_json::Map<_, _>>(),
            },
        })
    }
}

/// `https://user:secret@host/v1?key=secret#x` → `https://host/v1`: no
/// user info, no query, no fragment (any of them may hold a key).
fn strip_credentials(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some(scheme) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..scheme + 3], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The durable store: where it is, how it syncs, how large it may grow
/// and what is pruned.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The SQLite file (`--store` overrides; default `weft.db` in the data folder).
    pub path: Option<std::path::PathBuf>,
    /// A PostgreSQL database instead of the file,
    /// `postgres://user:password@host:port/database` (`--store` overrides).
    pub url: Option<String>,
    /// `full` (the default) or `normal`.
    #[serde(default)]
    pub sync: SyncSetting,
    /// Size cap in MiB.
    pub max_size_mb: Option<u64>,
    /// Background pruning of finished threads.
    pub retention: Option<RetentionSection>,
}

/// When a commit is flushed to disk.
#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncSetting {
    /// fsync every commit.
    #[default]
    Full,
    /// fsync at checkpoints.
    Normal,
}

/// Background pruning of finished threads (usage totals are kept).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Threads finished longer ago than this are pruned, e.g. `30d`.
    #[serde(deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub max_age: std::time::Duration,
    /// How often the job runs (default `1h`), e.g. `15m`.
    #[serde(default = "hourly", deserialize_with = "duration")]
    #[schemars(with = "String")]
    pub every: std::time::Duration,
}

/// `prices:`, each price finite and at least 0 (a negative price would
/// refund the money budgets, a NaN one would never exhaust them).
fn prices<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Price>, D::Error> {
    let prices = Vec::<Price>::deserialize(d)?;
    for p in &prices {
        for (field, value) in [
            ("prompt_per_million", p.prompt_per_million),
            ("completion_per_million", p.completion_per_million),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(serde::de::Error::custom(format!(
                    "prices: `{field}` of prefix `{}` must be finite and at least 0, not {value}",
                    p.prefix
                )));
            }
        }
    }
    Ok(prices)
}

fn hourly() -> std::time::Duration {
    std::time::Duration::from_secs(3600)
}

/// A duration written like `30d`, `12h`, `90s`.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let text = String::deserialize(d)?;
    let value = humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!("`{text}` is not a duration like 30d or 12h: {e}"))
    })?;
    if value.is_zero() {
        return Err(serde::de::Error::custom("the duration must be more than 0"));
    }
    Ok(value)
}

/// Model providers and which models each serves. Without providers, the
/// embedded model answers every model name.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmSection {
    /// The providers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Model name → provider names, in priority order.
    #[serde(default)]
    pub models: BTreeMap<String, Vec<String>>,
    /// Providers for models without a route.
    #[serde(default)]
    pub default: Vec<String>,
}

/// One provider: `kind: openai` (an OpenAI-compatible endpoint) or
/// `kind: local` (a GGUF model run in-process).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderConfig {
    /// An OpenAI-compatible chat-completions endpoint.
    Openai(OpenAiConfig),
    /// A GGUF model run in-process (the embedded default).
    Local(LocalSettings),
}

/// `kind: local` settings. Without the `local` cargo feature the binary
/// still reads them, and refuses to start with a message saying why.
#[cfg(feature = "local")]
pub type LocalSettings = weft_llm::LocalConfig;
/// `kind: local` settings (this binary was built without the provider).
#[cfg(not(feature = "local"))]
pub type LocalSettings = serde_json::Value;

impl ProviderConfig {
    fn name(&self) -> &str {
        match self {
            Self::Openai(c) => &c.name,
            #[cfg(feature = "local")]
            Self::Local(c) => &c.name,
            #[cfg(not(feature = "local"))]
            Self::Local(c) => c.get("name").and_then(|n| n.as_str()).unwrap_or("local"),
        }
    }
}

/// Loads the embedded model (blocking: call it before serving).
#[cfg(feature = "local")]
pub fn local_provider(settings: &LocalSettings) -> Result<Arc<dyn LlmBackend>> {
    Ok(Arc::new(weft_llm::LocalProvider::load(settings.clone())?))
}

/// Refuses: this binary has no embedded provider.
#[cfg(not(feature = "local"))]
pub fn local_provider(_: &LocalSettings) -> Result<Arc<dyn LlmBackend>> {
    bail!(
        "this weft was built without the `local` feature, so it cannot run a local model; rebuild with `--features local` or configure an `openai` provider"
    )
}

/// Largest config file read, in bytes: 1 MiB, as for graph files. A file
/// is read only up to this size.
pub const MAX_CONFIG_BYTES: usize = weft_engine::graph::MAX_GRAPH_BYTES;

/// Why a config file did not load.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading the config {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("the config {file} is larger than {} KiB, the most a config file may have", MAX_CONFIG_BYTES >> 10)]
    TooLarge {
        /// The file.
        file: String,
    },
    /// The file is not UTF-8 text.
    #[error("the config {file} is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// The file.
        file: String,
        /// Where the first invalid byte is.
        offset: usize,
    },
    /// The parser stopped at one of its limits (an alias bomb, deep nesting,
    /// too many values).
    #[error("the config {file} is over the loader's limits: {source}")]
    Limit {
        /// The file.
        file: String,
        /// What the parser said.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// The file is not YAML, or not shaped like a config file (an unknown
    /// key, a wrong type, a duplicate key, a value out of range).
    #[error("in the config {file}: {source}")]
    Invalid {
        /// The file.
        file: String,
        /// What the parser said.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
}

impl Config {
    /// Reads and checks a config file (a [`ConfigError`] inside the error).
    pub fn load(path: &Path) -> Result<Self> {
        Ok(Self::read(path)?)
    }

    /// Reads and checks a config file, reading at most [`MAX_CONFIG_BYTES`].
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        use std::io::Read;
        let file = path.display().to_string();
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES as u64 + 1).read_to_end(&mut bytes))
            .map_err(|source| ConfigError::Read {
                file: file.clone(),
                source,
            })?;
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge { file });
        }
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::NotUtf8 {
            file: file.clone(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let file = file.to_owned();
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge { file });
        }
        serde_saphyr::from_str_with_options(text, weft_engine::graph::yaml_options()).map_err(
            |source| {
                let source = Box::new(source);
                if weft_engine::graph::is_yaml_limit(&source) {
                    ConfigError::Limit { file, source }
                } else {
                    ConfigError::Invalid { file, source }
                }
            },
        )
    }

    /// The price table.
    pub fn prices(&self) -> PriceTable {
        PriceTable {
            entries: self.prices.clone(),
        }
    }

    /// Checks the providers and routes as [`llm_backend`](Self::llm_backend)
    /// does, without building a provider (no model is loaded, no API key
    /// variable read): unique provider names, routes naming defined
    /// providers, no empty route.
    pub fn check_routes(&self) -> Result<()> {
        let section = &self.llm;
        if section.providers.is_empty() {
            if !section.models.is_empty() || !section.default.is_empty() {
                bail!("llm: routes are configured but no providers");
            }
            return Ok(());
        }
        let mut names = std::collections::BTreeSet::new();
        for p in &section.providers {
            if !names.insert(p.name()) {
                bail!("llm.providers: the name `{}` is used twice", p.name());
            }
        }
        let routes = section
            .models
            .iter()
            .map(|(model, list)| (format!("llm.models.{model}"), list))
            .chain(
                (!section.default.is_empty()).then(|| ("llm.default".to_owned(), &section.default)),
            );
        for (at, list) in routes {
            if list.is_empty() {
                bail!("{at}: the list of providers is empty");
            }
            for name in list {
                if !names.contains(name.as_str()) {
                    bail!("{at}: no provider named `{name}` (defined: {names:?})");
                }
            }
        }
        Ok(())
    }

    /// The LLM backend the routes describe, or `None` when no provider is
    /// configured. Local models are loaded here.
    pub fn llm_backend(&self) -> Result<Option<Arc<dyn LlmBackend>>> {
        let section = &self.llm;
        if section.providers.is_empty() {
            if !section.models.is_empty() || !section.default.is_empty() {
                bail!("llm: routes are configured but no providers");
            }
            return Ok(None);
        }
        let mut providers: BTreeMap<&str, Arc<dyn LlmBackend>> = BTreeMap::new();
        for p in &section.providers {
            let backend: Arc<dyn LlmBackend> = match p {
                ProviderConfig::Openai(c) => Arc::new(OpenAiProvider::new(c.clone())?),
                ProviderConfig::Local(c) => {
                    local_provider(c).with_context(|| format!("llm.providers: `{}`", p.name()))?
                }
            };
            if providers.insert(p.name(), backend).is_some() {
                bail!("llm.providers: the name `{}` is used twice", p.name());
            }
        }
        let chain = |names: &[String], at: &str| -> Result<Arc<dyn LlmBackend>> {
            let mut chain = Vec::new();
            for name in names {
                let backend = providers.get(name.as_str()).with_context(|| {
                    format!(
                        "{at}: no provider named `{name}` (defined: {:?})",
                        providers.keys()
                    )
                })?;
                chain.push(Arc::clone(backend));
            }
            Ok(match chain.len() {
                0 => bail!("{at}: the list of providers is empty"),
                1 => chain.remove(0),
                _ => Arc::new(Failover::new(chain)),
            })
        };
        let default = if section.default.is_empty() {
            // One provider and no explicit default: it answers everything.
            providers
                .values()
                .next()
                .filter(|_| providers.len() == 1)
                .map(Arc::clone)
        } else {
            Some(chain(&section.default, "llm.default")?)
        };
        let mut router = ModelRouter::new(default);
        for (model, names) in &section.models {
            router = router.route(model.clone(), chain(names, &format!("llm.models.{model}"))?);
        }
        Ok(Some(Arc::new(router)))
    }
}

#[cfg(test)]
mod tests;
