"""Proactive touchpoints replayed on history (issue 22, parts 1-2): the map's rules are validated with located
errors; `design simulate` counts reach like a hand count, and its effect interval covers a planted effect and,
on a null twin, covers 0."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import touchlens
from tests.conftest import write
from touchlens.errors import MapError, UnknownItem
from touchlens.insights.proactive import Plan, after_quiet, in_holdout, replay

START = datetime(2025, 1, 1, 9, tzinfo=UTC)
WAIT = timedelta(days=3)


def shop_map(holdout: float = 0.0, cap: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Shop",
        "channels": [{"key": "phone", "kind": "human"}, {"key": "web", "kind": "digital"}],
        "touchpoints": [
            {"key": "order", "channel": "web", "match": {"event": "order_placed"}},
            {"key": "checkin_call", "channel": "phone", "initiative": "proactive", "match": {"event": "call"}},
            {"key": "browse", "channel": "web", "match": {"event": "page_view"}},
        ],
        "outcomes": {"churn": {"inactive_days": 60}},
        "proactive": [
            {
                "key": "checkin",
                "name": "How's it going call",
                "after": {"touchpoint": "order"},
                "wait": "3d",
                "unless": {"event": "complaint"},
                "channel": "phone",
                "touchpoint": "checkin_call",
                "holdout": holdout,
            },
        ],
    }
    if cap:
        data["contact_cap"] = cap
    return data


def history(
    seed: int, churn_with: float, churn_without: float, customers: int = 800
) -> list[tuple[str, datetime, str]]:
    """Each customer orders once in the first 60 days; a tenth complain the next day; about a third get a
    check-in call two days after ordering (by chance); those who stay browse a month later."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, datetime, str]] = []
    for i in range(customers):
        c = f"c{i:04d}"
        order = START + timedelta(days=float(rng.uniform(0, 60)))
        rows.append((c, order, "order_placed"))
        if rng.random() < 0.1:
            rows.append((c, order + timedelta(days=1), "complaint"))
        called = rng.random() < 0.35
        if called:
            rows.append((c, order + timedelta(days=2), "call"))
        if rng.random() >= (churn_with if called else churn_without):
            rows.append((c, order + timedelta(days=30), "page_view"))
    rows.append(("zz-end", START + timedelta(days=250), "page_view"))  # the history runs on: churn is observable
    return rows


def workspace(tmp_path: Path, rows: list[tuple[str, datetime, str]], m: dict[str, Any]) -> touchlens.Workspace:
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "map.json", json.dumps(m)))
    text = "customer_id,ts,event\n" + "".join(f"{c},{t.isoformat()},{e}\n" for c, t, e in rows)
    ws.ingest_events([write(tmp_path / "e.csv", text)])
    return ws


def test_reach_equals_a_hand_count(tmp_path: Path) -> None:
    rows = history(1, 0.3, 0.3)
    # The first fifty customers browse six hours after the contact would have gone: an overlap with `browse`.
    rows += [(c, t + WAIT + timedelta(hours=6), "page_view") for c, t, e in rows[:200] if e == "order_placed"][:50]
    ws = workspace(tmp_path, rows, shop_map())
    end = max(t for _, t, _ in rows)
    orders = {c: t for c, t, e in rows if e == "order_placed"}
    complained = {c: t for c, t, e in rows if e == "complaint"}
    reached = {c for c, t in orders.items() if t + WAIT <= end and not (c in complained and complained[c] <= t + WAIT)}
    sim = ws.design.simulate("checkin")
    assert sim.replay["customers"] == len(reached)
    assert sim.replay["sends"] == len(reached)
    assert sim.replay["cancelled"] == len(complained)
    assert sim.replay["triggers"] == len(orders)
    browsed = {c for c, t, e in rows if e == "page_view" and c in orders and t == orders[c] + WAIT + timedelta(hours=6)}
    # Calls two days after the order are within a day of the contact, but they are its own touchpoint.
    assert sim.overlaps == {"browse": len(browsed & reached)}


def covers(interval: tuple[float | None, float | None], value: float) -> bool:
    low, high = interval
    return low is not None and high is not None and low <= value <= high


@pytest.mark.parametrize(("churn_with", "churn_without"), [(0.25, 0.45), (0.35, 0.35)], ids=["planted", "null"])
def test_the_effect_interval_covers_the_planted_effect_or_zero(
    tmp_path: Path, churn_with: float, churn_without: float
) -> None:
    hits = 0
    seeds = range(8)
    for seed in seeds:
        ws = workspace(tmp_path / str(seed), history(seed, churn_with, churn_without), shop_map(holdout=0.1))
        [churn] = ws.design.simulate("checkin").effects
        assert churn.outcome == "churn"
        assert churn.with_contact > 150
        assert churn.without_contact > 300
        hits += covers((churn.low, churn.high), churn_with - churn_without)
    assert hits >= 6  # a 95% interval: all eight, give or take one unlucky draw or two


