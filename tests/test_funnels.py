"""Funnels equal a brute-force reading of the definition (tests/funnel_reference.py) on generated journeys; counts
never grow."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import JourneysFor, Result
from tests.funnel_reference import ReferenceFunnel
from touchlens.analytics.funnels import FunnelQuery, Order

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOUCHPOINTS = ["a", "b", "c", "d"]


def backend(journeys: dict[str, list[tuple[str, int]]]) -> Any:
    """An engine holding the journeys: customer → [(touchpoint, minute)], event ids in list order."""
    rows = [
        (f"{customer}-{i:03d}", customer, T0 + timedelta(minutes=minute), tp)
        for customer, steps in journeys.items()
        for i, (tp, minute) in enumerate(steps)
    ]
    table = pa.table(
        {
            "event_id": [r[0] for r in rows],
            "customer_id": [r[1] for r in rows],
            "ts": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            "touchpoint": [r[3] for r in rows],
            "channel": pa.nulls(len(rows), pa.string()),
        }
    )
    con = ibis.duckdb.connect()
    con.create_table("events", table)
    return con


journeys = st.dictionaries(
    st.sampled_from([f"c{i}" for i in range(8)]),
    st.lists(st.tuples(st.sampled_from(TOUCHPOINTS), st.integers(0, 30)), min_size=1, max_size=6),
    min_size=1,
    max_size=6,
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(
    journeys,
    st.lists(st.sampled_from(TOUCHPOINTS), min_size=1, max_size=4),
    st.integers(0, 20),
    st.sampled_from([Order.any, Order.strict]),
    st.lists(st.sampled_from(TOUCHPOINTS), max_size=1).map(tuple),
)
def test_funnel_counts_equal_the_definition(
    data: dict[str, list[tuple[str, int]]], steps: list[str], window: int, order: Order, exclude: tuple[str, ...]
) -> None:
    query = FunnelQuery(tuple(steps), timedelta(minutes=window), order, exclude=exclude)
    funnel = query.run(backend(data)).to_dict()
    reference = ReferenceFunnel(tuple(steps), window, order is Order.strict, exclude)
    depths = [reference.depth_by_definition(events) for events in data.values()]
    expected = [sum(d >= k for d in depths) for k in range(1, len(steps) + 1)]
    assert [s["count"] for s in funnel["steps"]] == expected
    assert reference.counts(data) == expected  # the quick reading the parity suite uses agrees with the definition
    counts = [s["count"] for s in funnel["steps"]]
    assert all(b <= a for a, b in itertools.pairwise(counts))  # a funnel never grows


def test_twenty_steps_and_conversion_rates() -> None:
    steps = [f"s{i}" for i in range(20)]
    data = {
        "all": [(s, i) for i, s in enumerate(steps)],
        "half": [(s, i) for i, s in enumerate(steps[:10])],
        "late": [(s, i * 100) for i, s in enumerate(steps)],  # too slow for a 60-minute window after step 1
    }
    funnel = FunnelQuery(tuple(steps), timedelta(minutes=60)).run(backend(data)).to_dict()["steps"]
    assert [s["count"] for s in funnel] == [3] + [2] * 9 + [1] * 10
    assert funnel[10]["conversion_from_previous"] == 0.5
    assert funnel[19]["conversion_from_first"] == 1 / 3
    assert funnel[1]["median_seconds"] == 60.0


def test_the_funnel_command_reports_the_documented_shape(cli: Callable[..., Result], journeys_for: JourneysFor) -> None:
    ws = journeys_for({"ann": ["home", "cart", "buy"], "bob": ["home", "help", "cart"], "cy": ["cart", "home"]}).root
    strict = json.loads(cli("-w", ws, "analyze", "funnel", "--steps", "home,cart", "--order", "strict", "--json").out)
    assert [s["count"] for s in strict["steps"]] == [3, 1]
    result = cli("-w", ws, "analyze", "funnel", "--steps", "home,cart,buy", "--window", "1h", "--json")
    steps = json.loads(result.out)["steps"]
    assert [(s["step"], s["count"]) for s in steps] == [("home", 3), ("cart", 2), ("buy", 1)]
    assert set(steps[0]) == {"step", "count", "conversion_from_previous", "conversion_from_first", "median_seconds"}
    assert cli("-w", ws, "analyze", "funnel", "--steps", "home,moon").code == 1
    assert cli("-w", ws, "analyze", "funnel", "--steps", "home,cart", "--window", "soon").code == 1
    no_steps = cli("-w", ws, "analyze", "funnel", "--steps", ",")
    assert (no_steps.code, "at least one step" in no_steps.err) == (1, True)


def test_exclusions_and_the_customers_who_dropped(
    cli: Callable[..., Result], journeys_for: JourneysFor, tmp_path: Path
) -> None:
    ws = journeys_for({"ann": ["home", "cart", "buy"], "bob": ["home", "help", "cart"], "cy": ["home", "x"]}).root
    excluded = json.loads(cli("-w", ws, "analyze", "funnel", "--steps", "home,cart", "--exclude", "help", "--json").out)
    assert [s["count"] for s in excluded["steps"]] == [3, 1]
    out = tmp_path / "dropped.csv"
    assert cli("-w", ws, "analyze", "funnel", "--steps", "home,cart,buy", "--dropped-at", "1", "-o", out).code == 0
    assert out.read_text() == "customer_id\ncy\n"
    assert cli("-w", ws, "analyze", "funnel", "--steps", "home,cart", "--dropped-at", "2").code == 1


@pytest.mark.slow
def test_a_persona_breakdown_adds_up_to_the_funnel(cli: Callable[..., Result], tmp_path: Path) -> None:
    ws = tmp_path / "demo"
    assert cli("-w", ws, "demo", "--no-serve", "--customers", "200", "--seed", "5").code == 0
    args = ("-w", ws, "analyze", "funnel", "--steps", "homepage,product_page,cart", "--json")
    funnel = json.loads(cli(*args, "--breakdown", "persona").out)
    overall = [s["count"] for s in funnel["steps"]]
    groups = funnel["breakdown"]["groups"]
    assert len(groups) > 1
    assert [sum(g["counts"][i] for g in groups) for i in range(3)] == overall
    by_channel = json.loads(cli(*args, "--breakdown", "channel").out)["breakdown"]["groups"]
    assert [sum(g["counts"][i] for g in by_channel) for i in range(3)] >= overall
    by_property = json.loads(cli(*args, "--breakdown", "property:page_type").out)["breakdown"]["groups"]
    assert by_property == [{"group": "home", "counts": overall}]  # every homepage view has page_type home
    assert cli(*args, "--breakdown", "mood").code == 1
