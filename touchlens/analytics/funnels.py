"""Funnels: how many customers reach each step of a touchpoint sequence within a time window.

A customer reaches step k when steps 1..k occur at strictly increasing times t1 < … < tk with tk − t1 within
the window; in `any` order other events may come between steps, in `strict` order none may. For each start
(an occurrence of step 1) the earliest next step is taken, which reaches at least as far as any other choice;
a customer's depth is the best over their starts. Each step is one join in the engine, so there is no limit on
the number of steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import ibis

from touchlens.analytics.journeys import JourneyOptions, in_order


class Order(StrEnum):
    any = "any"
    strict = "strict"


@dataclass(frozen=True)
class FunnelStep:
    step: str
    count: int
    conversion_from_previous: float | None
    conversion_from_first: float | None
    median_seconds: float | None


@dataclass
class Funnel:
    steps: list[FunnelStep]

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [s.__dict__ for s in self.steps]}


@dataclass(frozen=True)
class FunnelQuery:
    """Customers reaching each of `steps` (touchpoint keys) within `window`, in `order`."""

    steps: tuple[str, ...]
    window: timedelta = timedelta(days=7)
    order: Order = Order.any
    options: JourneyOptions = field(default_factory=JourneyOptions)

    def reached(self, backend: ibis.BaseBackend) -> list[ibis.Table]:
        """One table per step: (customer_id, start, at, row) for every start that reached that step."""
        t = self.options.apply(backend)
        t = t.mutate(row=ibis.row_number().over(in_order(t)))
        window_ms = int(self.window.total_seconds() * 1000)
        first = t.filter(t.touchpoint == self.steps[0])
        level = first.select("customer_id", start=first.ts, at=first.ts, row=first.row)
        levels = [level]
        for step in self.steps[1:]:
            level = self._next(t, level, step, window_ms)
            levels.append(level)
        return levels

    def _next(self, t: ibis.Table, level: ibis.Table, step: str, window_ms: int) -> ibis.Table:
        candidates = t.filter(t.touchpoint == step)
        joined = level.join(candidates, level.customer_id == candidates.customer_id)
        if self.order is Order.strict:
            joined = joined.filter(candidates.row == level.row + 1)
        joined = joined.filter(
            candidates.ts > level.at, candidates.ts.delta(level.start, unit="millisecond") <= window_ms
        )
        # The earliest next event per start: the greedy choice that leaves the most room for later steps.
        picked = joined.select(customer_id=level.customer_id, start=level.start, at=candidates.ts, row=candidates.row)
        best = picked.group_by(["customer_id", "start"]).aggregate(at=picked.at.min(), row=picked.row.min())
        return best

    def run(self, backend: ibis.BaseBackend) -> Funnel:
        levels = self.reached(backend)
        counts, medians = [], []
        for i, level in enumerate(levels):
            per_customer = level.group_by("customer_id").aggregate(at=level.at.min(), start=level.start.min())
            counts.append(int(backend.execute(per_customer.count())))
            medians.append(self._median(backend, levels, i))
        return Funnel([self._step(i, counts, medians) for i in range(len(self.steps))])

    def _median(self, backend: ibis.BaseBackend, levels: list[ibis.Table], i: int) -> float | None:
        """Median time from the previous step to this one, over customers' best starts reaching it."""
        if i == 0:
            return None
        here, before = levels[i], levels[i - 1]
        pairs = here.join(before, ["customer_id", "start"])
        gaps = pairs.select(gap=here.at.delta(before.at, unit="millisecond") / 1000.0)
        value = backend.execute(gaps.gap.median())
        return None if value is None or value != value else float(value)

    def _step(self, i: int, counts: list[int], medians: list[float | None]) -> FunnelStep:
        previous = counts[i - 1] if i else None
        return FunnelStep(
            step=self.steps[i],
            count=counts[i],
            conversion_from_previous=None if not previous else counts[i] / previous,
            conversion_from_first=None if not counts[0] else counts[i] / counts[0],
            median_seconds=medians[i],
        )
