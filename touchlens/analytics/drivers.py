"""Drivers of conversion, repeat purchase and churn: which touchpoints and experiences raise or lower the odds.

The unit is a customer's **period**: from the start (or a conversion) to the next conversion or the end of the
data — the same cut as attribution's paths. A period's outcome: `conversion` it ends in a conversion;
`repeat` the same, over the periods after a first conversion; `churn` it is the customer's last period and
the customer churned (the map's churn event, or no activity for `inactive_days` before the data ends).
Features, per touchpoint: seen in the period, repeated within 7 days, reached after a wait of 3 days or more,
reached by switching channel within 24 hours, given a low score, or a negative comment. The engine builds the
(period, feature) pairs; the model (`drivers_model`) runs on the small matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchlens.analytics import stats
from touchlens.analytics.conditions import outcome_predicate
from touchlens.analytics.drivers_model import Effect, logistic_effects, relative_weights
from touchlens.analytics.engine import events, within
from touchlens.errors import BadOption
from touchlens.model.map import OutcomeRule

OUTCOMES = ("conversion", "churn", "repeat")
# Each resample refits the model (about 0.1 s on 5,000 customers, ten times that on a busy server).
MAX_SAMPLES = 200
KINDS = ("seen", "repeated", "waited", "switched", "low_score", "negative")
MODEL_KINDS = ("seen", "low_score", "negative")
ALPHA = 0.05
LOW_SHARE = 0.4  # a score in the worst 40% of its scale (CSAT 1–2, NPS 0–4, CES 5–7) is low


@dataclass
class Driver:
    """One feature's effect: the plain comparison (rate with it against without, tested) and, for the features
    in the model, its standardised logistic effect with a bootstrap interval."""

    feature: str
    kind: str
    touchpoint: str | None
    periods_with: int
    rate_with: float | None
    rate_without: float | None
    lift: float | None
    p_value: float | None  # Holm-adjusted over every feature tested
    compared_with: str  # "all periods" or "periods after a first conversion"
    effect: Effect | None = None

    def to_dict(self) -> dict[str, Any]:
        e = self.effect
        return {
            "feature": self.feature,
            "kind": self.kind,
            "touchpoint": self.touchpoint,
            "periods_with": self.periods_with,
            "rate_with": self.rate_with,
            "rate_without": self.rate_without,
            "lift": self.lift,
            "p_value": self.p_value,
            "compared_with": self.compared_with,
            "coefficient": e.coefficient if e else None,
            "odds_ratio": e.odds_ratio if e else None,
            "low": e.low if e else None,
            "high": e.high if e else None,
            "significant": self.significant,
        }

    @property
    def significant(self) -> bool:
        """The plain comparison holds after Holm's correction (p < 0.05), and the model, where the feature is
        in it, does not contradict it (its interval excludes zero on the same side)."""
        if self.p_value is None or self.p_value >= ALPHA or self.lift is None:
            return False
        e = self.effect
        if e is None or e.low is None or e.high is None:
            return True
        return e.low > 0 if self.lift > 1 else e.high < 0


@dataclass
class Drivers:
    outcome: str
    periods: int
    base_rate: float | None
    drivers: list[Driver]

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "periods": self.periods,
            "base_rate": self.base_rate,
            "drivers": [d.to_dict() for d in self.drivers],
        }

    def raising(self) -> list[Driver]:
        """Significant drivers that raise the odds of the outcome, strongest lift first."""
        found = [d for d in self.drivers if d.significant and d.lift is not None and d.lift > 1]
        return sorted(found, key=lambda d: -(d.lift or 0))

    def find(self, kind: str, touchpoint: str) -> Driver | None:
        return next((d for d in self.drivers if d.kind == kind and d.touchpoint == touchpoint), None)


@dataclass(frozen=True)
class DriversQuery:
    """Effects of each feature on `outcome` over customers' periods between conversions."""

    outcome: str
    conversion: OutcomeRule
    churn: OutcomeRule | None = None
    min_periods: int = 30
    samples: int = 100
    seed: int = 7
    repeat_window: timedelta = timedelta(days=7)
    wait: timedelta = timedelta(days=3)
    switch_window: timedelta = timedelta(hours=24)
    # Touchpoints that are the conversion itself (the map's purchase phase): they would "predict" it trivially.
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.samples <= MAX_SAMPLES:
            raise BadOption(f"--bootstrap: 0 to {MAX_SAMPLES} resamples, not {self.samples}")

    def _periods(self, backend: ibis.BaseBackend) -> tuple[ibis.Table, ibis.Table]:
        """Touches with their period number, and the conversions (one row per converting period)."""
        t = events(backend)
        conv = outcome_predicate(t, self.conversion).fill_null(False).cast("int64")
        t = t.mutate(conv=conv)
        w = ibis.cumulative_window(group_by=t.customer_id, order_by=[t.ts, t.event_id])
        t = t.mutate(period=t.conv.sum().over(w) - t.conv)
        touches = t.filter((t.conv == 0) & t.touchpoint.notnull())
        convs = t.filter(t.conv == 1).group_by(["customer_id", "period"]).aggregate(won=ibis.literal(1))
        return touches, convs

    def features_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        """(customer_id, period, feature) for every feature a period has."""
        touches, _ = self._periods(backend)
        w = ibis.window(group_by=[touches.customer_id, touches.period], order_by=[touches.ts, touches.event_id])
        same = ibis.window(
            group_by=[touches.customer_id, touches.period, touches.touchpoint], order_by=[touches.ts, touches.event_id]
        )
        prev_ts, prev_channel = touches.ts.lag().over(w), touches.channel.lag().over(w)
        flagged = touches.mutate(
            repeated=within(touches.ts, touches.ts.lag().over(same), self.repeat_window).fill_null(False),
            waited=(~within(touches.ts, prev_ts, self.wait)).fill_null(False),
            switched=(within(touches.ts, prev_ts, self.switch_window) & (touches.channel != prev_channel)).fill_null(
                False
            ),
        )
        parts = [_pairs(flagged, "seen")]
        for kind in ("repeated", "waited", "switched"):
            parts.append(_pairs(flagged.filter(flagged[kind]), kind))
        parts += self._feedback_features(backend)
        return ibis.union(*parts, distinct=True)

    def _feedback_features(self, backend: ibis.BaseBackend) -> list[ibis.Table]:
        """Low scores and negative comments, each in the period its response falls in."""
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
        return [_pairs(low, "low_score"), _pairs(negative, "negative")]

    def units_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        """One row per period with touches: its outcome flags and its size."""
        touches, convs = self._periods(backend)
        units = touches.group_by(["customer_id", "period"]).aggregate(touches=touches.count(), last_ts=touches.ts.max())
        j = units.left_join(convs, ["customer_id", "period"])
        j = j.mutate(converted=j.won.notnull().cast("int64")).drop("won", "customer_id_right", "period_right")
        last = j.group_by("customer_id").aggregate(last_period=j.period.max())
        j = j.join(last, "customer_id")
        everything = events(backend)
        data_end = everything.ts.max().as_scalar()
        gone = everything.group_by("customer_id").aggregate(seen=everything.ts.max())
        if self.churn is not None and self.churn.event is not None:
            churned = everything.filter(outcome_predicate(everything, self.churn)).select("customer_id").distinct()
            churned = churned.mutate(churned=ibis.literal(1))
        else:
            days = timedelta(days=(self.churn.inactive_days if self.churn and self.churn.inactive_days else 365))
            quiet = gone.filter(~within(data_end, gone.seen, days))
            churned = quiet.select("customer_id", churned=ibis.literal(1))
        j = j.left_join(churned, "customer_id")
        is_last = j.period == j.last_period
        return j.select(
            "customer_id",
            "period",
            "touches",
            "converted",
            churn=(is_last & j.churned.notnull() & (j.converted == 0)).cast("int64"),
        )

    def run(self, backend: ibis.BaseBackend) -> Drivers:
        units = backend.to_pyarrow(self.units_expr(backend))
        if self.outcome in ("repeat", "churn"):
            # Repeat and churn are about what follows a purchase: the periods after a first conversion.
            units = units.filter(pc.greater(units.column("period"), 0))
        if not units.num_rows:
            return Drivers(self.outcome, 0, None, [])
        names, x = self._matrix(backend, units)
        y = units.column("churn" if self.outcome == "churn" else "converted").to_numpy().astype(float)
        later = units.column("period").to_numpy() > 0
        touches = units.column("touches").to_numpy().astype(float)
        effects = {e.name: e for e in self._model(names, x, y, later, touches)}
        drivers = _compare(names, x, y, later)
        for d in drivers:
            d.effect = effects.get(d.feature)
        drivers.sort(key=lambda d: (not d.significant, -abs(math.log(d.lift)) if d.lift else 0.0, d.feature))
        return Drivers(self.outcome, units.num_rows, float(y.mean()), drivers)

    def _matrix(self, backend: ibis.BaseBackend, units: pa.Table) -> tuple[list[str], Any]:
        """0/1 columns, one per feature with enough periods on both sides; built with Arrow joins and numpy
        indexing, since a big store has millions of (period, feature) pairs."""
        pairs = backend.to_pyarrow(self.features_expr(backend))
        keys = units.select(["customer_id", "period"]).cast(
            pa.schema([("customer_id", pa.string()), ("period", pa.int64())])
        )
        indexed = keys.append_column("unit", pa.array(np.arange(units.num_rows, dtype=np.int64)))
        joined = pairs.join(indexed, keys=["customer_id", "period"], join_type="inner")
        encoded = joined.column("feature").combine_chunks().dictionary_encode()
        every = encoded.dictionary.to_pylist()
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        support = np.bincount(codes, minlength=len(every))
        excluded = {f"{kind}:{tp}" for kind in KINDS for tp in self.exclude}
        most = units.num_rows - self.min_periods
        names = sorted(
            f
            for f, n in zip(every, support.tolist(), strict=True)
            if self.min_periods <= n <= most and f not in excluded
        )
        column = np.full(len(every), -1, dtype=np.int64)
        for j, f in enumerate(names):
            column[every.index(f)] = j
        x = np.zeros((units.num_rows, len(names)))
        kept = column[codes] >= 0
        x[joined.column("unit").to_numpy()[kept], column[codes][kept]] = 1.0
        return names, x

    def _model(self, names: list[str], x: Any, y: Any, later: Any, touches: Any) -> list[Effect]:
        """The logistic model over the touchpoints seen, low scores and negative comments (one column for
        features that always occur together), with controls for the first period and the period's size."""
        keep, seen_columns = [], set()
        for j, name in enumerate(names):
            column = x[:, j].tobytes()
            if name.partition(":")[0] in MODEL_KINDS and column not in seen_columns:
                keep.append(j)
                seen_columns.add(column)
        controls = np.column_stack([~later, np.log1p(touches)]).astype(float)
        design = np.column_stack([x[:, keep], controls])
        model_names = [names[j] for j in keep] + ["first_period", "touches"]
        return logistic_effects(design, y, model_names, samples=self.samples, seed=self.seed, C=0.5)


