"""Attribution: touchlens' exact Markov (order 1), Shapley and heuristics against ChannelAttribution, timed in the
same run, on its own example paths (10,000 distinct) and on 1,000,000 simulated journeys (aggregated to their
distinct paths, as both tools take them). ChannelAttribution's Markov is a simulation; ours solves the absorbing
chain exactly. The open ChannelAttribution has no Shapley model (it is in its paid Pro edition), so ours is timed
alone. Size: TOUCHLENS_BENCH_JOURNEYS (default 1,000,000).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_results
from touchlens.analytics.attribution import Path as P
from touchlens.analytics.attribution import attribute, heuristics

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "channelattribution_paths" / "Data.csv"
CHANNELS = ["search", "social", "display", "email", "affiliate", "video", "direct", "referral", "sms", "push"]


def _best(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            fn()
        best = min(best, time.perf_counter() - start)
    return best


def simulated_paths(journeys: int, seed: int = 5) -> list[P]:
    """`journeys` random journeys over ten channels (1–12 touches), each channel nudging the odds of converting;
    aggregated to distinct paths with their conversion and null counts."""
    rng = np.random.default_rng(seed)
    popularity = rng.dirichlet(np.ones(len(CHANNELS)) * 2)
    lift = rng.uniform(-0.4, 0.9, len(CHANNELS))
    lengths = np.minimum(rng.geometric(0.3, journeys), 12)
    touches = rng.choice(len(CHANNELS), size=int(lengths.sum()), p=popularity)
    ends = np.cumsum(lengths)
    logit = -2.5 + np.add.reduceat(lift[touches], ends - lengths) / np.sqrt(lengths)
    won = rng.random(journeys) < 1 / (1 + np.exp(-logit))
    tally: Counter[tuple[tuple[str, ...], bool]] = Counter()
    for path, converted in zip(np.split(touches, ends[:-1]), won, strict=True):
        tally[(tuple(CHANNELS[i] for i in path), bool(converted))] += 1
    merged: dict[tuple[str, ...], list[float]] = {}
    for (steps, converted), n in tally.items():
        merged.setdefault(steps, [0.0, 0.0])[0 if converted else 1] += n
    return [P(steps, c, nulls) for steps, (c, nulls) in merged.items()]


def _frame(paths: list[P]) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "path": [" > ".join(p.steps) for p in paths],
            "total_conversions": [p.conversions for p in paths],
            "total_null": [p.nulls for p in paths],
        }
    )


def _contest(label: str, paths: list[P], frame: Any) -> list[dict[str, Any]]:
    import ChannelAttribution as ca

    contests = [
        ("markov order 1", lambda: attribute(paths, "markov"),
         lambda: ca.markov_model(frame, "path", "total_conversions", var_null="total_null", order=1, verbose=0)),
        ("first/last/linear", lambda: heuristics(paths, ("first", "last", "linear")),
         lambda: ca.heuristic_models(frame, "path", "total_conversions")),
    ]  # fmt: skip
    rows = []
    for task, ours, theirs in contests:
        a, b = _best(ours), _best(theirs)
        rows.append({"task": f"{task}, {label}", "touchlens_s": round(a, 4), "peer": "ChannelAttribution 2.2.5",
                     "peer_s": round(b, 4), "speedup": round(b / a, 2)})  # fmt: skip
    a = _best(lambda: attribute(paths, "shapley"))
    rows.append({"task": f"shapley (exact, {len({k for p in paths for k in p.steps})} keys), {label}",
                 "touchlens_s": round(a, 4), "peer": "none (ChannelAttribution Pro only)", "peer_s": None,
                 "speedup": None})  # fmt: skip
    return rows


def run() -> list[dict[str, Any]]:
    with DATA.open() as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    example = [P(tuple(r["path"].split(" > ")), float(r["total_conversions"]), float(r["total_null"])) for r in rows]
    journeys = int(os.environ.get("TOUCHLENS_BENCH_JOURNEYS", "1000000"))
    simulated = simulated_paths(journeys)
    out = _contest(f"{len(example):,} example paths", example, _frame(example))
    label = f"{journeys:,} journeys ({len(simulated):,} distinct paths)"
    out += _contest(label, simulated, _frame(simulated))
    write_results("attribution", out, "speedup = peer time / touchlens time; ours exact, the peer's Markov simulated")
    return out
