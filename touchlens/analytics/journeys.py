"""Journeys: each customer's touchpoint-mapped events in time order, ties broken by event id.

A journey is the input of flows, variants, funnels and attribution; the options here filter it once for all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import ibis
import ibis.expr.types as ir
from ibis.common.exceptions import TableNotFound

from touchlens.analytics.conditions import outcome_predicate
from touchlens.analytics.engine import arrow, mapped_events, within
from touchlens.ingest.rules import outcome_sql
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
        return self._journeys(self._customers(t, backend))

    def _customers(self, t: ibis.Table, backend: ibis.BaseBackend) -> ibis.Table:
        """`t` narrowed to the persona's customers and to those who did (or did not) convert."""
        if self.persona is not None:
            c = backend.table("customers")
            members = c.filter(c.persona == self.persona).select("customer_id")
            t = t.semi_join(members, "customer_id")
        if self.converted is not None and self.conversion is not None:
            everything = backend.table("events")
            won = everything.filter(outcome_predicate(everything, self.conversion)).select("customer_id").distinct()
            t = t.semi_join(won, "customer_id") if self.converted else t.anti_join(won, "customer_id")
        return t

    def whole(self) -> bool:
        """Whether these options keep every customer's whole journey as the journey layer holds it (no cut, no
        filter): then aggregates the store keeps over the layer answer for them."""
        cut = (self.start, self.end, self.channel, self.session_gap, self.persona)
        return all(x is None for x in cut) and (self.converted is None or self.conversion is None)

    def cut(self) -> bool:
        """Whether these options cut journeys (a time range, a channel, sessions): then no journey is a customer's
        whole journey as the layer keeps it. A persona or the converters' split only picks whole customers."""
        return self.start is not None or self.end is not None or self.channel is not None or bool(self.session_gap)

    def touches(self, backend: ibis.BaseBackend, *wanted: str) -> ibis.Table:
        """The journeys' touches with the `wanted` columns of the journey layer (`ORDERED`): read from the layer
        the store keeps (no sort) when these options keep whole customers' journeys as they are, else computed."""
        state = "none" if self.cut() else layer_state(backend)
        if state == "none":
            return ordered(self.apply(backend).select(*BASE), wanted)
        layer = self._customers(backend.table(LAYER), backend)
        layer = layer.mutate(journey=layer.customer_id).select(*BASE, *wanted)
        # Typed as computed touches are (nullable), so a layer-read column meets a computed one in any union.
        layer = layer.cast({name: dtype.copy(nullable=True) for name, dtype in layer.schema().items()})
        if state == "clean":
            return layer
        # Customers whose events came since the layer's last refresh: theirs from the events, the rest as kept.
        stale = backend.table(STALE).select("customer_id").distinct()
        fresh = self._customers(mapped_events(backend).semi_join(stale, "customer_id"), backend)
        fresh = ordered(fresh.mutate(journey=fresh.customer_id).select(*BASE), wanted)
        return layer.anti_join(stale, "customer_id").union(fresh.cast(layer.schema()))

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


LAYER, STALE, STATE = "touches", "touches_stale", "touches_state"
PERIODS, PERIODS_STATE, CODES = "periods", "periods_state", "touchpoint_codes"
CONVERSIONS = "touches_conversions"
T = TypeVar("T")
BASE = ("customer_id", "journey", "ts", "event_id", "touchpoint", "channel")


def firsts(backend: ibis.BaseBackend, options: JourneyOptions, column: str) -> ibis.Table | None:
    """The touches that are first of their kind in their customer's journey, read from the journey layer: with
    `column` "pos", each customer's first touch; with "prev_same_ts", each customer's first touch of each
    touchpoint. Counting these rows counts customers (overall, or by touchpoint) with a filter, where a distinct
    count hashes every event's customer id (1.3 s against 0.1 s at 10M events). None when the options' journeys
    are not read from the layer (cut into sessions or a time range, or no layer built), where computing the
    column would sort every journey: the caller counts distinct customers instead."""
    if options.cut() or layer_state(backend) == "none":
        return None
    t = options.touches(backend, column)
    return t.filter(t.pos == 0) if column == "pos" else t.filter(t[column].isnull())


def _ordered_columns(t: ibis.Table) -> dict[str, ir.Value]:
    w = in_order(t)
    same = ibis.window(group_by=[t.journey, t.touchpoint], order_by=[t.ts, t.event_id])
    return {
        "pos": ibis.row_number().over(w),
        "prev_touchpoint": t.touchpoint.lag().over(w),
        "prev_ts": t.ts.lag().over(w),
        "prev_channel": t.channel.lag().over(w),
        "next_touchpoint": t.touchpoint.lead().over(w),
        "next_ts": t.ts.lead().over(w),
        "next2_touchpoint": t.touchpoint.lead(2).over(w),
        "next2_ts": t.ts.lead(2).over(w),
        "prev_same_ts": t.ts.lag().over(same),
    }


ORDERED = ("pos", "prev_touchpoint", "prev_ts", "prev_channel", "next_touchpoint", "next_ts", "next2_touchpoint",
           "next2_ts", "prev_same_ts")  # fmt: skip


