"""The journey layer (store/journeys.py): equal to a rebuild from the events after any sequence of batches (late,
out of order, duplicated), between a batch and its refresh, after erasure and remap; and every analysis that
reads it answers as it does from the raw events.

The reference is computed here in plain Python from the stored events (sorted by time, then event id), not by
the layer's SQL or the analytics' Ibis definition.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import touchlens
from touchlens.analytics import drivers as dr
from touchlens.analytics import flows as fl
from touchlens.analytics import paths as pa_
from touchlens.analytics import scorecard as sc
from touchlens.analytics.journeys import ORDERED, JourneyOptions, layer_state, periods_layer, stored_conversions
from touchlens.analytics.trends import TrendsQuery
from touchlens.ingest import pipeline
from touchlens.insights.conformance import ConformanceQuery
from touchlens.model import periods as features
from touchlens.model.map import OutcomeRule
from touchlens.store import journeys, waits
from touchlens.store import periods as periods_store
from touchlens.store.backends import backend_on, for_one_analysis

START = datetime(2026, 3, 1, tzinfo=UTC)
# A designed order over some of the steps: `help` has no stage, so the stages' order skips over it.
CONFORMANCE = ConformanceQuery(
    "j", ("browse", "decide", "buy"), (("home", "browse"), ("search", "browse"), ("cart", "decide"), ("buy", "buy"))
)
STEPS = ("home", "search", "cart", "help", "buy")
MAP = {
    "name": "Layer",
    "touchpoints": [{"key": s, "match": {"event": s}} for s in STEPS],
    "outcomes": {"conversion": {"event": "buy"}},
}


def reference(con: duckdb.DuckDBPyConnection) -> set[tuple[Any, ...]]:
    """The layer's rows from the events, computed in Python: each customer's mapped events by (ts, event_id), and
    their periods: the conversions (`buy`, the map's outcome) among all the customer's events before each one."""
    rows = con.execute("SELECT customer_id, ts, event_id, touchpoint, channel, event FROM events").fetchall()
    by_customer: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        by_customer[row[0]].append(row)
    out = set()
    for events in by_customer.values():
        events.sort(key=lambda r: (r[1], r[2]))
        periods, before = [], 0
        for e in events:
            periods.append(-1 if e[5] == "buy" else before)
            before += e[5] == "buy"
        touches = [(*e[:5], p) for e, p in zip(events, periods, strict=True) if e[3] is not None]
        last_seen: dict[str, tuple[datetime, int]] = {}
        for i, (customer, ts, event_id, tp, channel, period) in enumerate(touches):
            prev = touches[i - 1] if i else None
            nxt = touches[i + 1] if i + 1 < len(touches) else None
            nxt2 = touches[i + 2] if i + 2 < len(touches) else None
            same = last_seen.get(tp)
            out.add((customer, ts, event_id, tp, channel, i,
                     prev and prev[3], prev and prev[1], prev and prev[4],
                     nxt and nxt[3], nxt and nxt[1], nxt2 and nxt2[3], nxt2 and nxt2[1],
                     same and same[0],
                     period, prev and prev[5], nxt and nxt[5], nxt2 and nxt2[5], same and same[1]))  # fmt: skip
            last_seen[tp] = (ts, period)
    return out


def seen_by_readers(con: duckdb.DuckDBPyConnection) -> set[tuple[Any, ...]]:
    """The rows an analysis reads: the layer, with stale customers recomputed (`JourneyOptions.touches`)."""
    backend = backend_on(con.cursor())
    t = JourneyOptions().touches(backend, *ORDERED).select(*journeys.ORDER_COLUMNS)
    return {tuple(r.values()) for r in backend.to_pyarrow(t).to_pylist()}


def _in_order(rows: set[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    """The rows' journey-order columns (what `JourneyOptions.touches` serves), without the periods."""
    return {row[: len(journeys.ORDER_COLUMNS)] for row in rows}


def stored(con: duckdb.DuckDBPyConnection) -> set[tuple[Any, ...]]:
    cols = ", ".join(journeys.COLUMNS)
    return set(con.execute(f"SELECT {cols} FROM touches").fetchall())


KINDS = ("seen", "repeated", "waited", "switched")


def reference_periods(con: duckdb.DuckDBPyConnection, conversion: str = "buy") -> set[tuple[Any, ...]]:
    """The layer's periods from `reference`'s rows, in Python: per customer's period (not the conversions' -1),
    its touches, whether the customer converted more often than its number, and per kind the touchpoints with
    that feature (drivers' definitions: `model/periods.py`'s windows, neighbours in the same period only)."""
    events = con.execute("SELECT customer_id, event FROM events").fetchall()
    conversions = defaultdict(int)
    for customer, event in events:
        conversions[customer] += event == conversion
    found: dict[tuple[str, int], list[Any]] = defaultdict(lambda: [0, set(), set(), set(), set()])
    for row in reference(con):
        customer, ts, _, tp, channel, prev_ts, prev_channel, prev_same_ts = (*row[:5], row[7], row[8], row[13])
        period, prev_period, prev_same_period = row[14], row[15], row[18]
        if period < 0:
            continue
        p = found[(customer, period)]
        p[0] += 1
        p[1].add(tp)
        if prev_same_period == period and ts - prev_same_ts <= features.REPEAT_WINDOW:
            p[2].add(tp)
        if prev_period == period and ts - prev_ts > features.WAIT:
            p[3].add(tp)
        other = None not in (channel, prev_channel) and channel != prev_channel
        if prev_period == period and other and ts - prev_ts <= features.SWITCH_WINDOW:
            p[4].add(tp)
    return {(c, k, n, k < conversions[c], *map(frozenset, sets)) for (c, k), (n, *sets) in found.items()}


def stored_periods(con: duckdb.DuckDBPyConnection) -> set[tuple[Any, ...]]:
    """The stored periods with their masks read back bit by bit through the touchpoint codes."""
    codes = dict(con.execute("SELECT code, touchpoint FROM touchpoint_codes").fetchall())
    out = set()
    for customer, period, touches, converted, words in con.execute("SELECT * FROM periods").fetchall():
        kinds: dict[str, set[str]] = {k: set() for k in KINDS}
        for w in words:
            for kind, found in kinds.items():
                found |= {codes[w["word"] * features.BITS + b] for b in range(features.BITS) if w[kind] >> b & 1}
        out.add((customer, period, touches, converted, *map(frozenset, kinds.values())))
    return out


def open_periods_last(periods: set[tuple[Any, ...]]) -> bool:
    """Whether every period that did not end in a conversion is its customer's highest (drivers and insights find
    the open periods by it, without searching for the last ones)."""
    highest: dict[str, int] = {}
    for customer, period, *_ in periods:
        highest[customer] = max(highest.get(customer, -1), period)
    return all(period == highest[customer] for customer, period, _, converted, *_ in periods if not converted)


def listed_conversions(con: duckdb.DuckDBPyConnection) -> tuple[list[Any], list[Any]]:
    """The layer's list of conversions, and the conversions among the events (`buy`, the map's outcome), of the
    customers not waiting for a refresh."""
    fresh = "customer_id NOT IN (SELECT customer_id FROM touches_stale)"
    listed = con.execute(f"SELECT customer_id, ts FROM touches_conversions WHERE {fresh} ORDER BY ALL").fetchall()
    events = f"SELECT customer_id, ts FROM events WHERE event = 'buy' AND {fresh} ORDER BY ALL"
    return listed, con.execute(events).fetchall()


def _event(customer: str, minute: int, step: str, i: int, channel: str | None = None) -> dict[str, Any]:
    return {
        "event_id": f"e{i}",
        "customer_id": customer,
        "ts": (START + timedelta(minutes=minute)).isoformat(),
        "event": step,
        "channel": channel or "",
    }


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return path


def _workspace(tmp_path: Path, m: dict[str, Any] = MAP) -> touchlens.Workspace:
    ws = touchlens.init(tmp_path / "ws")
    (tmp_path / "map.json").write_text(json.dumps(m))
    ws.import_map(tmp_path / "map.json")
    return ws


events_lists = st.lists(
    st.tuples(
        st.sampled_from(["ann", "bob", "cy", "di", "ed"]),
        st.integers(0, 40),  # few minutes: ties in time happen, broken by event id
        st.sampled_from([*STEPS, "unmapped"]),
        st.sampled_from(["web", "email", None]),
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.slow
# A refresh recomputes a batch's customers from their earliest new event on; past a share of all customers it
# rebuilds instead. With five customers most batches would pass that share: 1.0 makes every batch a refresh.
@pytest.mark.parametrize("share", [journeys.REBUILD_SHARE, 1.0])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=events_lists,
    cuts=st.lists(st.integers(0, 40), max_size=4),
    seed=st.integers(0, 10**6),
    scale=st.sampled_from([1, 900]),  # minutes apart, or 15 hours: waits of days, repeats and switches far apart
)
def test_layer_equals_a_rebuild_after_any_batches(
    tmp_path_factory: pytest.TempPathFactory, share, events, cuts, seed, scale
) -> None:
    folder = tmp_path_factory.mktemp("layer")
    ws = _workspace(folder)
    rows = [_event(c, m * scale, s, i, ch) for i, (c, m, s, ch) in enumerate(events)]
    random.Random(seed).shuffle(rows)  # late and out-of-order events across batches
    bounds = sorted({0, len(rows), *(min(c, len(rows)) for c in cuts)})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(journeys, "REBUILD_SHARE", share)
        for n, (a, b) in enumerate(itertools.pairwise(bounds)):
            ws.ingest_events([_write(folder / f"b{n}.jsonl", rows[a:b] + rows[: (a + b) // 3])])  # some repeated
    with ws.events(read_only=True) as con:
        want = reference(con)
        assert stored(con) == want
        assert seen_by_readers(con) == _in_order(want)
        assert stored_periods(con) == reference_periods(con)
        assert open_periods_last(stored_periods(con))
        listed, converted = listed_conversions(con)
        assert listed == converted


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.lists(st.tuples(
        st.sampled_from(["c0", "c1", "c2", "new"]),
        st.sampled_from([0, 1, 5, 60, 60 * 30, 60 * 24 * 5]),  # minutes after the last: ties, ..., five days
        st.sampled_from([*STEPS, "unmapped"]),
        st.sampled_from(["web", "email"]),
        st.integers(-3, 1),  # mostly in time; now and then one late, before touches already stored
    ), min_size=1, max_size=8), min_size=1, max_size=5),
)  # fmt: skip
@pytest.mark.parametrize("bits", [features.BITS, 2])  # a period's features over one word, or over three
def test_batches_as_they_come_keep_the_layer_equal_to_a_rebuild(
    tmp_path_factory: pytest.TempPathFactory, bits: int, batches: list[list[tuple[str, int, str, str, int]]]
) -> None:
    """Batches mostly later than what is stored, as a live feed or nightly files bring them: a refresh keeps each
    customer's touches before its batch's earliest event and recomputes the rest, so positions, periods and
    previous touches must go on from the kept ones, and the last kept touches get their new next ones. Customers
    the batches leave alone keep each batch a refresh, not a rebuild. A customer whose new touches all come after
    its stored ones has them merged into its periods' stored rows."""
    patch_bits = pytest.MonkeyPatch()
    patch_bits.setattr(features, "BITS", bits)
    try:
        _as_they_come(tmp_path_factory.mktemp("timely"), batches)
    finally:
        patch_bits.undo()


def _as_they_come(folder: Path, batches: list[list[tuple[str, int, str, str, int]]]) -> None:
    ws = _workspace(folder)
    ws.ingest_events([_write(folder / "base.jsonl", _business(30, 3))])
    last: dict[str, int] = defaultdict(lambda: 600)
    i = 10**6
    with patch.object(journeys, "_recompute", wraps=journeys._recompute) as recomputed:
        for n, batch in enumerate(batches):
            rows = []
            for customer, gap, step, channel, late in batch:
                last[customer] += gap
                minute = last[customer] - (60 * 24 * 3 if late < 0 else 0) * -late
                rows.append(_event(customer, minute, step, i, channel))
                i += 1
            ws.ingest_events([_write(folder / f"t{n}.jsonl", rows)])
    assert recomputed.call_count == len(batches)
    with ws.events() as con:
        want = reference(con)
        assert stored(con) == want
        assert stored_periods(con) == reference_periods(con)
        assert open_periods_last(stored_periods(con))  # new touches merged into stored rows too
        listed, converted = listed_conversions(con)
        assert listed == converted
        pairs = sorted(con.execute("SELECT source, target, bucket, n FROM pair_waits").fetchall())
        con.execute("BEGIN TRANSACTION")
        waits.rebuild_in(con)
        rebuilt = sorted(con.execute("SELECT source, target, bucket, n FROM pair_waits").fetchall())
        con.execute("ROLLBACK")
        assert pairs == rebuilt


@contextmanager
def _store(ws: touchlens.Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    with ws.events() as con:
        yield con


def _flows_both_ways(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flows read from the layer as it stands, and from the raw events (the layer set aside, in a transaction
    rolled back)."""
    backend = backend_on(con.cursor())
    from_layer = fl.FlowsQuery(exact=True).run(backend).to_dict()
    with _layer_set_aside(backend):
        from_events = fl.FlowsQuery(exact=True).run(backend).to_dict()
    return from_layer, from_events


@contextmanager
def _layer_set_aside(backend: Any) -> Iterator[None]:
    """Inside, the backend's connection sees a store whose layer was never built (a transaction rolled back)."""
    backend.con.execute("BEGIN TRANSACTION")
    backend.con.execute("DELETE FROM touches_state")
    assert layer_state(backend) == "none"
    try:
        yield
    finally:
        backend.con.execute("ROLLBACK")


def test_a_batch_not_yet_refreshed_is_read_from_the_events(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    first = [_event("ann", i, s, i) for i, s in enumerate(["home", "cart", "buy"])]
    ws.ingest_events([_write(tmp_path / "a.jsonl", first)])
    late = [_event("ann", -5, "search", 10), _event("bob", 1, "help", 11), _event("bob", 2, "home", 12)]
    with _store(ws) as con:
        # A batch as ingest stores it, without the refresh that ends a run: as if killed right after its commit.
        ingest = pipeline.EventIngest(con, ws.map(), "test")
        batch = _batch(tmp_path / "late.jsonl", late)
        with journeys.transaction(con):
            ingest.store(batch, "late.jsonl")
        backend = backend_on(con.cursor())
        assert layer_state(backend) == "stale"
        assert stored(con) != reference(con)  # the layer itself lags ...
        assert seen_by_readers(con) == _in_order(reference(con))  # ... what analyses read does not
        from_layer, from_events = _flows_both_ways(con)
        assert from_layer == from_events
        assert from_layer["start"] == {"search": 1, "help": 1}
        assert journeys.refresh(con) == 2
        assert stored(con) == reference(con)
        assert stored_periods(con) == reference_periods(con)
        assert layer_state(backend) == "clean"


def test_conformance_reads_the_layer_beside_a_customer_awaiting_its_refresh(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    plans = {"ann": ["home", "cart", "buy"], "cid": ["home", "help", "search", "cart", "help", "home"]}
    first = [_event(c, i, s, 10 * n + i) for n, (c, steps) in enumerate(plans.items()) for i, s in enumerate(steps)]
    ws.ingest_events([_write(tmp_path / "a.jsonl", first)])
    with _store(ws) as con:
        ingest = pipeline.EventIngest(con, ws.map(), "test")
        with journeys.transaction(con):  # ann goes back to browsing; cid stays as the layer has it
            ingest.store(_batch(tmp_path / "late.jsonl", [_event("ann", 9, "search", 99)]), "late.jsonl")
        backend = backend_on(con.cursor())
        assert layer_state(backend) == "stale"
        conformance = CONFORMANCE.run(backend).to_dict()
        with _layer_set_aside(backend):
            assert conformance == CONFORMANCE.run(backend).to_dict()
    # ann: browse, decide, buy, browse (back); cid: browse (help between), decide, browse (back, past a help).
    assert (conformance["customers"], conformance["following"], conformance["with_backward_moves"]) == (2, 0, 2)
    assert sorted((d["stages"], d["count"]) for d in conformance["deviations"]) == [
        (["browse", "decide", "browse"], 1),
        (["browse", "decide", "buy", "browse"], 1),
    ]


def test_one_analysis_reads_the_layer_in_the_state_it_first_found(tmp_path: Path) -> None:
    """A backend built for one analysis asks the layer's state once (insights asked 19 times, up to three queries
    each), so all of its parts read the layer alike even when a batch lands meanwhile; a backend kept across
    changes of the data asks every time."""
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "a.jsonl", [_event("ann", i, s, i) for i, s in enumerate(["home", "buy"])])])
    with _store(ws) as con:
        analysis, kept = for_one_analysis(backend_on(con.cursor())), backend_on(con.cursor())
        conversion = ws.map().outcomes.conversion
        assert conversion is not None
        assert layer_state(analysis) == layer_state(kept) == "clean"
        assert periods_layer(analysis, conversion) is not None
        ingest = pipeline.EventIngest(con, ws.map(), "test")
        with journeys.transaction(con):
            ingest.store(_batch(tmp_path / "late.jsonl", [_event("bob", 1, "help", 11)]), "late.jsonl")
        assert layer_state(kept) == "stale"
        assert periods_layer(kept, conversion) is None  # bob's touches are not in the layer yet
        assert layer_state(analysis) == "clean"
        assert periods_layer(analysis, conversion) is not None
        assert layer_state(for_one_analysis(backend_on(con.cursor()))) == "stale"  # the next analysis sees it


def _batch(path: Path, events: list[dict[str, Any]]) -> Any:
    """The one canonical batch the JSON-lines reader makes of `events`."""
    from touchlens.ingest.readers import reader_for
    from touchlens.ingest.readers.base import ReadOptions

    (batch,) = list(reader_for("jsonl")(_write(path, events), ReadOptions()))
    return batch


def test_erasure_takes_a_customers_touches_at_once_and_recomputes_who_shared_an_id(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    rows = [_event("ann", 0, "home", 1), _event("ann", 1, "cart", 2), _event("bob", 0, "home", 3)]
    rows.append({**_event("bob", 1, "help", 4), "anonymous_id": "ann"})  # bob's event carried ann's id
    ws.ingest_events([_write(tmp_path / "e.jsonl", rows)])
    ws.forget(["ann"])
    with ws.events(read_only=True) as con:
        assert {r[0] for r in stored(con)} == {"bob"}
        assert stored(con) == reference(con)
        assert stored_periods(con) == reference_periods(con)
        assert {r[0] for r in stored_periods(con)} == {"bob"}
        assert [r[3] for r in stored(con)] == ["home"]
        # bob's last seen was the erased event's: it is taken again from what is left
        seen = "SELECT first_seen, last_seen FROM customers WHERE customer_id = 'bob'"
        assert (
            con.execute(seen).fetchall()
            == con.execute("SELECT min(ts), max(ts) FROM events WHERE customer_id = 'bob'").fetchall()
        )


def test_remap_rebuilds_the_layer_with_the_new_touchpoints(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", [_event("ann", i, s, i) for i, s in enumerate(STEPS)])])
    changed = {**MAP, "touchpoints": [{"key": "shop", "match": {"event": {"in": ["home", "search", "cart"]}}}]}
    (tmp_path / "map2.json").write_text(json.dumps(changed))
    ws.import_map(tmp_path / "map2.json")
    ws.remap()
    with ws.events(read_only=True) as con:
        assert stored(con) == reference(con)
        assert [r[3] for r in sorted(stored(con), key=lambda r: r[5])] == ["shop", "shop", "shop"]
        assert stored_periods(con) == reference_periods(con)
        codes = dict(con.execute("SELECT touchpoint, code FROM touchpoint_codes").fetchall())
    assert codes == {"buy": 0, "cart": 1, "help": 2, "home": 3, "search": 4, "shop": 5}  # kept; the new one next


def test_a_store_from_before_the_layer_reads_events_until_its_first_refresh_builds_it(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", [_event("ann", i, s, i) for i, s in enumerate(STEPS)])])
    with _store(ws) as con:
        con.execute("DROP TABLE touches; DROP TABLE touches_stale; DROP TABLE touches_state")
    with ws.events() as con:  # opening for writing creates the layer's tables, empty and never built
        backend = backend_on(con.cursor())
        assert layer_state(backend) == "none"
        assert fl.FlowsQuery().run(backend).start == {"home": 1}
        pipeline.refresh_customers(con, ws.map())  # as the next ingest does
        assert layer_state(backend) == "clean"
        assert stored(con) == reference(con)


def test_marks_from_before_since_recompute_whole_journeys(tmp_path: Path) -> None:
    """A store whose marks have no `since` (written before it, left for the next refresh) gets the column when next
    opened for writing; those marks recompute their customers' whole journeys. Its layer has no list of
    conversions either: the refresh lists them first."""
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "base.jsonl", _business(30, 5))])
    late = [_event("c1", -600, "cart", 900), _event("c2", 10**5, "buy", 901), _event("c2", 10**5, "help", 902)]
    with _store(ws) as con:
        con.execute("ALTER TABLE touches_stale DROP COLUMN since")
        con.execute("ALTER TABLE touches_state DROP COLUMN conversions_kept; DROP TABLE touches_conversions")
        # As a batch of a touchlens from before `since` left them: events stored, their customers marked.
        for e in late:
            con.execute(
                "INSERT INTO events SELECT ?, 'old', ?, NULL, NULL, ?::TIMESTAMPTZ, ?, ?, ?, NULL, now(), 0",
                [e["event_id"], e["customer_id"], e["ts"], e["event"], e["event"], e["channel"]],
            )
        con.execute("INSERT INTO touches_stale VALUES ('c1'), ('c2')")
    with ws.events() as con:
        assert con.execute("SELECT count(*) FROM touches_stale WHERE since IS NULL").fetchone() == (2,)
        # A later batch's mark of c1, from a time after its late event: the whole-journey mark still wins.
        journeys.mark_stale(con, f"SELECT 'c1' AS customer_id, TIMESTAMPTZ '{START + timedelta(days=30)}' AS ts")
        with patch.object(journeys, "_recompute", wraps=journeys._recompute) as recomputed:
            journeys.refresh(con)
        assert recomputed.called  # recomputed customer by customer, not rebuilt
        assert stored(con) == reference(con)
        assert stored_periods(con) == reference_periods(con)
        listed, converted = listed_conversions(con)
        assert listed == converted


def test_new_touches_merge_into_periods_across_a_stored_conversion_not_yet_reached(tmp_path: Path) -> None:
    """Where the conversion is no touchpoint, a batch's touches may come before a conversion already stored: they
    join the period that conversion ends (merged into its stored row, which keeps its older touches) and touches
    after it start the next."""
    m = {**MAP, "touchpoints": [{"key": s, "match": {"event": s}} for s in STEPS if s != "buy"]}
    ws = _workspace(tmp_path, m)
    day = 60 * 24
    base = [_event("ann", 0, "home", 901), _event("ann", 5 * day, "cart", 902), _event("ann", 10 * day, "buy", 903)]
    ws.ingest_events([_write(tmp_path / "base.jsonl", base + _business(30, 7))])
    with patch.object(periods_store, "replace_in", wraps=periods_store.replace_in) as replaced:
        later = [_event("ann", 6 * day, "search", 904, "email"), _event("ann", 6 * day + 1, "help", 905, "web")]
        ws.ingest_events([_write(tmp_path / "later.jsonl", later)])
        ws.ingest_events([_write(tmp_path / "after.jsonl", [_event("ann", 11 * day, "cart", 906)])])
    assert replaced.call_count == 2
    with ws.events() as con:
        assert stored(con) == reference(con)
        assert stored_periods(con) == reference_periods(con)
        rows = con.execute("SELECT period, touches, converted FROM periods WHERE customer_id = 'ann' ORDER BY 1")
        assert rows.fetchall() == [(0, 4, True), (1, 1, False)]


def test_periods_cut_by_other_windows_are_rebuilt_at_the_next_refresh_not_added_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(30, 4))])
    monkeypatch.setattr(features, "WAIT", timedelta(hours=2))  # this code's windows now differ from the store's
    ws.ingest_events([_write(tmp_path / "more.jsonl", [_event("c1", 10**5, "help", 10**6)])])
    with ws.events() as con:
        assert con.execute("SELECT wait_us FROM periods_state").fetchall() == [(2 * 3600 * 10**6,)]
        assert stored_periods(con) == reference_periods(con)


def _business(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows, i = [], 0
    for c in range(n):
        minute = rng.randint(0, 600)
        for _ in range(rng.randint(1, 8)):
            step = rng.choice([*STEPS, "unmapped"])
            rows.append(_event(f"c{c}", minute, step, i, rng.choice(["web", "email"])))
            minute += rng.choice([0, 1, 5, 60, 60 * 30, 60 * 24 * 5])  # ties, ..., a day apart, five days
            i += 1
    return rows


def _period_answers(backend: Any, conversion: OutcomeRule) -> dict[str, Any]:
    """What drivers and attribution paths compute from periods, as comparable values."""
    drivers = dr.DriversQuery("conversion", conversion)
    rows = {name: sorted(map(tuple, (r.values() for r in backend.to_pyarrow(expr(backend)).to_pylist())))
            for name, expr in (("features", drivers.features_expr), ("loops", drivers.loops_expr),
                               ("units", drivers.units_expr), ("seen", drivers.seen_expr))}  # fmt: skip
    rows["periods"] = _period_features(backend, drivers)
    rows["read"] = _read_features(backend, drivers)
    for by in pa_.BY:
        paths = pa_.PathsQuery(conversion, by, channel_of=(("home", "web"),))
        rows[f"paths:{by}"] = list(paths.run(backend))  # the layer's are arrays (`Paths`), the events' a list
        rows[f"chain:{by}"] = paths.transitions(backend)
        # Sums of floats: the engine adds in any order, so the last digits may differ.
        decay = paths.time_decay(backend, timedelta(hours=2))
        rows[f"decay:{by}"] = [{k: round(v, 9) for k, v in part.items()} for part in decay]
    rows["lookback"] = list(pa_.PathsQuery(conversion, lookback=timedelta(minutes=30)).run(backend))
    return rows


def _period_features(backend: Any, drivers: dr.DriversQuery) -> list[tuple[Any, ...]]:
    """`periods_expr`'s masks and lists read back as (customer_id, period, feature), as `features_expr` gives."""
    touchpoints = drivers.touchpoints(backend)
    periods = backend.to_pyarrow(drivers.periods_expr(backend, touchpoints))
    every, pairs = _pairs(periods, touchpoints)
    keys = periods.select(["customer_id", "period"]).to_pylist()
    return sorted((keys[u]["customer_id"], keys[u]["period"], every[c]) for c, u in pairs)


def _pairs(periods: Any, touchpoints: list[str]) -> tuple[list[str], list[tuple[int, int]]]:
    """The drivers' features of `read_periods`'s rows (`_Features`) in long form: the feature names, and each
    (feature, period row) pair a period has."""
    found = dr._Features.of(periods, touchpoints)
    pairs = [(i, int(u)) for i, (mask, bit) in enumerate(found.bits) for u in np.flatnonzero(mask & bit)]
    return found.every, pairs + list(zip(found.codes.tolist(), found.units.tolist(), strict=True))


def _read_features(backend: Any, drivers: dr.DriversQuery) -> list[tuple[Any, ...]]:
    """`read_periods`'s rows (from the layer's stored periods where they serve) as (customer_id, period, feature),
    with the periods' outcomes beside each."""
    touchpoints, periods = dr.read_periods(drivers, backend)
    every, pairs = _pairs(periods, touchpoints)
    rows = periods.select(["customer_id", "period", "touches", "converted", "churn"]).to_pylist()
    found = [(*rows[u].values(), every[c]) for c, u in pairs]
    return sorted(found) + sorted(tuple(r.values()) for r in rows)  # the rows come in any order


@pytest.mark.parametrize("bits", [62, 2])  # masks of one word, and of several (2 touchpoints a word)
@pytest.mark.parametrize("conversion", ["buy", "unmapped"])  # a conversion that is a touch, and one that is not
def test_periods_read_from_the_layer_answer_as_from_the_events(
    tmp_path: Path, conversion: str, bits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dr, "BITS", bits)
    monkeypatch.setattr(features, "BITS", bits)  # the stored periods' words too
    ws = _workspace(tmp_path, {**MAP, "outcomes": {"conversion": {"event": conversion}}})
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(300, 5))])
    rule = ws.map().outcomes.conversion
    assert rule is not None
    with _store(ws) as con:
        backend = backend_on(con.cursor())
        assert periods_layer(backend, rule) is not None
        assert dr.DriversQuery("conversion", rule).stored_expr(backend) is not None
        from_layer = _period_answers(backend, rule)
        with _layer_set_aside(backend):
            assert periods_layer(backend, rule) is None
            assert dr.DriversQuery("conversion", rule).stored_expr(backend) is None
            from_events = _period_answers(backend, rule)
        # Another conversion than the layer's periods were cut by: the events are read, as before.
        assert periods_layer(backend, OutcomeRule(event="help")) is None
    assert from_layer == from_events
    assert from_layer["seen"] == [r for r in from_layer["features"] if r[2].startswith("seen:")]
    # Every feature of every period, read from one row a period, as the long (period, feature) form has it.
    assert from_layer["periods"] == from_layer["features"]
    assert {r[2] for r in from_layer["features"]} >= {f"{k}:{s}" for k in KINDS for s in ("home", "cart")}
    assert from_layer["loops"]
    assert from_layer["features"]
    assert sum(p.conversions for p in from_layer["paths:touchpoint"]) > 10


