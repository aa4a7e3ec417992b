"""Journeys from the events store: the directly-follows graph and a 5-step funnel, against pm4py's discover_dfg
and hand-written DuckDB queries of the same definitions (the engine's own limit), at 1M and 10M events. The graph
takes its median and p90 waits from the wait sketches; a row compares it with `--exact` (every wait sorted).

Each size runs in a fresh child process, so the peak RSS reported is that size's own (ingest included).
Sizes: TOUCHLENS_BENCH_JOURNEY_SIZES (default "1000000,10000000"); pm4py runs at 1M events and below.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_results

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / ".data"
STEPS = ["homepage", "product_page", "cart", "checkout", "order_placed_page"]
PM4PY_MAX = 1_000_000

FRAME = """
SELECT customer_id AS "case:concept:name", touchpoint AS "concept:name", ts AS "time:timestamp"
FROM events WHERE touchpoint IS NOT NULL
"""
# The edge counts alone: the least any directly-follows query must do.
DFG_COUNTS = """
SELECT touchpoint, nxt, count(*) FROM (
  SELECT touchpoint, lead(touchpoint) OVER (PARTITION BY customer_id ORDER BY ts, event_id) AS nxt
  FROM events WHERE touchpoint IS NOT NULL
) WHERE nxt IS NOT NULL GROUP BY 1, 2
"""
# Everything `analyze flows` returns: counts, median and p90 transition time, journey starts and ends.
DFG_FULL = """
SELECT touchpoint, nxt, count(*), median(sec), quantile_cont(sec, 0.9), count(*) FILTER (WHERE first) FROM (
  SELECT touchpoint, lead(touchpoint) OVER w AS nxt, (epoch_us(lead(ts) OVER w) - epoch_us(ts)) / 1e6 AS sec,
         row_number() OVER w = 1 AS first
  FROM events WHERE touchpoint IS NOT NULL
  WINDOW w AS (PARTITION BY customer_id ORDER BY ts, event_id)
) GROUP BY 1, 2
"""


def funnel_sql(steps: list[str], days: int) -> tuple[str, list[Any]]:
    """A hand-written funnel of the same definition (earliest next step per start, within the window)."""
    ctes = [
        "e AS (SELECT customer_id, ts, touchpoint FROM events WHERE list_contains(?, touchpoint))",
        "s1 AS (SELECT customer_id, ts AS start, ts AS hit, ts AS prev FROM e WHERE touchpoint = ?)",
    ]
    for i in range(2, len(steps) + 1):
        ctes.append(
            f"s{i} AS (SELECT p.customer_id, p.start, min(e.ts) AS hit, min(p.hit) AS prev FROM s{i - 1} p"
            f" JOIN e ON e.customer_id = p.customer_id AND e.touchpoint = ? AND e.ts > p.hit"
            f" AND e.ts <= p.start + INTERVAL {int(days)} DAY GROUP BY 1, 2)"
        )
    counts = " UNION ALL ".join(
        f"SELECT {i}, count(DISTINCT customer_id), median((epoch_us(hit) - epoch_us(prev)) / 1e6) FROM s{i}"
        for i in range(1, len(steps) + 1)
    )
    return "WITH " + ", ".join(ctes) + " " + counts, [steps, *steps]


def _best(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _measure(n: int) -> dict[str, Any]:
    """In a child process: build a workspace of `n` events, time every contender, report the peak RSS."""
    import pyarrow.parquet as pq

    import touchlens
    from touchlens.demo import benchmark_events

    path = DATA / f"flow_events_{n}.parquet"
    if not path.exists():
        pq.write_table(benchmark_events(n, seed=11), path)
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        ws = touchlens.init(Path(tmp) / "ws")
        ws.import_map(ROOT / "examples" / "outdoor_retail.yaml")
        ws.ingest_events([path])
        query = ws.funnel(STEPS, "7d")
        times = {"flows": _best(ws.flows), "funnel": _best(lambda: ws.run_funnel(query))}
        times["flows_exact"] = _best(lambda: ws.flows(exact=True))  # median and p90 from every wait, sorted
        with ws.events(read_only=True) as con:
            sql, params = funnel_sql(STEPS, 7)
            times["dfg_counts"] = _best(lambda: con.execute(DFG_COUNTS).fetchall())
            times["dfg_full"] = _best(lambda: con.execute(DFG_FULL).fetchall())
            times["funnel_hand"] = _best(lambda: con.execute(sql, params).fetchall())
            frame = con.execute(FRAME).df() if n <= PM4PY_MAX else None
        if frame is not None:
            import pm4py

            times["pm4py"] = _best(lambda: pm4py.discover_dfg(frame), repeat=1)
    times["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return times


def run() -> list[dict[str, Any]]:
    DATA.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in os.environ.get("TOUCHLENS_BENCH_JOURNEY_SIZES", "1000000,10000000").split(",")]
    rows = []
    for n in sizes:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            t = pool.apply(_measure, (n,))
        rss = round(t["peak_rss_mib"])
        dfg, funnel = f"directly-follows graph, {n:,} events", f"5-step funnel (7d window), {n:,} events"
        if "pm4py" in t:
            rows.append(_row(dfg, t["flows"], "pm4py.discover_dfg (on a ready DataFrame)", t["pm4py"], rss))
        rows.append(_row(dfg, t["flows"], "hand-written DuckDB query, same output", t["dfg_full"], rss))
        rows.append(_row(dfg, t["flows"], "hand-written DuckDB query, edge counts only", t["dfg_counts"], rss))
        rows.append(_row(dfg, t["flows"], "touchlens --exact (quantiles from every wait)", t["flows_exact"], rss))
        rows.append(_row(funnel, t["funnel"], "hand-written DuckDB query, same output", t["funnel_hand"], rss))
    notes = (
        "speedup = peer time / touchlens time (>1: touchlens faster); peak RSS of the size's own process, "
        "ingest included; targets: >= 4x pm4py, >= 0.67x the hand-written DFG, funnel >= 0.5x, under 8 GiB"
    )
    write_results("journeys", rows, notes)
    return rows


def _row(task: str, ours: float, peer: str, theirs: float, rss: int) -> dict[str, Any]:
    return {"task": task, "touchlens_s": round(ours, 3), "peer": peer, "peer_s": round(theirs, 3),
            "speedup": round(theirs / ours, 2), "peak_rss_mib": rss}  # fmt: skip
