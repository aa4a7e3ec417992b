"""Attribution paths from the journeys: each customer's touches cut after every conversion.

The conversion event ends its path and is not part of it; what follows the last conversion is a path that
did not convert. Paths come back aggregated (distinct sequence → conversions, non-conversions, value).

By channel, a touch's channel is the event's own, else its touchpoint's channel in the map (`channel_of`): sources
such as Segment carry no channel, while the map says each touchpoint's. `(none)` only when neither has one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import ibis
import pyarrow.compute as pc

from touchlens.analytics.attribution import CONVERSION, NULL, START, Chain, Path, Paths
from touchlens.analytics.conditions import outcome_predicate
from touchlens.analytics.engine import arrow, events, property_text, seconds_between, within
from touchlens.analytics.journeys import JourneyOptions, periods_layer
from touchlens.model.map import OutcomeRule

BY = ("touchpoint", "channel")
NONE = "(none)"  # the channel of a touch whose event and touchpoint name none
KEY_CODES = ibis.schema({"key": "string", "code": "int32"})


@dataclass(frozen=True)
class PathsQuery:
    """Aggregated paths of `by` keys (touchpoint or channel) ending at the map's conversion outcome."""

    conversion: OutcomeRule
    by: str = "touchpoint"
    options: JourneyOptions = field(default_factory=JourneyOptions)
    # Touches longer than this before their conversion are left out of the converting path.
    lookback: timedelta | None = None
    # (touchpoint, channel) pairs from the map: a touch's channel when its event names none.
    channel_of: tuple[tuple[str, str], ...] = ()

    def _layer(self, backend: ibis.BaseBackend) -> ibis.Table | None:
        """The journey layer with its periods, when it serves these paths (all time, cut by this conversion)."""
        if self.options.start is not None or self.options.end is not None:
            return None
        return periods_layer(backend, self.conversion)

    def _split(self, backend: ibis.BaseBackend) -> tuple[ibis.Table, ibis.Table, Any]:
        """Touches numbered into paths, the conversions (one a path), and the key column of the touches."""
        layer = self._layer(backend)
        if layer is not None:
            return self._split_layer(backend, layer)
        t = self._events(backend)
        order = [t.ts, t.event_id]
        is_conv = outcome_predicate(t, self.conversion).fill_null(False).cast("int64")
        t = t.mutate(conv=is_conv, step=ibis.row_number().over(ibis.window(group_by=t.customer_id, order_by=order)))
        w = ibis.cumulative_window(group_by=t.customer_id, order_by=[t.ts, t.event_id])
        t = t.mutate(path=t.conv.sum().over(w) - t.conv)  # conversions before this event
        return self._keyed(t.filter((t.conv == 0) & t.touchpoint.notnull()), t.filter(t.conv == 1))

    def _split_layer(self, backend: ibis.BaseBackend, layer: ibis.Table) -> tuple[ibis.Table, ibis.Table, Any]:
        """`_split` from the layer: its periods are the paths and its positions the steps (no sort of every
        customer's events); only the conversions are numbered, a sort of them alone."""
        touches = layer.filter(layer.period >= 0).mutate(path=layer.period, step=layer.pos)
        t = events(backend)
        convs = t.filter(outcome_predicate(t, self.conversion).fill_null(False))
        convs = convs.mutate(
            conv=ibis.literal(1),
            path=ibis.row_number().over(ibis.window(group_by=convs.customer_id, order_by=[convs.ts, convs.event_id])),
        )
        return self._keyed(touches, convs)

    def _keyed(self, touches: ibis.Table, convs: ibis.Table) -> tuple[ibis.Table, ibis.Table, Any]:
        """The touches with their key, and per converting path its value, conversions and time (lookback applied)."""
        key = self._key(touches.touchpoint, touches.channel)
        value = _number(property_text(convs, self.conversion.value)) if self.conversion.value else convs.conv * 0.0
        won = convs.group_by(["customer_id", "path"]).aggregate(
            value=value.sum(), won=convs.count(), conv_ts=convs.ts.min()
        )
        touches = touches.mutate(key=key)
        if self.lookback is not None:
            dated = touches.left_join(won.select("customer_id", "path", "conv_ts"), ["customer_id", "path"])
            recent = dated.conv_ts.isnull() | within(dated.conv_ts, dated.ts, self.lookback)
            touches = dated.filter(recent).drop("conv_ts", "customer_id_right", "path_right")
        return touches, won, key

    def _key(self, touchpoint: Any, channel: Any) -> Any:
        """A touch's key: its touchpoint, or by channel its channel (`_channel`)."""
        return touchpoint if self.by == "touchpoint" else self._channel(touchpoint, channel)

    def _channel(self, touchpoint: Any, channel: Any) -> Any:
        """The event's channel (an empty one is none), else the touchpoint's channel in the map, else (none)."""
        own = channel.nullif("")
        if not self.channel_of:
            return own.fill_null(NONE)
        mapped = touchpoint.cases(*self.channel_of, else_=ibis.null("string"))
        return ibis.coalesce(own, mapped, ibis.literal(NONE))

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        touches, won, _ = self._split(backend)
        seqs = touches.group_by(["customer_id", "path"]).aggregate(
            seq=ibis.struct({"step": touches.step, "key": touches.key}).collect()
        )
        seqs = seqs.mutate(steps=seqs.seq.sort().map(lambda s: s.key))
        joined = seqs.left_join(won, ["customer_id", "path"])
        converted = joined.won.notnull().cast("int64")
        return joined.group_by("steps").aggregate(
            conversions=converted.sum(), nulls=(1 - converted).sum(), value=joined.value.fill_null(0.0).sum()
        )

    def _coded(self, backend: ibis.BaseBackend) -> Paths | None:
        """`to_expr` from the layer with each key as a small number: the engine orders a path's steps and groups
        the paths on lists of numbers instead of sorting structs of strings (5 s → 2 s at 10M events), and the
        arrays come back as the models read them, with no Python object per path. DuckDB only (the layer)."""
        touches, won, key = self._split(backend)
        keys = sorted(str(k) for k in arrow(backend, touches.select(k=key).distinct()).column("k").to_pylist())
        codes = ibis.memtable({"key": keys, "code": list(range(len(keys)))}, schema=KEY_CODES)
        # A refresh between the two reads may bring a key: coded -1, and None comes back (`run` reads again).
        coded = touches.left_join(codes, "key").mutate(code=ibis._.code.fill_null(-1))
        # Each step as one number, its position then its code (+1, so -1 stays apart): a path's list is collected
        # in any order and sorted on its own, not every path's steps sorted together (a quarter less time).
        width = len(keys) + 1
        packed = coded.step * width + coded.code + 1
        steps = packed.collect().sort().map(lambda p: p % width - 1)
        seqs = coded.group_by(["customer_id", "path"]).aggregate(steps=steps)
        joined = seqs.left_join(won, ["customer_id", "path"])
        converted = joined.won.notnull().cast("int64")
        grouped = joined.group_by("steps").aggregate(
            conversions=converted.sum(), nulls=(1 - converted).sum(), value=joined.value.fill_null(0.0).sum()
        )
        table = arrow(backend, grouped.order_by("steps"))  # codes follow the keys' order, so this is by steps
        steps = table.column("steps").combine_chunks()
        totals = tuple(table.column(c).to_numpy().astype(float) for c in ("conversions", "nulls", "value"))
        lengths = pc.list_value_length(steps).to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(steps).to_numpy(zero_copy_only=False)
        return None if len(flat) and flat.min() < 0 else Paths.of(keys, flat, lengths, totals)

    def transitions(self, backend: ibis.BaseBackend) -> Chain:
        """The order-1 Markov chain of the paths, counted in the engine: start → keys → conversion / null.

        What `attribution.markov` counts from the paths themselves, but the engine returns one row per pair of
        keys instead of one per distinct path (millions on a big store)."""
        touches, won, _ = self._split(backend)
        if self.lookback is None and self._layer(backend) is not None:  # the neighbours in the path, as kept
            before = self._key(touches.prev_touchpoint, touches.prev_channel)
            before = ibis.cases((touches.prev_period == touches.period, before), else_=ibis.null("string"))
            touches = touches.mutate(before=before, last=~(touches.next_period == touches.period).fill_null(False))
        else:
            w = ibis.window(group_by=[touches.customer_id, touches.path], order_by=touches.step)
            touches = touches.mutate(before=touches.key.lag().over(w), last=touches.step.lead().over(w).isnull())
        # One pass: each touch is the step into its key; a path's last touch also steps out, to conversion or null.
        j = touches.left_join(won, ["customer_id", "path"])
        pairs = j.group_by(a=j.before.fill_null(START), b=j.key, last=j.last, won=j.won.notnull()).aggregate(
            n=j.count(), value=j.value.fill_null(0.0).sum()
        )
        counts: dict[tuple[Any, Any], float] = defaultdict(float)
        conversions = value = 0.0
        for r in arrow(backend, pairs).to_pylist():
            counts[(r["a"], r["b"])] += r["n"]
            if r["last"]:
                counts[(r["b"], CONVERSION if r["won"] else NULL)] += r["n"]
                conversions += r["n"] if r["won"] else 0
                value += (r["value"] or 0.0) if r["won"] else 0.0
        return Chain(dict(counts), conversions, value)

    def time_decay(self, backend: ibis.BaseBackend, half_life: timedelta) -> tuple[dict[str, float], dict[str, float]]:
        """Credit halving every `half_life` before the conversion: weight 2^(−age / half-life), shares per path."""
        touches, won, _ = self._split(backend)
        j = touches.join(won, ["customer_id", "path"])
        age = seconds_between(backend, j.conv_ts, j.ts)
        j = j.mutate(weight=(age * (-math.log(2) / half_life.total_seconds())).exp())
        # Summed per path and key first: a path's few keys, not its every touch, meet the path's total.
        by_key = j.group_by(["customer_id", "path", "key", "value"]).aggregate(weight=j.weight.sum())
        per_path = by_key.group_by(["customer_id", "path"]).aggregate(total=by_key.weight.sum())
        k = by_key.join(per_path, ["customer_id", "path"])
        share = k.weight / k.total
        credit = k.group_by("key").aggregate(conversions=share.sum(), value=(share * k.value).sum())
        rows = arrow(backend, credit).to_pylist()
        return {r["key"]: float(r["conversions"]) for r in rows}, {r["key"]: float(r["value"] or 0) for r in rows}

    def _events(self, backend: ibis.BaseBackend) -> ibis.Table:
        t = events(backend)
        if self.options.start is not None:
            t = t.filter(t.ts >= self.options.start)
        if self.options.end is not None:
            t = t.filter(t.ts < self.options.end)
        return t

    def run(self, backend: ibis.BaseBackend) -> Sequence[Path]:
        """The distinct paths, sorted by their steps: engines group in any order, and the models' sums should
        not depend on it."""
        if self._layer(backend) is not None:
            for _ in range(2):  # again if a refresh between its two reads brought a key
                coded = self._coded(backend)
                if coded is not None:
                    return coded
        rows = arrow(backend, self.to_expr(backend)).to_pylist()
        paths = [
            Path(tuple(r["steps"]), float(r["conversions"]), float(r["nulls"]), float(r["value"] or 0)) for r in rows
        ]
        return sorted(paths, key=lambda p: p.steps)


def _number(value: Any) -> Any:
    """A JSON property as a number, whether the source wrote 10 or "10" (CSV cells are text)."""
    return value.try_cast("float64")