def test_periods_cut_by_other_windows_or_not_yet_built_are_grouped_from_the_touches(tmp_path: Path) -> None:
    """The stored periods serve the windows they were cut by; a query with others, or a store from before the
    periods table (built at its next refresh), groups the layer's touches, with the same answers."""
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(200, 8))])
    buy = OutcomeRule(event="buy")
    other = dr.DriversQuery("conversion", buy, wait=timedelta(minutes=30), switch_window=timedelta(minutes=2))
    with _store(ws) as con:
        backend = backend_on(con.cursor())
        assert other.stored_expr(backend) is None
        assert _read_features(backend, other) != _read_features(backend, dr.DriversQuery("conversion", buy))
        from_layer = _read_features(backend, other)
        with _layer_set_aside(backend):
            assert _read_features(backend, other) == from_layer
        con.execute("DROP TABLE periods; DROP TABLE touchpoint_codes; DROP TABLE periods_state")
    with ws.events() as con:  # opening for writing creates the tables, empty and never built
        backend = backend_on(con.cursor())
        assert dr.DriversQuery("conversion", buy).stored_expr(backend) is None
        grouped = _read_features(backend, dr.DriversQuery("conversion", buy))
        journeys.refresh(con)  # as the next ingest does
        assert dr.DriversQuery("conversion", buy).stored_expr(backend) is not None
        assert _read_features(backend, dr.DriversQuery("conversion", buy)) == grouped
        assert stored_periods(con) == reference_periods(con)


