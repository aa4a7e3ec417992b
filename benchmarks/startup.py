"""Whole processes, as a person or a script runs them: `touchlens --help`, `touchlens touchpoints`, and
`touchlens analyze flows` on 1M events against a plain pm4py script computing the directly-follows graph from
the same events as CSV (read, format, discover_dfg). Interpreter start and imports are part of every time.

Each command runs `TOUCHLENS_BENCH_STARTUP_RUNS` times (default 5); the figures are the median wall time and
the median CPU time (user + system) of the child. Events: TOUCHLENS_BENCH_STARTUP_EVENTS (default 1,000,000).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_results

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / ".data"
TOUCHLENS = [sys.executable, "-c", "from touchlens.cli import main; main()"]
PM4PY_SCRIPT = """
import sys, pandas as pd, pm4py
frame = pd.read_csv(sys.argv[1], parse_dates=["ts"])
frame = pm4py.format_dataframe(frame, case_id="customer_id", activity_key="event", timestamp_key="ts")
dfg, starts, ends = pm4py.discover_dfg(frame)
print(len(dfg))
"""


def timed(command: list[str], runs: int) -> dict[str, float]:
    """Median wall and CPU seconds of `runs` runs of `command` (its output discarded, its failure raised)."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def _events_csv(n: int) -> Path:
    """The benchmark's events (the outdoor retailer's touchpoints) as one CSV, made once per size."""
    import pyarrow.csv as pa_csv

    from touchlens.demo import benchmark_events

    path = DATA / f"startup_events_{n}.csv"
    if not path.exists():
        pa_csv.write_csv(benchmark_events(n, seed=11), path)
    return path


def run() -> list[dict[str, Any]]:
    DATA.mkdir(parents=True, exist_ok=True)
    runs = int(os.environ.get("TOUCHLENS_BENCH_STARTUP_RUNS", "5"))
    n = int(os.environ.get("TOUCHLENS_BENCH_STARTUP_EVENTS", "1000000"))
    csv = _events_csv(n)
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        ws = Path(tmp) / "ws"
        for args in (["init", str(ws)], ["-w", str(ws), "map", "import", str(ROOT / "examples/outdoor_retail.yaml")],
                     ["-w", str(ws), "ingest", "events", str(csv)]):  # fmt: skip
            subprocess.run([*TOUCHLENS, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        help_ = timed([*TOUCHLENS, "--help"], runs)
        inventory = timed([*TOUCHLENS, "-w", str(ws), "touchpoints"], runs)
        flows = timed([*TOUCHLENS, "-w", str(ws), "analyze", "flows", "--json"], runs)
        pm4py = timed([sys.executable, "-c", PM4PY_SCRIPT, str(csv)], runs)
    rows = [
        _row("touchlens --help", help_, "target: under 0.3 s wall, 1 s CPU"),
        _row("touchlens touchpoints", inventory, "target: under 1 s CPU"),
        _row(f"touchlens analyze flows, {n:,} events", flows, "the process, imports included"),
        _row(f"pm4py script: read CSV + discover_dfg, {n:,} events", pm4py, "the peer, same events"),
    ]
    rows[2]["note"] = f"{pm4py['wall_s'] / flows['wall_s']:.1f}x faster than the pm4py script (target >= 2x)"
    notes = f"median of {runs} whole-process runs each; wall and CPU (user + system) seconds of the child"
    write_results("startup", rows, notes)
    return rows


def _row(task: str, t: dict[str, float], note: str) -> dict[str, Any]:
    return {"task": task, "wall_s": round(t["wall_s"], 3), "cpu_s": round(t["cpu_s"], 3), "note": note}
