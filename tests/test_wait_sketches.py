"""Wait sketches (store/waits.py, analytics/sketches.py): quantiles within relative error α of the exact ones,
and the sketch kept by refreshes, erasure and remaps equal to one rebuilt from scratch.

The bound: for n waits and quantile q, the exact answer (quantile_cont) is (1 − f)·x_lo + f·x_hi, the sorted
waits at ranks ⌊(n − 1)q⌋ and ⌈(n − 1)q⌉ weighted by the fraction f of (n − 1)q. The sketch answers with the same
weights over its estimates of x_lo and x_hi, each within relative error α, so |estimate − exact| ≤ α·exact.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from unittest.mock import patch

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import touchlens
from tests.test_journey_layer import MAP, _batch, _business, _event, _workspace, _write, listed_conversions, reference
from touchlens.analytics import flows as fl
from touchlens.analytics import sketches
from touchlens.analytics.journeys import JourneyOptions
from touchlens.demo_workspace import build_demo
from touchlens.ingest import pipeline
from touchlens.store import journeys, waits
from touchlens.store.backends import backend_on
from touchlens.store.events import SCHEMA

T0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
TINY = 1e-12  # floating-point slack on the α bound (a wait on a bucket's edge is off by exactly α)


def _linear(values: list[float], q: float) -> float:
    """quantile_cont by hand: between the sorted values at ranks ⌊(n − 1)q⌋ and ⌈(n − 1)q⌉."""
    s = sorted(values)
    position = (len(s) - 1) * q
    low = int(position // 1)
    high = min(low + 1, len(s) - 1)
    return s[low] + (position - low) * (s[high] - s[low])


@cache
def _store() -> tuple[duckdb.DuckDBPyConnection, Any]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(SCHEMA)
    return con, backend_on(con)


def _sketched(waits_us: list[int], quantiles: dict[str, float]) -> dict[str, float]:
    """The quantiles of these waits (µs) of one pair, read from a sketch rebuilt over touches holding them."""
    con, backend = _store()
    con.execute("DELETE FROM touches")
    rows = [("c", T0, f"e{i}", "a", i, T0 + timedelta(microseconds=w), "b") for i, w in enumerate(waits_us)]
    con.executemany(
        "INSERT INTO touches (customer_id, ts, event_id, touchpoint, pos, next_ts, next_touchpoint, period) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
        rows,
    )
    waits.rebuild_in(con)
    (row,) = backend.to_pyarrow(sketches.wait_quantiles(backend, ["source", "target"], quantiles)).to_pylist()
    return row


waits_lists = st.lists(
    st.one_of(st.just(0), st.integers(1, 10**6), st.integers(1, 10**13), st.sampled_from([60 * 10**6, 86400 * 10**6])),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(waits_us=waits_lists, q=st.floats(0, 1))
def test_a_quantile_from_the_sketch_is_within_alpha_of_the_exact_one(waits_us: list[int], q: float) -> None:
    seconds = [w / 1e6 for w in waits_us]
    got = _sketched(waits_us, {"median": 0.5, "p90": 0.9, "q": q})
    for name, at in (("median", 0.5), ("p90", 0.9), ("q", q)):
        exact = _linear(seconds, at)
        assert abs(got[name] - exact) <= (sketches.ALPHA + TINY) * exact, (name, at, got[name], exact)
        assert got[name] >= 0


def test_waits_of_zero_are_exact_and_one_value_gives_itself_within_alpha() -> None:
    assert _sketched([0, 0, 0], {"median": 0.5}) == {"source": "a", "target": "b", "median": 0.0}
    got = _sketched([3_600_000_000] * 5, {"median": 0.5, "p90": 0.9})
    assert got["median"] == got["p90"] == pytest.approx(3600, rel=sketches.ALPHA + TINY)
    assert got["median"] != 3600  # an estimate, not the value: the test would notice exact answers by chance
    # Not every estimate is the same: waits far apart land in different buckets.
    spread = _sketched([1_000_000, 10**9], {"low": 0.0, "high": 1.0})
    assert spread["low"] == pytest.approx(1, rel=sketches.ALPHA + TINY)
    assert spread["high"] == pytest.approx(1000, rel=sketches.ALPHA + TINY)


def _pairs(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return sorted(con.execute("SELECT source, target, bucket, n FROM pair_waits").fetchall())


def _rebuilt(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """The sketch rebuilt from scratch from the layer, in a transaction rolled back."""
    con.execute("BEGIN TRANSACTION")
    try:
        waits.rebuild_in(con)
        return _pairs(con)
    finally:
        con.execute("ROLLBACK")


def _counted(rows: set[tuple[Any, ...]]) -> Counter[tuple[Any, ...]]:
    """Per (touchpoint, next touchpoint), how many touches have a next: from the layer's Python reference,
    independent of the sketch's SQL."""
    return Counter((r[3], r[9]) for r in rows if r[9] is not None)


