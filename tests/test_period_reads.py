"""Lookups over the periods `read_periods` returns (in any order): the insights' back-and-forth loops found by a
binary search, and the open periods found without looking for each customer's last, each against the plain
computation (a join of every period, each customer's highest period) on random periods in random order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from touchlens.analytics.drivers import has_bit, known_periods
from touchlens.insights.effects import _loops
from touchlens.model.map import OutcomeRule

CUSTOMERS = ["a", "b", "bb", "c", "é", "z"]

periods_sets = st.lists(
    st.tuples(st.sampled_from(CUSTOMERS), st.integers(0, 6), st.booleans(), st.booleans()),
    max_size=40,
    unique_by=lambda r: (r[0], r[1]),
)


def _units(rows: list[tuple[str, int, bool, bool]], shuffle: Any) -> pa.Table:
    """Periods as `read_periods` returns them: in any order."""
    rows = list(rows)
    shuffle.shuffle(rows)
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "period": pa.array([r[1] for r in rows], pa.int64()),
            "converted": pa.array([int(r[2]) for r in rows], pa.int64()),
            "churn": pa.array([int(r[3]) for r in rows], pa.int64()),
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


# Customers' periods as conversions cut them: a customer with n conversions has periods 0 to n, those before n
# ending in a conversion; only some have touches (and so a row); a churned customer's period n, if it has touches,
# is flagged churn.
journeys = st.dictionaries(
    st.sampled_from(CUSTOMERS),
    st.integers(0, 4).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n), min_size=1), st.booleans())),
)


@settings(deadline=None)  # Arrow's first calls in a process can take longer than Hypothesis's 200 ms
@given(customers=journeys, shuffle=st.randoms(use_true_random=False))
def test_open_periods_are_each_active_customers_last_unconverted_period(
    customers: dict[str, tuple[int, set[int], bool]], shuffle: Any
) -> None:
    rows = [(c, p, p < n, churned and p == n) for c, (n, touched, churned) in customers.items() for p in touched]
    units = _units(rows, shuffle)
    highest = {c: max(touched) for c, (_, touched, _) in customers.items()}
    open_ = [
        i
        for i, r in enumerate(units.to_pylist())
        if r["period"] == highest[r["customer_id"]] and not r["converted"] and not customers[r["customer_id"]][2]
    ]
    assert np.flatnonzero(~known_periods(units, OutcomeRule(inactive_days=30))).tolist() == open_
    assert known_periods(units, None).all()  # no churn rule: nothing says a customer is still active


@given(
    words=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30),
    b=st.integers(0, 63),
    step=st.sampled_from([1, 2]),  # a contiguous array, or a view of every other word
)
def test_a_bit_read_from_its_byte_is_the_bit_of_the_word(words: list[int], b: int, step: int) -> None:
    mask = np.array(words, dtype=np.int64)[::step]
    assert has_bit(mask, 1 << b).tolist() == [(w >> b) & 1 == 1 for w in words[::step]]
