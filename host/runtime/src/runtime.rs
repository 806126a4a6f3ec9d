//! The [`Runtime`]: one wasmtime engine per process, the component cache,
//! the linker with every host capability, and invocation of plugins in
//! fresh, limited instances.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tracing::{Instrument, field};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

use crate::bindings::Pre;
use crate::cache::{ComponentCache, ContentHash, root_message};
use crate::capabilities::hud::HudEvent;
use crate::capabilities::log::LogLine;
use crate::capabilities::memory::MemoryWrite;
use crate::capabilities::store::KvWrite;
use crate::capabilities::tools::ToolGrants;
use crate::capabilities::{self, JournalEntry, Services};
use crate::config::{Limits, RuntimeConfig};
use crate::error::RuntimeError;
use crate::plugin::{Plugin, PluginInner, check_header, contract_version};
use crate::reuse::{Idle, IdleInstances, ReuseScope};
use crate::sandbox::{DeadlineHit, HostState, StoreSpec, new_store, park, reset_store};
use crate::types::{CallContext, Capability, Grants, Message, NodeError, NodeInfo, TickOutput};

/// The host side of weft's plugins. Create one per process and share it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Arc<ComponentCache>,
    config: RuntimeConfig,
    ticker_stop: Arc<AtomicBool>,
    /// With the pooling allocator, a tick holds one of these for as long as
    /// its instance lives, so that when every slot is taken the next tick
    /// waits for one instead of failing to instantiate.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Ticks waiting for a slot.
    queued: AtomicUsize,
    /// Instances kept between ticks of nodes that opt in.
    idle: Arc<IdleInstances>,
    /// What an idle kept instance holds instead of its last call's
    /// services (empty stand-ins, never called while it is idle).
    parked: Services,
}

/// Pool slots kept out of [`Runtime::slots`] for `describe` when plugins
/// are loaded or swapped while every tick slot is in use.
const DESCRIBE_SLOTS: u32 = 4;

/// One tick to run: where, with what inbox, what grants and services.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// Thread, run, frame and node.
    pub call: CallContext,
    /// Messages delivered in this frame.
    pub inbox: &'a [Message],
    /// The node's configuration from the graph, a JSON object (`"{}"` for none).
    pub config: &'a str,
    /// The model the graph assigned to the node (`None`: the provider's default).
    pub model: Option<&'a str>,
    /// Capabilities the graph grants the node.
    pub grants: Grants,
    /// The MCP tools the graph grants the node (with the `tools`
    /// capability); [`NO_TOOLS`](crate::capabilities::tools::NO_TOOLS) for none.
    pub tools: &'a ToolGrants,
    /// Backends behind the capabilities.
    pub services: &'a Services,
    /// Limits for this invocation; the runtime's defaults when `None`.
    pub limits: Option<Limits>,
    /// The time the plugin sees (frozen during the invocation); now when `None`.
    pub wall_time: Option<SystemTime>,
    /// Run in an instance kept from an earlier tick of the same scope and
    /// project, and keep this one afterwards (see [`ReuseScope`]); a fresh
    /// instance when `None`.
    pub reuse: Option<&'a ReuseScope>,
}

/// Why an invocation produced no output.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The node returned an error of its own.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The sandbox stopped or refused the node.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Everything one invocation produced and cost. The engine commits the
/// output, memory writes, events and journal together when the frame ends.
#[derive(Debug)]
pub struct Outcome {
    /// The output, or why there is none.
    pub result: Result<TickOutput, InvokeError>,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Time to create the fresh instance (zero for a kept one).
    pub instantiate_time: Duration,
    /// The tick ran in an instance kept from an earlier tick.
    pub reused: bool,
    /// Total wall time, instantiation included.
    pub duration: Duration,
    /// Host-capability calls with their answers, in order.
    pub journal: Vec<JournalEntry>,
    /// Buffered memory writes, to commit with the frame.
    pub memory_writes: Vec<MemoryWrite>,
    /// Buffered `store` writes (the project's key/value state), to commit
    /// with the frame.
    pub kv_writes: Vec<KvWrite>,
    /// Progress and events, in order.
    pub events: Vec<HudEvent>,
    /// Log lines.
    pub logs: Vec<LogLine>,
    /// Capabilities the node called without a grant (audit), each once.
    pub denied: Vec<Capability>,
    /// Calls of capabilities without a grant, all of them.
    pub denied_calls: u64,
    /// What the guest printed to stdout (capped).
    pub stdout: String,
    /// What the guest printed to stderr (capped).
    pub stderr: String,
}