def _check(ws: touchlens.Workspace) -> None:
    with ws.events() as con:
        found = _pairs(con)
        assert found == _rebuilt(con)
        assert all(n > 0 for *_, n in found)
        per_pair: Counter[tuple[Any, ...]] = Counter()
        for source, target, _, n in found:
            per_pair[(source, target)] += n
        assert per_pair == _counted(reference(con))
        listed, converted = listed_conversions(con)  # the layer's list of conversions, kept with the sketch
        assert listed == converted


REMAP = {**MAP, "touchpoints": [{"key": "shop", "match": {"event": {"in": ["home", "search"]}}},
                                {"key": "cart", "match": {"event": "cart"}}]}  # fmt: skip

steps = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.integers(1, 12), st.booleans()),
        st.tuples(st.just("forget"), st.sampled_from(["ann", "bob", "cy"]), st.booleans()),
        st.tuples(st.just("remap"), st.just(0), st.booleans()),
    ),
    min_size=1,
    max_size=6,
)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps, seed=st.integers(0, 10**6))
def test_the_sketch_after_any_batches_erasures_and_remaps_equals_a_rebuild(
    tmp_path_factory: pytest.TempPathFactory, plan: list[tuple[str, Any, bool]], seed: int
) -> None:
    folder = tmp_path_factory.mktemp("sketch")
    ws = _workspace(folder)
    # Customers the batches leave alone, so a batch's few are refreshed one by one, not by a rebuild.
    ws.ingest_events(
        [_write(folder / "base.jsonl", [{**e, "event_id": f"base{e['event_id']}"} for e in _business(30, 9)])]
    )
    rng = random.Random(seed)
    sent: list[dict[str, Any]] = []
    counter = itertools.count()
    with patch.object(waits, "update", wraps=waits.update) as updates:
        _run(ws, folder, plan, rng, sent, counter)
    # The sketch was changed in place (not only rebuilt) whenever a batch came.
    assert updates.called or not any(kind == "batch" for kind, *_ in plan)


def _run(ws: touchlens.Workspace, folder: Path, plan: list[tuple[str, Any, bool]], rng: random.Random,
         sent: list[dict[str, Any]], counter: Iterator[int]) -> None:  # fmt: skip
    for n, (kind, arg, flag) in enumerate(plan):
        if kind == "batch":
            # Late and out of order (minutes anywhere over two days), some sent again.
            fresh = [
                _event(rng.choice(["ann", "bob", "cy", "di"]), rng.randint(-1500, 1500),
                       rng.choice(["home", "search", "cart", "help", "buy", "unmapped"]), next(counter))
                for _ in range(arg)
            ]  # fmt: skip
            again = rng.sample(sent, min(len(sent), 3)) if flag else []
            sent += fresh
            ws.ingest_events([_write(folder / f"b{n}.jsonl", fresh + again)])
        elif kind == "forget":
            ws.forget([arg], suppress=flag)
        else:
            (folder / "map.json").write_text(json.dumps(REMAP if flag else MAP))
            ws.import_map(folder / "map.json")
            ws.remap()
        _check(ws)


