"""A touchpoint's health on the map: good, watch or poor, or None where nothing is measured.

CSAT against the touchpoint's target, else the pooled CSAT of its stage's other touchpoints, else of all
others: at or above is good, below with an interval that still reaches it is watch, wholly below is poor.
Without CSAT, its scorecard against its behaviour targets (conversion a floor; drop-off and repeats ceilings):
a miss by more than a quarter of the target is poor, a smaller one watch. One definition for the canvas, the
SVG journey map and the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from touchlens.analytics.feedback import FeedbackReport
from touchlens.analytics.scorecard import Score, Scorecard
from touchlens.analytics.stats import Estimate
from touchlens.model.map import Touchpoint, TouchpointMap

Health = Literal["good", "watch", "poor"] | None
CSAT_BENCHMARK = 0.8  # the reference when a touchpoint has no target and no other touchpoint is measured


def health(m: TouchpointMap, feedback: FeedbackReport, scorecard: Scorecard | None = None) -> dict[str, Health]:
    """Each touchpoint's health: its CSAT against its target (else its stage's other touchpoints, else all
    others); without CSAT, its scorecard against its behaviour targets; None where neither is measured."""
    rows = {r.key: r.csat for r in feedback.rows if r.csat.value is not None}
    scores = {s.touchpoint: s for s in scorecard.scores} if scorecard else {}
    out: dict[str, Health] = {}
    for tp in m.touchpoints:
        csat = rows.get(tp.key)
        if csat is not None:
            out[tp.key] = _against(csat, _csat_reference(m, tp, rows))
        else:
            out[tp.key] = _behaviour(tp, scores.get(tp.key))
    return out


def _csat_reference(m: TouchpointMap, tp: Touchpoint, rows: Mapping[str, Estimate]) -> float:
    if tp.targets is not None and tp.targets.csat is not None:
        return tp.targets.csat
    stage = [rows[t.key] for t in m.touchpoints if t.key != tp.key and t.key in rows and t.stage == tp.stage]
    peers = stage or [e for k, e in rows.items() if k != tp.key]
    n = sum(e.n for e in peers)
    return sum((e.value or 0.0) * e.n for e in peers) / n if n else CSAT_BENCHMARK


def _against(csat: Estimate, reference: float) -> Health:
    """good at or above the reference; watch when the interval still reaches it; poor when it lies below."""
    if csat.value is not None and csat.value >= reference:
        return "good"
    return "watch" if csat.high is not None and csat.high >= reference else "poor"


def _behaviour(tp: Touchpoint, score: Score | None) -> Health:
    """Conversion (a floor), drop-off and repeats (ceilings) against the touchpoint's targets, if it has any."""
    if score is None or not score.customers or tp.targets is None:
        return None
    t = tp.targets
    checks = [
        (score.conversion, t.conversion, False),
        (score.drop_off, t.drop_off, True),
        (score.repeat_rate, t.repeat_rate, True),
    ]
    misses = [
        abs(actual - target) / max(target, 0.01)
        for actual, target, ceiling in checks
        if actual is not None and target is not None and (actual > target if ceiling else actual < target)
    ]
    if not any(a is not None and tgt is not None for a, tgt, _ in checks):
        return None
    # A miss by more than a quarter of the target is poor; a smaller one is worth watching.
    return "good" if not misses else ("poor" if max(misses) > 0.25 else "watch")


def measured_emotion(by_stage: FeedbackReport) -> dict[str, float]:
    """Mean comment sentiment per stage (−1..1) scaled onto the designed emotion's axis (−2..2)."""
    return {r.key: 2.0 * r.sentiment for r in by_stage.rows if r.sentiment is not None}
