//! Wiring shared by the commands: tracing, the runtime, plugins, backends.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use weft_engine::{Backends, Engine, EngineConfig, PluginSet, Store};
use weft_runtime::capabilities::db::Database;
use weft_runtime::capabilities::llm::{LlmBackend, Scripted};
use weft_runtime::{Runtime, RuntimeConfig};

use crate::Common;
use crate::config::Config;

/// The OTLP exporter while it runs: dropping it sends the spans still
/// batched (at the end of `main`).
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: the last spans were not exported: {e}");
        }
    }
}

/// The spans the OTLP export takes: weft's own, at `info` and above,
/// whatever the log filter says.
fn exported_spans() -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new()
        .with_target("weft_api", tracing::Level::INFO)
        .with_target("weft_engine", tracing::Level::INFO)
        .with_target("weft_runtime", tracing::Level::INFO)
        .with_target("weft_llm", tracing::Level::INFO)
}

/// The OTLP exporter and the layer that feeds it.
fn otlp(
    section: &crate::config::TelemetrySection,
) -> Result<(
    opentelemetry_sdk::trace::SdkTracerProvider,
    impl tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync,
)> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    use tracing_subscriber::Layer as _;
    let endpoint = format!("{}/v1/traces", section.otlp_endpoint.trim_end_matches('/'));
    let url = reqwest::Url::parse(&endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    if url.is_none() {
        bail!(
            "telemetry.otlp_endpoint is not an http(s) URL: `{}`",
            section.otlp_endpoint
        );
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_millis(section.export_timeout_ms))
        .build()
        .context("the OTLP exporter's HTTP client")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_millis(section.export_timeout_ms))
        .build()
        .context("the OTLP exporter")?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(section.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("weft"))
        .with_filter(exported_spans());
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Ok((provider, layer))
}

/// Logs go to stderr so that stdout stays the command's output; with
/// `telemetry`, spans go to its OTLP collector too.
pub fn init_tracing(
    filter: &str,
    json: bool,
    telemetry: Option<&crate::config::TelemetrySection>,
) -> Result<Telemetry> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let (provider, otel) = match telemetry.map(otlp).transpose()? {
        Some((provider, layer)) => (Some(provider), Some(layer)),
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(otel)
        .with(fmt)
        .try_init();
    Ok(Telemetry { provider })
}

/// The runtime, with compiled components cached in the data folder.
pub fn runtime(common: &Common, section: &crate::config::RuntimeSection) -> Result<Arc<Runtime>> {
    if section.instances == 0 {
        bail!("runtime.instances must be at least 1");
    }
    let defaults = RuntimeConfig::default();
    let config = RuntimeConfig {
        cache_dir: Some(
            common
                .cache_dir
                .clone()
                .unwrap_or_else(|| common.data_dir.join("cache")),
        ),
        pool: defaults.pool.map(|pool| weft_runtime::PoolConfig {
            instances: section.instances,
            ..pool
        }),
        max_idle_instances: section.max_idle_instances,
        ..defaults
    };
    Ok(Arc::new(
        Runtime::new(config).with_context(|| {
            format!(
                "starting the WebAssembly runtime with {} instance slots (each reserves about 8 GiB of address space; lower `runtime.instances` in the config file if the system refuses)",
                section.instances
            )
        })?,
    ))
}

/// Loads every component of the plugin folder; broken ones are reported
/// and skipped.
pub async fn plugins(common: &Common, runtime: &Runtime) -> Result<Arc<PluginSet>> {
    let dir = &common.plugins;
    if !dir.is_dir() {
        bail!(
            "no plugin folder at {}: build the plugins with `cargo xtask build-plugins` or pass --plugins DIR",
            dir.display()
        );
    }
    let set = PluginSet::new();
    let skipped = set
        .load_dir(runtime, dir)
        .await
        .with_context(|| format!("reading {}", dir.display()))?;
    for s in skipped {
        tracing::info!(path = %s.path.display(), error = %s.error, "plugin not loaded");
    }
    Ok(Arc::new(set))
}

/// The config file named by `--config`, or the defaults.
pub fn config(common: &Common) -> Result<Config> {
    match &common.config {
        Some(path) => Config::load(path),
        None => Ok(Config::default()),
    }
}

/// The LLM backend: a script file if given, else the providers of the
/// config file, else the embedded local model (`--model`).
pub fn llm(common: &Common, script: Option<&Path>, config: &Config) -> Result<Arc<dyn LlmBackend>> {
    if let Some(path) = script {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the script {}", path.display()))?;
        let scripted = Scripted::from_json(&text)
            .with_context(|| format!("parsing the script {}", path.display()))?;
        return Ok(Arc::new(scripted));
    }
    match config.llm_backend()? {
        Some(backend) => Ok(backend),
        None => local_default(common),
    }
}