def test_a_batch_before_its_refresh_is_read_exactly_and_the_refresh_updates_the_sketch(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    steps = ("home", "search", "cart", "buy")
    ws.ingest_events([_write(tmp_path / "a.jsonl", [_event("ann", i * 60, s, i) for i, s in enumerate(steps)])])
    late = [_event("ann", 30, "help", 10), _event("bob", 0, "home", 11), _event("bob", 2, "cart", 12)]
    with ws.events() as con:
        before = _pairs(con)
        ingest = pipeline.EventIngest(con, ws.map(), "test")
        with journeys.transaction(con):
            ingest.store(_batch(tmp_path / "late.jsonl", late), "late.jsonl")
        backend = backend_on(con.cursor())
        assert not sketches.served(backend)  # the layer lags the events: quantiles are computed exactly
        assert fl.FlowsQuery().run(backend) == fl.FlowsQuery(exact=True).run(backend)
        assert _pairs(con) == before  # the sketch follows the layer, not the events
        journeys.refresh(con)
        assert sketches.served(backend)
        assert _pairs(con) == _rebuilt(con) != before
        edges = {(e.source, e.target): e for e in fl.FlowsQuery().run(backend).edges}
    assert edges[("home", "cart")].median_seconds == pytest.approx(120, rel=sketches.ALPHA + TINY)  # bob's two minutes
    assert edges[("home", "help")].median_seconds == pytest.approx(1800, rel=sketches.ALPHA + TINY)  # ann's late event
    assert ("home", "search") not in edges


def test_a_store_from_before_the_sketches_gets_them_at_its_next_refresh(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(60, 2))])
    with ws.events() as con:
        want = _pairs(con)
        assert want
        con.execute("DROP TABLE pair_waits; DROP TABLE pair_waits_state")
    with ws.events() as con:  # opening for writing makes the tables, empty and not built
        backend = backend_on(con.cursor())
        assert not sketches.served(backend)
        assert fl.FlowsQuery().run(backend) == fl.FlowsQuery(exact=True).run(backend)
        pipeline.refresh_customers(con, ws.map())  # as the next ingest does, with no customer stale
        assert sketches.served(backend)
        assert _pairs(con) == want


def _within(sketched: fl.Flows, exact: fl.Flows) -> None:
    """Same edges, counts, starts and ends; each median and p90 within relative error α of the exact one."""
    assert (sketched.start, sketched.end) == (exact.start, exact.end)
    edges = [(e.source, e.target, e.count) for e in exact.edges]
    assert [(e.source, e.target, e.count) for e in sketched.edges] == edges
    for s, e in zip(sketched.edges, exact.edges, strict=True):
        for got, want in ((s.median_seconds, e.median_seconds), (s.p90_seconds, e.p90_seconds)):
            assert want is not None
            assert got is not None
            assert abs(got - want) <= (sketches.ALPHA + TINY) * want, (s, e)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> touchlens.Workspace:
    root = tmp_path_factory.mktemp("sketch-demo") / "ws"
    build_demo(root, customers=150)
    return touchlens.open(root)


def test_scorecard_times_to_next_from_the_sketches_are_within_alpha_of_the_exact_ones(
    demo: touchlens.Workspace,
) -> None:
    sketched, exact = demo.scorecard(), demo.scorecard(exact=True)
    assert [s.touchpoint for s in sketched.scores] == [s.touchpoint for s in exact.scores]
    assert sketched != exact
    for s, e in zip(sketched.scores, exact.scores, strict=True):
        times = ("median_seconds_to_next", "p90_seconds_to_next")
        assert {k: v for k, v in s.__dict__.items() if k not in times} == {
            k: v for k, v in e.__dict__.items() if k not in times
        }
        for name in times:
            got, want = getattr(s, name), getattr(e, name)
            assert (got is None) == (want is None)
            if want is not None:
                assert abs(got - want) <= (sketches.ALPHA + TINY) * want, (s.touchpoint, name, got, want)
    # By stage a repeat is a stage's, so its waits are not the pairs': computed exactly.
    assert demo.scorecard(by="stage") == demo.scorecard(by="stage", exact=True)


