"""Sub-par touchpoints: below their map target, or significantly below the other touchpoints of their stage.

Each metric is compared per response: CSAT as satisfied (1) or not (0) with a two-proportion test, NPS as
promoter (+100), passive (0) or detractor (−100) and CES as its score (higher is more effort, so worse) with
Welch's t-test; a touchpoint against the pooled responses of its stage's other touchpoints (all other
touchpoints when its stage has none), and Holm's correction covers every test at once.
"""

from __future__ import annotations

from collections.abc import Callable

from touchlens.analytics import stats
from touchlens.analytics.drivers import Driver, Drivers
from touchlens.analytics.feedback import FeedbackReport
from touchlens.insights.items import Insight
from touchlens.model.map import TouchpointMap

ALPHA = 0.05
# Per-response values, oriented so that higher is better.
VALUES: dict[str, Callable[[float], float]] = {
    "csat": lambda s: 1.0 if s >= 4 else 0.0,
    "nps": lambda s: 100.0 if s >= 9 else (-100.0 if s <= 6 else 0.0),
    "ces": lambda s: -s,
}


def compare(metric: str, mine: list[float], others: list[float]) -> stats.Comparison:
    """`mine` against `others` on oriented per-response values: CSAT as a share (two-proportion test, which a
    group of all-satisfied answers does not break), the others by Welch's t-test."""
    if metric == "csat":
        return stats.compare_shares(int(sum(mine)), len(mine), int(sum(others)), len(others))
    return stats.compare_means(mine, others)


def subpar(report: FeedbackReport, m: TouchpointMap, min_responses: int = 20) -> list[Insight]:
    """Touchpoints significantly below their stage's others, or whose interval lies below the map target."""
    stage_of = {t.key: t.stage for t in m.touchpoints}
    tests = []
    for metric, value in VALUES.items():
        scored = {k: [value(s) for s in v] for (k, mt), v in report.scores.items() if mt == metric and k in stage_of}
        for key, mine in scored.items():
            if len(mine) < min_responses:
                continue
            peers = [k for k in scored if k != key and stage_of[k] == stage_of[key] and stage_of[key]]
            pool_name = f"stage {stage_of[key]}" if peers else "all other touchpoints"
            peers = peers or [k for k in scored if k != key]
            others = [x for k in peers for x in scored[k]]
            if len(others) < min_responses:
                continue
            tests.append((key, metric, pool_name, compare(metric, mine, others)))
    adjusted = stats.holm([t[3].p_value if t[3].p_value is not None else 1.0 for t in tests]) if tests else []
    found = [
        _below_peers(report, key, metric, pool, comparison, p)
        for (key, metric, pool, comparison), p in zip(tests, adjusted, strict=True)
        if p < ALPHA and comparison.difference is not None and comparison.difference < 0
    ]
    return found + _below_target(report, m)


def _below_peers(report: FeedbackReport, key: str, metric: str, pool: str, c: stats.Comparison, p: float) -> Insight:
    row = report.row(key)
    estimate = getattr(row, metric).to_dict() if row else None
    difference, low, high = (c.difference, c.low, c.high)
    if metric == "ces":  # CES values were negated to make higher better; report them as scored
        difference, low, high = _neg(c.difference), _neg(c.high), _neg(c.low)
    return Insight(
        kind="subpar",
        title=f"{key}: {metric.upper()} significantly below {pool}",
        subject=key,
        reach=row.responses if row else 0,
        impact=min(5.0, 1.0 + 4.0 * abs(c.difference or 0) / _scale(metric)),
        confidence=max(0.0, 1.0 - p),
        evidence={
            "metric": metric,
            "estimate": estimate,
            "compared_with": pool,
            "difference": difference,
            "low": low,
            "high": high,
            "p_value": p,
            "test": "two-proportion z-test (CSAT) or Welch's t-test per response, Holm-adjusted",
        },
    )


def _neg(x: float | None) -> float | None:
    return None if x is None else -x


def _scale(metric: str) -> float:
    """The spread of a metric's per-response values, to put differences on one footing."""
    return {"csat": 1.0, "nps": 200.0, "ces": 6.0}[metric]


def _below_target(report: FeedbackReport, m: TouchpointMap) -> list[Insight]:
    found = []
    for t in m.touchpoints:
        row = report.row(t.key)
        if t.targets is None or row is None:
            continue
        for metric, target in (("csat", t.targets.csat), ("nps", t.targets.nps), ("ces", t.targets.ces)):
            e = getattr(row, metric)
            if target is None or e.value is None:
                continue
            worse = e.value > target if metric == "ces" else e.value < target
            sure = e.low is not None and e.high is not None and (e.low > target if metric == "ces" else e.high < target)
            # Only a shortfall the interval confirms: a point estimate under target is often noise.
            if worse and sure:
                found.append(
                    Insight(
                        kind="below_target",
                        title=f"{t.key}: {metric.upper()} {e.value:.2f} against a target of {target}",
                        subject=t.key,
                        reach=row.responses,
                        impact=min(5.0, 1.0 + 4.0 * abs(e.value - target) / _scale(metric)),
                        confidence=0.95,
                        evidence={"metric": metric, "estimate": e.to_dict(), "target": target},
                    )
                )
    return found


def moments_of_truth(subpar_items: list[Insight], drivers: list[Drivers], top: int = 5) -> list[Insight]:
    """Sub-par touchpoints that are also among the strongest drivers of an outcome: where to act first."""
    found = []
    for item in subpar_items:
        for d in drivers:
            ranked = [x for x in (d.raising() if d.outcome == "churn" else _lowering(d)) if x.touchpoint][:top]
            hit = next((x for x in ranked if x.touchpoint == item.subject), None)
            if hit is not None and item.kind == "subpar":
                found.append(
                    Insight(
                        kind="moment_of_truth",
                        title=f"{item.subject}: sub-par and a top driver of {d.outcome}",
                        subject=item.subject,
                        reach=max(item.reach, hit.periods_with),
                        impact=5.0,
                        confidence=item.confidence,
                        evidence={"subpar": item.evidence, "driver": hit.to_dict(), "outcome": d.outcome},
                    )
                )
    return found


def _lowering(d: Drivers) -> list[Driver]:
    return [x for x in d.drivers if x.significant and x.lift is not None and x.lift < 1]