/// A model provider set after the engine is built: `weft run` loads the
/// model only when the graph grants `llm` to a node. Until then (and for
/// good, when no node may call it) every call is `unavailable`.
#[derive(Default)]
pub struct DeferredLlm {
    inner: std::sync::OnceLock<Arc<dyn LlmBackend>>,
}

impl DeferredLlm {
    /// Sets the provider (the first one set stays).
    pub fn load(&self, backend: Arc<dyn LlmBackend>) {
        let _ = self.inner.set(backend);
    }
}

impl LlmBackend for DeferredLlm {
    fn complete<'a>(
        &'a self,
        call: weft_runtime::capabilities::llm::LlmCall<'a>,
        request: weft_runtime::CompletionRequest,
    ) -> weft_runtime::capabilities::BoxFuture<
        'a,
        Result<weft_runtime::Completion, weft_runtime::CapabilityError>,
    > {
        match self.inner.get() {
            Some(backend) => backend.complete(call, request),
            None => Box::pin(async {
                Err(weft_runtime::CapabilityError::Unavailable(
                    "no model was loaded: the graph grants `llm` to no node".into(),
                ))
            }),
        }
    }
}

/// The embedded model at `--model`, with default settings.
#[cfg(feature = "local")]
pub fn local_default(common: &Common) -> Result<Arc<dyn LlmBackend>> {
    if common.model.is_none() && !common.model_path().is_file() {
        let looked: Vec<String> = Common::model_candidates()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        bail!(
            "the embedded model is needed but there is no model file: looked for {} in {}; download it with `cargo xtask fetch-model`, give --model FILE, or configure a provider (--config)",
            crate::DEFAULT_MODEL,
            looked.join(", ")
        );
    }
    let settings = weft_llm::LocalConfig {
        path: common.model_path(),
        ..weft_llm::LocalConfig::default()
    };
    crate::config::local_provider(&settings).context("loading the local model (--model)")
}

/// Without the `local` feature and without providers, every call is
/// `unavailable`, saying so.
#[cfg(not(feature = "local"))]
pub fn local_default(_: &Common) -> Result<Arc<dyn LlmBackend>> {
    Ok(Arc::new(weft_runtime::capabilities::llm::Unavailable))
}

/// The sample Eras database in the data folder, generated on first use.
pub fn database(common: &Common, path: Option<&Path>) -> Result<Arc<dyn Database>> {
    let path = match path {
        Some(p) => p.to_owned(),
        None => {
            let p = common.data_dir.join("eras.db");
            if !p.exists() {
                eprintln!("generating the sample Eras database at {} …", p.display());
            }
            std::fs::create_dir_all(&common.data_dir)
                .with_context(|| format!("creating {}", common.data_dir.display()))?;
            let summary = weft_db::eras::ensure(&p, &weft_db::eras::ErasSpec::default())
                .with_context(|| format!("preparing {}", p.display()))?;
            tracing::info!(%summary, "sample database ready");
            p
        }
    };
    let db = weft_db::SqliteDb::open(&path, weft_db::SqliteDbConfig::default())
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(Arc::new(db))
}

/// The SQLite store file: `--store`, else the config's `store.path`,
/// else `weft.db` in the data folder.
pub fn store_path(common: &Common, config: &Config) -> std::path::PathBuf {
    common
        .store
        .clone()
        .or_else(|| config.store.path.clone())
        .unwrap_or_else(|| common.data_dir.join("weft.db"))
}

/// Where the store is: a SQLite file, or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file (the default).
    File(std::path::PathBuf),
    /// A PostgreSQL database, by URL.
    Postgres(String),
}

impl std::fmt::Display for StoreLocation {
    /// The file, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => f.write_str(&weft_store::redact_url(url)),
        }
    }
}

/// The store: `--store` (a file, or a `postgres://` URL), else the
/// config's `store.url`, else its `store.path`, else `weft.db` in the data
/// folder.
pub fn store_location(common: &Common, config: &Config) -> StoreLocation {
    if let Some(store) = &common.store {
        let text = store.to_string_lossy();
        if weft_store::is_postgres_url(&text) {
            return StoreLocation::Postgres(text.into_owned());
        }
        return StoreLocation::File(store.clone());
    }
    if let Some(url) = &config.store.url {
        return StoreLocation::Postgres(url.clone());
    }
    StoreLocation::File(store_path(common, config))
}

