"""Directly-follows graph: touchlens (Ibis on the events store) against pm4py's discover_dfg and a hand-written
DuckDB window query over the same events (the engine's own limit). Size: TOUCHLENS_BENCH_FLOW_EVENTS (1M).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benchmarks.common import write_results

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / ".data"
FRAME = """
SELECT customer_id AS "case:concept:name", touchpoint AS "concept:name", ts AS "time:timestamp"
FROM events WHERE touchpoint IS NOT NULL
"""
HAND_WRITTEN = """
SELECT touchpoint, nxt, count(*) FROM (
  SELECT touchpoint, lead(touchpoint) OVER (PARTITION BY customer_id ORDER BY ts, event_id) AS nxt
  FROM events WHERE touchpoint IS NOT NULL
) WHERE nxt IS NOT NULL GROUP BY 1, 2
"""


def _best(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run() -> list[dict[str, Any]]:
    import pm4py

    import touchlens
    from touchlens.demo import benchmark_events

    n = int(os.environ.get("TOUCHLENS_BENCH_FLOW_EVENTS", "1000000"))
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"flow_events_{n}.parquet"
    if not path.exists():
        pq.write_table(benchmark_events(n, seed=11), path)
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        ws = touchlens.init(Path(tmp) / "ws")
        ws.import_map(ROOT / "examples" / "outdoor_retail.yaml")
        ws.ingest_events([path])
        ours = _best(lambda: ws.flows())
        with ws.events(read_only=True) as con:
            hand = _best(lambda: con.execute(HAND_WRITTEN).fetchall())
            frame = con.execute(FRAME).df()
        theirs = _best(lambda: pm4py.discover_dfg(frame), repeat=1)
    task = f"directly-follows graph, {n:,} events"
    rows = [
        _row(task, ours, "pm4py.discover_dfg (on a ready DataFrame)", theirs),
        _row(task, ours, "hand-written DuckDB window query", hand),
    ]
    notes = "speedup = peer time / touchlens time (>1: touchlens faster); targets: >= 4x pm4py, >= 0.67x hand-written"
    write_results("flows", rows, notes)
    return rows


def _row(task: str, ours: float, peer: str, theirs: float) -> dict[str, Any]:
    return {"task": task, "touchlens_s": round(ours, 3), "peer": peer, "peer_s": round(theirs, 3),
            "speedup": round(theirs / ours, 2)}  # fmt: skip