impl Runtime {
    /// Creates the engine, the cache and the linker, and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine = Engine::new(&engine_config(&config)?)
            .map_err(|e| RuntimeError::Config(root_message(&e)))?;
        let cache = Arc::new(ComponentCache::new(&engine, config.cache_dir.clone())?);
        let linker = linker(&engine).map_err(|e| RuntimeError::Config(root_message(&e)))?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), config.epoch_tick, Arc::clone(&ticker_stop));
        let slots = config.pool.map(|pool| {
            let ticks = pool.instances.saturating_sub(DESCRIBE_SLOTS).max(1);
            Arc::new(tokio::sync::Semaphore::new(ticks as usize))
        });
        let idle = Arc::new(IdleInstances::new(config.max_idle_instances));
        Ok(Self {
            engine,
            linker,
            cache,
            config,
            ticker_stop,
            slots,
            queued: AtomicUsize::new(0),
            idle,
            parked: Services::unavailable(),
        })
    }

    /// The default limits for invocations.
    pub fn default_limits(&self) -> Limits {
        self.config.limits
    }

    /// The largest linear memory an instance can have (the pool's slot
    /// size), if the pooling allocator is in use: a [`Limits::max_memory`]
    /// above it can never be reached.
    pub fn max_memory_per_instance(&self) -> Option<usize> {
        self.config.pool.map(|p| p.max_memory_size)
    }

    /// Loads a plugin from a file; see [`Runtime::load_bytes`].
    pub async fn load_file(&self, path: impl AsRef<Path>) -> Result<Plugin, RuntimeError> {
        let path = path.as_ref().to_owned();
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| RuntimeError::Io {
                path: path.clone(),
                source,
            })?;
        self.load_bytes(path, bytes).await
    }

    /// Validates, compiles (off the async executor, at most once per content
    /// hash), links and describes a component. `path` names it in errors.
    pub async fn load_bytes(&self, path: PathBuf, bytes: Vec<u8>) -> Result<Plugin, RuntimeError> {
        check_header(&path, &bytes)?;
        let hash = ContentHash::of(&bytes);
        let size = bytes.len();
        let (component, cache_hit) = self.compile(&path, hash, bytes).await?;
        let contract = contract_version(&self.engine, &path, &component)?;
        let link_err = |e: wasmtime::Error| RuntimeError::Link {
            path: path.clone(),
            reason: root_message(&e),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(link_err)?;
        let pre = Pre::new(&contract, pre).map_err(link_err)?;
        let info = self.describe(&path, &pre).await?;
        tracing::info!(
            plugin = %info.name,
            version = %info.version,
            hash = %hash.short(),
            contract = %contract,
            ?cache_hit,
            "plugin loaded"
        );
        Ok(PluginInner {
            path,
            hash,
            hash_hex: hash.to_hex(),
            size,
            contract,
            info,
            cache_hit,
            pre,
        }
        .into())
    }

    /// Compiles (off the async executor, at most once per content hash).
    pub(crate) async fn compile(
        &self,
        path: &Path,
        hash: ContentHash,
        bytes: Vec<u8>,
    ) -> Result<(wasmtime::component::Component, crate::cache::CacheHit), RuntimeError> {
        let engine = self.engine.clone();
        let cache = Arc::clone(&self.cache);
        let path = path.to_owned();
        // Compiling is CPU-bound and may take seconds: keep it off the executor.
        tokio::task::spawn_blocking(move || cache.get_or_compile(&engine, &path, hash, &bytes))
            .await
            .map_err(|e| RuntimeError::Cache {
                path: PathBuf::new(),
                reason: format!("compile task failed: {e}"),
            })?
    }

    /// The wasmtime engine.
    pub(crate) fn wasmtime(&self) -> &Engine {
        &self.engine
    }

    async fn describe(&self, path: &Path, pre: &Pre) -> Result<NodeInfo, RuntimeError> {
        let services = Services::unavailable();
        let call = CallContext {
            thread: String::new(),
            run: String::new(),
            frame: 0,
            node: "(describe)".into(),
            project: "default".into(),
        };
        let mut store = self.bare_store(call, &services);
        let invalid = |reason: String| RuntimeError::InvalidDescribe {
            path: path.to_owned(),
            reason,
        };
        let raw = async {
            let node = pre.instantiate(&mut store).await?;
            node.describe(&mut store).await
        }
        .await
        .map_err(|e| invalid(format!("`describe` failed: {}", root_message(&e))))?;
        let schema = |what: &str, s: &str| {
            serde_json::from_str::<serde_json::Value>(s)
                .map_err(|e| invalid(format!("{what} schema is not JSON: {e}")))
        };
        Ok(NodeInfo {
            input_schema: schema("input", &raw.input_schema)?,
            output_schema: schema("output", &raw.output_schema)?,
            capabilities: raw.capabilities,
            name: raw.name,
            version: raw.version,
            description: raw.description,
        })
    }

    /// A store for a call that is not a node's tick (describe, benchmarks):
    /// no grants, no tools, the host's limits and the current time.
    fn bare_store(&self, call: CallContext, services: &Services) -> Store<HostState> {
        new_store(
            &self.engine,
            StoreSpec {
                call,
                grants: Grants::NONE,
                tools: &crate::capabilities::tools::NO_TOOLS,
                services,
                limits: self.config.limits,
                model: None,
                wall_time: since_epoch(None),
            },
        )
    }

    /// Runs one `tick` of `plugin` in a fresh instance. Never fails as a
    /// whole: whatever happens is in [`Outcome::result`], with the metering.
    pub async fn invoke(&self, plugin: &Plugin, inv: Invocation<'_>) -> Outcome {
        let span = tracing::info_span!(
            "weft.node",
            node = %inv.call.node,
            plugin = %plugin.info().name,
            plugin_version = %plugin.hash().short(),
            fuel = field::Empty,
            outcome = field::Empty,
        );
        async move {
            let outcome = self.invoke_inner(plugin, inv).await;
            let span = tracing::Span::current();
            span.record("fuel", outcome.fuel_used);
            span.record(
                "outcome",
                match &outcome.result {
                    Ok(_) => "ok",
                    Err(InvokeError::Node(_)) => "node_error",
                    Err(InvokeError::Runtime(e)) => e.code(),
                },
            );
            outcome
        }
        .instrument(span)
        .await
    }

    /// Creates and drops one fresh instance of `plugin`, for benchmarks of
    /// instantiation alone.
    #[doc(hidden)]
    pub async fn bench_instantiate(&self, plugin: &Plugin) {
        let services = Services::unavailable();
        let call = CallContext {
            thread: String::new(),
            run: String::new(),
            frame: 0,
            node: String::new(),
            project: "default".into(),
        };
        let mut store = self.bare_store(call, &services);
        if let Err(e) = plugin.pre().instantiate(&mut store).await {
            tracing::error!(error = %e, "instantiation failed in benchmark");
        }
    }

    /// Ticks waiting for a free instance slot (the pool is full).
    pub fn ticks_queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Instances kept for nodes with `instance: reuse`, idle now.
    pub fn instances_idle(&self) -> usize {
        self.idle.len()
    }

    /// Ticks that ran in a kept instance since the runtime started.
    pub fn instances_reused(&self) -> u64 {
        self.idle.reused()
    }

    /// A pool slot for a new instance: at once if one is free, else by
    /// dropping idle kept instances, else by waiting for a tick to end.
    async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slots = self.slots.as_ref()?;
        loop {
            match Arc::clone(slots).try_acquire_owned() {
                Ok(slot) => return Some(slot),
                Err(_) if self.idle.evict_oldest() => continue,
                Err(_) => break,
            }
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::clone(slots).acquire_owned().await;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        // The semaphore is never closed.
        slot.ok()
    }

    async fn invoke_inner(&self, plugin: &Plugin, inv: Invocation<'_>) -> Outcome {
        let limits = inv.limits.unwrap_or(self.config.limits);
        let node = inv.call.node.clone();
        let call = inv.call.clone();
        let reuse = inv.reuse.map(|scope| {
            scope.bind(&self.idle);
            scope.id()
        });
        let kept = reuse.and_then(|scope| self.idle.take(scope, &call.project, plugin.hash()));
        let spec = StoreSpec {
            call: inv.call,
            grants: inv.grants,
            tools: inv.tools,
            services: inv.services,
            limits,
            model: inv.model,
            wall_time: since_epoch(inv.wall_time),
        };
        let (mut store, mut instance, slot) = match kept {
            Some(mut idle) => {
                reset_store(&mut idle.store, spec);
                (idle.store, Some(idle.instance), idle.slot)
            }
            None => {
                // Wait for a slot before the deadline starts: the node has not run.
                let slot = self.slot().await;
                (new_store(&self.engine, spec), None, slot)
            }
        };
        let reused = instance.is_some();
        let start = Instant::now();
        let mut instantiate_time = Duration::ZERO;
        let call = async {
            let instance = match &mut instance {
                Some(instance) => instance,
                None => {
                    let fresh = plugin
                        .pre()
                        .instantiate(&mut store)
                        .await
                        .map_err(|e| (true, e))?;
                    instantiate_time = start.elapsed();
                    instance.insert(fresh)
                }
            };
            instance
                .tick(&mut store, &call, inv.config, inv.inbox)
                .await
                .map_err(|e| (false, e))
        };
        // The epoch callback enforces the deadline while guest code runs;
        // this timeout enforces it while the guest waits on a host call.
        let raw = tokio::time::timeout(limits.deadline, call).await;
        let duration = start.elapsed();
        // Only an instance whose tick returned is kept: after a trap, or a
        // deadline hit mid-call, its state is not to be trusted.
        let returned = matches!(raw, Ok(Ok(_)));
        let fuel_used = limits
            .fuel
            .unwrap_or(u64::MAX)
            .saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data_mut();
        // Each pipe read once: this tick's text, and where the next starts.
        let (stderr, stderr_end) = pipe_text(&state.stderr, state.stderr_from);
        let (stdout, stdout_end) = pipe_text(&state.stdout, state.stdout_from);
        let result = match raw {
            Err(_elapsed) => Err(RuntimeError::DeadlineExceeded {
                node: node.clone(),
                limit: limits.deadline,
            }
            .into()),
            Ok(Err((during_instantiation, e))) => Err(classify_error(
                &node,
                &limits,
                state.limiter.hit,
                during_instantiation,
                &stderr,
                e,
            )
            .into()),
            Ok(Ok(Err(node_error))) => Err(InvokeError::Node(node_error)),
            Ok(Ok(Ok(output))) => {
                // Memory writes count against the output limit too.
                let size = output.payload_bytes() + state.memory.bytes;
                if size > limits.max_output {
                    Err(RuntimeError::OutputTooLarge {
                        node: node.clone(),
                        size,
                        limit: limits.max_output,
                    }
                    .into())
                } else {
                    Ok(output)
                }
            }
        };
        state.shared.summarise();
        let outcome = Outcome {
            result,
            fuel_used: if limits.fuel.is_some() { fuel_used } else { 0 },
            instantiate_time,
            reused,
            duration,
            memory_writes: state.memory.writes(&state.shared.call),
            kv_writes: state.kv.writes(&state.shared.call),
            journal: std::mem::take(&mut state.shared.journal),
            events: std::mem::take(&mut state.hud.events),
            logs: std::mem::take(&mut state.log.lines),
            denied: std::mem::take(&mut state.shared.denied),
            denied_calls: state.shared.denied_calls,
            stdout,
            stderr,
        };
        // A kept instance's pipes fill up over its ticks; one past half
        // its cap is dropped, so that no tick finds its stdio full.
        let stdio_room = stdout_end.max(stderr_end) <= limits.max_stdio / 2;
        // The next tick in this instance reads its pipes from here.
        state.stdout_from = stdout_end;
        state.stderr_from = stderr_end;
        match (reuse, instance) {
            (Some(scope), Some(instance)) if returned && stdio_room => {
                let project = std::mem::take(&mut state.shared.call.project);
                park(&mut store, &self.parked);
                self.idle.put(Idle {
                    scope,
                    project,
                    plugin: plugin.hash(),
                    store,
                    instance,
                    slot,
                });
            }
            _ => {
                drop(store);
                drop(slot);
            }
        }
        outcome
    }
}

