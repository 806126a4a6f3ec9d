//! The workloads (`chain3`, `fanout5`) and the rows measured on them, named
//! as `bench/langgraph_bench.py` names them.

/// One workload row.
#[derive(Clone, Copy, Debug)]
pub(super) struct Row {
    pub(super) workload: Workload,
    pub(super) llm_ms: u64,
    pub(super) threads: usize,
    pub(super) store: Store,
    /// Every node with `instance: reuse` (kept instances) instead of a
    /// fresh instance per tick.
    pub(super) reuse: bool,
}

/// Where a row's runs are committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Store {
    /// Nowhere: in memory only.
    Memory,
    /// Every frame to a fresh SQLite file.
    Sqlite,
    /// Every frame to the PostgreSQL database `--postgres` names.
    Postgres,
}

impl Store {
    /// The name in `bench/`'s lines (`store`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Sqlite => "sqlite",
            Store::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Workload {
    Chain3,
    Fanout5,
}

impl Workload {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Chain3 => "chain3",
            Workload::Fanout5 => "fanout5",
        }
    }

    pub(crate) fn nodes(self) -> usize {
        match self {
            Workload::Chain3 => 3,
            Workload::Fanout5 => 5,
        }
    }

    /// The graph's steps in order, each the nodes that run in parallel in
    /// it: a run's model time on its critical path is the sum over the
    /// steps of the longest wait in each.
    pub(super) fn steps(self) -> &'static [&'static [&'static str]] {
        match self {
            Workload::Chain3 => &[&["a"], &["b"], &["c"]],
            Workload::Fanout5 => &[&["a"], &["b", "c", "d"], &["e"]],
        }
    }

    /// The graph, with `plugin` for every node, each in kept instances
    /// (`instance: reuse`) if `reuse`.
    pub(crate) fn graph(self, plugin: &str, llm: bool, reuse: bool) -> String {
        let grants = match (llm, reuse) {
            (true, true) => "grants: [llm], instance: reuse, ",
            (true, false) => "grants: [llm], ",
            (false, true) => "instance: reuse, ",
            (false, false) => "",
        };
        let node = |name: &str, peers: &[&str]| {
            let send = if llm {
                format!("send: [{}]", peers.join(", "))
            } else {
                let to: Vec<String> = peers.iter().map(|p| format!("{{ to: {p} }}")).collect();
                format!("send: [{}]", to.join(", "))
            };
            format!("  {name}: {{ plugin: {plugin}, {grants}config: {{ {send} }} }}\n")
        };
        let (nodes, edges) = match self {
            Workload::Chain3 => (
                [node("a", &["b"]), node("b", &["c"]), node("c", &[])].concat(),
                "  - { from: a, to: b }\n  - { from: b, to: c }\n",
            ),
            Workload::Fanout5 => (
                [
                    node("a", &["b", "c", "d"]),
                    node("b", &["e"]),
                    node("c", &["e"]),
                    node("d", &["e"]),
                    node("e", &[]),
                ]
                .concat(),
                "  - { from: a, to: [b, c, d] }\n  - { from: b, to: e }\n  - { from: c, to: e }\n  - { from: d, to: e }\n",
            ),
        };
        format!(
            "name: bench-{}\nentry: a\ndefaults:\n  max_frames: 8\nnodes:\n{nodes}edges:\n{edges}",
            self.name()
        )
    }
}

impl Row {
    pub(super) fn name(&self) -> String {
        let store = match self.store {
            Store::Memory => "",
            Store::Sqlite => "-durable",
            Store::Postgres => "-durable-pg",
        };
        let reuse = if self.reuse { "-reuse" } else { "" };
        format!(
            "{}-llm{}-t{}{store}{reuse}",
            self.workload.name(),
            self.llm_ms,
            self.threads
        )
    }
}

/// The rows, in the order `bench/langgraph_bench.py` lists them.
pub(super) fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for workload in [Workload::Chain3, Workload::Fanout5] {
        let row = |llm_ms, threads| Row {
            workload,
            llm_ms,
            threads,
            store: Store::Memory,
            reuse: false,
        };
        rows.push(row(0, 1));
        // The same with kept instances (weft only: LangGraph has no
        // instances; bench/table.py sets its figures beside these too).
        rows.push(Row {
            reuse: true,
            ..row(0, 1)
        });
        for threads in [1, 100, 1000] {
            rows.push(row(1, threads));
        }
    }
    for store in [Store::Sqlite, Store::Postgres] {
        for workload in [Workload::Chain3, Workload::Fanout5] {
            for threads in [1, 100] {
                rows.push(Row {
                    workload,
                    llm_ms: 0,
                    threads,
                    store,
                    reuse: false,
                });
            }
        }
    }
    rows
}

/// The row that measures threads waiting on a slow model call.
pub(super) const WAITING_ROW: &str = "waiting_threads";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_names_match_the_langgraph_script() {
        let names: Vec<String> = rows().iter().map(Row::name).collect();
        assert_eq!(names.len(), 18);
        assert!(names.contains(&"fanout5-llm0-t1-reuse".to_owned()));
        assert!(names.contains(&"chain3-llm0-t1".to_owned()));
        assert!(names.contains(&"fanout5-llm1-t1000".to_owned()));
        assert!(names.contains(&"fanout5-llm0-t100-durable".to_owned()));
        assert!(names.contains(&"chain3-llm0-t1-durable-pg".to_owned()));
    }
}
