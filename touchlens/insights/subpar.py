"""Judging each touchpoint's scores: good, watch or poor, and the sub-par and well-rated findings.

A touchpoint is compared with a reference: its map target for the metric, else the pooled answers of its
stage's other touchpoints, else of all other touchpoints. It is **poor** only when the gap is statistically
significant after Holm's correction over every test at once AND practically large (`[insights]
min_csat_points`, `min_nps_points`, `min_ces_points`): with 4,000 answers a one-point gap is significant and
means nothing. A gap that is large but not yet sure, or sure but small, is **watch**; the rest is **good**.
CSAT is judged first, then NPS, then CES, whichever the touchpoint has. Per response CSAT is satisfied (1) or
not (0) with a two-proportion test; NPS is +100 / 0 / −100 and CES its score, by Welch's t-test; a target is a
one-sample test of the answers against it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from touchlens.analytics import stats
from touchlens.analytics.feedback import FeedbackReport
from touchlens.insights.items import Insight
from touchlens.insights.words import Names, metric_text
from touchlens.model.map import TouchpointMap

ALPHA = 0.05
METRICS = ("csat", "nps", "ces")
# Per-response values, oriented so that higher is better.
VALUES: dict[str, Callable[[float], float]] = {
    "csat": lambda s: 1.0 if s >= 4 else 0.0,
    "nps": lambda s: 100.0 if s >= 9 else (-100.0 if s <= 6 else 0.0),
    "ces": lambda s: -s,
}


@dataclass(frozen=True)
class Thresholds:
    """How sure and how large a gap must be: see `[insights]` in the settings."""

    alpha: float = ALPHA
    min_responses: int = 20
    csat_points: float = 5.0
    nps_points: float = 10.0
    ces_points: float = 0.5

    def points(self, metric: str) -> float:
        """The smallest gap that matters, on the metric's own scale (CSAT as a share)."""
        return {"csat": self.csat_points / 100, "nps": self.nps_points, "ces": self.ces_points}[metric]


@dataclass(frozen=True)
class Judgement:
    """One touchpoint's score against its reference; `gap` > 0 means better than the reference (oriented)."""

    touchpoint: str
    metric: str
    value: float
    n: int
    reference: float
    compared_with: str  # "its target" | "stage <key>" | "all other touchpoints"
    gap: float
    low: float | None
    high: float | None
    p_value: float  # Holm-adjusted
    health: str

    @property
    def material(self) -> float:
        return abs(self.gap)


Answers = Mapping[tuple[str, str], "np.ndarray[Any, Any]"]


def compare(
    metric: str, mine: Sequence[float] | np.ndarray[Any, Any], others: Sequence[float] | np.ndarray[Any, Any]
) -> stats.Comparison:
    """`mine` against `others` on oriented per-response values: CSAT as a share (two-proportion test, which a
    group of all-satisfied answers does not break), the others by Welch's t-test."""
    if metric == "csat":
        return stats.compare_shares(int(np.sum(mine)), len(mine), int(np.sum(others)), len(others))
    return stats.compare_means(mine, others)


def oriented(metric: str, scores: Sequence[float]) -> np.ndarray[Any, Any]:
    """Per-answer values, higher better, for a whole list at once (as `VALUES` does one by one)."""
    x = np.asarray(scores, dtype=float)
    if metric == "csat":
        return (x >= 4).astype(float)
    if metric == "nps":
        return np.where(x >= 9, 100.0, np.where(x <= 6, -100.0, 0.0))
    return -x


def _against_target(metric: str, mine: np.ndarray[Any, Any], target: float) -> stats.Comparison:
    """Answers against a fixed target: a binomial test for CSAT, a one-sample t-test otherwise."""
    goal = -target if metric == "ces" else target
    n = int(mine.size)
    if metric == "csat":
        k = int(mine.sum())
        test = sps.binomtest(k, n, min(max(target, 1e-9), 1 - 1e-9))
        ci = test.proportion_ci(method="wilson")
        return stats.Comparison(k / n - target, ci.low - target, ci.high - target, float(test.pvalue), n, 0)
    mean = float(mine.mean())
    if n < 2 or float(np.ptp(mine)) == 0:
        return stats.Comparison(mean - goal, None, None, None, n, 0)
    t = sps.ttest_1samp(mine, goal)
    ci = t.confidence_interval()
    return stats.Comparison(mean - goal, ci.low - goal, ci.high - goal, float(t.pvalue), n, 0)


