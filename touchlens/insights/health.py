"""A touchpoint's health on the map: good, watch or poor, or None where nothing is measured.

One definition for the canvas, the inventory, the SVG journey map, the report, insights and `analyze health`:
the touchpoint's scores judged by `subpar.judge` (poor only when significantly AND materially below its target
or its stage; see that module), and without scores, its scorecard against its behaviour targets (conversion a
floor; drop-off and repeats ceilings): a miss by more than a quarter of the target is poor, a smaller one watch.
"""

from __future__ import annotations

from typing import Any, Literal

from touchlens.analytics.feedback import FeedbackReport
from touchlens.analytics.scorecard import Score, Scorecard
from touchlens.insights.subpar import Judgement, Thresholds, judge, reason
from touchlens.insights.words import Names, percent
from touchlens.model.map import Touchpoint, TouchpointMap

Health = Literal["good", "watch", "poor"] | None


def health(
    m: TouchpointMap, feedback: FeedbackReport, scorecard: Scorecard | None = None, t: Thresholds | None = None
) -> dict[str, Health]:
    """Each touchpoint's health: good, watch, poor, or None where nothing is measured."""
    return {row["touchpoint"]: row["health"] for row in health_rows(m, feedback, scorecard, t)}


def health_rows(
    m: TouchpointMap, feedback: FeedbackReport, scorecard: Scorecard | None = None, t: Thresholds | None = None
) -> list[dict[str, Any]]:
    """`{"touchpoint", "health", "reason"}` per touchpoint, in map order; the reason is a sentence with units."""
    judged = judge(feedback, m, t)
    scores = {s.touchpoint: s for s in scorecard.scores} if scorecard else {}
    names = Names.of(m)
    rows = []
    for tp in m.touchpoints:
        j = judged.get(tp.key)
        state, why = _scored(j, names) if j is not None else _behaviour(tp, scores.get(tp.key))
        rows.append({"touchpoint": tp.key, "health": state, "reason": why})
    return rows


def _scored(j: Judgement, names: Names) -> tuple[Health, str]:
    h: Health = "poor" if j.health == "poor" else ("watch" if j.health == "watch" else "good")
    return h, reason(j, names)


def _behaviour(tp: Touchpoint, score: Score | None) -> tuple[Health, str]:
    """Conversion (a floor), drop-off and repeats (ceilings) against the touchpoint's targets, if it has any."""
    if score is None or not score.customers:
        return None, "not measured: no survey answers and no customers in the scorecard's window"
    t = tp.targets
    checks = [] if t is None else [
        ("conversion", score.conversion, t.conversion, False),
        ("drop-off", score.drop_off, t.drop_off, True),
        ("repeats", score.repeat_rate, t.repeat_rate, True),
    ]  # fmt: skip
    checks = [c for c in checks if c[1] is not None and c[2] is not None]
    if not checks:
        return None, "not measured: too few survey answers and no behaviour targets in the map"
    misses = [
        (abs(actual - target) / max(target, 0.01), f"{name} {percent(actual)} against a target of {percent(target)}")
        for name, actual, target, ceiling in checks
        if actual is not None and target is not None and (actual > target if ceiling else actual < target)
    ]
    if not misses:
        return "good", "meets its behaviour targets"
    size, words = max(misses)
    # A miss by more than a quarter of the target is poor; a smaller one is worth watching.
    return ("poor" if size > 0.25 else "watch"), words


def measured_emotion(by_stage: FeedbackReport) -> dict[str, float]:
    """Mean comment sentiment per stage (−1..1) scaled onto the designed emotion's axis (−2..2)."""
    return {r.key: 2.0 * r.sentiment for r in by_stage.rows if r.sentiment is not None}
