"""The map's CX success statements measured: met, not met, unknown (too few answers) or not measurable.

A measurable statement (`SuccessStatement`) names a metric, a threshold and a scope: CSAT ≥ 85% on every
post-purchase touchpoint. Its value is the metric over the responses of every touchpoint in scope pooled together,
or, with `every: true`, each touchpoint's own value (the statement's value is then the worst of them). A value
at the threshold meets it. Fewer than `min_responses` answers (customers, for conversion) make a value unknown.
CSAT, NPS and CES come from the feedback's scores; conversion from the scorecard, pooled as the share of
customers, counted once per touchpoint in scope, who converted after it. Plain-text statements are not measured.

    statuses = status(m, ws.feedback(), ws.scorecard())
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from touchlens.analytics import stats
from touchlens.analytics.feedback import FeedbackReport
from touchlens.analytics.scorecard import Scorecard
from touchlens.analytics.stats import Estimate
from touchlens.model.map import SHARE_METRICS, SuccessMetric, SuccessScope, SuccessStatement, TouchpointMap

Status = Literal["met", "not_met", "unknown", "not_measurable"]
MIN_RESPONSES = 20
# Rounding in the engines must not turn a value exactly at the threshold into a miss.
TOLERANCE = 1e-9
LABELS = {
    SuccessMetric.csat: "CSAT",
    SuccessMetric.nps: "NPS",
    SuccessMetric.ces: "CES",
    SuccessMetric.conversion: "Conversion",
}
SYMBOLS = {">=": "≥", "<=": "≤"}
ESTIMATORS: dict[SuccessMetric, Callable[[list[float]], Estimate]] = {
    SuccessMetric.csat: stats.csat,
    SuccessMetric.nps: stats.nps,
    SuccessMetric.ces: stats.ces,
}
NOT_MEASURABLE = "not measurable: add metric, threshold and scope"


@dataclass(frozen=True)
class Measured:
    """One touchpoint in scope: its value (None without data) and the answers (or customers) behind it."""

    touchpoint: str
    name: str
    value: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"touchpoint": self.touchpoint, "name": self.name, "value": self.value, "n": self.n}


@dataclass
class SuccessStatus:
    """A statement judged on the data; `value` is pooled over the scope, or the worst in scope with `every`."""

    text: str
    status: Status
    reason: str
    statement: SuccessStatement | None = None
    value: float | None = None
    n: int = 0
    failing: list[Measured] = field(default_factory=list)
    measured: list[Measured] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        s = self.statement
        return {
            "text": self.text,
            "metric": s.metric.value if s else None,
            "threshold": s.threshold if s else None,
            "op": s.comparison if s else None,
            "scope": s.scope.model_dump(mode="json", by_alias=True, exclude_none=True) if s else None,
            "every": s.every if s else None,
            "status": self.status,
            "value": self.value,
            "n": self.n,
            "summary": measure_text(self),
            "reason": self.reason,
            "failing": [f.to_dict() for f in self.failing],
            "measured": [m.to_dict() for m in self.measured],
        }


def status(
    m: TouchpointMap, feedback: FeedbackReport, scorecard: Scorecard | None, min_responses: int = MIN_RESPONSES
) -> list[SuccessStatus]:
    """Every success statement of the map, in order, judged on per-touchpoint feedback and the scorecard."""
    out = []
    for s in m.success:
        if isinstance(s, str):
            out.append(SuccessStatus(s, "not_measurable", NOT_MEASURABLE))
        else:
            out.append(_judge(s, in_scope(m, s.scope), m, feedback, scorecard, min_responses))
    return out


def in_scope(m: TouchpointMap, scope: SuccessScope) -> list[str]:
    """The keys of the map's touchpoints a scope covers, in map order (a listed key the map lacks is left out)."""
    if scope.touchpoints is not None:
        return [t.key for t in m.touchpoints if t.key in scope.touchpoints]
    if scope.all_:
        return [t.key for t in m.touchpoints]
    kind = scope.kind
    return [t.key for t in m.touchpoints if getattr(t, kind) == scope.part(kind)]


def _judge(
    s: SuccessStatement,
    keys: list[str],
    m: TouchpointMap,
    feedback: FeedbackReport,
    card: Scorecard | None,
    min_n: int,
) -> SuccessStatus:
    measured = [_touchpoint(s.metric, k, m, feedback, card) for k in keys]
    judged = [x for x in measured if x.value is not None and x.n >= min_n]
    missed = [x for x in judged if x.value is not None and not meets(s, x.value)]
    failing = sorted(missed, key=lambda x: -_badness(s, x.value))  # worst first
    result = SuccessStatus(s.text, "unknown", "", s, failing=failing, measured=measured)
    if not keys:
        result.reason = "no touchpoint of the map is in its scope"
    elif s.every:
        _judge_each(result, s, measured, judged, min_n)
    else:
        _judge_pooled(result, s, *_value(s.metric, keys, feedback, card), min_n)
    return result


