"""Attribution: touchlens' exact Markov (order 1) and heuristics against ChannelAttribution on its own example
paths (10,000 distinct paths), timed in the same run. ChannelAttribution's Markov is a simulation; ours solves
the absorbing chain exactly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_results
from touchlens.analytics.attribution import Path as P
from touchlens.analytics.attribution import attribute

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "channelattribution_paths" / "Data.csv"


def _best(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            fn()
        best = min(best, time.perf_counter() - start)
    return best


def run() -> list[dict[str, Any]]:
    import ChannelAttribution as ca
    import pandas as pd

    frame = pd.read_csv(DATA, sep=";")
    with DATA.open() as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    paths = [P(tuple(r["path"].split(" > ")), float(r["total_conversions"]), float(r["total_null"])) for r in rows]
    out = []
    for task, ours, theirs in (
        ("markov order 1", lambda: attribute(paths, "markov"),
         lambda: ca.markov_model(frame, "path", "total_conversions", var_null="total_null", order=1, verbose=0)),
        ("first/last/linear", lambda: [attribute(paths, m) for m in ("first", "last", "linear")],
         lambda: ca.heuristic_models(frame, "path", "total_conversions")),
    ):  # fmt: skip
        a, b = _best(ours), _best(theirs)
        out.append({"task": f"{task}, {len(paths):,} paths", "touchlens_s": round(a, 4),
                    "peer": "ChannelAttribution 2.2.5", "peer_s": round(b, 4), "speedup": round(b / a, 2)})  # fmt: skip
    write_results("attribution", out, "speedup = peer time / touchlens time; ours exact, the peer's Markov simulated")
    return out
