"""Quantiles of waits read from the store's wait sketches (`store/waits.py`) instead of sorting the waits.

For a group of n waits and a quantile q, the exact answer (quantile_cont, as `engine.with_quantiles` gives it)
lies between the sorted waits x_lo and x_hi at ranks ⌊(n − 1)q⌋ and ⌈(n − 1)q⌉, weighted by the fraction f of
(n − 1)q. The sketch knows each wait's bucket, so it knows which buckets those two ranks fall in; their estimates
e_lo, e_hi are within relative error α of x_lo and x_hi, and so (1 − f)·e_lo + f·e_hi, the answer given here, is
within relative error α of the exact answer: |estimate − exact| ≤ α·exact (α = 1%; 0 s is exact).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
from ibis.common.exceptions import TableNotFound

from touchlens.analytics.engine import arrow
from touchlens.analytics.journeys import layer_state
from touchlens.store.waits import ALPHA, GAMMA, ZERO

SKETCH, SKETCH_STATE = "pair_waits", "pair_waits_state"
__all__ = ["ALPHA", "served", "sketch", "wait_quantiles"]


def served(backend: ibis.BaseBackend) -> bool:
    """Whether the sketch can answer for every journey: built, and the layer it follows has no customer waiting
    for a refresh (then the sketch lags the events as the layer does, and quantiles are computed exactly)."""
    try:
        state = backend.table(SKETCH_STATE)
    except TableNotFound:
        return False
    return layer_state(backend) == "clean" and int(arrow(backend, state.count()).as_py()) > 0


def sketch(backend: ibis.BaseBackend) -> ibis.Table:
    """The sketch's rows: source, target, bucket, n (the waits from a source touch to its next, the target, that
    fall in the bucket)."""
    return backend.table(SKETCH)


def wait_quantiles(
    backend: ibis.BaseBackend, by: Sequence[str], quantiles: Mapping[str, float], rows: ibis.Table | None = None
) -> ibis.Table:
    """Per group of `by`, the `quantiles` (name → q) of the waits. `by` are columns of the sketch (source, target),
    or of `rows`: the sketch's rows with columns a caller derived from them (the stages of source and target)."""
    s = sketch(backend) if rows is None else rows
    merged = s.group_by([*by, "bucket"]).aggregate(n=s.n.sum())
    # 2γ^i / (γ + 1) = (1 − α)·γ^i, through exp(i·ln γ): a literal γ loses digits that the power would multiply.
    estimate = (1 - ALPHA) * (merged.bucket.cast("float64") * math.log(GAMMA)).exp()
    value = ibis.cases((merged.bucket == ZERO, 0.0), else_=estimate)
    below = merged.n.sum().over(ibis.cumulative_window(group_by=[merged[c] for c in by], order_by=merged.bucket))
    total = merged.n.sum().over(ibis.window(group_by=[merged[c] for c in by]))
    c = merged.mutate(value=value, upto=below, position=(total - 1).cast("float64"))
    # The buckets of the ranks around each quantile: the first whose running count passes the rank.
    around = {
        f"_{name}_{end}": c.value.min(where=c.upto > getattr(c.position * q, end)())
        for name, q in quantiles.items()
        for end in ("floor", "ceil")
    }
    out = c.group_by(by).aggregate(_position=c.position.max(), **around)
    return out.select(*by, **{name: _between(out, name, q) for name, q in quantiles.items()})


def _between(out: ibis.Table, name: str, q: float) -> ir.FloatingValue:
    position = out._position * q
    low, high = out[f"_{name}_floor"], out[f"_{name}_ceil"]
    return low + (position - position.floor()) * (high - low)