def test_flows_of_the_demo_from_the_sketches_are_within_alpha_of_the_exact_ones(demo: touchlens.Workspace) -> None:
    backend = demo._backend()
    assert sketches.served(backend)
    sketched, exact = fl.FlowsQuery().run(backend), fl.FlowsQuery(exact=True).run(backend)
    _within(sketched, exact)
    assert sketched != exact  # the estimates are not the exact values: the sketch path ran
    assert len(sketched.edges) > 50
    assert demo.flows(exact=True) == exact
    assert fl.FlowsQuery(ranked=True, exact=True).run(backend).start == exact.start


def test_neighbours_median_waits_from_the_sketches_are_within_alpha_of_the_exact_ones(
    demo: touchlens.Workspace,
) -> None:
    backend = demo._backend()
    for key in ("homepage", "product_page", "cart"):
        sketched, exact = fl.NeighboursQuery(key).run(backend), fl.NeighboursQuery(key, exact=True).run(backend)
        assert sketched != exact
        for side in ("comes_from", "goes_to"):
            got, want = getattr(sketched, side), getattr(exact, side)
            assert [{**r, "median_seconds": 0} for r in got] == [{**r, "median_seconds": 0} for r in want]
            for g, w in zip(got, want, strict=True):
                assert abs(g["median_seconds"] - w["median_seconds"]) <= (sketches.ALPHA + TINY) * w["median_seconds"]
    # A touchpoint that follows itself is on both sides: its one pair answers for both.
    loop = fl.NeighboursQuery("product_page").run(backend)
    median = {r["touchpoint"]: r["median_seconds"] for r in loop.comes_from}
    assert median["product_page"] == {r["touchpoint"]: r["median_seconds"] for r in loop.goes_to}["product_page"]


@pytest.mark.parametrize(
    "options",
    [JourneyOptions(session_gap=timedelta(hours=2)), JourneyOptions(channel="email"), JourneyOptions(persona="x")],
    ids=["sessions", "channel", "persona"],
)
def test_options_that_cut_journeys_compute_quantiles_exactly(demo: touchlens.Workspace, options) -> None:
    backend = demo._backend()
    assert not options.whole()
    assert fl.FlowsQuery(options).run(backend) == fl.FlowsQuery(options, exact=True).run(backend)


def test_the_exact_flag_is_the_computation_from_every_wait(demo: touchlens.Workspace, cli) -> None:
    exact = json.loads(cli("-w", demo.root, "analyze", "flows", "--exact", "--json").out)
    assert exact == demo.flows(exact=True).to_dict()
    sketched = json.loads(cli("-w", demo.root, "analyze", "flows", "--json").out)
    assert sketched == demo.flows().to_dict() != exact


def test_the_api_answers_exactly_when_asked(demo: touchlens.Workspace) -> None:
    from fastapi.testclient import TestClient

    from tests.test_cases import session
    from touchlens.web.app import create_app

    sketched, exact = demo.flows().to_dict(), demo.flows(exact=True).to_dict()
    card_exact = demo.scorecard(exact=True).to_dict()
    with TestClient(create_app(demo.root)) as client:
        session(client, demo, "vi", "viewer")
        assert client.get("/api/flows?exact=true").json() == exact
        assert client.get("/api/flows").json() == sketched != exact
        assert client.get("/api/scorecard?exact=true").json() == card_exact