def test_a_rebuild_between_reading_the_codes_and_the_periods_gives_no_touchpoint_anothers_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader reads the touchpoint codes, then the periods, in two statements; a writer's rebuild may commit
    between them. Codes never change meaning, so the features read are the store's either way (a rebuild that
    numbered the codes afresh gave cart's to a touchpoint one customer had met)."""
    from collections import Counter

    from touchlens.analytics import journeys as layer_reads
    from touchlens.store.events import transaction

    ws = _workspace(tmp_path, {**MAP, "touchpoints": [*MAP["touchpoints"], {"key": "aaa", "match": {"event": "aaa"}}]})
    rows = [_event(f"c{i}", k, step, i * 2 + k) for i in range(20) for k, step in enumerate(("home", "cart"))]
    ws.ingest_events([_write(tmp_path / "a.jsonl", rows)])
    ws.ingest_events([_write(tmp_path / "b.jsonl", [_event("c0", 50, "aaa", 1000)])])  # a refresh adds its code
    query = dr.DriversQuery("conversion", OutcomeRule(event="buy"))

    def seen(con: duckdb.DuckDBPyConnection) -> Counter[str]:
        touchpoints, periods = dr.read_periods(query, for_one_analysis(backend_on(con.cursor())))
        every, pairs = _pairs(periods, touchpoints)
        return Counter(f for f in (every[c] for c, _ in pairs) if f.startswith("seen:"))

    with _store(ws) as con:
        want = seen(con)
        read_codes = layer_reads._periods_cut

        def racing(backend: Any) -> Any:
            found = read_codes(backend)
            with transaction(con):  # the writer's rebuild commits between the two reads
                journeys.rebuild_in(con)
            return found

        monkeypatch.setattr(layer_reads, "_periods_cut", racing)
        assert seen(con) == want == Counter({"seen:home": 20, "seen:cart": 20, "seen:aaa": 1})


