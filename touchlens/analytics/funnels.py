"""Funnels: how many customers reach each step of a touchpoint sequence within a time window.

A customer reaches step k when steps 1..k occur at strictly increasing times t1 < … < tk with tk − t1 within
the window; in `any` order other events may come between steps, in `strict` order none may. For each start
(an occurrence of step 1) the earliest next step is taken, which reaches at least as far as any other choice;
a customer's depth is the best over their starts. Each step is one join in the engine; a funnel has at most
`MAX_STEPS` steps (a 200-step funnel ran for minutes and a strict one ran DuckDB out of memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import ibis

from touchlens.analytics.engine import property_text, seconds_between, within
from touchlens.analytics.journeys import JourneyOptions
from touchlens.errors import BadOption

MAX_STEPS = 20


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
    breakdown: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"steps": [s.__dict__ for s in self.steps]}
        if self.breakdown is not None:
            data["breakdown"] = self.breakdown
        return data


@dataclass(frozen=True)
class FunnelQuery:
    """Customers reaching each of `steps` (touchpoint keys) within `window`, in `order`."""

    steps: tuple[str, ...]
    window: timedelta = timedelta(days=7)
    order: Order = Order.any
    options: JourneyOptions = field(default_factory=JourneyOptions)
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= len(self.steps) <= MAX_STEPS:
            raise BadOption(f"a funnel has 1 to {MAX_STEPS} steps, not {len(self.steps)}", field="steps")
        if len(self.exclude) > MAX_STEPS:
            raise BadOption(f"at most {MAX_STEPS} touchpoints, not {len(self.exclude)}", field="exclude")

    def reached(self, backend: ibis.BaseBackend) -> list[ibis.Table]:
        """One table per step: (customer_id, start, at, prev, row) for every start that reached that step;
        `prev` is when it reached the step before."""
        if self.order is Order.strict:
            # Strict order counts every touchpoint between steps: each touch's position in its journey.
            t = self.options.touches(backend, "pos")
            t = t.mutate(row=t.pos)
        else:
            t = self.options.apply(backend)
            t = t.mutate(row=ibis.literal(0, "int64"))
        t = t.filter(t.touchpoint.isin([*self.steps, *self.exclude])).select("customer_id", "touchpoint", "ts", "row")
        first = t.filter(t.touchpoint == self.steps[0])
        level = first.select("customer_id", start=first.ts, at=first.ts, prev=first.ts, row=first.row)
        levels = [level]
        for step in self.steps[1:]:
            level = self._without_excluded(t, self._next(t, level, step))
            levels.append(level)
        return levels

    def _without_excluded(self, t: ibis.Table, level: ibis.Table) -> ibis.Table:
        """Drop starts whose way to this step passes an excluded touchpoint. The earliest way is the shortest,
        so if it passes one, every way does."""
        if not self.exclude:
            return level
        bad = t.filter(t.touchpoint.isin(list(self.exclude)))
        pairs = level.join(bad.select(bad.customer_id, bad_ts=bad.ts), "customer_id")
        hits = pairs.filter((pairs.bad_ts > pairs.start) & (pairs.bad_ts < pairs.at))
        spoiled = hits.select("customer_id", "start").distinct()
        return level.anti_join(spoiled, ["customer_id", "start"])

    def dropped_at(self, backend: ibis.BaseBackend, step: int) -> list[str]:
        """Customers who reached step `step` (1-based) but not the next one."""
        levels = self.reached(backend)
        if not 1 <= step < len(levels):
            raise BadOption(f"takes a step from 1 to {len(levels) - 1}", field="dropped_at")
        here = levels[step - 1].select("customer_id").distinct()
        dropped = here.anti_join(levels[step].select("customer_id").distinct(), "customer_id")
        return sorted(backend.to_pyarrow(dropped).column("customer_id").to_pylist())

    def _next(self, t: ibis.Table, level: ibis.Table, step: str) -> ibis.Table:
        found = t.filter(t.touchpoint == step)
        # Own names for the candidate's columns, so the join's columns are never ambiguous.
        candidates = found.select(c_customer=found.customer_id, c_ts=found.ts, c_row=found.row)
        j = level.join(candidates, level.customer_id == candidates.c_customer)
        keep = (j.c_ts > j.at) & within(j.c_ts, j.start, self.window)
        if self.order is Order.strict:
            keep = keep & (j.c_row == j.row + 1)
        picked = j.filter(keep)
        # The earliest next event per start: the greedy choice that leaves the most room for later steps.
        return picked.group_by(["customer_id", "start"]).aggregate(
            at=picked.c_ts.min(), prev=picked.at.min(), row=picked.c_row.min()
        )

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        """One row per step: customers reaching it and the median time from the step before, in one query."""
        parts = []
        for i, level in enumerate(self.reached(backend)):
            gap = seconds_between(backend, level.at, level.prev)
            median = gap.median() if i else ibis.null().cast("float64")
            count = level.customer_id.nunique()
            parts.append(level.aggregate(step=ibis.literal(i, "int64"), count=count, median=median))
        return ibis.union(*parts)

    def run(self, backend: ibis.BaseBackend) -> Funnel:
        rows = sorted(backend.to_pyarrow(self.to_expr(backend)).to_pylist(), key=lambda r: r["step"])
        counts = [int(r["count"]) for r in rows]
        medians = [None if r["median"] is None or r["median"] != r["median"] else float(r["median"]) for r in rows]
        return Funnel([self._step(i, counts, medians) for i in range(len(self.steps))])

    def breakdown(self, backend: ibis.BaseBackend, by: str) -> dict[str, Any]:
        """Counts per step for each persona (the customer's) or channel (of the first step's event)."""
        levels = self.reached(backend)
        groups = self._groups(backend, levels[0], by)
        counts: dict[str, list[int]] = {}
        for i, level in enumerate(levels):
            tagged = level.join(groups, ["customer_id", "start"])
            rows = backend.to_pyarrow(tagged.group_by("group").aggregate(n=tagged.customer_id.nunique())).to_pylist()
            for r in rows:
                counts.setdefault(r["group"], [0] * len(levels))[i] = int(r["n"])
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return {"by": by, "groups": [{"group": g, "counts": c} for g, c in ordered]}

    def _groups(self, backend: ibis.BaseBackend, first: ibis.Table, by: str) -> ibis.Table:
        """(customer_id, start) → group label."""
        if by == "persona":
            c = backend.table("customers").select("customer_id", "persona")
            tagged = first.left_join(c, "customer_id")
            return tagged.select("customer_id", "start", group=tagged.persona.fill_null("(none)"))
        if by == "channel" or by.startswith("property:"):
            t = self.options.apply(backend)
            label = t.channel if by == "channel" else property_text(t, by.removeprefix("property:"))
            firsts = t.filter(t.touchpoint == self.steps[0]).mutate(group=label.fill_null("(none)"))
            starts = firsts.select("customer_id", "group", start=firsts.ts)
            return starts.distinct(on=["customer_id", "start"], keep="first")
        raise ValueError(f"unknown breakdown '{by}'; choose persona, channel or property:NAME")

    def _step(self, i: int, counts: list[int], medians: list[float | None]) -> FunnelStep:
        previous = counts[i - 1] if i else None
        return FunnelStep(
            step=self.steps[i],
            count=counts[i],
            conversion_from_previous=None if not previous else counts[i] / previous,
            conversion_from_first=None if not counts[0] else counts[i] / counts[0],
            median_seconds=medians[i],
        )
