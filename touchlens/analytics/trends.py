"""Change over time: each touchpoint's volume, CSAT and sentiment per day, week or month, with the periods that
depart from what was expected of them (see `anomalies`); and a change's impact, as a difference in differences
against the touchpoints it did not touch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
import numpy as np
from scipy import stats as sps

from touchlens.analytics import anomalies, stats
from touchlens.analytics.engine import day_date, mapped_events, utc_days, utc_weeks
from touchlens.analytics.journeys import JourneyOptions, layer_state

UNITS = {"day": "D", "week": "W", "month": "M"}
Span = tuple[datetime, datetime]
COVERED = 0.98  # a period the data covers less of (the first and last, usually) is partial: never flagged


@dataclass(frozen=True)
class TrendsQuery:
    """Per touchpoint and period: events, customers, CSAT (share of 4–5) and mean comment sentiment, and the
    anomalies: departures sure at false discovery rate `fdr` and at least the minimum size. `names` are the
    touchpoints' names (key, name) for the anomalies' summaries."""

    period: str = "week"
    touchpoints: tuple[str, ...] = ()
    fdr: float = 0.05
    min_csat_points: float = 10.0
    min_volume_change: float = 0.3
    min_sentiment_change: float = anomalies.MIN_SENTIMENT_CHANGE
    names: tuple[tuple[str, str], ...] = ()

    def _unit(self) -> str:
        unit = UNITS.get(self.period)
        if unit is None:
            raise ValueError(f"unknown period '{self.period}'; choose {', '.join(UNITS)}")
        return unit

    def events_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        unit = self._unit()
        if layer_state(backend) == "none":  # a lake, a store never built: a distinct count, not a window's sort
            e = mapped_events(backend)
            e = e.filter(e.touchpoint.isin(list(self.touchpoints))) if self.touchpoints else e
            e = e.mutate(period=e.ts.truncate(unit).date())
            return e.group_by(["touchpoint", "period"]).aggregate(events=e.count(), customers=e.customer_id.nunique())
        # A customer is counted in a touchpoint's period at their first touch of it there: the journey layer's
        # previous touch of the same touchpoint is before the period, or there is none. A count, where a distinct
        # count hashed every event's customer id (10M events: 1.95–2.70 s → 1.37–1.86 s for the whole trends).
        t = JourneyOptions().touches(backend, "prev_same_ts")
        if self.touchpoints:
            t = t.filter(t.touchpoint.isin(list(self.touchpoints)))
        days, prev_days = utc_days(backend, t.ts), utc_days(backend, t.prev_same_ts)
        if days is None or prev_days is None or self.period == "month":
            t = t.mutate(period=t.ts.truncate(unit).date())
            first = t.prev_same_ts.isnull() | (t.prev_same_ts.truncate(unit).date() < t.period)
            return t.group_by(["touchpoint", "period"]).aggregate(events=t.count(), customers=first.cast("int64").sum())
        # Days and weeks by number, grouped, and only the groups' numbers made dates.
        number, prev_number = (days, prev_days) if self.period == "day" else (utc_weeks(days), utc_weeks(prev_days))
        t = t.mutate(n=number)
        first = t.prev_same_ts.isnull() | (prev_number < t.n)
        g = t.group_by(["touchpoint", "n"]).aggregate(events=t.count(), customers=first.cast("int64").sum())
        start = g.n if self.period == "day" else g.n * 7 - 3
        return g.select("touchpoint", period=day_date(start), events=g.events, customers=g.customers)

    def feedback_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        f = backend.table("feedback")
        f = f.filter(f.touchpoint.notnull())
        if self.touchpoints:
            f = f.filter(f.touchpoint.isin(list(self.touchpoints)))
        f = f.mutate(period=f.ts.truncate(self._unit()).date(), csat=f.metric == "csat")
        return f.group_by(["touchpoint", "period"]).aggregate(
            csat_n=f.csat.cast("int64").sum(),
            satisfied=(f.csat & (f.score >= 4)).cast("int64").sum(),
            sentiment=f.sentiment.mean(),
            sentiment_n=f.sentiment.count(),
            sentiment_sd=f.sentiment.std(),
        )

    def spans(self, backend: ibis.BaseBackend) -> dict[str, Span | None]:
        """The first and last timestamp of the events and of the feedback: what the data covers."""
        found: dict[str, Span | None] = {}
        for name, t in (("events", mapped_events(backend)), ("feedback", backend.table("feedback"))):
            row = backend.to_pyarrow(t.aggregate(first=t.ts.min(), last=t.ts.max())).to_pylist()[0]
            found[name] = (_naive(row["first"]), _naive(row["last"])) if row["first"] is not None else None
        return found

    def run(self, backend: ibis.BaseBackend) -> dict[str, Any]:
        volume = backend.to_pyarrow(self.events_expr(backend)).to_pylist()
        scores = {
            (r["touchpoint"], r["period"]): r for r in backend.to_pyarrow(self.feedback_expr(backend)).to_pylist()
        }
        periods = sorted({r["period"] for r in volume})
        by_tp: dict[str, dict[date, dict[str, Any]]] = {}
        for r in volume:
            by_tp.setdefault(r["touchpoint"], {})[r["period"]] = r
        spans = self.spans(backend)
        shown, inputs = {}, {}
        for tp, rows in sorted(by_tp.items()):
            cells = [(p, rows.get(p, {}), scores.get((tp, p), {})) for p in periods]
            shown[tp] = [_point(p, r, s, self._covered(p, spans["events"])) for p, r, s in cells]
            inputs[tp] = [self._input(p, r, s, spans) for p, r, s in cells]
        rules = anomalies.Rules(self.fdr, self.min_csat_points, self.min_volume_change, self.min_sentiment_change)
        found = anomalies.find(inputs, self.period, rules)
        series = [
            {"touchpoint": tp, "points": points, "anomalies": [self._anomaly(t) for t in found[tp]]}
            for tp, points in shown.items()
        ]
        return {"period": self.period, "series": series}

    def _input(self, p: date, r: dict[str, Any], s: dict[str, Any], spans: dict[str, Span | None]) -> anomalies.Point:
        """The anomaly test's view of a period: the counts behind the shown shares, and whether it is whole."""
        return anomalies.Point(
            p, int(r.get("events") or 0), int(s.get("csat_n") or 0), int(s.get("satisfied") or 0),
            s.get("sentiment"), int(s.get("sentiment_n") or 0), s.get("sentiment_sd"),
            complete=self._covered(p, spans["events"]), feedback_complete=self._covered(p, spans["feedback"]),
        )  # fmt: skip

    def _covered(self, start: date, span: Span | None) -> bool:
        """Whether the data covers (nearly) all of the period that begins at `start`."""
        if span is None:
            return False
        lo = datetime.combine(start, datetime.min.time())
        hi = datetime.combine(_next(start, self.period), datetime.min.time())
        overlap = (min(hi, span[1]) - max(lo, span[0])) / (hi - lo)
        return overlap >= COVERED

    def _anomaly(self, t: anomalies.Test) -> dict[str, Any]:
        name = dict(self.names).get(t.series, t.series)
        return {
            "period": t.period.isoformat(),
            "metric": t.metric,
            "value": t.value,
            "expected": t.expected,
            "n": t.n,
            "p_value": t.p_value,
            "direction": "up" if t.value > t.expected else "down",
            "summary": anomaly_summary(name, t, self.period),
        }


