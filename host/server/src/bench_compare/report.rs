//! Measurements as a row of `bench/`'s JSON Lines format: nearest-rank
//! percentiles, rounding, and this process's memory.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use super::Workload;

/// What a benchmark row of `bench/`'s JSON Lines format measured.
pub(crate) struct Line {
    pub workload: Workload,
    pub llm_ms: u64,
    pub threads: usize,
    /// Where the runs were committed (`memory`, `sqlite`, `postgres`).
    pub store: &'static str,
    /// Nodes in kept instances (`instance: reuse`).
    pub reuse: bool,
}

impl Line {
    /// The row, from each run's per-node overhead and the measured time.
    pub(crate) fn json(
        &self,
        mut overheads: Vec<Duration>,
        seconds: f64,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        overheads.sort_unstable();
        let line = json!({
            "system": "weft",
            "version": env!("CARGO_PKG_VERSION"),
            "workload": self.workload.name(),
            "nodes": self.workload.nodes(),
            "llm_ms": self.llm_ms,
            "threads": self.threads,
            "durable": self.store != "memory",
            "store": self.store,
            "instance": if self.reuse { "reuse" } else { "fresh" },
            "runs": overheads.len(),
            "seconds": round(seconds, 3),
            "node_overhead_us": percentiles(&overheads),
            "runs_per_s": round(overheads.len() as f64 / seconds, 1),
            "peak_rss_mb": round(peak_rss_mib()?, 1),
        });
        let serde_json::Value::Object(map) = line else {
            unreachable!("a JSON object literal")
        };
        Ok(map)
    }
}

/// `{"median": µs, "p99": µs}` of ascending samples, nearest-rank.
pub(crate) fn percentiles(sorted: &[Duration]) -> serde_json::Value {
    json!({
        "median": round(micros(nearest_rank(sorted, 50.0)), 1),
        "p99": round(micros(nearest_rank(sorted, 99.0)), 1),
    })
}

/// The `p`th percentile of ascending `sorted` samples by nearest rank (the
/// value at index ⌈p/100·n⌉ − 1), as `bench/langgraph_bench.py` computes it.
pub(crate) fn nearest_rank(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub(crate) fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub(crate) fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// A memory figure of this process from `/proc/self/status`, in MiB.
pub(super) fn rss_mib(field: &str) -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    Ok(kib / 1024.0)
}

/// This process's proportional set size in MiB (`Pss` of
/// `/proc/self/smaps_rollup`): a page mapped in several places (a memory
/// image shared by every instance) counts once in all, not once per place
/// as in `VmRSS`.
pub(super) fn pss_mib() -> Result<f64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup")
        .context("reading /proc/self/smaps_rollup")?;
    let kib: f64 = rollup
        .lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no Pss in /proc/self/smaps_rollup")?;
    Ok(kib / 1024.0)
}

fn peak_rss_mib() -> Result<f64> {
    rss_mib("VmHWM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(nearest_rank(&samples, 50.0), Duration::from_micros(50));
        assert_eq!(nearest_rank(&samples, 99.0), Duration::from_micros(99));
        assert_eq!(nearest_rank(&samples[..1], 99.0), Duration::from_micros(1));
    }
}
