"""Honest anomalies and impact (issue 17, item 7): sample size, noise and season respected, the false discovery
rate controlled; a change's impact as a difference in differences against touchpoints it did not touch."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

import touchlens
from tests.conftest import Result, write
from touchlens.analytics import anomalies, stats
from touchlens.analytics.anomalies import Point, Rules, find
from touchlens.analytics.trends import did_means, did_ratio, did_shares

MONDAY = date(2023, 1, 2)


def weeks(n: int, start: date = MONDAY) -> list[date]:
    return [start + timedelta(weeks=i) for i in range(n)]


@pytest.mark.oracle
def test_benjamini_hochberg_matches_a_hand_worked_example_and_scipy() -> None:
    # Sorted 0.005, 0.01, 0.03, 0.04 of m = 4: ×4/1, ×4/2, ×4/3, ×4/4 = 0.02, 0.02, 0.04, 0.04 (already monotone).
    assert stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    p = np.random.default_rng(7).uniform(size=200) ** 4
    assert stats.benjamini_hochberg(list(p)) == pytest.approx(list(sps.false_discovery_control(p)))
    assert stats.benjamini_hochberg([]) == []
    with pytest.raises(ValueError, match="p-values must lie in"):
        stats.benjamini_hochberg([0.5, 1.5])


# -- CSAT: binomial noise is not an anomaly ------------------------------------------------------------------


@pytest.mark.oracle
def test_a_csat_week_within_binomial_noise_is_not_flagged_but_a_real_drop_is() -> None:
    # 20 weeks of 90/120 = 75%; week 3 at 85/123 = 69% (z ≈ −1.5), week 15 at 48/120 = 40%.
    answers = {3: (85, 123), 15: (48, 120)}
    points = [Point(d, 1000, *answers.get(i, (90, 120))[::-1]) for i, d in enumerate(weeks(20))]
    found = find({"refund_email": points}, "week")["refund_email"]
    assert [(a.period, a.metric) for a in found] == [(weeks(20)[15], "csat")]
    drop = found[0]
    assert drop.value == pytest.approx(0.40)
    assert drop.expected == pytest.approx(0.75)  # the neighbours' answers pooled, the week itself left out
    assert drop.n == 120
    # The flagged week is far beyond binomial noise, the other within it (independent check: scipy's exact test).
    assert sps.binomtest(48, 120, 0.75).pvalue < 1e-12
    assert sps.binomtest(85, 123, 0.75).pvalue > 0.1


def test_a_week_on_too_few_answers_is_never_tested() -> None:
    points = [Point(d, 1000, 20, 15) for d in weeks(20)]
    points[10] = Point(weeks(20)[10], 1000, 9, 0)  # 0 of 9 satisfied: striking, but 9 answers
    assert find({"t": points}, "week") == {"t": []}


# -- events: season, growth and noise are not anomalies ---------------------------------------------------------


def christmas_series(peak_years: tuple[int, ...], seed: int = 3) -> list[Point]:
    """Weekly events for 2½ years, about 500 a week growing 10% a year; the week of Christmas is three times
    busier in `peak_years` (0: 2023, 1: 2024)."""
    rng = np.random.default_rng(seed)
    points = []
    for i, d in enumerate(weeks(130)):
        christmas = date(d.year, 12, 25)
        peak = d <= christmas < d + timedelta(weeks=1) and d.year - 2023 in peak_years
        points.append(Point(d, int(rng.poisson(500 * (1 + 0.1 * i / 52) * (3 if peak else 1)))))
    return points


def christmas_week(year: int) -> date:
    return next(d for d in weeks(130) if d <= date(year, 12, 25) < d + timedelta(weeks=1))


def test_a_christmas_peak_that_came_last_year_too_is_not_an_anomaly() -> None:
    found = find({"store": christmas_series((0, 1))}, "week")["store"]
    # The season recurs: the second year's peak is expected from the first, and the first from the second.
    assert found == []
    # Without the second year to compare with, the same first peak stands out against its neighbours.
    alone = find({"store": [p for p in christmas_series((0, 1)) if p.period < date(2024, 6, 1)]}, "week")["store"]
    first = next(a for a in alone if a.period == christmas_week(2023))
    assert first.value > 2 * first.expected


def test_a_peak_only_in_the_second_year_is_an_anomaly_against_last_year_scaled_by_growth() -> None:
    found = find({"store": christmas_series((1,))}, "week")["store"]
    peak = next(a for a in found if a.period == christmas_week(2024))
    assert peak.metric == "events"
    assert peak.value > 2.5 * peak.expected
    # Last year's same week (about 500 × 1.19) scaled by the year's growth (about 10%): about 650.
    assert 560 < peak.expected < 740
    assert {a.period for a in found} == {christmas_week(2024)}


def test_a_partial_period_is_never_flagged_nor_used_as_a_reference() -> None:
    points = [Point(d, 500) for d in weeks(20)]
    points[0] = Point(weeks(20)[0], 40, complete=False)  # the data starts on the Sunday
    points[-1] = Point(weeks(20)[-1], 90, complete=False)
    assert find({"t": points}, "week") == {"t": []}


# -- calibration: 200 businesses with nothing going on ------------------------------------------------------


def business(seed: int, plant: bool = False) -> tuple[dict[str, list[Point]], tuple[str, date] | None]:
    """10 touchpoints, 2 years weekly: Poisson events with a slow trend and a yearly season, CSAT a binomial
    of constant share on a share of the events. With `plant`, one week of one touchpoint has CSAT 25 points
    lower on 150 answers."""
    rng = np.random.default_rng(seed)
    at = weeks(104)
    planted = (f"t{rng.integers(10)}", at[int(rng.integers(104))]) if plant else None
    series = {}
    for k in range(10):
        level, growth, swing = rng.uniform(100, 2000), rng.uniform(-0.2, 0.4), rng.uniform(0, 0.4)
        share, asked = rng.uniform(0.6, 0.9), rng.uniform(0.05, 0.3)
        w = np.arange(104)
        mean = level * (1 + growth * w / 52) * (1 + swing * np.sin(2 * np.pi * w / 52 + rng.uniform(0, 6.3)))
        events = rng.poisson(mean)
        answers = rng.binomial(events, asked)
        shares = np.full(104, share)
        if planted and planted[0] == f"t{k}":
            i = at.index(planted[1])
            answers[i], shares[i] = 150, share - 0.25
        satisfied = rng.binomial(answers, shares)
        rows = zip(at, events, answers, satisfied, strict=True)
        series[f"t{k}"] = [Point(d, int(e), int(n), int(s)) for d, e, n, s in rows]
    return series, planted


@pytest.mark.slow
def test_at_most_five_percent_of_businesses_with_nothing_going_on_show_any_anomaly() -> None:
    flagged = sum(any(find(business(seed)[0], "week").values()) for seed in range(200))
    assert flagged <= 10


@pytest.mark.slow
def test_a_planted_csat_drop_is_found_in_at_least_nine_businesses_of_ten() -> None:
    seeds = range(1000, 1100)
    found = 0
    for seed in seeds:
        series, planted = business(seed, plant=True)
        assert planted is not None
        hits = find(series, "week")[planted[0]]
        found += any(a.metric == "csat" and a.period == planted[1] and a.value < a.expected for a in hits)
    assert found >= 90


# -- through the workspace: TrendsQuery on DuckDB ----------------------------------------------------------------

MAP = """
name: Shop
channels: [{key: web, kind: digital}, {key: email, kind: digital}]
journeys:
  - key: main
    stages: [{key: buy}, {key: returns}]