def test_a_rule_with_no_similar_contact_in_history_cannot_tell(tmp_path: Path) -> None:
    rows = [r for r in history(2, 0.3, 0.3) if r[2] != "call"]
    ws = workspace(tmp_path, rows, shop_map())
    [churn] = ws.design.simulate("checkin").effects
    assert churn.difference is None
    assert churn.verdict.startswith("cannot tell")


def test_the_contact_cap_counts_earlier_proactive_contacts() -> None:
    day = timedelta(days=1)
    plan = Plan("r", WAIT, 0.0, cap=(1, timedelta(days=7)))
    triggers = {"a": [START, START + 2 * day, START + 20 * day], "b": [START]}
    prior = {"b": [START + 2 * day]}  # another proactive touchpoint reached b the day before its contact
    done = replay(plan, triggers, {}, prior, START + 100 * day)
    assert [(c, d) for c, _, d in done.sends] == [("a", START + 3 * day), ("a", START + 23 * day)]
    assert done.capped == 2  # a's second contact (two days after its first) and b's


def test_quiet_hours_move_a_contact_to_their_end() -> None:
    late = datetime(2025, 3, 1, 22, 30, tzinfo=UTC)
    assert after_quiet(late, "21:00-08:00", "UTC") == datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
    assert after_quiet(late.replace(hour=3), "21:00-08:00", "UTC") == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    assert after_quiet(late.replace(hour=12), "21:00-08:00", "UTC") == late.replace(hour=12)
    done = replay(Plan("r", WAIT, 0.0, quiet="21:00-08:00"), {"a": [late - WAIT]}, {}, {}, late + WAIT)
    assert done.moved_by_quiet_hours == 1
    assert done.sends[0][2] == datetime(2025, 3, 2, 8, 0, tzinfo=UTC)


def test_the_holdout_is_stable_and_near_its_share() -> None:
    customers = [f"c{i}" for i in range(20_000)]
    held = [c for c in customers if in_holdout("checkin", c, 0.1)]
    assert abs(len(held) / len(customers) - 0.1) < 0.01
    assert held == [c for c in customers if in_holdout("checkin", c, 0.1)]
    assert set(held) != {c for c in customers if in_holdout("other-rule", c, 0.1)}


def test_bad_rules_are_located_errors(tmp_path: Path) -> None:
    m = shop_map()
    m["proactive"] = [
        {"key": "a", "after": {"touchpoint": "nope"}, "wait": "soon"},
        {"key": "b", "after": {"touchpoint": "order", "event": "x"}, "wait": "1d", "quiet": "late"},
        {"key": "b", "after": {"event": "x"}, "wait": "1d", "holdout": 1.5},
        {"key": "c", "after": {"event": "x"}, "wait": "1d", "channel": "fax"},
    ]
    ws = touchlens.init(tmp_path / "ws")
    with pytest.raises(MapError) as caught:
        ws.import_map(write(tmp_path / "m.json", json.dumps(m)))
    text = str(caught.value)
    expected = ["proactive[0].wait", "proactive[1].after", "proactive[1].quiet: quiet hours are written"]
    expected += ["proactive[2].holdout", "duplicate key 'b'", "proactive[3].channel: unknown channel 'fax'"]
    for part in expected:
        assert part in text, text
    m["proactive"] = [{"key": "a", "after": {"touchpoint": "nope"}, "wait": "1d"}]
    with pytest.raises(MapError, match=r"proactive\[0\]\.after\.touchpoint: unknown touchpoint 'nope'"):
        ws.import_map(write(tmp_path / "m2.json", json.dumps(m)))


def test_design_commands(tmp_path: Path, cli: Any) -> None:
    ws = workspace(tmp_path, history(3, 0.25, 0.45), shop_map())
    listed = json.loads(cli("-w", ws.root, "design", "rules", "--json").out)
    assert [r["key"] for r in listed] == ["checkin"]
    shown = cli("-w", ws.root, "design", "simulate", "checkin")
    assert shown.code == 0
    assert "How's it going call: would have reached" in shown.out
    data = json.loads(cli("-w", ws.root, "design", "simulate", "checkin", "--json").out)
    assert data["customers"] == data["sends"] > 0
    assert data["effects"][0]["outcome"] == "churn"
    missing = cli("-w", ws.root, "design", "simulate", "nope")
    assert missing.code == 1
    assert "rules are: checkin" in missing.err
    with pytest.raises(UnknownItem):
        ws.design.simulate("nope")
