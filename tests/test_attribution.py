"""Attribution: heuristics equal an independent count, Markov equals a hand-solved chain, credit sums up."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, workspace_with
from touchlens.analytics.attribution import MODELS, Paths, attribute, heuristics, markov
from touchlens.analytics.attribution import Path as P

DATA = ROOT.parent / "shared" / "data" / "channelattribution_paths" / "Data.csv"


def test_markov_equals_the_hand_solved_absorbing_chain() -> None:
    # start→A 2/3, start→B 1/3; A→B 1/2, A→null 1/2; B→conversion 1. P = 2/3·1/2 + 1/3 = 2/3.
    # Without A: P = 1/3, effect 1/2; without B: P = 0, effect 1. Credit: 2·(1/2)/(3/2) and 2·1/(3/2).
    paths = [P(("A", "B"), 1), P(("A",), 0, 1), P(("B",), 1)]
    credit, _ = markov(paths)
    assert credit == pytest.approx({"A": float(Fraction(2, 3)), "B": float(Fraction(4, 3))}, abs=1e-12)


def _data() -> list[P]:
    assert DATA.exists(), f"the shared data set is missing: {DATA}"
    with DATA.open() as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    return [
        P(
            tuple(r["path"].split(" > ")),
            float(r["total_conversions"]),
            float(r["total_null"]),
            float(r["total_conversion_value"]),
        )
        for r in rows
    ]


def test_first_last_linear_equal_an_independent_count_on_channelattribution_data() -> None:
    paths = _data()
    first, last, linear = defaultdict(float), defaultdict(float), defaultdict(float)
    for p in paths:
        first[p.steps[0]] += p.conversions
        last[p.steps[-1]] += p.conversions
        for step in p.steps:
            linear[step] += p.conversions / len(p.steps)
    for model, expected in (("first", first), ("last", last), ("linear", linear)):
        got = {c.key: c.conversions for c in attribute(paths, model).results}
        assert got == pytest.approx({k: v for k, v in expected.items() if v or k in got}, rel=1e-12)


@pytest.mark.parametrize(("model", "order"), [(m, 1) for m in MODELS] + [("markov", 2), ("markov", 3)])
def test_credit_sums_to_total_conversions_and_value(model: str, order: int) -> None:
    paths = _data()
    result = attribute(paths, model, order=order)
    assert result.total_conversions == 19785
    assert sum(c.conversions for c in result.results) == pytest.approx(19785)
    assert sum(c.value for c in result.results) == pytest.approx(sum(p.value for p in paths), rel=1e-9)
    assert sum(c.share for c in result.results) == pytest.approx(1.0)


def test_the_attribution_command_prints_the_documented_shape(cli, tmp_path: Path) -> None:
    result = cli("analyze", "attribution", "--paths", DATA, "--model", "linear", "--json")
    data = json.loads(result.out)
    assert set(data) == {"model", "by", "total_conversions", "results"}
    assert set(data["results"][0]) == {"key", "conversions", "share", "value", "low", "high"}
    compared = json.loads(cli("analyze", "attribution", "--paths", DATA, "--compare", "--json").out)
    assert [r["model"] for r in compared] == ["first", "last", "linear", "position", "markov order 1", "shapley"]
    assert cli("analyze", "attribution", "--paths", DATA, "--model", "magic").code == 1
    rows = list(csv.DictReader(cli("analyze", "attribution", "--paths", DATA, "--compare", "--csv").out.splitlines()))
    assert len(rows) == sum(len(r["results"]) for r in compared)
    for model in compared:
        credit = {r["key"]: float(r["conversions"]) for r in rows if r["model"] == model["model"]}
        assert credit == {c["key"]: pytest.approx(c["conversions"]) for c in model["results"]}


def test_journeys_are_cut_after_each_conversion_which_is_not_part_of_the_path(cli, tmp_path: Path) -> None:
    text = (
        "name: Shop\njourneys: [{key: j, stages: [{key: find}, {key: buy}]}]\n"
        "touchpoints:\n  - {key: ad, stage: find, match: {event: ad}}\n"
        "  - {key: mail, stage: find, match: {event: mail}}\n"
        "  - {key: checkout, stage: buy, match: {event: order}}\n"
        "outcomes: {conversion: {event: order, value: revenue}}\n"
    )
    rows = [
        ("a", 1, "ad", ""), ("a", 2, "mail", ""), ("a", 3, "order", "10"),  # ad > mail, converts (10)
        ("a", 4, "mail", ""),  # mail, after the last conversion: does not convert
        ("b", 1, "mail", ""), ("b", 2, "order", "5"), ("b", 3, "order", "7"),  # mail converts; then an empty path
        ("c", 1, "ad", ""),  # ad, no conversion
    ]  # fmt: skip
    lines = [f"{c},2026-01-01T10:0{m}:00Z,{e},{r}" for c, m, e, r in rows]
    ws = workspace_with(cli, tmp_path, text, "customer_id,ts,event,revenue\n" + "\n".join(lines) + "\n")
    paths = touchlens_paths(ws)
    assert paths == {(("ad", "mail"), 1, 0, 10.0), (("mail",), 1, 1, 5.0), (("ad",), 0, 1, 0.0)}
    last = json.loads(cli("-w", ws, "analyze", "attribution", "--model", "last", "--json").out)
    assert last["total_conversions"] == 2
    assert {r["key"]: r["conversions"] for r in last["results"] if r["conversions"]} == {"mail": 2}
    stages = json.loads(cli("-w", ws, "analyze", "attribution", "--by", "stage", "--model", "first", "--json").out)
    assert {r["key"]: r["conversions"] for r in stages["results"] if r["conversions"]} == {"find": 2}


def touchlens_paths(ws: Path) -> set[tuple[tuple[str, ...], float, float, float]]:
    import touchlens

    return {(p.steps, p.conversions, p.nulls, p.value) for p in touchlens.open(ws).attribution_paths()}


def test_shapley_equals_a_hand_worked_game_and_is_efficient() -> None:
    from touchlens.analytics.attribution import shapley

    # v({A}) = 1, v({B}) = 2, v({A,B}) = 1 + 2 + 3 = 6. φA = ½(1 − 0) + ½(6 − 2) = 2.5; φB = ½·2 + ½(6 − 1) = 3.5.
    paths = [P(("A",), 1), P(("B", "B"), 2), P(("A", "B"), 3), P(("A",), 0, 5)]
    credit, _ = shapley(paths)
    assert credit == pytest.approx({"A": 2.5, "B": 3.5})
    data = _data()
    credit, value = shapley(data)
    assert sum(credit.values()) == pytest.approx(19785)
    assert sum(value.values()) == pytest.approx(sum(p.value for p in data))


def test_time_decay_halves_credit_every_half_life(cli, tmp_path: Path) -> None:
    text = (
        "name: S\ntouchpoints: [{key: ad, match: {event: ad}}, {key: mail, match: {event: mail}}]\n"
        "outcomes: {conversion: {event: order}}\n"
    )
    rows = "a,2026-01-01T00:00:00Z,ad\na,2026-01-08T00:00:00Z,mail\na,2026-01-15T00:00:00Z,order\n"
    ws = workspace_with(cli, tmp_path, text, "customer_id,ts,event\n" + rows)
    # Ages 14 and 7 days, half-life 7 days: weights 1/4 and 1/2, so shares 1/3 and 2/3.
    result = json.loads(
        cli("-w", ws, "analyze", "attribution", "--model", "time-decay", "--half-life", "7d", "--json").out
    )
    credit = {r["key"]: r["conversions"] for r in result["results"]}
    assert credit == pytest.approx({"ad": 1 / 3, "mail": 2 / 3})
    # The total is the count of converting paths with a touch (one here), not the credit's float sum.
    assert result["total_conversions"] == 1
    compared = json.loads(cli("-w", ws, "analyze", "attribution", "--compare", "--json").out)
    for model in compared:
        assert sum(r["conversions"] for r in model["results"]) == pytest.approx(1.0)
    assert cli("analyze", "attribution", "--paths", DATA, "--model", "time-decay").code == 1


def test_bootstrap_intervals_contain_the_estimate_and_narrow_with_more_data() -> None:
    from touchlens.analytics.attribution import bootstrap

    small = [P(("A", "B"), 5, 5), P(("B",), 5, 10), P(("A",), 2, 8)]
    big = [P(p.steps, p.conversions * 100, p.nulls * 100) for p in small]
    for model in ("linear", "markov"):
        point = {c.key: c.conversions for c in attribute(small, model).results}
        wide = bootstrap(small, model, samples=60)
        narrow = bootstrap(big, model, samples=60)
        for key, (low, high) in wide.items():
            assert low <= point[key] <= high
            big_low, big_high = narrow[key]
            assert (big_high - big_low) / 100 < high - low


def test_a_lookback_leaves_out_touches_long_before_the_conversion(cli, tmp_path: Path) -> None:
    text = "name: S\ntouchpoints: [{key: ad, match: {event: ad}}, {key: mail, match: {event: mail}}]\n"
    text += "outcomes: {conversion: {event: order}}\n"
    rows = "a,2026-01-01T00:00:00Z,ad\na,2026-01-20T00:00:00Z,mail\na,2026-01-21T00:00:00Z,order\n"
    ws = workspace_with(cli, tmp_path, text, "customer_id,ts,event\n" + rows)
    first = json.loads(cli("-w", ws, "analyze", "attribution", "--model", "first", "--json").out)
    assert {r["key"]: r["conversions"] for r in first["results"] if r["conversions"]} == {"ad": 1}
    args = ("-w", ws, "analyze", "attribution", "--model", "first", "--lookback", "7d", "--json")
    recent = json.loads(cli(*args).out)
    assert {r["key"]: r["conversions"] for r in recent["results"] if r["conversions"]} == {"mail": 1}


@pytest.mark.parametrize(("by", "lookback"), [("touchpoint", None), ("channel", None), ("stage", "3d")])
def test_the_chain_the_engine_counts_is_the_chain_of_the_paths(tmp_path: Path, by: str, lookback: str | None) -> None:
    """Order-1 Markov counts its transitions in the engine; they and the credit must be those of the paths."""
    import touchlens
    from touchlens.analytics.attribution import _flatten, _order1_transitions
    from touchlens.demo_workspace import build_demo

    build_demo(tmp_path / "ws", customers=120)
    ws = touchlens.open(tmp_path / "ws")
    paths = ws.attribution_paths(by, lookback)
    chain = ws._paths_query("channel" if by == "channel" else "touchpoint", lookback).transitions(ws._backend())
    if by == "stage":
        chain = chain.by({t.key: t.stage or "(none)" for t in ws.map().touchpoints})
    assert chain.counts == pytest.approx(_order1_transitions(_flatten(paths)))
    assert chain.conversions == sum(p.conversions for p in paths if p.steps) > 0
    assert chain.value == pytest.approx(sum(p.value for p in paths if p.steps))
    in_engine = {c.key: c.conversions for c in ws.attribution("markov", by, lookback=lookback).results}
    from_paths = {c.key: c.conversions for c in attribute(paths, "markov").results}
    assert in_engine == pytest.approx(from_paths, rel=1e-12)


def test_a_key_missing_from_the_codes_reads_the_paths_again(tmp_path: Path) -> None:
    """The paths from the layer code each key by its place in the keys read just before; a key that came between
    the two reads (a refresh) is coded -1, and the paths are read again, not counted without it."""
    from unittest.mock import patch

    import touchlens
    from touchlens.analytics import paths as paths_module
    from touchlens.demo_workspace import build_demo

    build_demo(tmp_path / "ws", customers=60)
    ws = touchlens.open(tmp_path / "ws")
    query, backend = ws._paths_query("touchpoint", None), ws._backend()
    want = query.run(backend)
    assert want
    real = paths_module.arrow
    reads = []

    def one_key_short(b: object, expr: object) -> object:
        found = real(b, expr)
        if found.column_names == ["k"] and not reads:  # the keys' first read, as if one came after it
            reads.append(found)
            return found.slice(1)
        return found

    with patch.object(paths_module, "arrow", one_key_short):
        assert query._coded(backend) is None
        reads.clear()
        again = query.run(backend)
    assert len(reads) == 1
    assert [(p.steps, p.conversions, p.nulls) for p in again] == [(p.steps, p.conversions, p.nulls) for p in want]
    assert [p.value for p in again] == pytest.approx([p.value for p in want], rel=1e-12)  # sums in any order


def test_markov_without_paths_credits_nothing(cli, tmp_path: Path) -> None:
    text = "name: S\ntouchpoints: [{key: ad, match: {event: ad}}]\noutcomes: {conversion: {event: order}}\n"
    ws = workspace_with(cli, tmp_path, text, "customer_id,ts,event\na,2026-01-01T00:00:00Z,other\n")
    for args in (["--model", "markov"], ["--model", "markov", "--order", "2"], ["--compare"]):
        result = cli("-w", ws, "analyze", "attribution", *args, "--json")
        assert result.code == 0, result.err
        data = json.loads(result.out)
        for model in data if isinstance(data, list) else [data]:
            assert (model["total_conversions"], model["results"]) == (0, [])


@pytest.mark.parametrize(("model", "order"), [(m, 1) for m in MODELS] + [("markov", 2)])
def test_paths_held_as_arrays_credit_as_the_same_paths_as_objects(model: str, order: int) -> None:
    """`Paths` (the engine's arrays, no object per path) and a list of `Path` give every model the same credit;
    40 keys take Shapley's sampled branch, 6 its exact one."""
    for keys in (40, 6):
        paths = [p for p in _random_paths(keys) if p.steps]
        arrays = _as_arrays(paths)
        assert list(arrays) == paths
        a, b = attribute(paths, model, order=order), attribute(arrays, model, order=order)
        assert a.total_conversions == b.total_conversions
        assert {c.key: c.conversions for c in b.results} == pytest.approx(
            {c.key: c.conversions for c in a.results}, rel=1e-9, abs=1e-9
        )


def test_paths_regrouped_are_the_paths_with_each_key_replaced() -> None:
    paths = [p for p in _random_paths(12) if p.steps]
    group = {f"k{i}": f"g{i % 3}" for i in range(10)}  # k10, k11 have no group
    regrouped = list(_as_arrays(paths).regrouped(group, "(none)"))
    assert regrouped == [P(tuple(group.get(k, "(none)") for k in p.steps), p.conversions, p.nulls, p.value)
                         for p in paths]  # fmt: skip


def _random_paths(keys: int) -> list[P]:
    import random

    rng = random.Random(keys)
    return [
        P(
            tuple(f"k{rng.randrange(keys)}" for _ in range(rng.randint(0, 6))),
            float(rng.randint(0, 3)),
            float(rng.randint(0, 3)),
            round(rng.random() * 100, 2),
        )
        for _ in range(400)
    ]


def _as_arrays(paths: list[P]) -> Paths:
    import numpy as np

    keys = sorted({k for p in paths for k in p.steps})
    codes = np.array([keys.index(k) for p in paths for k in p.steps])
    lengths = np.array([len(p.steps) for p in paths])
    totals = tuple(np.array([getattr(p, f) for p in paths]) for f in ("conversions", "nulls", "value"))
    return Paths.of(keys, codes, lengths, totals)  # type: ignore[arg-type]


def _by_the_definition(paths: list[P], model: str) -> tuple[dict[str, float], dict[str, float]]:
    """Each touch's share of its path's conversions and value, touch by touch, as the models' docs define them."""
    credit: dict[str, float] = defaultdict(float)
    value: dict[str, float] = defaultdict(float)
    for p in paths:
        n = len(p.steps)
        for i, key in enumerate(p.steps):
            if model == "first":
                share = float(i == 0)
            elif model == "last":
                share = float(i == n - 1)
            elif model == "linear" or n <= 2:
                share = 1 / n
            else:
                share = 0.4 if i in (0, n - 1) else 0.2 / (n - 2)
            credit[key] += share * p.conversions
            value[key] += share * p.value
    converting = {k for p in paths if p.conversions > 0 for k in p.steps}
    return {k: credit[k] for k in converting}, {k: value[k] for k in converting}


PATH = st.builds(
    P,
    st.lists(st.sampled_from("abcdef"), max_size=8).map(tuple),  # a path of no steps, as arrays may hold
    st.integers(0, 3).map(float),
    st.integers(0, 3).map(float),
    st.floats(0, 100),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(PATH, max_size=30), st.booleans())
def test_position_rules_credit_each_touch_as_defined(paths: list[P], as_arrays: bool) -> None:
    """The rules spread each path's amounts per path (first and last steps read directly); a touch-by-touch
    reading of the definition gives the same credit, from Path objects or from the engine's arrays."""
    source: list[P] | Paths = paths
    if as_arrays:
        keys = sorted({k for p in paths for k in p.steps})
        codes = np.array([keys.index(k) for p in paths for k in p.steps], dtype=np.int64)
        lengths = np.array([len(p.steps) for p in paths], dtype=np.int64)
        totals = tuple(np.array([getattr(p, f) for p in paths], dtype=float) for f in ("conversions", "nulls", "value"))
        source = Paths.of(keys, codes, lengths, (totals[0], totals[1], totals[2]))
    got = heuristics(source, ("first", "last", "linear", "position"))
    for model, (credit, value) in got.items():
        want_credit, want_value = _by_the_definition(paths, model)
        assert credit.keys() == want_credit.keys()
        assert credit == pytest.approx(want_credit, abs=1e-9)
        assert value == pytest.approx(want_value, rel=1e-9, abs=1e-6)