/// What a guest wrote to a pipe since `from`, as text, and the pipe's
/// length (where the next tick's output starts).
fn pipe_text(pipe: &wasmtime_wasi::p2::pipe::MemoryOutputPipe, from: usize) -> (String, usize) {
    let bytes = pipe.contents();
    let text = String::from_utf8_lossy(bytes.get(from..).unwrap_or_default()).into_owned();
    (text, bytes.len())
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Turns a wasmtime error from instantiation or a call into a typed error.
fn classify_error(
    node: &str,
    limits: &Limits,
    memory_hit: bool,
    during_instantiation: bool,
    stderr: &str,
    e: wasmtime::Error,
) -> RuntimeError {
    let node = node.to_owned();
    if e.downcast_ref::<DeadlineHit>().is_some() {
        return RuntimeError::DeadlineExceeded {
            node,
            limit: limits.deadline,
        };
    }
    if memory_hit {
        return RuntimeError::MemoryLimit {
            node,
            limit: limits.max_memory,
        };
    }
    if let Some(Trap::OutOfFuel) = e.downcast_ref::<Trap>() {
        return RuntimeError::OutOfFuel {
            node,
            limit: limits.fuel.unwrap_or(u64::MAX),
        };
    }
    if during_instantiation && e.downcast_ref::<Trap>().is_none() {
        return RuntimeError::Instantiation {
            node,
            reason: root_message(&e),
        };
    }
    let backtrace = e
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|b| b.to_string());
    let trap = e
        .downcast_ref::<Trap>()
        .map_or_else(|| root_message(&e), |t| t.to_string());
    let guest = stderr.trim();
    let message = if guest.is_empty() {
        trap
    } else {
        format!("{guest} ({trap})")
    };
    RuntimeError::Trap {
        node,
        message,
        backtrace,
    }
}

