#!/usr/bin/env python3
"""LangGraph side of the weft-vs-LangGraph benchmark.

Runs the shared workloads (see bench/README.md) on LangGraph and prints one
JSON object per row on stdout (JSON Lines); progress goes to stderr. `weft
bench` prints the same rows for weft, and bench/table.py merges both.

Each row runs in a fresh child process (this script re-invoked with `--row
NAME`) so that the peak RSS it reports is that row's alone; the parent only
starts the children in turn and relays their lines.
"""

import argparse
import array
import asyncio
import itertools
import json
import math
import operator
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Annotated, Any, Callable, TypedDict

PINNED_VERSION = "1.2.22"
INSTALL_HINT = (
    "python3 -m venv .tools/bench-venv && "
    ".tools/bench-venv/bin/pip install -r bench/requirements.txt"
)

try:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langchain_core.runnables import RunnableConfig
    from langgraph.graph import END, START, StateGraph
except ImportError as err:
    sys.stderr.write(
        f"langgraph_bench: cannot import LangGraph ({err}) with {sys.executable}.\n"
        f"From the repository root, install the pinned packages:\n  {INSTALL_HINT}\n"
        "then run this script with .tools/bench-venv/bin/python.\n"
    )
    sys.exit(2)

LANGGRAPH_VERSION = metadata.version("langgraph")

DEFAULT_SECONDS = 3.0
QUICK_SECONDS = 0.5
DEFAULT_WARMUP = 50
# Bounds the sample buffer (8 bytes a run) whatever the time budget.
DEFAULT_MAX_RUNS = 200_000


class State(TypedDict):
    """Graph state: every node appends its own name to `trail`."""

    trail: Annotated[list[str], operator.add]


# Measured wait of every simulated LLM call, by run (thread id) and node:
# the LLM time subtracted from a run's wall time is what its calls really
# waited, not the nominal delay (a 1 ms sleep takes longer), as weft's side
# measures it.
WAITS: dict[str, dict[str, int]] = {}


def make_node(name: str, llm_ms: int) -> Callable[..., Any]:
    """An async node that optionally simulates an LLM call, then records itself."""
    if llm_ms:
        delay = llm_ms / 1000

        async def node(state: State, config: RunnableConfig) -> dict:
            start = time.perf_counter_ns()
            await asyncio.sleep(delay)
            waited = time.perf_counter_ns() - start
            WAITS.setdefault(config["configurable"]["thread_id"], {})[name] = waited
            return {"trail": [name]}

    else:

        async def node(state: State) -> dict:
            return {"trail": [name]}

    return node


def build_chain3(graph: StateGraph, llm_ms: int) -> None:
    """a -> b -> c."""
    for name in ("a", "b", "c"):
        graph.add_node(name, make_node(name, llm_ms))
    graph.add_edge(START, "a")
    graph.add_edge("a", "b")
    graph.add_edge("b", "c")
    graph.add_edge("c", END)


def build_fanout5(graph: StateGraph, llm_ms: int) -> None:
    """a -> (b, c, d) in parallel -> e, where e waits for all three branches."""
    for name in ("a", "b", "c", "d", "e"):
        graph.add_node(name, make_node(name, llm_ms))
    graph.add_edge(START, "a")
    for branch in ("b", "c", "d"):
        graph.add_edge("a", branch)
    graph.add_edge(["b", "c", "d"], "e")
    graph.add_edge("e", END)


def check_chain3(trail: list[str]) -> None:
    if trail != ["a", "b", "c"]:
        raise RuntimeError(f"chain3 ran {trail}, expected ['a', 'b', 'c']")


def check_fanout5(trail: list[str]) -> None:
    # The branches may finish in any order, but a comes first and e runs once, last.
    if (
        len(trail) != 5
        or trail[0] != "a"
        or sorted(trail[1:4]) != ["b", "c", "d"]
        or trail[4] != "e"
    ):
        raise RuntimeError(f"fanout5 ran {trail}, expected a, then b/c/d, then e once")