def test_a_store_with_no_touches_reads_no_periods_and_no_error(tmp_path: Path) -> None:
    """Regression: with no touchpoint in the events the touchpoint codes are an empty list, which must still be a
    string column to join on (the touchpoint page of a fresh workspace failed)."""
    ws = _workspace(tmp_path, {**MAP, "outcomes": {"conversion": {"event": "buy"}}})
    rule = ws.map().outcomes.conversion
    assert rule is not None
    with _store(ws) as con:
        backend = backend_on(con.cursor())
        drivers = dr.DriversQuery("conversion", rule)
        assert drivers.touchpoints(backend) == []
        assert backend.to_pyarrow(drivers.periods_expr(backend, [])).num_rows == 0


def test_a_new_conversion_outcome_rebuilds_the_periods_at_the_next_ingest(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(50, 6))])
    (tmp_path / "map2.json").write_text(json.dumps({**MAP, "outcomes": {"conversion": {"event": "cart"}}}))
    ws.import_map(tmp_path / "map2.json")
    cart = OutcomeRule(event="cart")
    with _store(ws) as con:
        assert periods_layer(backend_on(con.cursor()), cart) is None  # cut by `buy` still: read from the events
    ws.ingest_events([_write(tmp_path / "more.jsonl", [_event("new", 0, "cart", 999)])])
    with _store(ws) as con:
        assert periods_layer(backend_on(con.cursor()), cart) is not None
        periods = dict(con.execute("SELECT event_id, period FROM touches WHERE customer_id = 'new'").fetchall())
    assert periods == {"e999": -1}  # the new customer's one touch is a conversion by the new outcome


