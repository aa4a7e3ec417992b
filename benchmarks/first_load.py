"""First loads of the heavy analyses, as a page computes them once the server has started: each analysis in a
process of its own whose imports are done (a server's are, pandas included: its warm start loads it), on a new
workspace handle each time (no cached result), three times: `cold_s` is the process's first (memory and the
store's pages first touched), `seconds` the median of the three (as a server that has run analyses before); on
the demo generator's events with the retail map.

The analyses: insights, drivers of every outcome (100 resamples), the scorecard, attribution's seven models
side by side (the attribution page), and the other pages' analyses (conformance, trends, health, flows,
variants, Sankey, a funnel, the paths after a touchpoint). Target: under 3 s at 10M events (issue 20).

Settings: TOUCHLENS_BENCH_FIRST_EVENTS (default 10,000,000). With TOUCHLENS_BENCH_FIRST_BEFORE=/path/to/an/older
checkout (a `git worktree` of an earlier commit), each analysis is also run with that code on the same
workspace, just before this code: `before_cold_s` and `before_s`. Each child says which code it imported; a
path that holds no checkout is refused, not measured as this one.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import write_results

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / ".data"
RUNS = 3
ANALYSES = {
    "insights": "ws.insights()",
    "drivers (every outcome)": "ws.all_drivers(100)",
    "scorecard": "ws.scorecard()",
    "attribution page (seven models)": "compare_attribution(ws, EVERY_MODEL, 'channel')",
    # The lighter analyses of the other pages, so the target's "every page" is measured alike.
    "conformance": "ws.conformance()",
    "trends (weekly)": "ws.trends()",
    "health": "ws.health_report()",
    "flows": "ws.flows()",
    "variants": "ws.variants()",
    "sankey": "ws.sankey()",
    "funnel (four steps, 7 days)": "ws.run_funnel(ws.funnel(['homepage', 'product_page', 'cart', 'checkout']))",
    "paths after the cart": "ws.paths_around('cart')",
}
# One analysis, timed RUNS times in this process after the imports a server has done by then.
CHILD = """
import json, sys, time
from pathlib import Path
import touchlens
import scipy.stats, touchlens.analytics.drivers, touchlens.analytics.scorecard, touchlens.insights.effects
import touchlens.engines, touchlens.analytics.attribution
# A started server has pandas: its warm start computes the scorecard and insights, and pyarrow's `to_numpy` (and
# Ibis's results) import it. Without it here, a process's first run paid a quarter of a second no page pays.
import pandas
from touchlens.analyses import compare_attribution
from touchlens.analytics.attribution_models import EVERY_MODEL
root, call, runs = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
times = []
for _ in range(runs):
    ws = touchlens.open(root)
    start = time.perf_counter()
    eval(call)
    times.append(time.perf_counter() - start)
print(json.dumps({"code": touchlens.__file__, "times": times}))
"""


def _workspace(n: int, folder: Path) -> Path:
    import pyarrow.parquet as pq

    import touchlens
    from touchlens.demo import benchmark_events

    path = DATA / f"flow_events_{n}.parquet"
    if not path.exists():
        pq.write_table(benchmark_events(n, seed=11), path)
    ws = touchlens.init(folder / "ws")
    ws.import_map(ROOT / "examples" / "outdoor_retail.yaml")
    ws.ingest_events([path])
    return ws.root


def _times(code: Path, root: Path, call: str) -> list[float]:
    code = code.resolve()
    if not (code / "touchlens" / "__init__.py").is_file():
        raise SystemExit(f"{code} holds no touchlens checkout (TOUCHLENS_BENCH_FIRST_BEFORE)")
    env = {**os.environ, "PYTHONPATH": str(code)}
    # From outside the checkout and with -P (no working folder on the path), so PYTHONPATH picks the code.
    done = subprocess.run(
        [sys.executable, "-P", "-c", CHILD, str(root), call, str(RUNS)],
        cwd=tempfile.gettempdir(),
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"{call} failed with {code}:\n{done.stderr}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(answer["code"]).resolve().is_relative_to(code):
        raise SystemExit(f"asked for {code}, the child imported {answer['code']}")
    times: list[float] = answer["times"]
    return times


def run() -> list[dict[str, Any]]:
    DATA.mkdir(parents=True, exist_ok=True)
    n = int(os.environ.get("TOUCHLENS_BENCH_FIRST_EVENTS", "10000000"))
    before = os.environ.get("TOUCHLENS_BENCH_FIRST_BEFORE")
    rows = []
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        root = _workspace(n, Path(tmp))
        for name, call in ANALYSES.items():
            row: dict[str, Any] = {"task": name, "events": n}
            if before:
                old = _times(Path(before), root, call)
                row["before_cold_s"], row["before_s"] = round(old[0], 2), round(statistics.median(old), 2)
            new = _times(ROOT, root, call)
            row["cold_s"], row["seconds"] = round(new[0], 2), round(statistics.median(new), 2)
            row["target_s"] = 3
            rows.append(row)
    notes = (
        "imports done (pandas included, as a started server has it), no cached result; cold_s: a process's first "
        f"run, seconds: median of {RUNS}; before: the checkout in TOUCHLENS_BENCH_FIRST_BEFORE"
    )
    write_results("first_load", rows, notes)
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