@dataclass(frozen=True)
class Workload:
    nodes: int
    # The graph's steps in order, each the nodes that run in parallel in it:
    # a run's LLM time on its critical path is the sum over the steps of the
    # longest wait in each.
    steps: tuple[tuple[str, ...], ...]
    build: Callable[[StateGraph, int], None]
    check: Callable[[list[str]], None]

    def critical_llm_ns(self, waits: dict[str, int]) -> int:
        return sum(max(waits.get(node, 0) for node in step) for step in self.steps)


WORKLOADS = {
    "chain3": Workload(
        nodes=3, steps=(("a",), ("b",), ("c",)), build=build_chain3, check=check_chain3
    ),
    "fanout5": Workload(
        nodes=5,
        steps=(("a",), ("b", "c", "d"), ("e",)),
        build=build_fanout5,
        check=check_fanout5,
    ),
}


@dataclass(frozen=True)
class Row:
    workload: str
    llm_ms: int
    threads: int
    # Where checkpoints go: "memory" (none), "sqlite" or "postgres".
    store: str = "memory"

    @property
    def durable(self) -> bool:
        return self.store != "memory"

    @property
    def name(self) -> str:
        suffix = {"memory": "", "sqlite": "-durable", "postgres": "-durable-pg"}[self.store]
        return f"{self.workload}-llm{self.llm_ms}-t{self.threads}{suffix}"


ROWS = [
    *(Row(w, 0, 1) for w in WORKLOADS),
    *(Row(w, 1, t) for w in WORKLOADS for t in (1, 100, 1000)),
    *(Row(w, 0, t, store) for store in ("sqlite", "postgres") for w in WORKLOADS for t in (1, 100)),
]
ROWS_BY_NAME = {row.name: row for row in ROWS}
WAITING_ROW = "waiting_threads"
DEFAULT_WAITING = 10_000


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile: the value at index ceil(p/100 * n) - 1."""
    index = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[index]


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


async def measure(row: Row, graph: Any, seconds: float, warmup: int, max_runs: int) -> dict:
    """Warm up, then run `row.threads` closed-loop workers for `seconds`.

    Each worker starts a new run as soon as its previous one ends, until the
    time budget or the run cap is reached; runs in flight then finish. A run's
    wall time is its own start-to-end latency, so under concurrency it
    includes the time it waits for the event loop.
    """
    workload = WORKLOADS[row.workload]
    thread_ids = itertools.count()
    # Persist every step before the next one starts, as weft commits every
    # frame before it counts ("async", LangGraph's default, would overlap the
    # writes with the next step).
    invoke_options = {"durability": "sync"} if row.durable else {}

    async def one_run() -> int:
        """One run; returns its wall time less the LLM time on its critical path."""
        thread_id = f"{row.name}-{next(thread_ids)}"
        config = {"configurable": {"thread_id": thread_id}}
        start = time.perf_counter_ns()
        final = await graph.ainvoke({"trail": []}, config, **invoke_options)
        elapsed = time.perf_counter_ns() - start
        workload.check(final["trail"])
        return elapsed - workload.critical_llm_ns(WAITS.pop(thread_id, {}))

    for _ in range(warmup):
        await one_run()

    overhead_ns = array.array("q")
    started = 0
    deadline = time.perf_counter_ns() + int(seconds * 1e9)

    async def worker() -> None:
        nonlocal started
        while started < max_runs and time.perf_counter_ns() < deadline:
            started += 1
            overhead_ns.append(await one_run())

    begin = time.perf_counter_ns()
    await asyncio.gather(*(worker() for _ in range(row.threads)))
    elapsed_s = (time.perf_counter_ns() - begin) / 1e9

    overhead_us = sorted(o / workload.nodes / 1000 for o in overhead_ns)
    return {
        "system": "langgraph",
        "version": LANGGRAPH_VERSION,
        "workload": row.workload,
        "nodes": workload.nodes,
        "llm_ms": row.llm_ms,
        "threads": row.threads,
        "durable": row.durable,
        "store": row.store,
        "runs": len(overhead_ns),
        "seconds": round(elapsed_s, 2),
        "node_overhead_us": {
            "median": round(percentile(overhead_us, 50), 1),
            "p99": round(percentile(overhead_us, 99), 1),
        },
        "runs_per_s": round(len(overhead_ns) / elapsed_s, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


# Connections of the PostgreSQL checkpointer's pool (weft's store: one
# writer connection and a pool of 8 for reads and leases).
PG_POOL_SIZE = 10


async def run_row(
    row: Row, seconds: float, warmup: int, max_runs: int, postgres: str | None = None
) -> dict:
    """Build the row's graph (on a fresh SQLite file, or on empty
    checkpoint tables in the PostgreSQL database `postgres`, when durable)
    and measure it."""
    builder = StateGraph(State)
    WORKLOADS[row.workload].build(builder, row.llm_ms)
    if not row.durable:
        return await measure(row, builder.compile(), seconds, warmup, max_runs)
    if row.store == "postgres":
        if not postgres:
            raise SystemExit(f"langgraph_bench: the row {row.name} needs --postgres URL")
        # LangGraph's PostgreSQL checkpointer on a connection pool, the way
        # its docs set it up for concurrent use.
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        async with AsyncConnectionPool(
            postgres, min_size=PG_POOL_SIZE, max_size=PG_POOL_SIZE, kwargs=kwargs, open=False
        ) as pool:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            async with pool.connection() as conn:
                await conn.execute(
                    "TRUNCATE checkpoints, checkpoint_blobs, checkpoint_writes"
                )
            graph = builder.compile(checkpointer=saver)
            return await measure(row, graph, seconds, warmup, max_runs)
    with tempfile.TemporaryDirectory(prefix="weft-bench-langgraph-") as tmp:
        path = os.path.join(tmp, "checkpoints.sqlite")
        async with AsyncSqliteSaver.from_conn_string(path) as saver:
            graph = builder.compile(checkpointer=saver)
            return await measure(row, graph, seconds, warmup, max_runs)


def rss_mb(field: str = "VmRSS") -> float:
    """A memory figure of this process from /proc/self/status, in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def pss_mb() -> float:
    """This process's proportional set size (a page shared with other
    mappings or processes counted in part) from /proc/self/smaps_rollup,
    in MiB."""
    with open("/proc/self/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no Pss in /proc/self/smaps_rollup")


