"""Journeys: each customer's touchpoint-mapped events in time order, ties broken by event id.

A journey is the input of flows, variants, funnels and attribution; the options here filter it once for all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from touchlens.analytics.conditions import outcome_predicate
from touchlens.analytics.engine import mapped_events, within
from touchlens.model.map import OutcomeRule, Touchpoint


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


def export_rows(touchpoints: list[Touchpoint], backend: ibis.BaseBackend) -> ibis.Table:
    """Every mapped event as an export row (customer, time, touchpoint, stage, channel, event, event id) in
    journey order; the stage is its touchpoint's, the channel its own or else its touchpoint's (process-mining
    tools want a resource). The map's values reach the engine as Ibis literals, escaped by its compiler."""
    e = mapped_events(backend)
    stage = _lookup(e.touchpoint, {t.key: t.stage for t in touchpoints if t.stage})
    channel = e.channel.fill_null(_lookup(e.touchpoint, {t.key: t.channel for t in touchpoints if t.channel}))
    return e.select(
        "customer_id", "ts", "touchpoint", stage=stage, channel=channel, event=e.event, event_id=e.event_id
    ).order_by(["customer_id", "ts", "event_id"])


def _lookup(key: ir.StringValue, table: dict[str, str]) -> ir.StringValue:
    if not table:
        return ibis.null("string")
    return key.cases(*table.items(), else_=ibis.null("string"))