def _target(m: TouchpointMap, key: str, metric: str) -> float | None:
    tp = m.touchpoint(key)
    return None if tp is None or tp.targets is None else getattr(tp.targets, metric, None)


def _tests(
    answers: Answers, m: TouchpointMap, t: Thresholds, stage_of: Mapping[str, str | None]
) -> list[tuple[str, str, str, list[str]]]:
    """(touchpoint, metric, compared_with, peers) for each touchpoint's first metric with enough answers."""
    out: list[tuple[str, str, str, list[str]]] = []
    for key in stage_of:
        for metric in METRICS:
            if len(answers.get((key, metric), ())) < t.min_responses:
                continue
            if _target(m, key, metric) is not None:
                out.append((key, metric, "its target", []))
            else:
                scored = [k for (k, mt) in answers if mt == metric and k != key and k in stage_of]
                peers = [k for k in scored if stage_of[key] and stage_of[k] == stage_of[key]]
                if peers or scored:
                    name = f"stage {stage_of[key]}" if peers else "all other touchpoints"
                    out.append((key, metric, name, peers or scored))
            break
    return out


def judge(report: FeedbackReport, m: TouchpointMap, t: Thresholds | None = None) -> dict[str, Judgement]:
    """Every measured touchpoint's judgement, Holm-adjusted over all the tests made.

    Two passes: the poor touchpoints found first are left out of the others' reference, so one bad touchpoint
    does not make its stage's others look good (or its stage look worse than it is)."""
    t = t or Thresholds()
    answers = {(k, metric): oriented(metric, v) for (k, metric), v in report.scores.items() if metric in METRICS}
    first = _judge(answers, m, t, frozenset())
    poor = frozenset(k for k, j in first.items() if j.health == "poor")
    if not poor:
        return first
    second = _judge(answers, m, t, poor)
    return {k: first[k] if k in poor else second.get(k, first[k]) for k in first}


def _judge(answers: Answers, m: TouchpointMap, t: Thresholds, leave_out: frozenset[str]) -> dict[str, Judgement]:
    stage_of = {tp.key: tp.stage for tp in m.touchpoints if tp.key not in leave_out}
    rows = []
    for key, metric, compared_with, peers in _tests(answers, m, t, stage_of):
        mine = answers[(key, metric)]
        if compared_with == "its target":
            target = _target(m, key, metric) or 0.0
            c, reference = _against_target(metric, mine, target), target
        else:
            others = np.concatenate([answers[(k, metric)] for k in peers])
            c = compare(metric, mine, others)
            reference = float(others.mean())
            reference = -reference if metric == "ces" else reference
        rows.append((key, metric, compared_with, reference, int(mine.size), c, float(mine.mean())))
    adjusted = stats.holm([r[5].p_value if r[5].p_value is not None else 1.0 for r in rows]) if rows else []
    return {
        r[0]: _judgement(r[0], r[1], r[2], r[3], r[4], r[5], r[6], p, t) for r, p in zip(rows, adjusted, strict=True)
    }


def _judgement(
    key: str,
    metric: str,
    compared_with: str,
    reference: float,
    n: int,
    c: stats.Comparison,
    mean: float,
    p: float,
    t: Thresholds,
) -> Judgement:
    value = -mean if metric == "ces" else mean
    gap = c.difference or 0.0
    sure, large = p < t.alpha, abs(gap) >= t.points(metric)
    if gap < 0 and sure and large:
        health = "poor"
    elif gap < 0 and (sure or large):
        health = "watch"
    else:
        health = "good"
    return Judgement(key, metric, value, n, reference, compared_with, gap, c.low, c.high, p, health)