async def waiting_threads(count: int) -> dict:
    """`count` runs of a one-node graph, each waiting in a model call that
    takes an hour: the resident memory they take (weft's `waiting_threads`
    row, measured the same way)."""
    in_flight = 0

    async def slow_llm(state: State) -> dict:
        nonlocal in_flight
        in_flight += 1
        await asyncio.sleep(3600)
        return {"trail": ["a"]}

    builder = StateGraph(State)
    builder.add_node("a", slow_llm)
    builder.add_edge(START, "a")
    builder.add_edge("a", END)
    graph = builder.compile()
    before = rss_mb()
    pss_before = pss_mb()
    tasks = [
        asyncio.create_task(graph.ainvoke({"trail": []}, {"configurable": {"thread_id": f"w-{i}"}}))
        for i in range(count)
    ]
    deadline = time.monotonic() + 600
    while in_flight < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    after = rss_mb()
    pss_after = pss_mb()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "system": "langgraph",
        "version": LANGGRAPH_VERSION,
        "workload": WAITING_ROW,
        "threads": count,
        "waiting": in_flight,
        "rss_mb": round(after, 1),
        "rss_before_mb": round(before, 1),
        "per_thread_kib": round((after - before) * 1024 / count, 1),
        "threads_per_gib": round(count * 1024 / after),
        "pss_mb": round(pss_after, 1),
        "per_thread_pss_kib": round((pss_after - pss_before) * 1024 / count, 1),
        "threads_per_gib_pss": round(count * 1024 / pss_after),
    }


