"""The touchpoint scorecard: reach, volume, conversion after the touchpoint and its lift, drop-off, repeats,
and the time to the next touchpoint.

Engine work: per-event windows and per-touchpoint aggregates. The interval of the lift is the usual normal
approximation on the log of a ratio of two proportions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import ibis

from touchlens.analytics import sketches
from touchlens.analytics.conditions import outcome_predicate
from touchlens.analytics.engine import arrow, at_most_apart, events, seconds_between, with_quantiles
from touchlens.analytics.journeys import BASE, JourneyOptions, firsts, ordered, stored_conversions
from touchlens.model.map import OutcomeRule

Z95 = 1.959963984540054
QUANTILES = {"median_next": 0.5, "p90_next": 0.9}


@dataclass(frozen=True)
class Score:
    touchpoint: str
    customers: int
    events: int
    events_per_customer: float
    conversion: float | None
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    drop_off: float | None
    repeat_rate: float
    median_seconds_to_next: float | None
    p90_seconds_to_next: float | None


@dataclass
class Scorecard:
    baseline_conversion: float | None
    customers: int
    scores: list[Score]
    by: str = "touchpoint"

    def to_dict(self) -> dict[str, Any]:
        """Rows under "touchpoints" (or "stages", each row's key under "stage", when by stage)."""
        rows = [s.__dict__ for s in self.scores]
        if self.by == "stage":
            rows = [{"stage": r["touchpoint"], **{k: v for k, v in r.items() if k != "touchpoint"}} for r in rows]
        return {"by": self.by, "baseline_conversion": self.baseline_conversion, "customers": self.customers,
                f"{self.by}s": rows}  # fmt: skip


def lift_interval(p1: float, n1: int, p0: float, n0: int) -> tuple[float | None, float | None, float | None]:
    """Ratio p1/p0 with a 95% interval (normal on the log ratio); None where a rate is 0."""
    if not (p1 and p0 and n1 and n0):
        return None, None, None
    ratio = p1 / p0
    se = math.sqrt((1 - p1) / (n1 * p1) + (1 - p0) / (n0 * p0))
    return ratio, ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se)


