"""Lookups over the periods `read_periods` returns (sorted by customer and period, `last` marking each customer's
last): the insights' back-and-forth loops found by a binary search, and the open periods found from `last`, each
against the plain computation (a join of every period, a sort of every customer's periods) on random periods."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from touchlens.analytics.drivers import known_periods
from touchlens.insights.effects import _loops
from touchlens.model.map import OutcomeRule

CUSTOMERS = ["a", "b", "bb", "c", "é", "z"]

periods_sets = st.lists(
    st.tuples(st.sampled_from(CUSTOMERS), st.integers(0, 6), st.booleans(), st.booleans()),
    max_size=40,
    unique_by=lambda r: (r[0], r[1]),
)


def _units(rows: list[tuple[str, int, bool, bool]]) -> pa.Table:
    """Periods as `read_periods` returns them: sorted by customer and period, `last` on each customer's last."""
    rows = sorted(rows)
    last = [i + 1 == len(rows) or rows[i + 1][0] != r[0] for i, r in enumerate(rows)]
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "period": pa.array([r[1] for r in rows], pa.int64()),
            "converted": pa.array([int(r[2]) for r in rows], pa.int64()),
            "churn": pa.array([int(r[3]) for r in rows], pa.int64()),
            "last": pa.array(last, pa.bool_()),
        }
    )


@given(
    periods=periods_sets,
    hits=st.lists(
        st.tuples(st.sampled_from([*CUSTOMERS, "nobody"]), st.integers(0, 8), st.sampled_from(["x", "y", "w"])),
        max_size=20,
    ),
)
def test_loops_find_each_hits_period_as_a_join_would(periods: list[Any], hits: list[tuple[str, int, str]]) -> None:
    units = _units(periods)
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


@given(periods=periods_sets)
def test_open_periods_from_last_are_those_a_sort_finds(periods: list[Any]) -> None:
    units = _units(periods)
    rule = OutcomeRule(inactive_days=30)
    from_last = known_periods(units, rule)
    sorted_again = known_periods(units.drop_columns(["last"]), rule)
    assert from_last.tolist() == sorted_again.tolist()
    open_ = [i for i, r in enumerate(units.to_pylist()) if r["last"] and not r["converted"] and not r["churn"]]
    assert np.flatnonzero(~from_last).tolist() == open_