def _point(p: date, r: dict[str, Any], s: dict[str, Any], complete: bool) -> dict[str, Any]:
    n = int(s.get("csat_n") or 0)
    return {
        "period": p.isoformat(),
        "complete": complete,  # false: the data covers only part of the period (its counts are not comparable)
        "events": int(r.get("events") or 0),
        "customers": int(r.get("customers") or 0),
        "csat": (int(s.get("satisfied") or 0) / n) if n else None,
        "csat_n": n,
        "sentiment": s.get("sentiment"),
    }


def _naive(ts: datetime) -> datetime:
    """UTC without a zone, whichever way the engine hands timestamps back."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


def _next(start: date, period: str) -> date:
    if period == "month":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=7 if period == "week" else 1)


def when_text(start: date, period: str) -> str:
    """'on 3 Mar 2025', 'in the week of 3 Mar 2025', 'in March 2025'."""
    if period == "month":
        return f"in {start:%B %Y}"
    day = f"{start.day} {start:%b %Y}"
    return f"in the week of {day}" if period == "week" else f"on {day}"


def anomaly_summary(name: str, t: anomalies.Test, period: str) -> str:
    """One sentence with the touchpoint's name, the value, when, on how much, and what was expected."""
    when = when_text(t.period, period)
    if t.metric == "csat":
        return f"{name}: CSAT {t.value:.0%} {when} on {t.n:,} answers, expected {t.expected:.0%}"
    if t.metric == "sentiment":
        return (f"{name}: comment sentiment {t.value:+.2f} {when} on {t.n:,} comments, expected "
                f"{t.expected:+.2f} (on a scale of −1 to 1)")  # fmt: skip
    return f"{name}: {t.value:,.0f} events {when}, expected {t.expected:,.0f}"


