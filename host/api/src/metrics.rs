//! Prometheus metrics (`GET /metrics`): HTTP requests, runs, node
//! invocations (latency, fuel), tokens, cost, budget exhaustions and rate
//! limiting.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use weft_engine::store::HostBeat;
use weft_engine::{Event, EventBody, RunStatus, ToolStat, UsageTotals};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

/// The registry and its metrics.
pub(crate) struct Metrics {
    registry: Registry,
    http: Family<HttpLabels, Counter>,
    http_latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    runs_started: Counter,
    runs_finished: Family<StatusLabel, Counter>,
    invocations: Family<NodeLabel, Counter>,
    node_latency: Family<NodeLabel, Histogram, fn() -> Histogram>,
    fuel: Family<NodeLabel, Counter>,
    node_errors: Family<NodeLabel, Counter>,
    budget_exhausted: Counter,
    rate_limited: Counter,
    tokens: Family<KindLabel, Gauge<u64, AtomicU64>>,
    llm_calls: Gauge<u64, AtomicU64>,
    cost: Gauge<f64, AtomicU64>,
    in_flight: Gauge,
    tool_calls: Family<ToolLabels, Gauge<u64, AtomicU64>>,
    tool_seconds: Family<ToolLabels, Gauge<f64, AtomicU64>>,
    host_info: Family<HostLabels, Gauge<u64, AtomicU64>>,
    runs_held: Gauge<u64, AtomicU64>,
    lease_renewals: Gauge<u64, AtomicU64>,
    instances_idle: Gauge<u64, AtomicU64>,
    instances_reused: Gauge<u64, AtomicU64>,
    ticks_queued: Gauge<u64, AtomicU64>,
}

/// The plugin runtime's figures at a scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeFigures {
    /// Instances kept idle for nodes with `instance: reuse`.
    pub instances_idle: u64,
    /// Ticks that ran in a kept instance since the host started.
    pub instances_reused: u64,
    /// Ticks waiting for a free instance slot.
    pub ticks_queued: u64,
}

/// The labels naming this host.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    host: String,
    version: String,
}