def run_all(args: argparse.Namespace) -> int:
    """Run every row in its own child process and relay its JSON line."""
    if LANGGRAPH_VERSION != PINNED_VERSION:
        print(
            f"langgraph_bench: warning: langgraph {LANGGRAPH_VERSION} is installed, "
            f"bench/requirements.txt pins {PINNED_VERSION}",
            file=sys.stderr,
        )
    rows = [row for row in ROWS if row.store != "postgres" or args.postgres]
    if not args.postgres:
        print(
            "langgraph_bench: no --postgres URL: the PostgreSQL rows (-durable-pg) are skipped",
            file=sys.stderr,
        )
    names = [row.name for row in rows] + [WAITING_ROW]
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        child = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--row", name,
                "--seconds", str(args.seconds),
                "--warmup", str(args.warmup),
                "--max-runs", str(args.max_runs),
                "--waiting", str(args.waiting),
                *(["--postgres", args.postgres] if args.postgres else []),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        if child.returncode != 0:
            print(f"langgraph_bench: row {name} failed (exit {child.returncode})", file=sys.stderr)
            return 1
        result = json.loads(child.stdout)
        if "node_overhead_us" in result:
            overhead = result["node_overhead_us"]
            summary = (
                f"{result['runs']} runs in {result['seconds']} s, "
                f"{overhead['median']} µs/node median, {overhead['p99']} µs p99, "
                f"{result['peak_rss_mb']} MiB peak"
            )
        else:
            summary = (
                f"{result['waiting']} waiting in {result['rss_mb']} MiB, "
                f"{result['threads_per_gib']} per GiB"
            )
        print(f"    {summary}", file=sys.stderr, flush=True)
        print(json.dumps(result), flush=True)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print JSON Lines results (the default)")
    mode.add_argument("--list", action="store_true", help="print the row names and exit")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--seconds", type=float, default=DEFAULT_SECONDS,
        help=f"measured time per row after warm-up (default {DEFAULT_SECONDS})",
    )
    budget.add_argument(
        "--quick", action="store_const", dest="seconds", const=QUICK_SECONDS,
        help=f"{QUICK_SECONDS} s per row, for tests",
    )
    parser.add_argument(
        "--warmup", type=int, default=DEFAULT_WARMUP,
        help=f"sequential runs before measuring (default {DEFAULT_WARMUP})",
    )
    parser.add_argument(
        "--max-runs", type=int, default=DEFAULT_MAX_RUNS,
        help=f"cap on measured runs per row (default {DEFAULT_MAX_RUNS})",
    )
    parser.add_argument(
        "--waiting", type=int, default=DEFAULT_WAITING,
        help=f"runs waiting on a slow model call in the {WAITING_ROW} row (default {DEFAULT_WAITING:,})",
    )
    parser.add_argument(
        "--postgres", metavar="URL",
        help="a PostgreSQL database for the -durable-pg rows (skipped without it); "
        "its checkpoint tables are emptied before each row: give it a database of its own",
    )
    parser.add_argument(
        "--row", choices=[*ROWS_BY_NAME, WAITING_ROW], metavar="NAME",
        help="run only this row, in this process (see --list)",
    )
    args = parser.parse_args()
    if args.seconds <= 0 or args.warmup < 0 or args.max_runs < 1 or args.waiting < 1:
        parser.error("--seconds must be > 0, --warmup >= 0, --max-runs >= 1 and --waiting >= 1")
    return args


def main() -> int:
    args = parse_args()
    if args.list:
        for row in ROWS:
            print(row.name)
        print(WAITING_ROW)
        return 0
    if args.row == WAITING_ROW:
        print(json.dumps(asyncio.run(waiting_threads(args.waiting))), flush=True)
        return 0
    if args.row:
        row = ROWS_BY_NAME[args.row]
        result = asyncio.run(
            run_row(row, args.seconds, args.warmup, args.max_runs, args.postgres)
        )
        print(json.dumps(result), flush=True)
        return 0
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