@dataclass(frozen=True)
class ImpactQuery:
    """A touchpoint's volume, CSAT and sentiment in `window` before `when` against the same window after, and
    the same for `comparison` (touchpoints the change did not touch): the difference in differences is the
    change's effect with what happened everywhere (a season, a campaign) taken out. `min_responses`: fewer
    answers (or events) on any side and the verdict is that there are too few to tell."""

    touchpoint: str
    when: date
    window: timedelta = timedelta(days=28)
    comparison: tuple[str, ...] = ()
    min_responses: int = 30

    def run(self, backend: ibis.BaseBackend) -> dict[str, Any]:
        start = datetime.combine(self.when, datetime.min.time())
        windows = ((start - self.window, start), (start, start + self.window))
        days = int(self.window / timedelta(days=1))
        b, a = (self._side(backend, (self.touchpoint,), lo, hi, days) for lo, hi in windows)
        cb, ca = (self._side(backend, self.comparison, lo, hi, days) for lo, hi in windows)
        metrics = [self._events(b, a, cb, ca), self._csat(b, a, cb, ca), self._sentiment(b, a, cb, ca)]
        return {
            "touchpoint": self.touchpoint,
            "date": self.when.isoformat(),
            "window_days": days,
            "before": {"from": windows[0][0].date().isoformat(), "to": windows[0][1].date().isoformat()},
            "after": {"from": windows[1][0].date().isoformat(), "to": windows[1][1].date().isoformat()},
            "comparison": list(self.comparison),
            "metrics": metrics,
        }

    def _side(self, backend: ibis.BaseBackend, keys: tuple[str, ...], lo: datetime, hi: datetime, days: int) -> Side:
        t = mapped_events(backend)
        t = t.filter(t.touchpoint.isin(list(keys)) & (t.ts >= lo) & (t.ts < hi))
        per_day = backend.to_pyarrow(t.group_by(day=t.ts.date()).aggregate(n=t.count())).to_pylist()
        counts = {r["day"]: int(r["n"]) for r in per_day}
        f = backend.table("feedback")
        f = f.filter(f.touchpoint.isin(list(keys)) & (f.ts >= lo) & (f.ts < hi))
        rows = backend.to_pyarrow(f.select("metric", "score", "sentiment")).to_pylist()
        return Side(
            [float(counts.get((lo + timedelta(days=i)).date(), 0)) for i in range(days)],
            [float(r["score"]) for r in rows if r["metric"] == "csat"],
            [float(r["sentiment"]) for r in rows if r["sentiment"] is not None],
        )

    def _events(self, b: Side, a: Side, cb: Side, ca: Side) -> dict[str, Any]:
        # Every comparison is after against before, so each change reads after − before.
        own = _metric("events_per_day", b.daily, a.daily, stats.compare_means(a.daily, b.daily))
        did = did_ratio(b.daily, a.daily, cb.daily, ca.daily)
        enough = min(sum(s.daily) for s in (b, a, cb, ca)) >= self.min_responses
        verdict = self._verdict(did, enough, "events", lambda d: f"{abs(d):.0%} relative to the comparison group",
                                ("rose by", "fell by"))  # fmt: skip
        return {**own, **_group(cb.daily, ca.daily, _mean), **did.to_dict(), "verdict": verdict}

    def _csat(self, b: Side, a: Side, cb: Side, ca: Side) -> dict[str, Any]:
        cells = [(s.satisfied, len(s.csat)) for s in (b, a, cb, ca)]
        own = _metric("csat", b.csat, a.csat, stats.compare_shares(*cells[1], *cells[0]))
        did = did_shares(*cells)
        enough = min(n for _, n in cells) >= self.min_responses
        verdict = self._verdict(did, enough, "responses", _points, ("improved by", "worsened by"))
        return {**own, **_group(cb.csat, ca.csat, _share), **did.to_dict(), "verdict": verdict}

    def _sentiment(self, b: Side, a: Side, cb: Side, ca: Side) -> dict[str, Any]:
        own = _metric("sentiment", b.sentiment, a.sentiment, stats.compare_means(a.sentiment, b.sentiment))
        did = did_means(b.sentiment, a.sentiment, cb.sentiment, ca.sentiment)
        enough = min(len(s.sentiment) for s in (b, a, cb, ca)) >= self.min_responses
        verdict = self._verdict(did, enough, "comments", lambda d: f"{abs(d):.2f} on the scale of −1 to 1",
                                ("improved by", "worsened by"))  # fmt: skip
        return {**own, **_group(cb.sentiment, ca.sentiment, _mean), **did.to_dict(), "verdict": verdict}

    def _verdict(self, did: DiD, enough: bool, what: str, size: Any, words: tuple[str, str]) -> str:
        """Too few to tell; no comparison group; no clear change (p > 0.05); or which way and by how much."""
        if not self.comparison:
            return "no comparison group to tell"
        if not enough:
            return f"too few {what} to tell"
        if did.estimate is None or did.p_value is None or did.p_value > ALPHA:
            return "no clear change"
        return f"{words[0] if did.estimate > 0 else words[1]} {size(did.estimate)}"


