//! `weft serve`: the host with the operators' API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use weft_api::{Api, ApiConfig, Keys};
use weft_engine::Catalog;

use crate::run_cmd::{BackendArgs, engine_with};
use crate::{Common, setup};

/// Arguments of `weft serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port to listen on.
    #[arg(long, env = "WEFT_PORT", default_value_t = 8080)]
    port: u16,
    /// Address to bind.
    #[arg(long, env = "WEFT_BIND", default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// The graph new threads run.
    #[arg(long, default_value = "graphs/assistant.yaml")]
    graph: PathBuf,
    /// Every graph file here is served too (switch with
    /// `PUT /api/v1/graphs/active`).
    #[arg(long, default_value = "graphs")]
    graphs: PathBuf,
    /// The API key file (hashed keys); default `keys.json` in the data folder.
    #[arg(long, env = "WEFT_KEYS")]
    keys: Option<PathBuf>,
    /// The first admin key, when the key file has none yet (otherwise one
    /// is generated and printed once).
    #[arg(long, env = "WEFT_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Swap plugins whose component files change (in the plugin folder)
    /// and reload graphs whose files change, while serving.
    #[arg(long)]
    watch: bool,
    /// How long a graceful stop waits for runs to reach a frame boundary.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    stop_timeout: Duration,
    /// The bus of several hosts forming one system (`nats://HOST:PORT`, a
    /// NATS server with JetStream); overrides the config's `bus.url`.
    /// Without it (and without `bus:`), this host's own bus.
    #[arg(long, env = "WEFT_BUS")]
    bus: Option<String>,
    #[command(flatten)]
    backends: BackendArgs,
}

pub async fn run(common: &Common, args: ServeArgs) -> Result<ExitCode> {
    let config = setup::config(common)?;
    let bus = crate::bus::connect(
        args.bus.as_deref(),
        config.bus.as_ref(),
        ApiConfig::default().client_buffer,
    )
    .await?;
    let engine = engine_with(common, &args.backends, &config).await?;
    if let Some(bus) = &bus {
        engine.attach_bus(Arc::clone(bus));
    }
    let catalog = Arc::new(Catalog::new(Arc::clone(&engine)));
    let active = engine
        .load_graph(&args.graph)
        .await
        .with_context(|| format!("loading the active graph {}", args.graph.display()))?;
    let active_name = active.graph().name().to_owned();
    catalog.insert(active);
    if let Ok(dir) = std::fs::read_dir(&args.graphs) {
        let mut files: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        for file in files {
            match engine.load_graph(&file).await {
                Ok(g) if catalog.get(g.graph().name()).is_none() => catalog.insert(g),
                Ok(_) => {}
                Err(e) => tracing::warn!(file = %file.display(), error = %e, "graph not served"),
            }
        }
    }
    catalog.activate(&active_name)?;
    catalog.keep_versions().await;
    let keys_path = args
        .keys
        .clone()
        .unwrap_or_else(|| common.data_dir.join("keys.json"));
    let keys = Arc::new(Keys::open(&keys_path).map_err(anyhow::Error::msg)?);
    if let Some(key) = keys
        .bootstrap(args.admin_key.as_deref())
        .map_err(anyhow::Error::msg)?
    {
        eprintln!(
            "created the first admin API key (shown only now; its hash is in {}):\n\n    {key}\n",
            keys_path.display()
        );
    }
    let resumed = setup::resume(&engine).await?;
    let oidc = match &config.api.oidc {
        None => None,
        Some(o) => {
            let jwks = match (&o.jwks_file, &o.jwks_url) {
                (Some(file), None) => weft_api::oidc::JwksSource::File(file.clone()),
                (None, Some(url)) => weft_api::oidc::JwksSource::Url(url.clone()),
                _ => anyhow::bail!("api.oidc: give exactly one of jwks_file and jwks_url"),
            };
            let settings = weft_api::oidc::OidcConfig {
                issuer: o.issuer.clone(),
                audience: o.audience.clone(),
                jwks,
                role_claim: o.role_claim.clone(),
                project_claim: o.project_claim.clone(),
                default_role: o.default_role.unwrap_or(weft_api::Role::Viewer),
                sign_in: o.sign_in.as_ref().map(|s| weft_api::oidc::SignIn {
                    client_id: s.client_id.clone(),
                    authorization_endpoint: s.authorization_endpoint.clone(),
                    token_endpoint: s.token_endpoint.clone(),
                    scopes: s.scopes.clone(),
                    token: s.token.clone(),
                }),
            };
            if let Some(sign_in) = &settings.sign_in {
                sign_in
                    .check()
                    .map_err(anyhow::Error::msg)
                    .context("api.oidc")?;
            }
            Some(
                weft_api::oidc::Oidc::load(settings)
                    .await
                    .map_err(anyhow::Error::msg)
                    .context("api.oidc")?,
            )
        }
    };
    let reloader = match &common.config {
        Some(path) => Some(Arc::new(crate::reload::Reloader::new(
            path.clone(),
            Arc::clone(&engine),
            common.clone(),
            args.backends.script.is_some(),
            config.clone(),
        )) as Arc<dyn weft_api::ConfigReloader>),
        None => None,
    };
    let api_config = ApiConfig {
        oidc,
        reloader,
        rate_per_minute: config.api.rate_per_minute,
        burst: config.api.burst,
        body_limit: config.api.body_limit_kb.saturating_mul(1024),
        upload_limit: config.api.upload_limit_kb.saturating_mul(1024),
        cors_origins: config.api.cors.clone(),
        event_history: config.api.event_history,
        streams_per_key: config.api.streams_per_key,
        multitask: config.api.multitask,
        public_config: config.public(),
        bus: bus.clone(),
        webhooks: config
            .webhooks
            .settings()
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        ..ApiConfig::default()
    };
    let agents = weft_engine::Agents::open(Arc::clone(&engine))
        .await
        .context("loading the agent instances")?;
    let api = Api::new(Arc::clone(&catalog), agents, keys, api_config);
    if bus.is_some() {
        crate::bus::start(&api, &catalog);
    }
    let _watcher = if args.watch {
        let mut graph_dirs = vec![args.graphs.clone()];
        if let Some(dir) = args.graph.parent().filter(|d| !d.as_os_str().is_empty()) {
            graph_dirs.push(dir.to_owned());
        }
        Some(crate::watch::start(
            Arc::clone(&api),
            Arc::clone(&catalog),
            &common.plugins,
            &graph_dirs,
            common.config.as_deref(),
        )?)
    } else {
        None
    };
    #[cfg(unix)]
    if common.config.is_some() {
        tokio::spawn(reload_on_sighup(Arc::clone(&api)));
    }
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let store = if common.ephemeral {
        "no store (--ephemeral)".to_owned()
    } else {
        setup::store_location(common, &config).to_string()
    };
    engine.attach_bus(Arc::clone(api.bus()));
    let bus = api.bus().describe();
    if let Ok(bound) = listener.local_addr() {
        engine.set_address(format!("http://{bound}"));
    }
    eprintln!(
        "weft serving on http://{} (graph {active_name}, store {store}, bus {bus}); API docs at /api/v1/docs",
        listener.local_addr().unwrap_or(addr)
    );
    tracing::info!(%addr, graph = %active_name, resumed = resumed.len(), "serving");
    let stopping = {
        let api = Arc::clone(&api);
        async move {
            tokio::select! {
                () = signal() => {}
                () = api.stop_requested() => {}
            }
            tracing::info!("stopping: no new runs; runs in flight stop after their current frame");
            api.close();
        }
    };
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(config.api.header_read_timeout_ms.max(1)),
        body_read_timeout: Duration::from_millis(config.api.body_read_timeout_ms.max(1)),
        max_connections: config.api.max_connections.max(1),
    };
    serve(listener, api.router(), limits, stopping).await;
    let in_flight = engine.runs_in_flight();
    if tokio::time::timeout(args.stop_timeout, engine.shutdown())
        .await
        .is_err()
    {
        tracing::error!(
            "runs did not reach a frame boundary within {:?}; exiting with their last committed frames",
            args.stop_timeout
        );
    }
    // The wake-ups of the runs given up must reach the other hosts.
    api.bus().flush().await;
    drop(api);
    drop(engine);
    eprintln!("stopped ({in_flight} runs in flight resume at the next start)");
    Ok(ExitCode::SUCCESS)
}