@dataclass(frozen=True)
class ScorecardQuery:
    """Scores of every touchpoint seen; conversion counts within `window` after a customer's first touch."""

    conversion: OutcomeRule | None
    window: timedelta = timedelta(days=30)
    repeat_window: timedelta = timedelta(days=7)
    options: JourneyOptions = field(default_factory=JourneyOptions)
    # With a touchpoint → stage mapping, every row is a stage: its touchpoints count as one.
    stage_of: tuple[tuple[str, str], ...] = ()
    # Quantiles by ranking, in bounded memory (for big data: `engine.with_quantiles`).
    ranked: bool = False
    # Exact median and p90 times to the next touch; otherwise, by touchpoint over whole journeys where the store
    # keeps wait sketches, read from them within relative error `sketches.ALPHA` (`flows.FlowsQuery.exact`).
    exact: bool = False

    def _journeys(self, backend: ibis.BaseBackend) -> ibis.Table:
        t = self.options.apply(backend)
        if not self.stage_of:
            return t
        stages = ibis.memtable({"tp": [k for k, _ in self.stage_of], "stage": [v for _, v in self.stage_of]})
        relabelled = t.join(stages, t.touchpoint == stages.tp)
        return relabelled.mutate(touchpoint=relabelled.stage).drop("tp", "stage")

    def _touches(self, backend: ibis.BaseBackend, *wanted: str) -> ibis.Table:
        """The journeys' touches with journey-layer columns; by stage, a repeat is a stage's, so they are computed."""
        if not self.stage_of:
            return self.options.touches(backend, *wanted)
        return ordered(self._journeys(backend).select(*BASE), wanted)

    def run(self, backend: ibis.BaseBackend) -> Scorecard:
        per_tp = {r["touchpoint"]: r for r in backend.to_pyarrow(self._activity(backend)).to_pylist()}
        customers = int(backend.execute(self._starts(backend).count()))
        conv, base, ends = self._conversion(backend, customers) if self.conversion else ({}, None, {})
        never = sum(ends.values())
        scores = []
        for key, r in sorted(per_tp.items(), key=lambda kv: (-kv[1]["customers"], kv[0])):
            rate = conv.get(key, 0) / r["customers"] if self.conversion else None
            lift = lift_interval(rate or 0.0, r["customers"], base or 0.0, customers) if base else (None, None, None)
            scores.append(
                Score(
                    key,
                    int(r["customers"]),
                    int(r["events"]),
                    r["events"] / r["customers"],
                    rate,
                    *lift,
                    ends.get(key, 0) / never if never else None,
                    r["repeats"] / r["events"],
                    r["median_next"],
                    r["p90_next"],
                )
            )
        return Scorecard(base, customers, scores)

    def _activity(self, backend: ibis.BaseBackend) -> ibis.Table:
        t = self._touches(backend, "next_ts", "prev_same_ts")
        steps = t.mutate(
            to_next=seconds_between(backend, t.next_ts, t.ts),
            repeat=at_most_apart(backend, t.ts, t.prev_same_ts, self.repeat_window).fill_null(False).cast("int64"),
        )
        metrics: dict[str, Callable[[ibis.Table], Any]] = {
            "customers": self._customers,
            "events": lambda g: g.count(),
            "repeats": lambda g: g.repeat.sum(),
        }
        if self.exact or self.stage_of or not self.options.whole() or not sketches.served(backend):
            return with_quantiles(steps, ["touchpoint"], "to_next", QUANTILES, self.ranked, **metrics)
        counts = steps.group_by("touchpoint").aggregate(**{name: f(steps) for name, f in metrics.items()})
        # A touchpoint's waits to the next touch are its pairs' waits, whatever comes next: the sketches merged.
        times = sketches.wait_quantiles(backend, ["source"], QUANTILES)
        joined = counts.left_join(times, counts.touchpoint == times.source)
        return joined.select("touchpoint", *metrics, *QUANTILES)

    def _customers(self, g: ibis.Table) -> Any:
        """Customers among touches with `prev_same_ts`: those with no earlier touch of the touchpoint (or stage) in
        their journey, one per customer while a journey is a customer's (no sessions); a count, not a distinct
        count of every touch's customer id."""
        return g.customer_id.nunique() if self.options.session_gap else g.prev_same_ts.isnull().cast("int64").sum()

    def _starts(self, backend: ibis.BaseBackend) -> ibis.Table:
        """Each customer's first touch (customer_id, first): the layer's first touches, else a grouping. By stage,
        a grouping: only touches of a staged touchpoint count, and the layer's first touch may be of none."""
        first = None if self.stage_of else firsts(backend, self.options, "pos")
        if first is not None:
            return first.select("customer_id", first=first.ts)
        t = self._journeys(backend)
        return t.group_by("customer_id").aggregate(first=t.ts.min())

    def _firsts(self, backend: ibis.BaseBackend, journeys: ibis.Table) -> ibis.Table:
        """Each customer's first touch of each touchpoint (customer_id, touchpoint, first): from the journey layer,
        the touches with no earlier one of their touchpoint (a filter, not a grouping of every event)."""
        first = None if self.stage_of else firsts(backend, self.options, "prev_same_ts")
        if first is None:
            return journeys.group_by(["customer_id", "touchpoint"]).aggregate(first=journeys.ts.min())
        return first.select("customer_id", "touchpoint", first=first.ts)

    def _conversion(
        self, backend: ibis.BaseBackend, customers: int
    ) -> tuple[dict[str, int], float | None, dict[str, int]]:
        """Customers converting within the window after their first touch of each touchpoint; the baseline
        (after their first touch of any, of the journeys' `customers`); and, for customers who never convert,
        where their journeys end."""
        assert self.conversion is not None
        t = self._journeys(backend)
        listed = stored_conversions(backend, self.conversion)
        if listed is None:
            e = events(backend)
            listed = e.filter(outcome_predicate(e, self.conversion))
        convs = listed.select("customer_id", conv_ts="ts")
        first_touches = self._firsts(backend, t)
        won = _converted(backend, first_touches, convs, self.window)
        per_tp = won.group_by("touchpoint").aggregate(n=won.count())
        conv = {r["touchpoint"]: int(r["n"]) for r in backend.to_pyarrow(per_tp).to_pylist()}
        starts = self._starts(backend)
        converted = arrow(backend, _converted(backend, starts, convs, self.window).count()).as_py()
        last = self._touches(backend, "next_touchpoint")
        lasts = last.filter(last.next_touchpoint.isnull()).anti_join(convs, "customer_id")
        ends = {
            r["touchpoint"]: int(r["n"])
            for r in backend.to_pyarrow(lasts.group_by("touchpoint").aggregate(n=lasts.count())).to_pylist()
        }
        return conv, (int(converted) / int(customers)) if customers else None, ends


def _converted(backend: ibis.BaseBackend, firsts: ibis.Table, convs: ibis.Table, window: timedelta) -> ibis.Table:
    """The rows of `firsts` (one per customer, or per customer and touchpoint) followed by a conversion within
    the window: counting them counts customers. A semi-join: joining every conversion and counting distinct
    customers hashed each pair's customer id (0.31 s against 0.19 s at 10M events). The customer id is the join's
    key; the window is checked on each customer's pairs, where subtracting epochs beats DuckDB's calendar."""
    return firsts.semi_join(
        convs,
        [
            firsts.customer_id == convs.customer_id,
            convs.conv_ts > firsts.first,
            at_most_apart(backend, convs.conv_ts, firsts.first, window),
        ],
    )