def test_analyses_read_from_the_layer_answer_as_from_the_events(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(300, 3))])
    queries = {
        "flows": fl.FlowsQuery(exact=True),  # the sketches' quantiles: tests/test_wait_sketches.py
        "variants": fl.VariantsQuery(top=None),
        "sankey": fl.SankeyQuery(depth=4, top=3),
        "neighbours": fl.NeighboursQuery("cart", exact=True),
        "scorecard": sc.ScorecardQuery(OutcomeRule(event="buy"), timedelta(days=1), exact=True),
        "converters": fl.FlowsQuery(JourneyOptions(converted=True, conversion=OutcomeRule(event="buy"))),
        "conformance": CONFORMANCE,
    }
    with _store(ws) as con:
        backend = backend_on(con.cursor())
        assert layer_state(backend) == "clean"
        assert stored_conversions(backend, OutcomeRule(event="buy")) is not None  # the scorecard reads the list
        assert stored_conversions(backend, OutcomeRule(event="cart")) is None  # not the layer's outcome
        from_layer = {name: _plain(q.run(backend)) for name, q in queries.items()}
        raw = [r["stages"] for r in backend.to_pyarrow(CONFORMANCE.sequences_expr(backend)).to_pylist()]
        with _layer_set_aside(backend):
            assert stored_conversions(backend, OutcomeRule(event="buy")) is None
            from_events = {name: _plain(q.run(backend)) for name, q in queries.items()}
    assert from_layer == from_events
    # Some journeys stayed in a stage across an unstaged `help`: its rows repeat that stage, which the run merges.
    assert any(a == b for stages in raw for a, b in itertools.pairwise(stages))
    assert from_layer["flows"]["edges"]  # a real business, not an empty answer