SILENCE_MAP = {
    "name": "Parcels",
    "journeys": [{"key": "main", "stages": [{"key": "find"}, {"key": "buy"}, {"key": "get"}, {"key": "keep"}]}],
    "touchpoints": [
        {"key": "ad", "stage": "find", "match": {"event": "ad"}},
        {"key": "order", "stage": "buy", "match": {"event": "order"}},
        {"key": "parcel", "stage": "get", "initiative": "proactive", "match": {"event": "parcel"}},
        {"key": "call", "stage": "get", "match": {"event": "call"}},
        {"key": "tips", "stage": "keep", "initiative": "proactive", "match": {"event": "tips"}},
    ],
}


def _parcels(rng: random.Random, around: float) -> list[dict[str, Any]]:
    """Customers who see an ad, order an hour later, get the parcel `around` × 3 days later (±3%, so the median
    lands on either side of the 3-day line, within the sketch's error of it) and tips a day after that."""
    events: list[dict[str, Any]] = []
    for c in range(rng.randint(5, 40)):
        parcel = 60 + around * 3 * 1440 * (1 + rng.uniform(-0.03, 0.03))
        steps = [(0.0, "ad"), (60.0, "order"), (parcel, "parcel"), (parcel + 1440, "tips")]
        steps += [(parcel + 30, "call")] * rng.randint(0, 1)
        for minute, step in steps:
            when = START_SILENCE + timedelta(minutes=c * 7 + minute)
            events.append({"event_id": f"e{len(events)}", "customer_id": f"c{c}", "ts": when.isoformat(),
                           "event": step})  # fmt: skip
    return events


START_SILENCE = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)


def test_silent_periods_screened_by_the_sketches_equal_the_exact_ones_near_the_line(tmp_path: Path) -> None:
    """The sketches only skip the stage pairs whose median cannot reach the line (sketched under it by more than 2α): on
    medians within 3% of it, what insights finds is what the exact query over every pair finds, whichever side
    each lands on; a pair far under it (a day, get → keep) is never queried."""
    from touchlens.insights import gaps
    from touchlens.insights.words import Names

    found = Counter[bool]()
    for seed in range(10):
        folder = tmp_path / str(seed)
        folder.mkdir()
        ws = _workspace(folder, SILENCE_MAP)
        ws.ingest_events([_write(folder / "e.jsonl", _parcels(random.Random(seed), 1.0))])
        backend, m = ws._backend(), ws.map()
        assert m is not None
        assert sketches.served(backend)
        screened = gaps.silent_periods(backend, m, Names.of(m))
        stage_of = {t.key: t.stage for t in m.touchpoints if t.stage}
        pairs = {("find", "buy"), ("buy", "get"), ("get", "keep")}
        stages = set(gaps._screened(backend, stage_of, {"parcel", "tips"}, pairs, timedelta(days=3)).values())
        assert stages == {"buy", "get"}  # near the line: queried exactly; keep: a day after, screened out
        with patch.object(sketches, "served", return_value=False):
            exact = gaps.silent_periods(backend, m, Names.of(m))
        assert [i.to_dict() for i in screened] == [i.to_dict() for i in exact]
        found[bool(exact)] += 1
    assert found[True]  # both sides of the line were met
    assert found[False]


def test_no_silent_period_near_the_line_runs_no_query_of_the_touches(tmp_path: Path) -> None:
    from touchlens.insights import gaps
    from touchlens.insights.words import Names

    ws = _workspace(tmp_path, SILENCE_MAP)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _parcels(random.Random(1), 0.5))])  # parcels in a day and a half
    backend, m = ws._backend(), ws.map()
    assert m is not None
    with patch.object(JourneyOptions, "touches", side_effect=AssertionError("the touches were read")):
        assert gaps.silent_periods(backend, m, Names.of(m)) == []
    with patch.object(sketches, "served", return_value=False):
        assert gaps.silent_periods(backend, m, Names.of(m)) == []  # and exactly, none
