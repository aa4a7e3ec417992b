"""Journeys: each customer's touchpoint-mapped events in time order, ties broken by event id.

A journey is the input of flows, variants, funnels and attribution; the options here filter it once for all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis

from touchlens.analytics.conditions import outcome_predicate
from touchlens.analytics.engine import mapped_events, within
from touchlens.model.map import OutcomeRule


@dataclass(frozen=True)
class JourneyOptions:
    """Which events make the journeys: a time range, one channel, one persona (all optional)."""

    start: datetime | None = None
    end: datetime | None = None
    channel: str | None = None
    persona: str | None = None
    session_gap: timedelta | None = None
    # Keep only customers who did (True) or did not (False) reach this outcome; needs `conversion`.
    converted: bool | None = None
    conversion: OutcomeRule | None = None

    def apply(self, backend: ibis.BaseBackend) -> ibis.Table:
        t = mapped_events(backend)
        if self.start is not None:
            t = t.filter(t.ts >= self.start)
        if self.end is not None:
            t = t.filter(t.ts < self.end)
        if self.channel is not None:
            t = t.filter(t.channel == self.channel)
        if self.persona is not None:
            c = backend.table("customers")
            members = c.filter(c.persona == self.persona).select("customer_id")
            t = t.semi_join(members, "customer_id")
        if self.converted is not None and self.conversion is not None:
            everything = backend.table("events")
            won = everything.filter(outcome_predicate(everything, self.conversion)).select("customer_id").distinct()
            t = t.semi_join(won, "customer_id") if self.converted else t.anti_join(won, "customer_id")
        return self._journeys(t)

    def _journeys(self, t: ibis.Table) -> ibis.Table:
        """Add `journey`: the customer, or with a session gap, the customer's session (a new one after each gap)."""
        if self.session_gap is None:
            return t.mutate(journey=t.customer_id)
        w = ibis.window(group_by=t.customer_id, order_by=[t.ts, t.event_id])
        t = t.mutate(new=(~within(t.ts, t.ts.lag().over(w), self.session_gap)).fill_null(True).cast("int64"))
        t = t.mutate(
            session=t.new.sum().over(ibis.cumulative_window(group_by=t.customer_id, order_by=[t.ts, t.event_id]))
        )
        return t.mutate(journey=t.customer_id.concat("#", t.session.cast("string"))).drop("new", "session")


def in_order(t: ibis.Table) -> ibis.expr.builders.LegacyWindowBuilder:
    """Each journey's events by time, then event id, so equal timestamps still give one order."""
    return ibis.window(group_by=t.journey, order_by=[t.ts, t.event_id])