touchpoints:
  - {key: checkout, name: Checkout page, stage: buy, channel: web, match: {event: checkout}}
  - {key: refund_email, name: Refund issued email, stage: returns, channel: email, match: {event: refund}}
  - {key: return_portal, name: Return portal, stage: returns, channel: web, match: {event: portal}}
  - {key: label_email, name: Label email, stage: returns, channel: email, match: {event: label}}
"""
START = datetime(2025, 1, 1, 9, 0)  # a Wednesday: the first week is partial


def workspace(tmp_path: Path, events: list[tuple[str, datetime, str]], feedback: list[str]) -> touchlens.Workspace:
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "m.yaml", MAP))
    rows = "".join(f"{c},{t.isoformat()}Z,{e}\n" for c, t, e in events)
    ws.ingest_events([write(tmp_path / "e.csv", "customer_id,ts,event\n" + rows)])
    if feedback:
        text = "customer_id,ts,metric,score,touchpoint\n" + "\n".join(feedback) + "\n"
        ws.ingest_feedback([write(tmp_path / "f.csv", text)])
    return ws


def answers(touchpoint: str, day: datetime, satisfied: int, total: int, tag: str) -> list[str]:
    return [f"{tag}{i},{(day + timedelta(minutes=i)).isoformat()}Z,csat,{5 if i < satisfied else 2},{touchpoint}"
            for i in range(total)]  # fmt: skip


def test_trends_through_the_workspace_flag_a_real_drop_and_name_it(tmp_path: Path) -> None:
    events, feedback = [], []
    for day in range(7 * 16 + 3):  # Wed 1 Jan to a Saturday: the first and last weeks are partial
        t = START + timedelta(days=day)
        events += [(f"c{day}-{k}", t + timedelta(minutes=k), "refund") for k in range(12)]
        if day % 7 == 3:  # one survey batch a week (Saturdays), 40 answers, 80% satisfied; 30% in week 9
            satisfied = 12 if day // 7 == 9 else 32
            feedback += answers("refund_email", t, satisfied, 40, f"w{day}-")
    ws = workspace(tmp_path, events, feedback)
    result = ws.trends("week")
    (series,) = result["series"]
    assert series["touchpoint"] == "refund_email"
    assert series["points"][0]["events"] < series["points"][1]["events"]  # the partial first week, not flagged
    (anomaly,) = series["anomalies"]
    monday = (START + timedelta(days=7 * 9 + 3)).date() - timedelta(days=5)
    assert anomaly["period"] == monday.isoformat()
    assert (anomaly["metric"], anomaly["direction"], anomaly["n"]) == ("csat", "down", 40)
    assert anomaly["value"] == pytest.approx(0.3)
    assert anomaly["expected"] == pytest.approx(0.8)
    assert 0 <= anomaly["p_value"] < 0.001
    assert anomaly["summary"] == (
        f"Refund issued email: CSAT 30% in the week of {monday.day} Mar 2025 on 40 answers, expected 80%"
    )
    assert "z" not in anomaly


def test_the_trends_table_says_it_in_words_without_scientific_notation(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    events = [(f"c{d}-{k}", START + timedelta(days=d, minutes=k), "refund") for d in range(60) for k in range(5)]
    feedback = [line for d in range(3, 60, 7) for line in
                answers("refund_email", START + timedelta(days=d), 2 if d == 31 else 35, 40, f"d{d}-")]  # fmt: skip
    ws = workspace(tmp_path, events, feedback)
    shown = cli("-w", ws.root, "analyze", "trends")
    assert shown.code == 0, shown.err
    assert "Refund issued email: CSAT 5%" in shown.out
    assert "< 0.001" in shown.out
    assert "e-" not in shown.out


# -- impact: a difference in differences ---------------------------------------------------------------------


def test_did_of_shares_equals_a_hand_worked_example() -> None:
    # Touchpoint 30/60 → 45/60, comparison 60/100 → 62/100: DiD = (0.75 − 0.5) − (0.62 − 0.6) = 0.23.
    # Agresti–Caffo: (s + 1)/(n + 2) = 31/62, 46/62, 61/102, 63/102; se² = Σ p̃(1 − p̃)/(n + 2).
    se = math.sqrt(
        (31 / 62) * (31 / 62) / 62
        + (46 / 62) * (16 / 62) / 62
        + (61 / 102) * (41 / 102) / 102
        + (63 / 102) * (39 / 102) / 102
    )
    did = did_shares((30, 60), (45, 60), (60, 100), (62, 100))
    assert did.estimate == pytest.approx(0.23)
    assert (did.low, did.high) == pytest.approx((0.23 - 1.96 * se, 0.23 + 1.96 * se))
    assert did.p_value == pytest.approx(2 * sps.norm.sf(0.23 / se))
    assert se == pytest.approx(0.10859, abs=1e-5)


def test_did_of_means_and_of_daily_counts() -> None:
    # Means: (3 − 1) − (2 − 2) = 2; variances 1 each over 3 values: se = √(4/3).
    did = did_means([0, 1, 2], [2, 3, 4], [1, 2, 3], [1, 2, 3])
    assert did.estimate == pytest.approx(2.0)
    assert did.high - did.estimate == pytest.approx(1.96 * math.sqrt(4 / 3))
    # Counts: the touchpoint doubled while the comparison rose 50%: 2/1.5 − 1 = a third more.
    ratio = did_ratio([10, 10, 12, 8], [20, 20, 24, 16], [100, 98, 102, 100], [150, 147, 153, 150])
    assert ratio.estimate == pytest.approx(1 / 3)
    assert ratio.low < 1 / 3 < ratio.high
    assert did_ratio([0, 0], [1, 2], [1, 1], [1, 1]).estimate is None


def impact_workspace(tmp_path: Path, shares: dict[str, tuple[int, int, int, int]]) -> tuple[touchlens.Workspace, int]:
    """Answers on each side of 1 Mar 2025 (satisfied before, answers before, satisfied after, answers after),
    events steady throughout; the change is on refund_email."""
    when = datetime(2025, 3, 1)
    kinds = ("refund", "portal", "label", "checkout")
    events = [(f"e{e}{d}-{k}", when + timedelta(days=d, hours=9, minutes=k), e)
              for e in kinds for d in range(-28, 28) for k in range(3)]  # fmt: skip
    feedback = []
    for tp, (sb, nb, sa, na) in shares.items():
        feedback += answers(tp, when - timedelta(days=10), sb, nb, f"{tp}b")
        feedback += answers(tp, when + timedelta(days=10), sa, na, f"{tp}a")
    ws = workspace(tmp_path, events, feedback)
    return ws, ws.add_change("refund_email", when.date(), "Said when the refund lands")


def csat_of(result: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in result["metrics"] if m["metric"] == "csat")


def test_impact_of_a_change_that_raised_csat_while_the_comparison_stayed_flat(tmp_path: Path) -> None:
    flat = (60, 100, 60, 100)
    shares = {"refund_email": (120, 200, 160, 200), "return_portal": flat, "label_email": flat,
              "checkout": (10, 100, 90, 100)}  # fmt: skip
    ws, change = impact_workspace(tmp_path, shares)
    result = ws.impact(change)
    assert result["comparison"] == ["return_portal", "label_email"]  # its stage's others; checkout is another stage
    csat = csat_of(result)
    assert (csat["before"], csat["after"]) == pytest.approx((0.6, 0.8))
    assert (csat["comparison_before"], csat["comparison_after"]) == pytest.approx((0.6, 0.6))
    assert csat["did"] == pytest.approx(0.2)
    assert csat["did_low"] < 0.2 < csat["did_high"]
    assert csat["verdict"] == "improved by 20 points"
    volume = next(m for m in result["metrics"] if m["metric"] == "events_per_day")
    assert volume["did"] == pytest.approx(0.0)
    assert volume["verdict"] == "no clear change"


def test_impact_when_everything_rose_together_is_no_clear_change(tmp_path: Path) -> None:
    rose = (60, 100, 80, 100)
    shares = {"refund_email": (120, 200, 160, 200), "return_portal": rose, "label_email": rose}
    ws, change = impact_workspace(tmp_path, shares)
    csat = csat_of(ws.impact(change))
    assert csat["change"] == pytest.approx(0.2)  # before/after alone would have claimed it
    assert csat["did"] == pytest.approx(0.0)
    assert csat["verdict"] == "no clear change"


def test_impact_on_9_and_13_answers_is_too_few_to_tell(tmp_path: Path, cli: Callable[..., Result]) -> None:
    ws, change = impact_workspace(tmp_path, {"refund_email": (0, 9, 5, 13), "return_portal": (60, 100, 60, 100)})
    csat = csat_of(ws.impact(change))
    assert (csat["n_before"], csat["n_after"]) == (9, 13)
    assert csat["verdict"] == "too few responses to tell"
    shown = cli("-w", ws.root, "analyze", "impact", str(change))
    assert shown.code == 0, shown.err
    assert "too few responses to tell" in shown.out
    assert "Refund issued email" in shown.out
    data = json.loads(cli("-w", ws.root, "analyze", "impact", str(change), "--json").out)
    assert set(csat_of(data)) >= {"did", "did_low", "did_high", "did_p_value", "verdict", "comparison_before"}
    assert data["comparison"] == ["return_portal", "label_email"]


def test_rules_default_to_the_documented_settings() -> None:
    from touchlens.store.settings import Settings

    s = Settings().insights
    rules = Rules()
    assert (rules.fdr, rules.min_csat_points, rules.min_volume_change) == (
        s.anomaly_fdr,
        s.anomaly_min_csat_points,
        s.anomaly_min_volume_change,
    )
    assert anomalies.MIN_RESPONSES == 10


def test_each_point_says_whether_the_data_covers_its_whole_period(journeys_for) -> None:
    """Events from 1 Jan 10:00 one day apart for 70 days (to 11 Mar): January is covered from its tenth hour
    (98.7%, whole by the 98% rule), February whole, March only to the 11th; a chart can then mark March as
    partial instead of showing it as a collapse."""
    ws = journeys_for({"ann": ["visit"] * 70}, gap=timedelta(days=1))
    points = ws.trends("month")["series"][0]["points"]
    assert [(p["period"], p["complete"], p["events"]) for p in points] == [
        ("2026-01-01", True, 31),
        ("2026-02-01", True, 28),
        ("2026-03-01", False, 11),
    ]
