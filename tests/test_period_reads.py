"""Lookups over the periods `read_periods` returns (in any order, `last` marking each customer's last): each
customer's last period, the insights' back-and-forth loops found by a binary search, and the open periods found
from `last`, each against the plain computation (a join of every period, a sort of every customer's periods) on
random periods in random order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from touchlens.analytics.drivers import _last, known_periods
from touchlens.insights.effects import _loops
from touchlens.model.map import OutcomeRule

CUSTOMERS = ["a", "b", "bb", "c", "é", "z"]

periods_sets = st.lists(
    st.tuples(st.sampled_from(CUSTOMERS), st.integers(0, 6), st.booleans(), st.booleans()),
    max_size=40,
    unique_by=lambda r: (r[0], r[1]),
)


def _units(rows: list[tuple[str, int, bool, bool]], shuffle: Any) -> pa.Table:
    """Periods as `read_periods` returns them: in any order, `last` on each customer's last."""
    highest = {r[0]: max(p[1] for p in rows if p[0] == r[0]) for r in rows}
    rows = list(rows)
    shuffle.shuffle(rows)
    last = [r[1] == highest[r[0]] for r in rows]
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "period": pa.array([r[1] for r in rows], pa.int64()),
            "converted": pa.array([int(r[2]) for r in rows], pa.int64()),
            "churn": pa.array([int(r[3]) for r in rows], pa.int64()),
            "last": pa.array(last, pa.bool_()),
        }
    )


@settings(deadline=None)  # Arrow's first calls in a process can take longer than Hypothesis's 200 ms
@given(
    periods=periods_sets,
    shuffle=st.randoms(use_true_random=False),
    hits=st.lists(
        st.tuples(st.sampled_from([*CUSTOMERS, "nobody"]), st.integers(0, 8), st.sampled_from(["x", "y", "w"])),
        max_size=20,
    ),
)
def test_loops_find_each_hits_period_as_a_join_would(
    periods: list[Any], shuffle: Any, hits: list[tuple[str, int, str]]
) -> None:
    units = _units(periods, shuffle)
    table = pa.table(
        {
            "customer_id": pa.array([h[0] for h in hits], pa.string()),
            "period": pa.array([h[1] for h in hits], pa.int64()),
            "lo": pa.array([min(h[2], "v") for h in hits], pa.string()),
            "hi": pa.array([max(h[2], "v") for h in hits], pa.string()),
        }
    )
    keys = units.select(["customer_id", "period"]).to_pylist()
    row_of = {(k["customer_id"], k["period"]): i for i, k in enumerate(keys)}
    want: dict[frozenset[str], set[int]] = {}
    for customer, period, other in hits:
        if (customer, period) in row_of:  # a hit in no period of `units` is left out, as a join leaves it
            want.setdefault(frozenset({other, "v"}), set()).add(row_of[(customer, period)])
    found = _loops(table, units)
    assert {pair: set(np.flatnonzero(column).tolist()) for pair, column in found.items()} == want
    assert all(column.size == units.num_rows for column in found.values())


@settings(deadline=None)  # Arrow's first calls in a process can take longer than Hypothesis's 200 ms
@given(periods=periods_sets, shuffle=st.randoms(use_true_random=False))
def test_last_marks_each_customers_highest_period(periods: list[Any], shuffle: Any) -> None:
    units = _units(periods, shuffle)
    assert _last(units.drop_columns(["last"])).tolist() == units.column("last").to_pylist()


@settings(deadline=None)  # Arrow's first calls in a process can take longer than Hypothesis's 200 ms
@given(periods=periods_sets, shuffle=st.randoms(use_true_random=False))
def test_open_periods_from_last_are_those_a_sort_finds(periods: list[Any], shuffle: Any) -> None:
    units = _units(periods, shuffle)
    rule = OutcomeRule(inactive_days=30)
    from_last = known_periods(units, rule)
    sorted_again = known_periods(units.drop_columns(["last"]), rule)
    assert from_last.tolist() == sorted_again.tolist()
    open_ = [i for i, r in enumerate(units.to_pylist()) if r["last"] and not r["converted"] and not r["churn"]]
    assert np.flatnonzero(~from_last).tolist() == open_