fn engine_config(config: &RuntimeConfig) -> Result<Config, RuntimeError> {
    let mut c = Config::new();
    c.consume_fuel(true)
        .epoch_interruption(true)
        .wasm_component_model(true)
        // Concurrency support (component-model async) doubles the cost of a
        // sync call in wasmtime 48; weft's contract does not use it.
        .concurrency_support(false);
    if let Some(pool) = config.pool {
        if config.limits.max_memory > pool.max_memory_size {
            return Err(RuntimeError::Config(format!(
                "the memory limit ({} bytes) is larger than the pool's largest memory ({} bytes)",
                config.limits.max_memory, pool.max_memory_size
            )));
        }
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(pool.instances)
            .total_core_instances(
                pool.instances
                    .saturating_mul(pool.core_instances_per_component.min(8)),
            )
            .total_memories(
                pool.instances
                    .saturating_mul(pool.memories_per_component.min(2)),
            )
            .total_tables(
                pool.instances
                    .saturating_mul(pool.tables_per_component.min(4)),
            )
            .total_stacks(pool.instances)
            .max_core_instances_per_component(pool.core_instances_per_component)
            .max_memories_per_component(pool.memories_per_component)
            .max_tables_per_component(pool.tables_per_component)
            .max_memory_size(pool.max_memory_size)
            .linear_memory_keep_resident(pool.keep_resident)
            .table_keep_resident(pool.keep_resident / 16)
            .async_stack_keep_resident(pool.keep_resident / 16)
            .decommit_batch_size(pool.decommit_batch_size.max(1))
            // Where the kernel can say which pages were touched (Linux 6.7+),
            // only those are reset: a small guest costs a few pages, not
            // `keep_resident` bytes of memset.
            .pagemap_scan(wasmtime::Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    Ok(c)
}

fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    capabilities::llm::add_to_linker(&mut linker)?;
    capabilities::db::add_to_linker(&mut linker)?;
    capabilities::memory::add_to_linker(&mut linker)?;
    capabilities::store::add_to_linker(&mut linker)?;
    capabilities::tools::add_to_linker(&mut linker)?;
    capabilities::hud::add_to_linker(&mut linker)?;
    capabilities::log::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// Advances the engine's epoch every `tick` until `stop` is set; deadlines
/// are checked, and busy guests yield, on each advance.
fn spawn_epoch_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("weft-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch ticker: deadlines will not be enforced");
    }
}

/// The wall-clock time a plugin sees (`now` unless the tick is a replay),
/// since the Unix epoch.
fn since_epoch(wall_time: Option<SystemTime>) -> Duration {
    wall_time
        .unwrap_or_else(SystemTime::now)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}