/// Reloads the config file on every SIGHUP.
#[cfg(unix)]
async fn reload_on_sighup(api: Arc<Api>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: the config reloads only through the API");
            return;
        }
    };
    while hup.recv().await.is_some() {
        if let Err(e) = api.reload_config().await {
            tracing::error!(code = %e.code, message = %e.message, "SIGHUP: the config was not reloaded; the old one stays");
        }
    }
}

/// SIGINT or SIGTERM.
async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// What each connection is held to (`api.header_read_timeout_ms`,
/// `api.body_read_timeout_ms`, `api.max_connections`).
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    /// A request head must arrive within this, from the connection's
    /// opening or the end of its previous response (so idle keep-alive
    /// connections close after it too).
    header_read_timeout: Duration,
    /// A request body may stay silent this long between chunks.
    body_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog,
    /// unaccepted, until one closes.
    max_connections: usize,
}

/// Serves `router` on `listener` over HTTP/1.1 (with upgrades, for the
/// WebSockets) until `stopping` resolves, then closes every connection
/// gracefully (requests in flight finish) and returns when all are closed.
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    stopping: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tokio::sync::{Semaphore, watch};

    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closed) = watch::channel(false);
    tokio::pin!(stopping);
    loop {
        // A slot first: beyond the cap, connections are not accepted (they
        // wait in the backlog) instead of accepted and starved.
        let slot = tokio::select! {
            () = &mut stopping => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut stopping => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little
                    // instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let request = request.map(|body| {
                        tower_http::timeout::TimeoutBody::new(limits.body_read_timeout, body)
                    });
                    tower::ServiceExt::oneshot(router.clone(), request)
                },
            );
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let connection = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { let _ = closed.wait_for(|c| *c).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a slot until it closes.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}