/// The store settings of the config file.
pub fn store_options(config: &Config) -> weft_store::Options {
    weft_store::Options {
        sync: match config.store.sync {
            crate::config::SyncSetting::Full => weft_store::Sync::Full,
            crate::config::SyncSetting::Normal => weft_store::Sync::Normal,
        },
        max_bytes: config.store.max_size_mb.map(|mb| mb << 20),
        ..weft_store::Options::default()
    }
}

/// Opens the store (checking it, migrating it).
pub async fn open_store(common: &Common, config: &Config) -> Result<Arc<dyn Store>> {
    match store_location(common, config) {
        StoreLocation::File(path) => {
            let store = weft_store::SqliteStore::open(&path, store_options(config))
                .with_context(|| format!("opening the store {}", path.display()))?;
            Ok(Arc::new(store))
        }
        StoreLocation::Postgres(url) => {
            let store = weft_store::PostgresStore::open(&url, weft_store::PgOptions::default())
                .await
                .with_context(|| format!("opening the store {}", weft_store::redact_url(&url)))?;
            Ok(Arc::new(store))
        }
    }
}

/// Opens the store for reading: a SQLite file without its lock (a running
/// weft may hold it; writes fail); a PostgreSQL database as usual (hosts
/// share it).
pub async fn read_store(common: &Common, config: &Config) -> Result<Arc<dyn Store>> {
    match store_location(common, config) {
        StoreLocation::File(path) => {
            let store = weft_store::SqliteStore::open_read_only(&path)
                .with_context(|| format!("opening the store {} for reading", path.display()))?;
            Ok(Arc::new(store))
        }
        StoreLocation::Postgres(_) => open_store(common, config).await,
    }
}

/// An engine over `plugins` with the given backends, budgets and prices,
/// committing to the store unless `--ephemeral`.
pub async fn engine(
    common: &Common,
    runtime: Arc<Runtime>,
    plugins: Arc<PluginSet>,
    llm: Arc<dyn LlmBackend>,
    db: Arc<dyn Database>,
    config: &Config,
) -> Result<Arc<Engine>> {
    let store = if common.ephemeral {
        None
    } else {
        Some(open_store(common, config).await?)
    };
    engine_on(
        runtime,
        plugins,
        llm,
        db,
        config,
        store,
        common.host_id.clone(),
    )
    .await
}

/// How often a host on a shared store looks for runs to take over.
pub const TAKEOVER_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// An engine on `store` (none: nothing is kept), named `host_id` in the
/// leases of a shared store.
pub async fn engine_on(
    runtime: Arc<Runtime>,
    plugins: Arc<PluginSet>,
    llm: Arc<dyn LlmBackend>,
    db: Arc<dyn Database>,
    config: &Config,
    store: Option<Arc<dyn Store>>,
    host_id: Option<String>,
) -> Result<Arc<Engine>> {
    let engine_config = EngineConfig {
        budget: config.budget.clone(),
        prices: config.prices(),
        retention: config
            .store
            .retention
            .as_ref()
            .map(|r| weft_engine::Retention {
                max_age: r.max_age,
                every: r.every,
            }),
        host_id: host_id.unwrap_or_else(weft_engine::default_host_id),
        // On a shared (PostgreSQL) store, runs whose lease expired are
        // taken over on this interval; the bus adds wake-ups on top.
        leases: weft_engine::LeaseConfig {
            takeover_every: Some(TAKEOVER_EVERY),
            ..weft_engine::LeaseConfig::default()
        },
        ..EngineConfig::default()
    };
    let servers = config.tools.settings().map_err(anyhow::Error::msg)?;
    let tools: Arc<dyn weft_engine::ToolBox> = if servers.is_empty() {
        weft_engine::Backends::no_tools()
    } else {
        Arc::new(crate::mcp_tools::McpTools::new(servers))
    };
    let backends = Backends { llm, db, tools };
    let Some(store) = store else {
        return Ok(Engine::new(runtime, plugins, backends, engine_config));
    };
    Engine::open(runtime, plugins, backends, engine_config, store)
        .await
        .context("restoring usage and budgets from the store")
}

/// Continues the runs a previous process left unfinished, reporting each
/// on stderr; returns their handles.
pub async fn resume(engine: &Arc<Engine>) -> Result<Vec<weft_engine::RunHandle>> {
    if engine.store().is_none() {
        return Ok(Vec::new());
    }
    let (resumed, failed) = engine.resume_runs().await?;
    if !resumed.is_empty() {
        eprintln!(
            "resuming {} unfinished run(s) from their last committed frame",
            resumed.len()
        );
    }
    for (run, error) in &failed {
        eprintln!("run {run} cannot resume: {error}");
    }
    Ok(resumed)
}