def test_the_scorecard_from_the_list_of_conversions_equals_it_from_the_events_with_a_property_condition(
    tmp_path: Path,
) -> None:
    """The scorecard takes the conversions from the layer's list when it serves: with a conversion that only some
    `buy` events meet (a property condition, and an unmapped event as well), it equals the scorecard from the
    events, and differs from one that counts every `buy`."""
    conversion = {"event": {"in": ["buy", "unmapped"]}, "where": {"plan": "pro"}}
    ws = _workspace(tmp_path, {**MAP, "outcomes": {"conversion": conversion}})
    events = _business(300, 11)
    rng = random.Random(3)
    for e in events:
        e["plan"] = rng.choice(["pro", "free"])  # a field of its own is a property
    ws.ingest_events([_write(tmp_path / "e.jsonl", events)])
    rule = OutcomeRule.model_validate(conversion)
    query = sc.ScorecardQuery(rule, timedelta(days=1), exact=True)
    with _store(ws) as con:
        backend = backend_on(con.cursor())
        listed = stored_conversions(backend, rule)
        assert listed is not None
        n = int(backend.to_pyarrow(listed.count()).as_py())
        assert 0 < n < int(con.execute("SELECT count(*) FROM events WHERE event IN ('buy', 'unmapped')").fetchone()[0])
        from_list = _plain(query.run(backend))
        with _layer_set_aside(backend):
            assert stored_conversions(backend, rule) is None
            assert _plain(query.run(backend)) == from_list
        every_buy = sc.ScorecardQuery(OutcomeRule(event="buy"), timedelta(days=1), exact=True)
        assert _plain(every_buy.run(backend)) != from_list


def _paths_by_hand(con: duckdb.DuckDBPyConnection, anchor: str, steps: int, before: bool) -> dict[tuple[str, ...], int]:
    """The `steps` touchpoints after (or before, nearest last) each visit of `anchor`, from `reference`'s rows."""
    journeys: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in reference(con):
        journeys[row[0]].append((row[5], row[3]))
    counted: dict[tuple[str, ...], int] = defaultdict(int)
    for touches in journeys.values():
        names = [tp for _, tp in sorted(touches)]
        for i, tp in enumerate(names):
            if tp == anchor:
                counted[tuple(names[max(0, i - steps) : i] if before else names[i + 1 : i + 1 + steps])] += 1
    return dict(counted)


@pytest.mark.parametrize(
    ("anchor", "steps", "before"),
    [("cart", 1, False), ("cart", 3, False), ("buy", 3, True), ("home", 7, False), ("cart", 6, True)],
)
def test_paths_around_a_touchpoint_are_the_touches_next_to_each_visit(
    tmp_path: Path, anchor: str, steps: int, before: bool
) -> None:
    """The first steps come from the layer's neighbour columns, the further ones from joins by position or, past
    `JOINED` of them, a window: all as counted by hand, with the layer clean, set aside, and with customers
    awaiting a refresh."""
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(200, 5))])
    late = [_event(f"c{c}", 700 + c, step, 9000 + c) for c, step in enumerate(["cart", "buy", "home"] * 10)]
    query = fl.PathsFromQuery(anchor, steps, before, top=10**6)

    def found(backend: Any) -> dict[tuple[str, ...], int]:
        return {tuple(p["steps"]): p["count"] for p in query.run(backend).to_dict()["paths"]}

    with _store(ws) as con:
        backend = backend_on(con.cursor())
        assert found(backend) == _paths_by_hand(con, anchor, steps, before)
        with _layer_set_aside(backend):
            assert found(backend) == _paths_by_hand(con, anchor, steps, before)
        ingest = pipeline.EventIngest(con, ws.map(), "test")
        with journeys.transaction(con):
            ingest.store(_batch(tmp_path / "late.jsonl", late), "late.jsonl")
        assert layer_state(backend_on(con.cursor())) == "stale"
        assert found(backend_on(con.cursor())) == _paths_by_hand(con, anchor, steps, before)


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_trends_count_each_customer_once_a_period_as_a_distinct_count_does(tmp_path: Path, period: str) -> None:
    """Trends count a touchpoint's customers in a period at their first touch of it there (the layer's previous
    touch of the same touchpoint): the distinct customers of its events in that period, clean, set aside (a
    distinct count then) and stale."""
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(200, 7))])
    late = [_event(f"c{c}", 60 * 24 * 3 + c, step, 9000 + c) for c, step in enumerate(["cart", "home"] * 20)]
    query = TrendsQuery(period)
    distinct = (
        f"SELECT touchpoint, date_trunc('{period}', ts)::DATE, count(*), count(DISTINCT customer_id) FROM events "
        "WHERE touchpoint IS NOT NULL GROUP BY ALL"
    )

    def counted(con: duckdb.DuckDBPyConnection) -> set[tuple[Any, ...]]:
        backend = backend_on(con.cursor())
        return {tuple(r.values()) for r in backend.to_pyarrow(query.events_expr(backend)).to_pylist()}

    with _store(ws) as con:
        assert counted(con) == set(con.execute(distinct).fetchall())
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM touches_state")  # the layer set aside: a distinct count of the events
        assert counted(con) == set(con.execute(distinct).fetchall())
        con.execute("ROLLBACK")
        ingest = pipeline.EventIngest(con, ws.map(), "test")
        with journeys.transaction(con):
            ingest.store(_batch(tmp_path / "late.jsonl", late), "late.jsonl")
        assert layer_state(backend_on(con.cursor())) == "stale"
        assert counted(con) == set(con.execute(distinct).fetchall())
        assert any(n < e for _, _, e, n in con.execute(distinct).fetchall())  # some came back in one period


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_trends_periods_by_number_split_at_midnight_and_monday_in_utc(tmp_path: Path, period: str) -> None:
    """Days and weeks are numbered from the epoch in integers: a touch a microsecond before midnight, and before
    Monday, is in the period before; the same as the engine's calendar (date_trunc) gives, dates included."""
    ws = _workspace(tmp_path)
    sunday_night = datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)  # 2026-03-02 is a Monday
    times = [sunday_night, sunday_night + timedelta(microseconds=1), datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
             datetime(2000, 1, 3, tzinfo=UTC), datetime(2026, 2, 28, 12, tzinfo=UTC)]  # fmt: skip
    events = [
        {"event_id": f"e{c}{i}", "customer_id": f"c{c}", "ts": when.isoformat(), "event": "home"}
        for c in range(2) for i, when in enumerate(times[c:])
    ]  # fmt: skip
    ws.ingest_events([_write(tmp_path / "e.jsonl", events)])
    with _store(ws) as con:
        backend = backend_on(con.cursor())
        got = {tuple(r.values()) for r in backend.to_pyarrow(TrendsQuery(period).events_expr(backend)).to_pylist()}
        want = set(
            con.execute(
                f"SELECT touchpoint, date_trunc('{period}', ts)::DATE, count(*), count(DISTINCT customer_id) "
                "FROM events GROUP BY ALL"
            ).fetchall()
        )
    assert got == want
    assert len({p for _, p, _, _ in got}) == {"day": 5, "week": 4, "month": 4}[period]


