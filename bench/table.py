#!/usr/bin/env python3
"""Merge weft and LangGraph benchmark results into one aligned text table.

Reads JSON Lines (the files given as arguments, or stdin; `-` is stdin too)
as printed by `weft bench` and bench/langgraph_bench.py. Rows are matched by
(workload, llm_ms, threads, store: memory, sqlite or postgres; older lines
without `store` count as sqlite when durable); a row that only one system has shows
"–" for the other. weft rows with `"instance": "reuse"` (nodes in kept
instances) get a row of their own, with LangGraph's figures of the same
workload beside them (LangGraph has no instances). Other rows (without `node_overhead_us`: the memory of
waiting threads, `weft bench llm`'s model figures …) are printed as they
are, one section per workload, under the table. Standard library only:
runs on any python3.
"""

import argparse
import json
import sys
from typing import IO, Any

SYSTEMS = ("langgraph", "weft")
LABELS = {"langgraph": "LangGraph", "weft": "weft"}
BENCH_KEYS = (
    "system", "version", "workload", "llm_ms", "threads", "durable",
    "node_overhead_us", "runs_per_s", "peak_rss_mb",
)
NUMBER_KEYS = ("llm_ms", "threads", "runs_per_s", "peak_rss_mb")
DASH = "–"


class InputError(Exception):
    """A line that is not a result row; the message names its file and line."""


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_rows(name: str, stream: IO[str]) -> tuple[list[dict], list[dict]]:
    """Split one JSON Lines stream into benchmark rows and other rows."""
    bench, other = [], []
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{where}: not JSON ({err})") from None
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected a JSON object")
        if row.get("system") not in SYSTEMS:
            raise InputError(f"{where}: system must be one of {', '.join(SYSTEMS)}, got {row.get('system')!r}")
        if "node_overhead_us" in row:
            missing = [key for key in BENCH_KEYS if key not in row]
            if missing:
                raise InputError(f"{where}: benchmark row lacks {', '.join(missing)}")
            overhead = row["node_overhead_us"]
            numbers = [row[key] for key in NUMBER_KEYS]
            if isinstance(overhead, dict):
                numbers += [overhead.get("median"), overhead.get("p99")]
            if not isinstance(overhead, dict) or not all(is_number(n) for n in numbers):
                raise InputError(
                    f"{where}: {', '.join(NUMBER_KEYS)} and node_overhead_us.median/p99 must be numbers"
                )
            bench.append(row)
        else:
            if not isinstance(row.get("workload"), str):
                raise InputError(f"{where}: a row without node_overhead_us needs a workload name")
            other.append(row)
    return bench, other


def render(
    header: list[str], body: list[list[str]], left: int, groups: list[tuple[str, int]] | None = None
) -> list[str]:
    """Align columns: the first `left` columns flush left, the others flush right.

    `groups` optionally labels runs of adjacent columns, as (label, column
    count) pairs covering the header from its first column; the labels are
    centred on a line above it.
    """
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths))
        ).rstrip()

    lines = []
    if groups:
        spans, start = [], 0
        for label, count in groups:
            span = sum(widths[start:start + count]) + 2 * (count - 1)
            spans.append(label.center(span))
            start += count
        lines.append("  ".join(spans).rstrip())
    rule = "  ".join("-" * w for w in widths)
    return [*lines, line(header), rule, *(line(r) for r in body)]


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:,.1f}×" if denominator > 0 else DASH


def versions(rows: list[dict], system: str) -> str:
    found = sorted({str(r["version"]) for r in rows if r["system"] == system})
    return f"{LABELS[system]} {'/'.join(found)}" if found else LABELS[system]