ALPHA = 0.05  # the verdict's test matches the 95% interval


@dataclass(frozen=True)
class Side:
    """One side of a change for one group of touchpoints: events per day, CSAT scores, comment sentiments."""

    daily: list[float]
    csat: list[float]
    sentiment: list[float]

    @property
    def satisfied(self) -> int:
        return sum(1 for s in self.csat if s >= 4)


@dataclass(frozen=True)
class DiD:
    """A difference in differences: (after − before) at the touchpoint minus the same in the comparison group,
    its 95% interval and two-sided p-value; None where a group has too little to estimate it."""

    estimate: float | None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"did": self.estimate, "did_low": self.low, "did_high": self.high, "did_p_value": self.p_value}


def _normal(estimate: float, se: float, z: float = 1.96) -> DiD:
    if se <= 0:
        return DiD(estimate)
    return DiD(estimate, estimate - z * se, estimate + z * se, float(2 * sps.norm.sf(abs(estimate) / se)))


def did_shares(before: tuple[int, int], after: tuple[int, int], comparison_before: tuple[int, int],
               comparison_after: tuple[int, int]) -> DiD:  # fmt: skip
    """Each argument (satisfied, answers). The estimate from the raw shares; its standard error Wald's with
    Agresti and Caffo's adjustment (one satisfied and one not added to each group), which keeps it above 0
    and its coverage near 95% when a share is near 0 or 1 or the groups are small."""
    cells = (before, after, comparison_before, comparison_after)
    if any(n == 0 for _, n in cells):
        return DiD(None)
    b, a, cb, ca = (s / n for s, n in cells)
    variance = sum((s + 1) / (n + 2) * (1 - (s + 1) / (n + 2)) / (n + 2) for s, n in cells)
    return _normal((a - b) - (ca - cb), math.sqrt(variance))


def did_means(before: Sequence[float], after: Sequence[float], comparison_before: Sequence[float],
              comparison_after: Sequence[float]) -> DiD:  # fmt: skip
    """(mean after − mean before) minus the same for the comparison, with the normal interval of independent
    groups: se² = Σ s²/n (each group needs two values)."""
    groups = [np.asarray(g, dtype=float) for g in (before, after, comparison_before, comparison_after)]
    if any(g.size < 2 for g in groups):
        return DiD(None)
    b, a, cb, ca = (float(g.mean()) for g in groups)
    return _normal((a - b) - (ca - cb), math.sqrt(sum(float(g.var(ddof=1)) / g.size for g in groups)))


def did_ratio(before: Sequence[float], after: Sequence[float], comparison_before: Sequence[float],
              comparison_after: Sequence[float]) -> DiD:  # fmt: skip
    """For daily counts, whose level differs between a touchpoint and its comparison group: the change as a
    ratio, (after/before at the touchpoint) ÷ (after/before in the comparison) − 1 (0.15: 15% more than the
    comparison group moved), tested on the log scale (delta method: Var log x̄ ≈ s²/(n·x̄²)) and the interval
    brought back to the ratio's scale."""
    groups = [np.asarray(g, dtype=float) for g in (before, after, comparison_before, comparison_after)]
    if any(g.size < 2 or g.mean() <= 0 for g in groups):
        return DiD(None)
    b, a, cb, ca = (float(g.mean()) for g in groups)
    log = _normal(math.log(a / b) - math.log(ca / cb),
                  math.sqrt(sum(float(g.var(ddof=1)) / (g.size * g.mean() ** 2) for g in groups)))  # fmt: skip
    back = [None if v is None else math.exp(v) - 1 for v in (log.estimate, log.low, log.high)]
    return DiD(back[0], back[1], back[2], log.p_value)


def _points(d: float) -> str:
    points = round(abs(d) * 100)
    return "less than 1 point" if points == 0 else f"{points} point{'s' if points != 1 else ''}"


def _share(values: Sequence[float]) -> float | None:
    return sum(1 for v in values if v >= 4) / len(values) if values else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _group(before: Sequence[float], after: Sequence[float], summary: Any) -> dict[str, Any]:
    return {"comparison_before": summary(before), "comparison_after": summary(after)}


def _metric(name: str, before: list[float], after: list[float], c: stats.Comparison) -> dict[str, Any]:
    """Before and after as summaries (CSAT: share of 4–5; others: mean), the change with its interval."""
    summary = _share if name == "csat" else _mean
    return {
        "metric": name,
        "before": summary(before),
        "after": summary(after),
        "change": c.difference,
        "low": c.low,
        "high": c.high,
        "p_value": c.p_value,
        "n_before": len(before),
        "n_after": len(after),
    }