def test_customers_counted_from_first_touches_are_the_distinct_customers(tmp_path: Path) -> None:
    """Reach and the scorecard count customers as the touches with no earlier one (of any touchpoint, or of
    theirs) in the layer: the same as distinct customers of the events, clean, stale between a batch and its
    refresh, by stage, and for one side of the converters' split."""
    from touchlens.insights.friction import touchpoint_reach

    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(300, 5))])
    buy = OutcomeRule(event="buy")
    stages = (("home", "look"), ("search", "look"), ("cart", "decide"), ("help", "decide"))
    queries = [
        sc.ScorecardQuery(buy, timedelta(days=1), exact=True),  # the sketches' quantiles: test_wait_sketches.py
        sc.ScorecardQuery(buy, timedelta(days=1), stage_of=stages, exact=True),
        sc.ScorecardQuery(buy, timedelta(days=1), options=JourneyOptions(converted=False, conversion=buy), exact=True),
    ]

    def answers(backend: Any) -> list[Any]:
        return [touchpoint_reach(backend), *(q.run(backend).to_dict() for q in queries)]

    late = [_event("c1", -50, "help", 10_001), _event("new", 3, "home", 10_002), _event("new", 4, "cart", 10_003)]
    with _store(ws) as con:
        for state in ("clean", "stale"):
            if state == "stale":  # a batch stored without the refresh after it
                with journeys.transaction(con):
                    pipeline.EventIngest(con, ws.map(), "test").store(_batch(tmp_path / "l.jsonl", late), "l.jsonl")
            backend = backend_on(con.cursor())
            assert layer_state(backend) == state
            from_layer = answers(backend)
            with _layer_set_aside(backend):
                from_events = answers(backend)
            assert from_layer == from_events
    reach, card = from_layer[0], from_layer[1]
    assert reach == {row["touchpoint"]: row["customers"] for row in card["touchpoints"]}
    assert 0 < reach["cart"] < card["customers"]  # a real business: not every customer reached the cart


def _churned_by_hand(
    events: list[dict[str, Any]], rule: OutcomeRule, sent: tuple[str, ...], conversion: str = "buy"
) -> set[str]:
    """The customers `rule` says churned: its churn event (an event name), or no action of their own
    (an event not of a `sent` touchpoint, or a `conversion`) for more than a day before the data ends; a customer
    who never acted, quiet since their first event."""
    end = max(datetime.fromisoformat(e["ts"]) for e in events)
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_customer.setdefault(e["customer_id"], []).append(e)
    if rule.event is not None:
        return {c for c, es in by_customer.items() if any(e["event"] == rule.event.equals for e in es)}
    churned = set()
    for c, es in by_customer.items():
        acted = [datetime.fromisoformat(e["ts"]) for e in es if e["event"] not in sent or e["event"] == conversion]
        since = max(acted) if acted else min(datetime.fromisoformat(e["ts"]) for e in es)
        if end - since > timedelta(days=rule.inactive_days or 0):
            churned.add(c)
    return churned


def _churn_both_ways(ws: touchlens.Workspace, query: dr.DriversQuery, churned: set[str]) -> list[list[dict[str, Any]]]:
    """`read_periods`'s rows from the layer and from the events, each checked against `churned`: churn flagged on
    each churned customer's highest period when it did not end in a conversion, and every period without a
    conversion its customer's highest (drivers rely on it to find the last periods without searching for them)."""
    with _store(ws) as con:
        backend = backend_on(con.cursor())
        assert periods_layer(backend, query.conversion) is not None
        read = [dr.read_periods(query, backend)[1].to_pylist()]
        with _layer_set_aside(backend):
            read.append(dr.read_periods(query, backend)[1].to_pylist())
    for rows in read:
        highest: dict[str, int] = {}
        for r in rows:
            highest[r["customer_id"]] = max(highest.get(r["customer_id"], -1), r["period"])
        assert all(r["period"] == highest[r["customer_id"]] for r in rows if not r["converted"])
        expected = {
            (r["customer_id"], r["period"]): int(
                r["customer_id"] in churned and r["period"] == highest[r["customer_id"]] and not r["converted"]
            )
            for r in rows
        }
        assert {(r["customer_id"], r["period"]): r["churn"] for r in rows} == expected
    assert sorted(map(str, read[0])) == sorted(map(str, read[1]))
    return read


@pytest.mark.parametrize(
    ("rule", "sent"),
    [
        (OutcomeRule(inactive_days=1), ()),
        (OutcomeRule(inactive_days=1), ("help", "home")),
        (OutcomeRule(event="help"), ()),
    ],
)
def test_churn_falls_on_each_churned_customers_last_period_counted_by_hand(
    tmp_path: Path, rule: OutcomeRule, sent: tuple[str, ...]
) -> None:
    """Churn by inactivity (company-sent touches not counted as the customer's action, or every event counted)
    and by a churn event, counted here from the generated events; the same from the layer and from the events."""
    events = _business(300, 9)
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", events)])
    churned = _churned_by_hand(events, rule, sent)
    query = dr.DriversQuery("churn", OutcomeRule(event="buy"), churn=rule, company_sent=sent)
    rows = _churn_both_ways(ws, query, churned)[0]
    flagged = {r["customer_id"] for r in rows if r["churn"]}
    assert 0 < len(flagged) < len({r["customer_id"] for r in rows})  # some customers churned, not all