def _compare(names: list[str], x: Any, y: Any, later: Any) -> list[Driver]:
    """Each feature's outcome rate with it against without, like with like: a feature seen almost only after
    a first conversion is compared with the other periods after a first conversion."""
    rows, p_values = [], []
    for j, name in enumerate(names):
        has = x[:, j] > 0
        only_later = later[has].mean() >= 0.9 and not later.all()
        pool = later if only_later else np.ones_like(has)
        with_, without = y[has & pool], y[~has & pool]
        test = stats.compare_shares(int(with_.sum()), with_.size, int(without.sum()), without.size)
        rate_with = float(with_.mean()) if with_.size else None
        rate_without = float(without.mean()) if without.size else None
        lift = rate_with / rate_without if rate_with is not None and rate_without else None
        kind, _, touchpoint = name.partition(":")
        where = "periods after a first conversion" if only_later else "all periods"
        rows.append(Driver(name, kind, touchpoint or None, int(has.sum()), rate_with, rate_without, lift, None, where))
        p_values.append(1.0 if test.p_value is None else test.p_value)
    for row, p in zip(rows, stats.holm(p_values) if p_values else [], strict=True):
        row.p_value = p
    return rows


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
    (0–1, higher better; a touchpoint a customer never rated gets its mean), split by Johnson's relative weights."""

    min_customers: int = 30

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
