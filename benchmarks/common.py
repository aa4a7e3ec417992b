"""Timing helpers shared by the benchmarks: best-of-N wall time, peak memory, and the results file."""

from __future__ import annotations

import json
import platform
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def measure(fn: Callable[[], Any], repeat: int = 5) -> dict[str, float]:
    """Best wall time of `repeat` runs, and the peak Python allocation of one run (MiB)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": best, "peak_mib": peak / 2**20}


def write_results(name: str, rows: list[dict[str, Any]], notes: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "notes": notes,
        "rows": rows,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
