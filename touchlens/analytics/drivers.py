"""Drivers of conversion, repeat purchase and churn: which touchpoints and experiences raise or lower the rate.

The unit is a customer's **period**: from the start (or a conversion) to the next conversion or the end of the
data — the same cut as attribution's paths. A period's outcome: `conversion` it ends in a conversion;
`repeat` the same, over the periods after a first conversion; `churn` it is the customer's last period and
the customer churned (the map's churn event, or no activity of their own for `inactive_days` before the data
ends). Features, per touchpoint: seen in the period, repeated within 7 days, reached after a wait of 3 days or
more, reached by switching channel within 24 hours, given a low score, or a negative comment. The engine builds
the (period, feature) pairs; the model (`drivers_model`) runs on the small matrix.

**Company-sent touches are not customer activity.** Inactivity churn measures the customer's own last action:
events on the query's `company_sent` touchpoints (the map's `proactive` ones, which the company starts) are left
out of it. Example: a win-back e-mail goes to customers who have gone quiet. Counted as activity, each e-mail
would restart the customer's inactivity clock, so customers who got one would look as if they had not churned
and the e-mail would come out as the strongest churn-cutting driver — an artefact of who it is sent to. Counted
as the company's doing, a customer whose own last action lies more than `inactive_days` before the data ends has
churned however many e-mails kept arriving. The e-mails still count as touches: a period whose only touches are
company-sent is still a period, and "saw the win-back e-mail" is still a feature whose effect is measured.

An outcome the map does not define is no table: `MissingOutcome` says which map lines to add. Too little data
(fewer periods than `min_periods`, no outcome in the data, no feature on both sides) is a `message` in words.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, timedelta
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchlens.analytics.conditions import outcome_predicate
from touchlens.analytics.drivers_model import (
    OUTCOME_WORDS,
    SCOPE,
    DriversReport,
    Effect,
    compare,
    logistic_effects,
    relative_weights,
)
from touchlens.analytics.drivers_model import Driver as Driver
from touchlens.analytics.drivers_model import Drivers as Drivers
from touchlens.analytics.engine import at_most_apart, events
from touchlens.analytics.journeys import in_period, periods_layer, stored_periods
from touchlens.errors import BadOption, WorkspaceError
from touchlens.model.map import Initiative, OutcomeRule, Phase, TouchpointMap
from touchlens.model.periods import BITS, REPEAT_WINDOW, SWITCH_WINDOW, WAIT, microseconds

OUTCOMES = ("conversion", "churn", "repeat")
# Each resample refits the model (about 0.1 s on 5,000 customers, ten times that on a busy server).
MAX_SAMPLES = 200
KINDS = ("seen", "repeated", "waited", "switched", "low_score", "negative")
TOUCH_KINDS = KINDS[:4]  # features of touches; the others come from feedback
MODEL_KINDS = ("seen", "low_score", "negative")
LOW_SHARE = 0.4  # a score in the worst 40% of its scale (CSAT 1–2, NPS 0–4, CES 5–7) is low
MAP_LINES = {
    "conversion": "`conversion: {event: order_placed}` (the event that counts as a conversion)",
    "repeat": "`repeat: {event: order_placed, within_days: 365}`",
    "churn": "`churn: {inactive_days: 90}` (no activity of the customer's own for 90 days; or `churn: {event: "
    "account_closed}`)",
}

# Typed, so a store with no touches yet (an empty list) still joins on a string column.
CODES = {"touchpoint": "string", "word": "int64", "bit": "int64"}


class MissingOutcome(WorkspaceError):
    """The map defines no such outcome (or lacks the conversion every outcome's periods are cut by); the message
    names the map lines to add."""

    def __init__(self, outcome: str, message: str) -> None:
        self.outcome = outcome
        super().__init__(message)


def missing_message(outcome: str, conversion_event: str | None = None) -> str:
    """The map lines to add for an outcome it does not define, in words (with the map's own conversion event
    where it has one: a repeat is another of those)."""
    lines = MAP_LINES[outcome]
    if conversion_event and outcome == "repeat":
        lines = f"`repeat: {{event: {conversion_event}, within_days: 365}}`"
    return f"The map defines no {outcome} outcome. Add under outcomes: {lines}."


def known_periods(units: pa.Table, churn: OutcomeRule | None) -> np.ndarray[Any, Any]:
    """Periods whose outcome is known: all but each customer's last when it is still open — not converted, and
    the customer still active by the map's churn rule. Counting an open period as "did not convert" makes every
    touchpoint late in a cycle look helpful. Without a churn rule nothing says a customer is still active, so
    every period counts as it ends. A period that did not end in a conversion is its customer's last: periods are
    numbered by the conversions before them, so every one before the last ends in one (no search for each
    customer's highest period: at 100M events that read 7.6M customer ids again, 2.8 s)."""
    if churn is None or units.num_rows == 0:
        return np.ones(units.num_rows, dtype=bool)
    converted = units.column("converted").to_numpy().astype(bool)
    churned = units.column("churn").to_numpy().astype(bool)
    return np.asarray(converted | churned)


def _needs_conversion(outcome: str) -> str:
    return (
        f"Drivers of {outcome} need the map's conversion outcome too: periods run from one conversion to the "
        f"next. Add under outcomes: {MAP_LINES['conversion']}."
    )


@dataclass(frozen=True)
class DriversQuery:
    """Effects of each feature on `outcome` over customers' periods between conversions."""

    outcome: str
    conversion: OutcomeRule
    churn: OutcomeRule | None = None
    min_periods: int = 30
    samples: int = 100
    seed: int = 7
    repeat_window: timedelta = REPEAT_WINDOW
    wait: timedelta = WAIT
    switch_window: timedelta = SWITCH_WINDOW
    # Touchpoints that are the conversion itself (the map's purchase phase): they would "predict" it trivially.
    exclude: tuple[str, ...] = ()
    # Touchpoints the company starts (e-mails, reminders): no sign the customer is still active (see above).
    company_sent: tuple[str, ...] = ()
    # Touchpoints that follow a purchase by design (the map's post-purchase phase): their features count only in
    # the periods after a first conversion, compared with those alone. Anywhere else they say who bought already,
    # not what made anyone buy: cut at conversions, a delivery SMS falls in the period after its order, which
    # converts only if the customer buys again, so against every period it "lowers" conversion by construction.
    post_purchase: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.samples <= MAX_SAMPLES:
            raise BadOption(f"0 to {MAX_SAMPLES} resamples, not {self.samples}", field="bootstrap")
        if self.outcome not in OUTCOMES:
            raise BadOption(f"unknown outcome '{self.outcome}'; choose {', '.join(OUTCOMES)}")
        if self.outcome == "churn" and self.churn is None:
            raise MissingOutcome("churn", missing_message("churn"))

    def _periods(self, backend: ibis.BaseBackend) -> tuple[ibis.Table, ibis.Table]:
        """Touches with their period number, and the conversions (one row per converting period)."""
        layer = periods_layer(backend, self.conversion)
        if layer is not None:  # cut at ingest: no sort of every customer's events
            return layer.filter(layer.period >= 0), self._conversions(backend)
        t = events(backend)
        conv = outcome_predicate(t, self.conversion).fill_null(False).cast("int64")
        t = t.mutate(conv=conv)
        w = ibis.cumulative_window(group_by=t.customer_id, order_by=[t.ts, t.event_id])
        t = t.mutate(period=t.conv.sum().over(w) - t.conv)
        touches = t.filter((t.conv == 0) & t.touchpoint.notnull())
        convs = t.filter(t.conv == 1).group_by(["customer_id", "period"]).aggregate(won=ibis.literal(1))
        return touches, convs

    def _conversions(self, backend: ibis.BaseBackend) -> ibis.Table:
        """(customer_id, period, won): each conversion and the period it ends, its place among the customer's
        conversions (a sort of the conversions alone)."""
        t = events(backend)
        c = t.filter(outcome_predicate(t, self.conversion).fill_null(False))
        c = c.mutate(period=ibis.row_number().over(ibis.window(group_by=c.customer_id, order_by=[c.ts, c.event_id])))
        return c.group_by(["customer_id", "period"]).aggregate(won=ibis.literal(1))

    def loops_expr(self, backend: ibis.BaseBackend, within_time: timedelta = timedelta(days=1)) -> ibis.Table:
        """(customer_id, period, lo, hi): the periods in which the customer went A → B → A within `within_time`,
        the pair's two touchpoints in sorted order (A → B → A and B → A → B are one loop)."""
        layer = periods_layer(backend, self.conversion)
        if layer is not None:
            t = layer.filter(layer.period >= 0)
            s = t.mutate(b=in_period(t, "next_touchpoint", "next_period"),
                         a2=in_period(t, "next2_touchpoint", "next2_period"),
                         ts2=in_period(t, "next2_ts", "next2_period"))  # fmt: skip
        else:
            touches, _ = self._periods(backend)
            w = ibis.window(group_by=[touches.customer_id, touches.period], order_by=[touches.ts, touches.event_id])
            s = touches.mutate(b=touches.touchpoint.lead(1).over(w), a2=touches.touchpoint.lead(2).over(w),
                               ts2=touches.ts.lead(2).over(w))  # fmt: skip
        hit = s.filter(
            (s.a2 == s.touchpoint) & (s.b != s.touchpoint) & at_most_apart(backend, s.ts2, s.ts, within_time)
        )
        return hit.select(
            customer_id=hit.customer_id.cast("string"),
            period=hit.period.cast("int64"),
            lo=ibis.least(hit.touchpoint, hit.b),
            hi=ibis.greatest(hit.touchpoint, hit.b),
        ).distinct()

    def seen_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        """(customer_id, period, feature) for the `seen:` features alone: which touchpoints each period met, the
        part of `features_expr` that needs no neighbours (from the layer, no sort at all)."""
        touches, _ = self._periods(backend)
        return _pairs(touches, "seen").distinct()

    def features_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        """(customer_id, period, feature) for every feature a period has (`periods_expr` has the same features a
        period to a row; this long form is the reference its tests compare with)."""
        flagged = self._flagged(backend)
        parts = [_pairs(flagged, "seen")]
        for kind in ("repeated", "waited", "switched"):
            parts.append(_pairs(flagged.filter(flagged[kind]), kind))
        parts += self._feedback_features(backend)
        return ibis.union(*parts, distinct=True)

    def _flagged(self, backend: ibis.BaseBackend) -> ibis.Table:
        """The periods' touches, each flagged `repeated`, `waited` and `switched` (see the module's docstring)."""
        touches, prev_ts, prev_channel, prev_same_ts = self._previous(backend)

        def apart(earlier: Any, limit: timedelta) -> Any:
            return at_most_apart(backend, touches.ts, earlier, limit)

        switched = apart(prev_ts, self.switch_window) & (touches.channel != prev_channel)
        return touches.mutate(
            repeated=apart(prev_same_ts, self.repeat_window).fill_null(False),
            waited=(~apart(prev_ts, self.wait)).fill_null(False),
            switched=switched.fill_null(False),
        )

    def periods_expr(self, backend: ibis.BaseBackend, touchpoints: Sequence[str]) -> ibis.Table:
        """`units_expr`'s rows with every feature of each period in them, from one grouping of the touches: per
        kind of touch feature, bit masks `seen_0`, `seen_1`, ... (bit b of word w set: the period has it for
        `touchpoints[w * BITS + b]`, which must hold every touch's touchpoint); low scores and negative comments as
        lists of touchpoints (or null). A union of (period, feature) strings took four times as long."""
        t = self._flagged(backend)
        codes = ibis.memtable({"touchpoint": list(touchpoints),
                               "word": [i // BITS for i in range(len(touchpoints))],
                               "bit": [1 << i % BITS for i in range(len(touchpoints))]},
                              schema=CODES)  # fmt: skip
        t = t.join(codes, "touchpoint")
        touches = t.count()
        if backend.name != "duckdb":  # no bitwise OR there: one row per touchpoint first, then distinct bits add up
            flags = {kind: t[kind].any() for kind in TOUCH_KINDS[1:]}
            t = t.group_by(["customer_id", "period", "touchpoint", "word", "bit"]).aggregate(n=t.count(), **flags)
            touches = t.n.sum()
        masks = {f"{kind}_{w}": _bits(t, kind, w, backend.name == "duckdb")
                 for kind in TOUCH_KINDS for w in range(_words(touchpoints))}  # fmt: skip
        grouped = t.group_by(["customer_id", "period"]).aggregate(touches=touches, **masks)
        return self._with_feedback(backend, self._with_outcomes(backend, grouped, tuple(masks)))

    def stored_expr(self, backend: ibis.BaseBackend) -> tuple[list[str], ibis.Table] | None:
        """`periods_expr`'s rows read from the layer's periods (`store/periods.py`, one row a period: no grouping
        of every touch), and the touchpoints their masks' bits stand for; None where the layer's periods do not
        serve (cut by other windows, or not built)."""
        cut = (microseconds(self.repeat_window), microseconds(self.wait), microseconds(self.switch_window), BITS)
        found = stored_periods(backend, self.conversion, cut)
        if found is None:
            return None
        touchpoints, t = found
        masks = _spread(t.words, touchpoints)
        units = t.select("customer_id", "period", "touches", converted=t.converted.cast("int64"), **masks)
        return touchpoints, self._with_feedback(backend, self._with_churn(backend, units, tuple(masks)))

    def _with_feedback(self, backend: ibis.BaseBackend, units: ibis.Table) -> ibis.Table:
        """Periods with their low scores and negative comments, each a list of touchpoints (or null)."""
        for kind, f in zip(KINDS[4:], self._feedback_rows(backend), strict=True):
            lists = f.group_by(["customer_id", "period"]).aggregate(**{kind: f.touchpoint.collect(distinct=True)})
            units = units.left_join(lists, ["customer_id", "period"]).drop("customer_id_right", "period_right")
        return units

    def touchpoints(self, backend: ibis.BaseBackend) -> list[str]:
        """Every touchpoint the events name, for `periods_expr`."""
        t = events(backend)
        found = backend.to_pyarrow(t.filter(t.touchpoint.notnull()).select("touchpoint").distinct())
        return sorted(str(k) for k in found.column("touchpoint").to_pylist())

    def _previous(self, backend: ibis.BaseBackend) -> tuple[ibis.Table, Any, Any, Any]:
        """The periods' touches, and each one's previous touch in its period (time, channel) and previous touch of
        the same touchpoint in its period (time): from the layer, or windows over the events."""
        layer = periods_layer(backend, self.conversion)
        if layer is not None:
            t = layer.filter(layer.period >= 0)
            prev = in_period(t, "prev_ts", "prev_period"), in_period(t, "prev_channel", "prev_period")
            return t, *prev, in_period(t, "prev_same_ts", "prev_same_period")
        touches, _ = self._periods(backend)
        w = ibis.window(group_by=[touches.customer_id, touches.period], order_by=[touches.ts, touches.event_id])
        same = ibis.window(
            group_by=[touches.customer_id, touches.period, touches.touchpoint], order_by=[touches.ts, touches.event_id]
        )
        return touches, touches.ts.lag().over(w), touches.channel.lag().over(w), touches.ts.lag().over(same)

    def _feedback_features(self, backend: ibis.BaseBackend) -> list[ibis.Table]:
        """Low scores and negative comments as (customer_id, period, feature) pairs."""
        low, negative = self._feedback_rows(backend)
        return [_pairs(low, "low_score"), _pairs(negative, "negative")]

    def _feedback_rows(self, backend: ibis.BaseBackend) -> tuple[ibis.Table, ibis.Table]:
        """(customer_id, period, touchpoint) of the low scores and of the negative comments, each in the period its
        response falls in."""
        t = events(backend)
        convs = t.filter(outcome_predicate(t, self.conversion).fill_null(False)).select(
            c_customer="customer_id", c_ts="ts"
        )
        f = backend.table("feedback").filter(lambda f: f.touchpoint.notnull())
        before = f.left_join(convs, (f.customer_id == convs.c_customer) & (convs.c_ts <= f.ts))
        numbered = before.group_by(["response_id", "source", "customer_id", "touchpoint"]).aggregate(
            period=before.c_ts.count(),
            score=before.score.max(),
            scale_min=before.scale_min.max(),
            scale_max=before.scale_max.max(),
            metric=before.metric.max(),
            sentiment=before.sentiment.max(),
        )
        share = (numbered.score - numbered.scale_min) / (numbered.scale_max - numbered.scale_min)
        # CES runs the other way: 7 is the most effort.
        badness = ibis.cases((numbered.metric == "ces", share), else_=1 - share)
        low = numbered.filter(badness >= 1 - LOW_SHARE)
        negative = numbered.filter(numbered.sentiment <= -0.05)
        return _keyed(low), _keyed(negative)

    def units_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        """One row per period with touches: its outcome flags and its size."""
        touches, _ = self._periods(backend)
        units = touches.group_by(["customer_id", "period"]).aggregate(touches=touches.count())
        return self._with_outcomes(backend, units)

    def _with_outcomes(self, backend: ibis.BaseBackend, units: ibis.Table, extra: Sequence[str] = ()) -> ibis.Table:
        """Periods (customer_id, period, touches, `extra`...) with their outcome flags, converted and churn."""
        _, convs = self._periods(backend)
        j = units.left_join(convs, ["customer_id", "period"])
        j = j.mutate(converted=j.won.notnull().cast("int64")).drop("won", "customer_id_right", "period_right")
        return self._with_churn(backend, j, extra)

    def _with_churn(self, backend: ibis.BaseBackend, j: ibis.Table, extra: Sequence[str] = ()) -> ibis.Table:
        """Periods (customer_id, period, touches, converted, `extra`...) with churn: the customer churned and the
        period is their last. A period that did not end in a conversion is the customer's last (`known_periods`
        says why), so churn needs no search for each customer's highest period: a window over every customer's
        periods in the engine, or their ids read again in Python (2.8 s at 100M events)."""
        churned = self._churned(backend)
        if churned is None:  # the map defines no churn: nobody has churned by it
            return j.select("customer_id", "period", "touches", "converted", *extra,
                            churn=ibis.literal(0).cast("int64"))  # fmt: skip
        j = j.left_join(churned, "customer_id")
        churn = j.churned.notnull() & (j.converted == 0)
        return j.select("customer_id", "period", "touches", "converted", *extra, churn=churn.cast("int64"))

    def _churned(self, backend: ibis.BaseBackend) -> ibis.Table | None:
        """(customer_id, churned=1) for each customer who churned: the churn event, or no action of their own
        for `inactive_days` before the data ends (company-sent touches do not count as their action)."""
        rule = self.churn
        if rule is None:
            return None
        t = events(backend)
        if rule.event is not None:
            gone = t.filter(outcome_predicate(t, rule)).select("customer_id").distinct()
            return gone.mutate(churned=ibis.literal(1))
        layer = periods_layer(backend, self.conversion)
        if layer is not None:
            return self._quiet_by_layer(backend, layer, timedelta(days=rule.inactive_days or 0))
        data_end = t.ts.max().as_scalar()
        t, acting = self._acting(t)
        last = t.group_by("customer_id").aggregate(acted=t.ts.max(where=acting), first=t.ts.min())
        # A customer who never acted (only ever sent things) has been quiet since they first appeared.
        since = last.acted.fill_null(last.first)
        quiet = last.filter(~at_most_apart(backend, data_end, since, timedelta(days=rule.inactive_days or 0)))
        return quiet.select("customer_id", churned=ibis.literal(1))

    def _quiet_by_layer(self, backend: ibis.BaseBackend, layer: ibis.Table, inactive: timedelta) -> ibis.Table:
        """`_churned`'s inactive customers without grouping every event by customer (7 s of the drivers' 30 at
        100M events): those who appeared before the cut-off (`inactive` before the data ends) and took no action
        of their own since. The same customers: one whose last action came before the cut-off appeared before it
        too, and one who never acted is quiet since they appeared. A customer appeared with their first touch (the
        layer's position 0) or an event no touchpoint claims; only customers with touches have periods. Their
        actions since are the layer's touches (stored by customer: 2.6 s against 3.1-4.4 s from the events at
        100M) and the events no touchpoint claims (each an action of theirs)."""
        t = events(backend)
        data_end = backend.to_pyarrow(t.aggregate(end=t.ts.max())).column("end")[0].as_py()
        if data_end is None:  # no events: nobody to have churned
            return t.filter(ibis.literal(False)).select("customer_id", churned=ibis.literal(1))
        # A timestamp, not arithmetic on each row: a comparison with a value lets the store skip blocks by time. In
        # UTC first: Python subtracts days from a zoned time on its wall clock, an hour off across a change of time.
        end = data_end.astimezone(UTC) if data_end.tzinfo is not None else data_end
        cutoff = ibis.literal(end - inactive, type=t.ts.type())
        recent, acting = self._acting(layer.filter(layer.ts >= cutoff), conversion=lambda r: r.period == -1)
        unclaimed = t.filter(t.touchpoint.isnull())
        acted = _ids(recent.filter(acting)).union(_ids(unclaimed.filter(unclaimed.ts >= cutoff)))
        first = layer.filter((layer.pos == 0) & (layer.ts < cutoff))
        appeared = _ids(first).union(_ids(unclaimed.filter(unclaimed.ts < cutoff)), distinct=True)
        return appeared.anti_join(acted, "customer_id").mutate(churned=ibis.literal(1))

    def _acting(self, t: ibis.Table, conversion: Callable[[ibis.Table], Any] | None = None) -> tuple[ibis.Table, Any]:
        """Events (or the layer's touches) with a predicate for the customer's own actions: all but the
        company-sent touches, conversions always (`conversion` says which rows are; by default the map's rule)."""
        if not self.company_sent:
            return t, ibis.literal(True)
        # A join with the sent touchpoints, not `isin`: a list of strings tested on every event took twice as long
        # at 10M events.
        keys = ibis.memtable({"sent_touchpoint": list(dict.fromkeys(self.company_sent))})
        t = t.left_join(keys, t.touchpoint == keys.sent_touchpoint)
        converted = conversion(t) if conversion else outcome_predicate(t, self.conversion).fill_null(False)
        return t, t.sent_touchpoint.isnull() | converted

    def run(self, backend: ibis.BaseBackend) -> Drivers:
        return self.run_each(backend, (self.outcome,))[0]

    def run_each(
        self, backend: ibis.BaseBackend, outcomes: Sequence[str], read: PeriodReader | None = None
    ) -> list[Drivers]:
        """Drivers of several outcomes over one read of the periods and their features (the engine's part is
        the slow one; the models run per outcome); `read` may share that read with other callers."""
        read = read or read_periods
        touchpoints, periods = read(self, backend)
        features = _Features.of(periods, touchpoints)
        units = periods.select(["customer_id", "period", "touches", "converted", "churn"])
        # Conversion and repeat leave out the open periods (their outcome is not known yet): found once for both.
        wanted = units.num_rows and {"conversion", "repeat"} & set(outcomes)
        known = known_periods(units, self.churn) if wanted else np.ones(units.num_rows, dtype=bool)
        return [self._one(outcome, units, features, known) for outcome in outcomes]

    def _one(self, outcome: str, all_units: pa.Table, features: _Features, known: np.ndarray[Any, Any]) -> Drivers:
        # Repeat and churn are about what follows a purchase: the periods after a first conversion.
        # Conversion and repeat leave out the open period (its outcome is not known yet); churn keeps it as
        # "not churned so far", which is what inactivity churn can say about a customer still active.
        rows = np.ones(all_units.num_rows, dtype=bool)
        if outcome in ("conversion", "repeat"):
            rows = known.copy()
        if outcome in ("repeat", "churn"):
            rows &= all_units.column("period").to_numpy() > 0
        units = all_units.filter(pa.array(rows))
        y = units.column("churn" if outcome == "churn" else "converted").to_numpy().astype(float)
        base = float(y.mean()) if y.size else None
        later = units.column("period").to_numpy() > 0
        names, x = self._matrix(features, rows, later)
        message = self._too_little(outcome, y, names)
        if message is not None:
            return Drivers(outcome, units.num_rows, base, [], message)
        touches = units.column("touches").to_numpy().astype(float)
        effects = {e.name: e for e in self._model(names, x, y, later, touches)}
        drivers = compare(names, x, y, later)
        for d in drivers:
            d.effect = effects.get(d.feature)
        drivers.sort(key=lambda d: (not d.significant, -abs(d.comparison.difference or 0.0), d.feature))
        return Drivers(outcome, units.num_rows, base, drivers)

    def _too_little(self, outcome: str, y: Any, names: list[str]) -> str | None:
        """Why the data cannot tell drivers of `outcome` apart, in words; None when it can."""
        n, scope, what = int(y.size), SCOPE[outcome], OUTCOME_WORDS[outcome]
        if n < self.min_periods:
            return f"Too little data: {n:,} {scope}; drivers of {outcome} need {self.min_periods:,} or more."
        if not y.any():
            return f"No {outcome} in the data: none of the {n:,} {scope} ended in {what}, so nothing drives it yet."
        if y.all():
            return f"All {n:,} {scope} ended in {what}: there are no periods without it to compare with."
        if not names:
            return (
                f"No touchpoint or experience is met in {self.min_periods:,} or more of the {n:,} {scope} and missed "
                f"in as many: there is nothing to compare."
            )
        return None

    def _matrix(self, features: _Features, rows: Any, later: Any) -> tuple[list[str], Any]:
        """True/False columns over the chosen periods, one per feature with enough periods on both sides. A touch
        feature's column is its bit of its mask word over the chosen periods (each word chosen once); feedback
        features are set from their (period, feature) pairs. A post-purchase touchpoint's features are cleared
        outside the periods after a first conversion (`later`, over the chosen periods) and need their periods
        with and without among those: they are then met only there, and `compare` takes those periods alone."""
        chosen = np.flatnonzero(rows)
        n = chosen.size
        words: dict[int, Any] = {}
        after = {f"{kind}:{tp}" for kind in KINDS for tp in self.post_purchase}

        def column(i: int) -> Any:
            mask, bit = features.bits[i]
            if id(mask) not in words:
                words[id(mask)] = mask[rows]
            seen = has_bit(words[id(mask)], bit)
            return seen & later if features.every[i] in after else seen

        kept = rows[features.units] if features.units.size else np.zeros(0, dtype=bool)
        # A feedback pair's period's row among the chosen ones: where it falls among them (a running count of
        # every period took 0.3 s at 100M events).
        codes, units = features.codes[kept], np.searchsorted(chosen, features.units[kept])
        pairs = later[units] | ~np.isin(codes, [i for i, f in enumerate(features.every) if f in after])
        codes, units = codes[pairs], units[pairs]
        support = [int(np.count_nonzero(column(i))) for i in range(len(features.bits))]
        support += np.bincount(codes, minlength=len(features.every))[len(features.bits) :].tolist()
        excluded = {f"{kind}:{tp}" for kind in KINDS for tp in self.exclude}
        index = {f: i for i, f in enumerate(features.every)}
        scope = {True: int(np.count_nonzero(later)), False: n}
        names = sorted(
            f
            for f, count in zip(features.every, support, strict=True)
            if self.min_periods <= count <= scope[f in after] - self.min_periods and f not in excluded
        )
        # Booleans by column (Fortran order): each feature's periods lie together, for `compare`'s column reads.
        x = np.zeros((n, len(names)), dtype=bool, order="F")
        place = np.full(len(features.every), -1, dtype=np.int64)
        for j, f in enumerate(names):
            if index[f] < len(features.bits):
                x[:, j] = column(index[f])
            else:
                place[index[f]] = j
        pairs = place[codes] >= 0
        x[units[pairs], place[codes][pairs]] = True
        return names, x

    def _model(self, names: list[str], x: Any, y: Any, later: Any, touches: Any) -> list[Effect]:
        """The logistic model over the touchpoints seen, low scores and negative comments (one column for
        features that always occur together), with controls for the first period and the period's size."""
        keep: list[int] = []
        by_digest: dict[bytes, list[int]] = {}  # columns by a digest of their bits: a million rows each
        for j, name in enumerate(names):
            if name.partition(":")[0] not in MODEL_KINDS:
                continue
            same = by_digest.setdefault(hashlib.blake2b(np.packbits(x[:, j]).tobytes()).digest(), [])
            if not any(np.array_equal(x[:, k], x[:, j]) for k in same):
                keep.append(j)
                same.append(j)
        # The model's columns as they are (booleans, one float column): no float matrix of every period.
        columns = [x[:, j] for j in keep] + [~later, np.log1p(touches)]
        model_names = [names[j] for j in keep] + ["first_period", "touches"]
        return logistic_effects(columns, y, model_names, samples=self.samples, seed=self.seed, C=0.5)


@dataclass(frozen=True)
class _Features:
    """Every feature of the periods, named "kind:touchpoint": a touch feature is a bit of a mask word (the array
    of that word over every period, as `periods_expr` gives it, and the bit), the first `len(bits)` of `every`;
    a feedback feature is its (period row, feature code) pairs, from the periods' lists. No per-pair arrays for
    touches: 100M events have about 100M of them."""

    every: list[str]
    bits: list[tuple[Any, int]]
    codes: Any
    units: Any

    @classmethod
    def of(cls, periods: pa.Table, touchpoints: Sequence[str]) -> _Features:
        every: list[str] = []
        bits: list[tuple[Any, int]] = []
        for kind in TOUCH_KINDS:
            for w in range(_words(touchpoints)):
                mask = periods.column(f"{kind}_{w}").fill_null(0).to_numpy()
                for b, tp in enumerate(touchpoints[w * BITS : (w + 1) * BITS]):
                    bits.append((mask, 1 << b))
                    every.append(f"{kind}:{tp}")
        codes, units = [np.zeros(0, dtype=np.int32)], [np.zeros(0, dtype=np.int32)]
        for kind in KINDS[len(TOUCH_KINDS) :]:
            lists = periods.column(kind).combine_chunks()
            encoded = pc.dictionary_encode(pc.list_flatten(lists))
            codes.append(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32) + len(every))
            units.append(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int32))
            every += [f"{kind}:{tp}" for tp in encoded.dictionary.to_pylist()]
        return cls(every, bits, np.concatenate(codes), np.concatenate(units))


def has_features(periods: pa.Table, touchpoints: Sequence[str], kind: str, keys: Sequence[str]) -> np.ndarray[Any, Any]:
    """Which of `periods_expr`'s rows have the touch feature `kind` (seen, repeated, ...) for each of `keys`: a
    boolean matrix, a column per key (False throughout for a key no touch names). Each mask word is read once."""
    # By column (Fortran order): each key's periods lie together, for the column reads of whoever tests them (35
    # against 4 ms a test over 7.6M periods in `insights.effects`).
    out = np.zeros((periods.num_rows, len(keys)), dtype=bool, order="F")
    words: dict[int, np.ndarray[Any, Any]] = {}
    index = {tp: i for i, tp in enumerate(touchpoints)}
    for j, key in enumerate(keys):
        if key not in index:
            continue
        word, bit = divmod(index[key], BITS)
        if word not in words:
            words[word] = periods.column(f"{kind}_{word}").fill_null(0).to_numpy()
        out[:, j] = has_bit(words[word], 1 << bit)
    return out


def has_bit(mask: np.ndarray[Any, Any], bit: int) -> np.ndarray[Any, Any]:
    """Which of `mask`'s words (int64, one a period) have `bit` (a power of two) set, read from the byte that
    holds it: no 64-bit temporary of every period (3.6 against 10 ms a bit over 5.2M periods)."""
    b = bit.bit_length() - 1
    byte = b // 8 if sys.byteorder == "little" else 7 - b // 8
    return np.asarray(np.ascontiguousarray(mask, dtype=np.int64).view(np.uint8)[byte::8] & np.uint8(1 << b % 8) != 0)


def _bits(t: ibis.Table, kind: str, word: int, bitwise: bool) -> Any:
    """The mask of word `word` of `kind`: OR of the touches' bits, or their sum over rows already one a touchpoint."""
    bit = ibis.ifelse((t.word == word) & (True if kind == "seen" else t[kind]), t.bit, 0)
    return bit.bit_or() if bitwise else bit.sum()


def _words(touchpoints: Sequence[str]) -> int:
    """How many 64-bit words a mask of `touchpoints` takes (one at least, so every mask column exists)."""
    return max(1, -(-len(touchpoints) // BITS))


def defined(m: TouchpointMap) -> list[str]:
    """The outcomes the map defines, in the order drivers report them."""
    return [o for o in ("conversion", "repeat", "churn") if getattr(m.outcomes, o) is not None]


def query_for(m: TouchpointMap, outcome: str, samples: int = 100) -> DriversQuery:
    """The drivers query of one outcome of the map; `MissingOutcome` when the map does not define it."""
    if outcome not in defined(m):
        event = m.outcomes.conversion.event if m.outcomes.conversion is not None else None
        raise MissingOutcome(outcome, missing_message(outcome, event if isinstance(event, str) else None))
    if m.outcomes.conversion is None:
        raise MissingOutcome(outcome, _needs_conversion(outcome))
    purchase = tuple(t.key for t in m.touchpoints if t.phase == Phase.purchase)
    sent = tuple(t.key for t in m.touchpoints if t.initiative == Initiative.proactive)
    after = tuple(t.key for t in m.touchpoints if t.phase == Phase.post_purchase)
    return DriversQuery(
        outcome,
        m.outcomes.conversion,
        m.outcomes.churn,
        samples=samples,
        exclude=purchase,
        company_sent=sent,
        post_purchase=after,
    )


def read_periods(query: DriversQuery, backend: ibis.BaseBackend) -> tuple[list[str], pa.Table]:
    """`periods_expr`'s rows, and the touchpoints their masks' bits stand for (those the events name, or the
    layer's coded ones). The rows come in the engine's order, which may change from one run to the next: what
    reads them depends on no order (drivers resample distinct rows in their own order; insights look periods up
    by key)."""
    stored = query.stored_expr(backend)
    if stored is None:
        touchpoints = query.touchpoints(backend)
        return touchpoints, backend.to_pyarrow(query.periods_expr(backend, touchpoints))
    touchpoints, expr = stored
    return touchpoints, backend.to_pyarrow(expr)


def _ids(t: ibis.Table) -> ibis.Table:
    """`customer_id` alone, one type for the layer's and the events' (so they unite)."""
    return t.select(customer_id=t.customer_id.cast("string"))


def _spread(words: Any, touchpoints: Sequence[str]) -> dict[str, Any]:
    """The layer's list of mask words (`store/periods.py`) as `periods_expr`'s mask columns, 0 for a word a period
    has none of; spread by the engine as it reads them: reading the lists and spreading them in Python took 1.1 to
    2.3 s more at 100M events."""
    word = [words.filter(lambda x, w=w: x.word == w)[0] for w in range(_words(touchpoints))]
    return {f"{kind}_{w}": word[w][kind].fill_null(0) for kind in TOUCH_KINDS for w in range(len(word))}


# `read_periods`, or a reader that shares its result (the workspace's, one read for drivers and insights).
PeriodReader = Callable[[DriversQuery, ibis.BaseBackend], tuple[list[str], pa.Table]]


def periods_key(query: DriversQuery) -> DriversQuery:
    """What `periods_expr` depends on: the query without its outcome and resamples (every outcome's drivers
    and the insights read the same periods)."""
    return replace(query, outcome="conversion", samples=0)


def every_outcome(
    m: TouchpointMap, backend: ibis.BaseBackend, samples: int = 100, read: PeriodReader | None = None
) -> DriversReport:
    """Drivers of every outcome the map defines, over one read of the periods; the rest said in words."""
    report = DriversReport()
    runnable = []
    for outcome in ("conversion", "repeat", "churn"):
        try:
            query_for(m, outcome, samples)
            runnable.append(outcome)
        except MissingOutcome as exc:
            report.missing.append((outcome, str(exc)))
    if runnable:
        report.outcomes = query_for(m, runnable[0], samples).run_each(backend, runnable, read)
    return report


def _keyed(t: ibis.Table) -> ibis.Table:
    """(customer_id, period, touchpoint) with one schema for every table of them."""
    return t.select(customer_id=t.customer_id.cast("string"), period=t.period.cast("int64"), touchpoint="touchpoint")


def _pairs(t: ibis.Table, kind: str) -> ibis.Table:
    """(customer_id, period, "kind:touchpoint") with one schema for every part of the union."""
    return t.select(
        customer_id=t.customer_id.cast("string"),
        period=t.period.cast("int64"),
        feature=ibis.literal(f"{kind}:").concat(t.touchpoint.cast("string")),
    )


@dataclass(frozen=True)
class NpsDriversQuery:
    """Key drivers of overall NPS: each customer's latest NPS score regressed on their scores at each touchpoint
    (0–1, higher better; a touchpoint a customer never rated gets its mean), split by Johnson's relative weights.

    The weights are computed from `min_customers` customers a touchpoint, but are only worth acting on with
    `min_answered` customers who answered both surveys and an R² of `min_r2` or more: below either, `message`
    says so in words (and the weights stay in the result, for reference)."""

    min_customers: int = 30
    min_answered: int = 100
    min_r2: float = 0.05

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        f = backend.table("feedback")
        rated = f.filter((f.metric != "nps") & f.touchpoint.notnull())
        share = (rated.score - rated.scale_min) / (rated.scale_max - rated.scale_min)
        good = ibis.cases((rated.metric == "ces", 1 - share), else_=share)
        per = rated.mutate(good=good).group_by(["customer_id", "touchpoint"]).aggregate(score=ibis._.good.mean())
        nps = f.filter(f.metric == "nps")
        w = ibis.window(group_by=nps.customer_id, order_by=[ibis.desc(nps.ts), nps.response_id])
        latest = nps.mutate(rank=ibis.row_number().over(w)).filter(ibis._.rank == 0)
        latest = latest.select(n_customer="customer_id", nps="score")
        return per.join(latest, per.customer_id == latest.n_customer).drop("n_customer")

    def run(self, backend: ibis.BaseBackend) -> dict[str, Any]:
        rows = backend.to_pyarrow(self.to_expr(backend)).to_pylist()
        found = self._weights(rows)
        return {**found, "message": self._message(found["customers"], found["r2"])}

    def _message(self, customers: int, r2: float | None) -> str | None:
        """Why the weights are not to be acted on, in words; None when they may be."""
        if customers < self.min_answered:
            return (
                f"Too little data: {customers:,} customers answered both the NPS survey and a touchpoint survey; "
                f"key drivers need {self.min_answered:,} or more."
            )
        if r2 is None or r2 < self.min_r2:
            explained = "none" if not r2 else f"{r2:.1%}"
            return (
                f"Touchpoint scores explain {explained} of the differences in NPS across {customers:,} customers "
                f"(under {self.min_r2:.0%}): no touchpoint is a key driver of it."
            )
        return None

    def _weights(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["touchpoint"]] = counts.get(r["touchpoint"], 0) + 1
        names = sorted(k for k, n in counts.items() if n >= self.min_customers)
        customers = sorted({r["customer_id"] for r in rows})
        if len(names) < 2 or len(customers) < self.min_customers:
            return {"customers": len(customers), "r2": None, "weights": []}
        row_of, col_of = {c: i for i, c in enumerate(customers)}, {t: j for j, t in enumerate(names)}
        x = np.full((len(customers), len(names)), np.nan)
        y = np.zeros(len(customers))
        for r in rows:
            y[row_of[r["customer_id"]]] = r["nps"]
            if r["touchpoint"] in col_of:
                x[row_of[r["customer_id"]], col_of[r["touchpoint"]]] = r["score"]
        x = np.where(np.isnan(x), np.nanmean(x, axis=0), x)
        weights = relative_weights(x, y, names)
        return {
            "customers": len(customers),
            "r2": sum(w.weight for w in weights),
            "weights": [{"touchpoint": w.name, "weight": w.weight, "share": w.share} for w in weights],
        }
