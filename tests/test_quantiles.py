"""Exact quantiles two ways: the engine's holistic aggregate (fast, holds a group's values in memory) and
ranking (bounded memory, for big data). Both must give quantile_cont's answer; the workspace picks by size."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import ibis
import pytest

import touchlens
from touchlens.analytics.engine import with_quantiles
from touchlens.analytics.flows import FlowsQuery
from touchlens.analytics.journeys import JourneyOptions
from touchlens.analytics.scorecard import ScorecardQuery
from touchlens.demo_workspace import build_demo
from touchlens.locate import SETTINGS_FILE


def _linear(values: list[float], q: float) -> float:
    """quantile_cont by hand: between the two sorted values around position (n − 1)·q."""
    s = sorted(values)
    position = (len(s) - 1) * q
    low = int(position // 1)
    high = min(low + 1, len(s) - 1)
    return s[low] + (position - low) * (s[high] - s[low])


@pytest.mark.parametrize("ranked", [False, True])
def test_quantiles_equal_a_hand_computation_with_nulls_and_ties(ranked: bool) -> None:
    rng = random.Random(5)
    rows = [{"g": g, "v": rng.choice([None, 1.0, 2.0, rng.random() * 100])} for g in "abc" for _ in range(41)]
    rows += [{"g": "empty", "v": None}]
    t = ibis.memtable(rows)
    out = with_quantiles(t, ["g"], "v", {"median": 0.5, "p90": 0.9}, ranked, n=lambda g: g.count())
    got = {r["g"]: r for r in ibis.duckdb.connect().to_pyarrow(out).to_pylist()}
    for g in "abc":
        values = [r["v"] for r in rows if r["g"] == g and r["v"] is not None]
        assert got[g]["n"] == 41
        assert got[g]["median"] == pytest.approx(_linear(values, 0.5), rel=1e-12)
        assert got[g]["p90"] == pytest.approx(_linear(values, 0.9), rel=1e-12)
    assert (got["empty"]["median"], got["empty"]["p90"]) == (None, None)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> touchlens.Workspace:
    root = tmp_path_factory.mktemp("quantiles") / "ws"
    build_demo(root, customers=150)
    return touchlens.open(root)


@pytest.mark.slow
@pytest.mark.parametrize("options", [JourneyOptions(), JourneyOptions(session_gap=timedelta(hours=2))])
def test_ranked_flows_and_scorecard_equal_the_holistic_ones(demo: touchlens.Workspace, options) -> None:
    backend = demo._backend()
    flows = [FlowsQuery(options, ranked=r, exact=True).run(backend).to_dict() for r in (False, True)]
    assert flows[0]["start"] == flows[1]["start"]
    assert flows[0]["edges"] == [pytest.approx(e) for e in flows[1]["edges"]]
    conversion = demo.map().outcomes.conversion
    cards = [
        ScorecardQuery(conversion, options=options, ranked=r, exact=True).run(backend).to_dict() for r in (False, True)
    ]
    assert cards[0]["touchpoints"] == [pytest.approx(s) for s in cards[1]["touchpoints"]]
    assert any(s["median_seconds_to_next"] is not None for s in cards[0]["touchpoints"])


def test_the_workspace_ranks_when_the_memory_limit_is_small_for_the_events(demo: touchlens.Workspace) -> None:
    assert demo._ranked(demo._backend()) is False  # a few thousand events, 1GB
    (Path(demo.root) / SETTINGS_FILE).write_text('[store]\nmemory_limit = "64MB"\n', encoding="utf-8")
    small = touchlens.open(demo.root)
    mapped = int(small._backend().execute(small._backend().table("events").touchpoint.count()))
    assert small._ranked(small._backend()) is (mapped * 96 > 64 * 2**20)
    (Path(demo.root) / SETTINGS_FILE).write_text("", encoding="utf-8")