/// The labels of a tool's calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    server: String,
    tool: String,
    outcome: String,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("weft");
        let m = Self {
            http: Family::default(),
            http_latency: Family::new_with_constructor(latency),
            runs_started: Counter::default(),
            runs_finished: Family::default(),
            invocations: Family::default(),
            node_latency: Family::new_with_constructor(latency),
            fuel: Family::default(),
            node_errors: Family::default(),
            budget_exhausted: Counter::default(),
            rate_limited: Counter::default(),
            tokens: Family::default(),
            llm_calls: Gauge::default(),
            cost: Gauge::default(),
            in_flight: Gauge::default(),
            tool_calls: Family::default(),
            tool_seconds: Family::default(),
            host_info: Family::default(),
            runs_held: Gauge::default(),
            lease_renewals: Gauge::default(),
            instances_idle: Gauge::default(),
            instances_reused: Gauge::default(),
            ticks_queued: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            m.http.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            m.http_latency.clone(),
        );
        registry.register(
            "runs_started",
            "Runs started through the API",
            m.runs_started.clone(),
        );
        registry.register(
            "runs_finished",
            "Runs finished, by status",
            m.runs_finished.clone(),
        );
        registry.register(
            "node_invocations",
            "Node invocations",
            m.invocations.clone(),
        );
        registry.register(
            "node_duration_seconds",
            "Node invocation wall time",
            m.node_latency.clone(),
        );
        registry.register("node_fuel", "Fuel consumed by nodes", m.fuel.clone());
        registry.register(
            "node_errors",
            "Node invocations that failed",
            m.node_errors.clone(),
        );
        registry.register(
            "budget_exhaustions",
            "Runs that ran out of budget",
            m.budget_exhausted.clone(),
        );
        registry.register(
            "rate_limited_requests",
            "Requests refused by the rate limit",
            m.rate_limited.clone(),
        );
        registry.register(
            "llm_tokens",
            "LLM tokens used (all time, from the ledger)",
            m.tokens.clone(),
        );
        registry.register(
            "llm_calls",
            "LLM calls (all time, from the ledger)",
            m.llm_calls.clone(),
        );
        registry.register(
            "llm_cost",
            "LLM cost (all time, priced calls)",
            m.cost.clone(),
        );
        registry.register("runs_in_flight", "Runs in flight", m.in_flight.clone());
        registry.register(
            "tool_calls",
            "MCP tool calls by server, tool and outcome (all time, this host)",
            m.tool_calls.clone(),
        );
        registry.register(
            "tool_call_seconds",
            "Wall time of MCP tool calls by server, tool and outcome (all time, this host)",
            m.tool_seconds.clone(),
        );
        registry.register(
            "host_info",
            "This host: its id (in leases and /api/v1/hosts) and weft version, value 1",
            m.host_info.clone(),
        );
        registry.register(
            "host_runs_held",
            "Runs holding a lease on this host (a store shared by several hosts)",
            m.runs_held.clone(),
        );
        registry.register(
            "host_lease_renewals",
            "Lease renewals this host made since it started",
            m.lease_renewals.clone(),
        );
        registry.register(
            "instances_idle",
            "Plugin instances kept idle between ticks for nodes with `instance: reuse`",
            m.instances_idle.clone(),
        );
        registry.register(
            "instances_reused",
            "Ticks that ran in a kept instance since this host started",
            m.instances_reused.clone(),
        );
        registry.register(
            "ticks_queued",
            "Ticks waiting for a free plugin instance slot",
            m.ticks_queued.clone(),
        );
        Self { registry, ..m }
    }

    pub fn run_started(&self) {
        self.runs_started.inc();
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Counts what an engine event says.
    pub fn observe(&self, event: &Event) {
        match &event.body {
            EventBody::Frame(record) => {
                let node = NodeLabel {
                    node: record.node.clone(),
                };
                self.invocations.get_or_create(&node).inc();
                self.fuel.get_or_create(&node).inc_by(record.fuel_used);
                self.node_latency
                    .get_or_create(&node)
                    .observe(record.duration_us as f64 / 1e6);
                if record.error.is_some() {
                    self.node_errors.get_or_create(&node).inc();
                }
            }
            EventBody::FrameTrace(trace) => {
                self.runs_finished
                    .get_or_create(&StatusLabel {
                        status: trace.status.as_str().to_owned(),
                    })
                    .inc();
            }
            EventBody::Status {
                status: RunStatus::BudgetExhausted,
            } => {
                self.budget_exhausted.inc();
            }
            _ => {}
        }
    }

    /// Counts a request by method, matched route and status, and its
    /// latency by route.
    pub fn request(&self, method: String, route: String, status: u16, took: Duration) {
        self.http
            .get_or_create(&HttpLabels {
                method,
                route: route.clone(),
                status,
            })
            .inc();
        self.http_latency
            .get_or_create(&RouteLabel { route })
            .observe(took.as_secs_f64());
    }

    /// Every metric in the Prometheus text format, with the ledger's
    /// `totals` and the runs in flight as of now.
    pub fn render(
        &self,
        totals: &UsageTotals,
        in_flight: usize,
        tools: &[ToolStat],
        host: &HostBeat,
        runtime: RuntimeFigures,
    ) -> Result<String, std::fmt::Error> {
        self.instances_idle.set(runtime.instances_idle);
        self.instances_reused.set(runtime.instances_reused);
        self.ticks_queued.set(runtime.ticks_queued);
        self.host_info
            .get_or_create(&HostLabels {
                host: host.id.clone(),
                version: host.version.clone(),
            })
            .set(1);
        self.runs_held.set(host.runs_held);
        self.lease_renewals.set(host.lease_renewals);
        for t in tools {
            let labels = ToolLabels {
                server: t.server.clone(),
                tool: t.tool.clone(),
                outcome: t.outcome.clone(),
            };
            self.tool_calls.get_or_create(&labels).set(t.calls);
            self.tool_seconds.get_or_create(&labels).set(t.seconds);
        }
        self.tokens
            .get_or_create(&KindLabel {
                kind: "prompt".into(),
            })
            .set(totals.prompt_tokens);
        self.tokens
            .get_or_create(&KindLabel {
                kind: "completion".into(),
            })
            .set(totals.completion_tokens);
        self.llm_calls.set(totals.calls);
        self.cost.set(totals.cost);
        self.in_flight.set(in_flight as i64);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