def ordered(t: ibis.Table, wanted: tuple[str, ...]) -> ibis.Table:
    """The journey layer's definition: for each touch of `t` (with `journey`), the `wanted` columns of `ORDERED`
    (its position from 0, the touches before and after it, the journey's previous touch of the same touchpoint),
    computed by windows over each journey in time order. `store/journeys.py` keeps the same for whole customers."""
    unknown = set(wanted) - set(ORDERED)
    if unknown:
        raise ValueError(f"no journey column {sorted(unknown)}; columns are {', '.join(ORDERED)}")
    columns = _ordered_columns(t)
    return t.mutate(**{name: columns[name] for name in wanted}) if wanted else t


def layer_state(backend: ibis.BaseBackend) -> str:
    """Whether the store's journey layer can be read: none (no layer, or never built), clean, or stale (some
    customers' events came since its last refresh; `touches` reads those from the events). Asked once per
    analysis where its backend keeps a `memo` (`store.backends.AnalysisBackend`, built for one analysis): every
    part of it then reads the layer alike, and insights no longer asks 19 times (up to three queries each)."""
    return _remembered(backend, "layer_state", lambda: _layer_state(backend))


def _layer_state(backend: ibis.BaseBackend) -> str:
    if not _exists(backend, LAYER) or _rows(backend, STATE) == 0:
        return "none"
    return "stale" if _rows(backend, STALE) else "clean"


def periods_layer(backend: ibis.BaseBackend, conversion: OutcomeRule) -> ibis.Table | None:
    """The layer's touches with their periods (`store/journeys.py`), when they were cut by `conversion` and no
    customer waits for a refresh; else None, and the caller cuts periods from the events as before."""
    if layer_state(backend) != "clean" or not _exists(backend, STATE):
        return None
    kept = _remembered(backend, "layer_conversion", lambda: _kept_conversion(backend))
    sql, params = outcome_sql(conversion)
    return backend.table(LAYER) if kept is not None and json.loads(kept) == [sql, params] else None


def stored_conversions(backend: ibis.BaseBackend, conversion: OutcomeRule) -> ibis.Table | None:
    """The layer's list of conversions (customer_id, ts: every event `conversion` picks, mapped or not), when
    `periods_layer` serves and the list is kept; else None, and the caller filters the events. The list is the
    conversions' rows alone: filtering 100M events read the customer id of each conversion scattered over the
    table (3.7 s of the scorecard's 4.4 s query that reads them)."""
    if periods_layer(backend, conversion) is None or not _exists(backend, CONVERSIONS):
        return None
    if not _remembered(backend, "conversions_kept", lambda: _conversions_kept(backend)):
        return None
    return backend.table(CONVERSIONS)


def _conversions_kept(backend: ibis.BaseBackend) -> bool:
    state = backend.table(STATE)
    if "conversions_kept" not in state.columns:  # a store from before the list, read before its next refresh
        return False
    return bool(arrow(backend, state.conversions_kept.fill_null(False).min()).as_py())


def stored_periods(
    backend: ibis.BaseBackend, conversion: OutcomeRule, cut: tuple[int, int, int, int]
) -> tuple[list[str], ibis.Table] | None:
    """The layer's periods, one row each with their touch features' masks (`store/periods.py`), and the
    touchpoints their bits stand for (in code order): when `periods_layer` serves and the masks were cut as
    `cut` says (repeat, wait and switch windows in microseconds, bits a word); else None, and the caller groups
    the touches into periods."""
    if periods_layer(backend, conversion) is None:
        return None
    found = _remembered(backend, "periods_cut", lambda: _periods_cut(backend))
    if found is None or found[0] != cut:
        return None
    return found[1], backend.table(PERIODS)


def _periods_cut(backend: ibis.BaseBackend) -> tuple[tuple[int, ...], list[str]] | None:
    """How the stored periods were cut (windows, bits) and the touchpoints by code; None when never built."""
    if not _rows(backend, PERIODS_STATE):
        return None
    state = backend.table(PERIODS_STATE)
    cut = arrow(backend, state.select("repeat_us", "wait_us", "switch_us", "bits")).to_pylist()[0]
    codes = arrow(backend, backend.table(CODES).order_by("code")).to_pydict()
    if codes["code"] != list(range(len(codes["code"]))):  # numbered from 0 with no gap, or not ours to read
        return None
    return tuple(int(v) for v in cut.values()), [str(k) for k in codes["touchpoint"]]


def _kept_conversion(backend: ibis.BaseBackend) -> str | None:
    """The conversion the layer's periods were cut by: JSON [sql, values], as the store keeps it."""
    kept = arrow(backend, backend.table(STATE).conversion.max()).as_py()
    return None if kept is None else str(kept)


def _remembered(backend: ibis.BaseBackend, key: str, compute: Callable[[], T]) -> T:
    """`compute()`, kept in the backend's `memo` when it has one (one analysis's backend), else asked anew."""
    memo: dict[str, Any] | None = getattr(backend, "memo", None)
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return cast(T, memo[key])


def in_period(t: ibis.Table, column: str, period: str) -> ir.Value:
    """A neighbour's `column` from the layer, where the neighbour is in the same period (else null)."""
    return ibis.cases((t[period] == t.period, t[column]), else_=ibis.null(t[column].type()))


def _rows(backend: ibis.BaseBackend, name: str) -> int | None:
    """How many rows the table has, or None when there is none of that name (a lake holds no state tables)."""
    if not _exists(backend, name):
        return None
    return int(arrow(backend, backend.table(name).count()).as_py())


def _exists(backend: ibis.BaseBackend, name: str) -> bool:
    try:
        backend.table(name)
    except TableNotFound:
        return False
    return True


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