def _judge_each(
    result: SuccessStatus, s: SuccessStatement, measured: list[Measured], judged: list[Measured], min_n: int
) -> None:
    """Every touchpoint must meet it: one miss with enough answers fails it; one with too few leaves it open."""
    worst = max(judged, key=lambda x: _badness(s, x.value), default=None)  # the worst, met or not
    if worst is not None:
        result.value, result.n = worst.value, worst.n
    short = [x for x in measured if x not in judged]
    if result.failing:
        missed = f"missed at {len(result.failing)} of {len(measured)} touchpoints in scope"
        result.status, result.reason = "not_met", missed
    elif short:
        result.reason = f"too few answers (fewer than {min_n}) at {', '.join(x.name for x in short)}"
    else:
        result.status, result.reason = "met", f"met at all {len(judged)} touchpoints in scope"


def _judge_pooled(result: SuccessStatus, s: SuccessStatement, value: float | None, n: int, min_n: int) -> None:
    result.value, result.n = value, n
    if value is None or n < min_n:
        result.reason = f"too few answers: {n:,} of the {min_n} needed"
    elif meets(s, value):
        result.status, result.reason = "met", f"met over {n:,} answers"
    else:
        result.status, result.reason = "not_met", f"missed over {n:,} answers"


def meets(s: SuccessStatement, value: float) -> bool:
    """At or beyond the threshold, on the side `op` says is good."""
    if s.comparison == "<=":
        return value <= s.threshold + TOLERANCE
    return value >= s.threshold - TOLERANCE


def _badness(s: SuccessStatement, value: float | None) -> float:
    """How far on the wrong side of the threshold a value is (larger is worse)."""
    if value is None:
        return float("-inf")
    return value - s.threshold if s.comparison == "<=" else s.threshold - value


def _touchpoint(
    metric: SuccessMetric, key: str, m: TouchpointMap, feedback: FeedbackReport, card: Scorecard | None
) -> Measured:
    tp = m.touchpoint(key)
    return Measured(key, tp.label if tp is not None else key, *_value(metric, [key], feedback, card))


def _value(
    metric: SuccessMetric, keys: list[str], feedback: FeedbackReport, card: Scorecard | None
) -> tuple[float | None, int]:
    """The metric over the touchpoints `keys` together, and the answers (customers, for conversion) behind it."""
    if metric == SuccessMetric.conversion:
        return _conversion(keys, card)
    scores = [x for k in keys for x in feedback.scores.get((k, metric.value), [])]
    estimate = ESTIMATORS[metric](scores)
    return estimate.value, estimate.n


def _conversion(keys: list[str], card: Scorecard | None) -> tuple[float | None, int]:
    """Customers who converted after a touchpoint in scope over customers who met it (each touchpoint counted)."""
    rows = [s for s in (card.scores if card else []) if s.touchpoint in keys and s.conversion is not None]
    customers = sum(s.customers for s in rows)
    if not customers:
        return None, 0
    return sum((s.conversion or 0.0) * s.customers for s in rows) / customers, customers


# -- in words ----------------------------------------------------------------------------------------------------


def number(metric: SuccessMetric, value: float) -> str:
    """A value in its metric's unit: 84.6% for shares, +32 for NPS, 2.45 for CES (trailing zeros dropped)."""
    if metric in SHARE_METRICS:
        return f"{_trim(value * 100, 1)}%"
    if metric == SuccessMetric.nps:
        return f"{'+' if value > 0 else ''}{_trim(value, 1)}"
    return _trim(value, 2)


def _trim(value: float, places: int) -> str:
    text = f"{value:,.{places}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def target(s: SuccessStatement) -> str:
    """The target in words: "CSAT ≥ 85%"."""
    return f"{LABELS[s.metric]} {SYMBOLS[s.comparison]} {number(s.metric, s.threshold)}"


def measure_text(result: SuccessStatus) -> str:
    """Value against threshold: "CSAT 79% vs ≥ 85%"; without a value, what is missing."""
    s = result.statement
    if s is None:
        return NOT_MEASURABLE
    if result.value is None:
        return f"{target(s)}: no value yet"
    worst = " at the worst touchpoint" if s.every else ""
    value, threshold = number(s.metric, result.value), number(s.metric, s.threshold)
    return f"{LABELS[s.metric]} {value}{worst} vs {SYMBOLS[s.comparison]} {threshold}"


STATUS_WORDS: dict[str, str] = {
    "met": "met",
    "not_met": "not met",
    "unknown": "unknown",
    "not_measurable": "not measurable",
}