@pytest.mark.parametrize("conversion", ["buy", "unmapped"])  # a conversion that is a touch, and one that is not
def test_inactivity_churn_at_its_edges(tmp_path: Path, conversion: str) -> None:
    """Customers placed at the edges of a day's inactivity before the data ends (minute E), "help" and "buy" sent by the
    company: the last action exactly at the cut-off (active) or a minute before (churned); first appearing by an
    event no touchpoint claims before the cut-off, then only sent touches (churned); only sent touches, all after
    the cut-off (active, quiet only since they appeared) or from before it (churned); a conversion, or an event no
    touchpoint claims, as the last action (active)."""
    end, day = 10 * 1440, 1440
    placed = {
        "at_cutoff": [(0, "home"), (end - day, "cart")],
        "minute_before": [(0, "home"), (end - day - 1, "cart")],
        "unclaimed_first": [(0, "unmapped"), (end - 600, "help")],
        "only_sent_recent": [(end - 600, "help"), (end - 500, "help")],
        "only_sent_old": [(0, "help"), (end - 100, "help")],
        "converted_last": [(0, "help"), (end - 100, conversion), (end - 50, "help")],
        "unclaimed_last": [(0, "help"), (end - 100, "unmapped"), (end - 50, "help")],
        "data_end": [(0, "home"), (end, "unmapped")],  # the data's end, from an event no touchpoint claims
    }
    events = [_event(c, minute, step, i) for i, (c, minute, step) in enumerate(
        (c, m, s) for c, steps in placed.items() for m, s in steps)]  # fmt: skip
    rule, sent = OutcomeRule(inactive_days=1), ("help", "buy")  # a sent conversion is still an action
    churned = _churned_by_hand(events, rule, sent, conversion)
    assert churned == {"minute_before", "unclaimed_first", "only_sent_old"}
    ws = _workspace(tmp_path, {**MAP, "outcomes": {"conversion": {"event": conversion}}})
    ws.ingest_events([_write(tmp_path / "e.jsonl", events)])
    query = dr.DriversQuery("churn", OutcomeRule(event=conversion), churn=rule, company_sent=sent)
    for rows in _churn_both_ways(ws, query, churned):
        assert {r["customer_id"] for r in rows if r["churn"]} == churned


def _plain(result: Any) -> Any:
    return result if isinstance(result, dict) else result.to_dict()


def test_variants_grouped_as_coded_lists_equal_variants_grouped_as_lists(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(400, 7))])
    with _store(ws) as con:
        backend = backend_on(con.cursor())
        lists = backend.to_pyarrow(fl.VariantsQuery().to_expr(backend)).to_pylist()  # the engine-neutral way
        for top in (None, 1, 5):
            found = fl.VariantsQuery(top=top).run(backend)
            ranked = sorted(lists, key=lambda r: (-r["count"], r["steps"]))[:top]
            assert [(v.steps, v.count) for v in found.variants] == [(r["steps"], r["count"]) for r in ranked]
            assert found.journeys == sum(r["count"] for r in lists) > 300


def test_a_key_first_seen_between_the_two_reads_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Variants and attribution paths read the keys, then code the touches by them: a touchpoint that arrives
    live between the two reads must not vanish from a sequence (simulated: the first key read misses one)."""
    import pyarrow as pa

    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(200, 3))])
    real, missed = fl.arrow, []

    def forgetful(backend: Any, expr: Any) -> Any:
        got = real(backend, expr)
        if isinstance(got, pa.Table) and got.num_columns == 1 and got.num_rows > 1 and len(missed) < 1:
            missed.append(got.column(0)[0].as_py())
            return got.slice(1)
        return got

    with _store(ws) as con:
        backend = backend_on(con.cursor())
        expected = fl.VariantsQuery(top=None).run(backend)
        monkeypatch.setattr(fl, "arrow", forgetful)
        assert fl.VariantsQuery(top=None).run(backend) == expected
        assert missed
        rule = ws.map().outcomes.conversion
        assert rule is not None
        query = pa_.PathsQuery(rule)
        expected_paths = list(query.run(backend))
        missed.clear()
        monkeypatch.setattr(pa_, "arrow", forgetful)
        assert list(query.run(backend)) == expected_paths
        assert missed


def test_help_sessions_from_the_layer_are_the_sessions_cut_from_the_events(tmp_path: Path) -> None:
    from touchlens.insights.friction import help_sessions

    ws = _workspace(tmp_path)
    ws.ingest_events([_write(tmp_path / "e.jsonl", _business(400, 8))])

    def sessions(backend: Any) -> list[tuple[Any, ...]]:
        t = help_sessions(backend, ["help", "search"], timedelta(minutes=30))
        per = t.group_by(["journey", "customer_id", "touchpoint"]).aggregate(n=t.count())
        return sorted((r["customer_id"], r["touchpoint"], r["n"]) for r in backend.to_pyarrow(per).to_pylist())

    with _store(ws) as con:
        backend = backend_on(con.cursor())
        from_layer = sessions(backend)
        with _layer_set_aside(backend):
            from_events = sessions(backend)
    assert from_layer == from_events
    assert any(n > 1 for *_, n in from_layer)  # sessions with repeats, not one touch each


def test_repeated_help_in_one_visit_from_the_layer_and_the_events_counted_by_hand(tmp_path: Path) -> None:
    """Help (reactive, after buying) three or more times in one visit (no gap over 30 minutes between touches):
    the sessions and customers counted here from the generated events, and by `friction.repeats` with the layer
    read and set aside."""
    from touchlens.insights.friction import repeats
    from touchlens.insights.words import Names

    steps = [{"key": s, "match": {"event": s}} for s in STEPS if s != "help"]
    help_ = {"key": "help", "match": {"event": "help"}, "phase": "post-purchase", "initiative": "reactive"}
    ws = _workspace(tmp_path, {**MAP, "touchpoints": [*steps, help_]})
    events = _business(1500, 11)
    ws.ingest_events([_write(tmp_path / "e.jsonl", events)])
    sessions, customers, reached = 0, set(), set()
    for c in {e["customer_id"] for e in events}:
        mine = sorted((e for e in events if e["customer_id"] == c and e["event"] != "unmapped"),
                      key=lambda e: (e["ts"], int(e["event_id"][1:])))  # fmt: skip
        helps, last = 0, None
        for e in mine:
            ts = datetime.fromisoformat(e["ts"])
            if last is not None and ts - last > timedelta(minutes=30):  # a new visit
                sessions += helps >= 3
                customers |= {c} if helps >= 3 else set()
                helps = 0
            helps, last = helps + (e["event"] == "help"), ts
            reached |= {c} if e["event"] == "help" else set()
        sessions += helps >= 3
        customers |= {c} if helps >= 3 else set()
    m = ws.map()
    with _store(ws) as con:
        backend = backend_on(con.cursor())
        found = [repeats(backend, m, Names.of(m), min_share=0.0)]
        with _layer_set_aside(backend):
            found.append(repeats(backend, m, Names.of(m), min_share=0.0))
    assert sessions >= len(customers) > 0
    for items in found:
        assert [(i.subject, i.evidence["sessions"], i.evidence["customers"]) for i in items] == [
            ("help", sessions, len(customers))
        ]
        assert items[0].evidence["share_of_customers"] == pytest.approx(len(customers) / len(reached))