def reason(j: Judgement, names: Names) -> str:
    """The judgement in one sentence with units: "CSAT 11% against 80% for the other Returns touchpoints
    (69 points lower; 298 answers)"."""
    ref = metric_text(j.metric, j.reference)
    against = {
        "its target": f"its target of {ref}",
        "all other touchpoints": f"{ref} for all other touchpoints",
    }.get(j.compared_with, f"{ref} for the other {names.stage(j.compared_with.removeprefix('stage '))} touchpoints")
    side = "lower" if j.gap < 0 else "higher"
    if j.metric == "ces":
        side = "more effort" if j.gap < 0 else "less effort"
    note = ""
    if j.gap < 0 and j.health != "poor":
        note = " — within what chance explains" if j.p_value >= ALPHA else " — sure, but small"
    points = metric_text(j.metric, abs(j.gap), points=True)
    value = metric_text(j.metric, j.value)
    return f"{j.metric.upper()} {value} against {against} ({points} {side}; {j.n:,} answers){note}"


def subpar(judged: Mapping[str, Judgement], names: Names) -> list[Insight]:
    """The poor touchpoints as findings (kind `below_target` when judged against the map's target)."""
    return [_finding(j, names) for j in judged.values() if j.health == "poor"]


def well_rated(judged: Mapping[str, Judgement], names: Names, t: Thresholds | None = None) -> list[Insight]:
    """Touchpoints scoring significantly and materially above their stage: strengths to keep."""
    t = t or Thresholds()
    found = []
    for j in judged.values():
        if j.compared_with == "its target" or j.gap <= 0 or j.p_value >= t.alpha or j.gap < t.points(j.metric):
            continue
        found.append(
            Insight("well_rated", f"{names.touchpoint(j.touchpoint)} scores well above its stage", j.touchpoint,
                    reach=0, impact=2.0, confidence=1 - j.p_value, section="strengths",
                    summary=f"Customers rate {names.touchpoint(j.touchpoint)} well: {reason(j, names)}.",
                    stage=names.stage_of(j.touchpoint), evidence=_evidence(j))
        )  # fmt: skip
    return found


def _finding(j: Judgement, names: Names) -> Insight:
    name = names.touchpoint(j.touchpoint)
    kind = "below_target" if j.compared_with == "its target" else "subpar"
    return Insight(
        kind=kind,
        title=f"{name}: {j.metric.upper()} {metric_text(j.metric, j.value)}, below " + _against_words(j, names),
        subject=j.touchpoint,
        impact=min(5.0, 1.0 + 4.0 * abs(j.gap) / _scale(j.metric)),
        confidence=max(0.0, 1.0 - j.p_value),
        summary=f"Customers rate {name} poorly: {reason(j, names)}.",
        stage=names.stage_of(j.touchpoint),
        evidence={**_evidence(j), "proactive_rule": recovery_rule(j.touchpoint, name)},
    )


def recovery_rule(key: str, name: str) -> dict[str, Any]:
    """A proactive follow-up a day after a poor touchpoint, a tenth held out to measure it: service recovery
    while the touchpoint itself is fixed, not the fix (a starting point for the map's `proactive:`)."""
    return {"key": f"follow_up_{key}"[:120], "name": f"Follow up after {name}"[:200], "after": {"touchpoint": key},
            "wait": "1d", "holdout": 0.1}  # fmt: skip


def _against_words(j: Judgement, names: Names) -> str:
    if j.compared_with.startswith("stage "):
        return f"the rest of {names.stage(j.compared_with.removeprefix('stage '))}"
    return j.compared_with


def _evidence(j: Judgement) -> dict[str, object]:
    return {
        "metric": j.metric,
        "value": j.value,
        "answers": j.n,
        "reference": j.reference,
        "compared_with": j.compared_with,
        "gap": j.gap,
        "low": j.low,
        "high": j.high,
        "p_value": j.p_value,
        "test": "two-proportion test (CSAT) or Welch's t-test per answer; a target by a one-sample test; "
        "Holm-adjusted over every touchpoint",
    }


def _scale(metric: str) -> float:
    """The spread of a metric's per-response values, to put differences on one footing."""
    return {"csat": 1.0, "nps": 200.0, "ces": 6.0}[metric]
