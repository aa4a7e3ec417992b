"""Change over time: each touchpoint's volume, CSAT and sentiment per day, week or month, with anomalies
flagged by robust z-score; and a change's impact, comparing equal windows before and after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import ibis

from touchlens.analytics import stats
from touchlens.analytics.engine import mapped_events

UNITS = {"day": "D", "week": "W", "month": "M"}
MIN_RESPONSES = 10  # a period's CSAT with fewer responses is too noisy to flag


@dataclass(frozen=True)
class TrendsQuery:
    """Per touchpoint and period: events, customers, CSAT (share of 4–5) and mean comment sentiment."""

    period: str = "week"
    touchpoints: tuple[str, ...] = ()
    threshold: float = 3.5

    def _unit(self) -> str:
        unit = UNITS.get(self.period)
        if unit is None:
            raise ValueError(f"unknown period '{self.period}'; choose {', '.join(UNITS)}")
        return unit

    def events_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        t = mapped_events(backend)
        if self.touchpoints:
            t = t.filter(t.touchpoint.isin(list(self.touchpoints)))
        t = t.mutate(period=t.ts.truncate(self._unit()).date())
        return t.group_by(["touchpoint", "period"]).aggregate(events=t.count(), customers=t.customer_id.nunique())

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
        )

    def run(self, backend: ibis.BaseBackend) -> dict[str, Any]:
        volume = backend.to_pyarrow(self.events_expr(backend)).to_pylist()
        scores = {
            (r["touchpoint"], r["period"]): r for r in backend.to_pyarrow(self.feedback_expr(backend)).to_pylist()
        }
        periods = sorted({r["period"] for r in volume})
        by_tp: dict[str, dict[date, dict[str, Any]]] = {}
        for r in volume:
            by_tp.setdefault(r["touchpoint"], {})[r["period"]] = r
        series = [self._series(tp, rows, periods, scores) for tp, rows in sorted(by_tp.items())]
        return {"period": self.period, "series": series}

    def _series(
        self, touchpoint: str, rows: dict[date, dict[str, Any]], periods: list[date], scores: dict[Any, Any]
    ) -> dict[str, Any]:
        points = []
        for p in periods:
            r, s = rows.get(p, {}), scores.get((touchpoint, p), {})
            n = int(s.get("csat_n") or 0)
            points.append(
                {
                    "period": p.isoformat(),
                    "events": int(r.get("events") or 0),
                    "customers": int(r.get("customers") or 0),
                    "csat": (int(s.get("satisfied") or 0) / n) if n else None,
                    "csat_n": n,
                    "sentiment": s.get("sentiment"),
                }
            )
        return {"touchpoint": touchpoint, "points": points, "anomalies": self._anomalies(points)}

    def _anomalies(self, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = []
        volume = [float(p["events"]) for p in points]
        for i, z in enumerate(stats.robust_z(volume)):
            if abs(z) > self.threshold:
                found.append({"period": points[i]["period"], "metric": "events", "value": volume[i], "z": z})
        rated = [(i, p["csat"]) for i, p in enumerate(points) if p["csat"] is not None and p["csat_n"] >= MIN_RESPONSES]
        for (i, value), z in zip(rated, stats.robust_z([v for _, v in rated]), strict=True):
            if abs(z) > self.threshold:
                found.append({"period": points[i]["period"], "metric": "csat", "value": value, "z": z})
        return found


@dataclass(frozen=True)
class ImpactQuery:
    """A touchpoint's volume, CSAT and sentiment in `window` before `when` against the same window after."""

    touchpoint: str
    when: date
    window: timedelta = timedelta(days=28)

    def run(self, backend: ibis.BaseBackend) -> dict[str, Any]:
        start = datetime.combine(self.when, datetime.min.time())
        before = (start - self.window, start)
        after = (start, start + self.window)
        days = int(self.window / timedelta(days=1))
        sides = [self._side(backend, lo, hi, days) for lo, hi in (before, after)]
        b, a = sides
        # Every comparison is after against before, so each change reads after − before.
        metrics = [
            _metric("events_per_day", b["daily"], a["daily"], stats.compare_means(a["daily"], b["daily"])),
            _metric("csat", b["csat"], a["csat"], stats.compare_shares(a["satisfied"], len(a["csat"]), b["satisfied"],
                                                                     len(b["csat"]))),
            _metric("sentiment", b["sentiment"], a["sentiment"], stats.compare_means(a["sentiment"], b["sentiment"])),
        ]  # fmt: skip
        return {
            "touchpoint": self.touchpoint,
            "date": self.when.isoformat(),
            "window_days": days,
            "before": {"from": before[0].date().isoformat(), "to": before[1].date().isoformat()},
            "after": {"from": after[0].date().isoformat(), "to": after[1].date().isoformat()},
            "metrics": metrics,
        }

    def _side(self, backend: ibis.BaseBackend, lo: datetime, hi: datetime, days: int) -> dict[str, Any]:
        t = mapped_events(backend)
        t = t.filter((t.touchpoint == self.touchpoint) & (t.ts >= lo) & (t.ts < hi))
        per_day = backend.to_pyarrow(t.group_by(day=t.ts.date()).aggregate(n=t.count())).to_pylist()
        counts = {r["day"]: int(r["n"]) for r in per_day}
        daily = [float(counts.get((lo + timedelta(days=i)).date(), 0)) for i in range(days)]
        f = backend.table("feedback")
        f = f.filter((f.touchpoint == self.touchpoint) & (f.ts >= lo) & (f.ts < hi))
        rows = backend.to_pyarrow(f.select("metric", "score", "sentiment")).to_pylist()
        csat = [r["score"] for r in rows if r["metric"] == "csat"]
        return {
            "daily": daily,
            "csat": csat,
            "satisfied": sum(1 for s in csat if s >= 4),
            "sentiment": [float(r["sentiment"]) for r in rows if r["sentiment"] is not None],
        }


def _metric(name: str, before: list[float], after: list[float], c: stats.Comparison) -> dict[str, Any]:
    """Before and after as summaries (CSAT: share of 4–5; others: mean), the change with its interval."""

    def summary(values: list[float]) -> float | None:
        if not values:
            return None
        if name == "csat":
            return sum(1 for v in values if v >= 4) / len(values)
        return sum(values) / len(values)

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