def bench_table(rows: list[dict]) -> list[str]:
    by_key: dict[tuple, dict[str, dict]] = {}
    for row in rows:
        store = row.get("store", "sqlite" if row["durable"] else "memory")
        key = (row["workload"], row["llm_ms"], row["threads"], store, row.get("instance", "fresh"))
        systems = by_key.setdefault(key, {})
        if row["system"] in systems:
            print(f"table: warning: two {row['system']} rows for {key}; keeping the last", file=sys.stderr)
        systems[row["system"]] = row

    header = ["workload", "store", "llm ms", "threads", "weft instance"]
    groups = [("", 5)]
    for system in SYSTEMS:
        header += ["med µs", "p99 µs", "runs/s", "RSS MB"]
        groups.append((versions(rows, system), 4))
    header += ["LangGraph ÷ weft", "weft ÷ LangGraph"]
    groups += [("overhead", 1), ("runs/s", 1)]

    body = []
    # Durable rows after in-memory ones, then by workload, LLM time, concurrency.
    order = {"memory": 0, "sqlite": 1, "postgres": 2}
    for key in sorted(by_key, key=lambda k: (order.get(k[3], 3), k[3], k[0], k[1], k[2], k[4])):
        workload, llm_ms, threads, store, instance = key
        systems = dict(by_key[key])
        if instance != "fresh" and "langgraph" not in systems:
            # LangGraph has no instances: its row of the same workload.
            fresh = by_key.get((workload, llm_ms, threads, store, "fresh"), {})
            if "langgraph" in fresh:
                systems["langgraph"] = fresh["langgraph"]
        cells = [workload, store, f"{llm_ms:g}", f"{threads:,}", instance if "weft" in systems else DASH]
        for system in SYSTEMS:
            row = systems.get(system)
            if row is None:
                cells += [DASH] * 4
            else:
                overhead = row["node_overhead_us"]
                cells += [
                    f"{overhead['median']:,.1f}",
                    f"{overhead['p99']:,.1f}",
                    f"{row['runs_per_s']:,.0f}",
                    f"{row['peak_rss_mb']:,.1f}",
                ]
        lg, weft = systems.get("langgraph"), systems.get("weft")
        if lg and weft:
            cells += [
                ratio(lg["node_overhead_us"]["median"], weft["node_overhead_us"]["median"]),
                ratio(weft["runs_per_s"], lg["runs_per_s"]),
            ]
        else:
            cells += [DASH, DASH]
        body.append(cells)

    return [
        "Per-node overhead (µs: median, p99), runs per second and peak RSS (MiB)",
        "",
        *render(header, body, left=2, groups=groups),
        "",
        "overhead: LangGraph ÷ weft = N× is LangGraph's median per-node overhead over weft's;",
        "runs/s: weft ÷ LangGraph = N× is weft's runs per second over LangGraph's.",
        "Bigger is better for weft in both.",
    ]


def format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def figures_tables(rows: list[dict]) -> list[list[str]]:
    """One section per workload; its columns are the keys of its rows, in
    order of first appearance, system and workload first."""
    sections = []
    workloads = list(dict.fromkeys(row["workload"] for row in rows))
    for workload in workloads:
        mine = [row for row in rows if row["workload"] == workload]
        columns = ["system"]
        for row in mine:
            columns += [key for key in row if key not in columns and key != "workload"]
        body = [[format_value(row[c]) if c in row else DASH for c in columns] for row in mine]
        sections.append([workload, "", *render(columns, body, left=1)])
    return sections


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=["-"], help="JSON Lines files (default: stdin)")
    args = parser.parse_args()

    bench, other = [], []
    try:
        for name in args.files:
            if name == "-":
                found = read_rows("<stdin>", sys.stdin)
            else:
                with open(name, encoding="utf-8") as stream:
                    found = read_rows(name, stream)
            bench += found[0]
            other += found[1]
    except (OSError, InputError) as err:
        print(f"table: {err}", file=sys.stderr)
        return 2
    if not bench and not other:
        print("table: no result rows in the input", file=sys.stderr)
        return 2

    sections = []
    if bench:
        sections.append(bench_table(bench))
    sections += figures_tables(other)
    print("\n\n".join("\n".join(lines) for lines in sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
