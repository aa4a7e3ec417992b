"""What touchpoints do to outcomes, like with like, and what a finding puts at stake in outcome events a year.

The unit is a customer's period between conversions (as drivers and attribution cut them). A period whose
outcome is not known yet — the customer's last, still active at the end of the data, not converted — is left
out of conversion and repeat: counting it as "did not convert" would make every touchpoint that comes late in a
cycle look helpful. A touchpoint is compared **within its stage**: periods that reached the stage and met the
touchpoint against periods that reached the stage and did not. A touchpoint nearly every period of its stage
meets (a reminder everyone gets) has no comparison group, so nothing is said about it: its effect cannot be
told apart from the stage itself. An effect counts when it is significant after Holm's correction over every
test, moves the rate by at least `[insights] min_rate_points` and by `min_relative_effect` of its level, and is
not a step of the outcome itself (a touchpoint after which every period converts, or none does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchlens.analytics import stats
from touchlens.analytics.drivers import PeriodReader, has_features, known_periods, query_for, read_periods
from touchlens.insights.items import Insight, OutcomeEffect, Stake
from touchlens.insights.words import GOOD_OUTCOMES, Names, percent
from touchlens.model.map import Initiative, TouchpointMap

YEAR = 365.0
MIN_PERIODS = 30
ALPHA = 0.05


@dataclass(frozen=True)
class Periods:
    """Each period's touchpoints (0/1 columns), outcomes and which comparisons it may enter."""

    touchpoints: list[str]
    seen: np.ndarray  # periods × touchpoints, bool
    outcomes: dict[str, tuple[np.ndarray, np.ndarray]]  # outcome → (y, in_pool)
    days: float  # the span of the data, to turn counts into counts a year
    loops: dict[frozenset[str], np.ndarray] = field(default_factory=dict)  # pair → periods with A → B → A


@dataclass(frozen=True)
class Effects:
    """Every material, significant effect (within-stage), per touchpoint."""

    by_touchpoint: dict[str, list[OutcomeEffect]]
    days: float
    by_loop: dict[frozenset[str], list[OutcomeEffect]] = field(default_factory=dict)

    def harmful(self, keys: Sequence[str], min_points: float) -> list[OutcomeEffect]:
        return [e for k in keys for e in self.by_touchpoint.get(k, []) if _harm(e) >= min_points]

    def helpful(self, key: str, min_points: float) -> list[OutcomeEffect]:
        return [e for e in self.by_touchpoint.get(key, []) if -_harm(e) >= min_points]


def _harm(e: OutcomeEffect) -> float:
    """How many rate points worse the outcome is with the touchpoint (negative: better)."""
    return -e.difference if GOOD_OUTCOMES.get(e.outcome, True) else e.difference


def periods(backend: ibis.BaseBackend, m: TouchpointMap, read: PeriodReader | None = None) -> Periods | None:
    """The period matrix for the outcomes the map defines; None without a conversion outcome or data. `read`
    may share the drivers' read of the periods."""
    if m.outcomes.conversion is None:
        return None
    # The drivers' own cut of periods and outcomes: purchase touchpoints out, company-sent mail no activity.
    query = query_for(m, "conversion", samples=0)
    purchase = query.exclude
    touchpoints, units = (read or read_periods)(query, backend)  # every period's features in its row
    if units.num_rows == 0:
        return None
    keys = [t.key for t in m.touchpoints if t.key not in purchase]
    seen = has_features(units, touchpoints, "seen", keys)
    loops = _loops(backend.to_pyarrow(query.loops_expr(backend)), units)
    e = backend.table("events")
    span = backend.to_pyarrow(e.aggregate(lo=e.ts.min(), hi=e.ts.max())).to_pylist()[0]
    days = max(1.0, (span["hi"] - span["lo"]).total_seconds() / 86400) if span["lo"] else 1.0
    return Periods(keys, seen, _outcomes(units, m), days, loops)


def _loops(hits: pa.Table, units: pa.Table) -> dict[frozenset[str], np.ndarray]:
    """Per pair of touchpoints, the periods in which the customer went back and forth between them. A hit's row
    is found by a binary search over the periods' keys (customer's number × width + period, sorted once: the
    periods come in any order), not a join of every period. Only the periods of customers with a hit are
    searched: most customers never loop, and encoding and sorting all 762,518 periods of 10M events took 0.3 s."""
    if hits.num_rows == 0:
        return {}
    customer = units.column("customer_id").combine_chunks()
    looped = pc.is_in(customer, value_set=pc.unique(hits.column("customer_id").combine_chunks()))
    candidates = np.flatnonzero(looped.to_numpy(zero_copy_only=False))
    customers = pc.dictionary_encode(customer.take(pa.array(candidates)))
    period = units.column("period").combine_chunks().take(pa.array(candidates)).to_numpy()
    width = int(period.max()) + 1 if period.size else 1
    keys = customers.indices.to_numpy(zero_copy_only=False).astype(np.int64) * width + period
    order = np.argsort(keys)
    keys = keys[order]
    code = pc.index_in(hits.column("customer_id"), value_set=customers.dictionary)
    hit_period = hits.column("period").to_numpy(zero_copy_only=False)
    found = code.is_valid().to_numpy(zero_copy_only=False) & (hit_period >= 0) & (hit_period < width)
    wanted = code.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) * width + hit_period
    at = np.minimum(np.searchsorted(keys, wanted), max(keys.size - 1, 0))
    found &= keys[at] == wanted if keys.size else np.zeros(wanted.size, dtype=bool)
    rows = candidates[order[at]] if keys.size else at
    rows, hits = rows[found], hits.filter(pa.array(found))
    codes = pc.binary_join_element_wise(hits.column("lo"), hits.column("hi"), "\x00").dictionary_encode()
    index_of = codes.combine_chunks() if isinstance(codes, pa.ChunkedArray) else codes
    which = index_of.indices.to_numpy(zero_copy_only=False)
    out: dict[frozenset[str], np.ndarray] = {}
    for j, pair in enumerate(index_of.dictionary.to_pylist()):
        column = np.zeros(units.num_rows, dtype=bool)
        column[rows[which == j]] = True
        out[frozenset(pair.split("\x00"))] = column
    return out


def _outcomes(units: pa.Table, m: TouchpointMap) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    period = units.column("period").to_numpy()
    converted = units.column("converted").to_numpy().astype(bool)
    churned = units.column("churn").to_numpy().astype(bool)
    known = known_periods(units, m.outcomes.churn)  # an open period's outcome is not known yet
    out = {"conversion": (converted, known)}
    if m.outcomes.repeat is not None:
        out["repeat"] = (converted, known & (period > 0))
    if m.outcomes.churn is not None:
        out["churn"] = (churned, period > 0)  # an active customer has not churned so far: as drivers count it
    return out


def effects(
    p: Periods, m: TouchpointMap, alpha: float = ALPHA, min_points: float = 3.0, min_relative: float = 0.2
) -> Effects:
    """Within-stage effects of each touchpoint on each outcome: significant (Holm) and material only — at least
    `min_points` rate points and `min_relative` of the rate without it (4 points on a 75% rate is noise from how
    periods are cut, 4 points on a 10% rate is not).

    Two passes, as for scores: the periods that met a touchpoint found harmful are left out of the others'
    comparison, so the alternative to a bad touchpoint (the self-install kit beside a poor engineer visit, the
    exchange beside a refund) does not look helpful merely for not being it."""
    first = _pass(p, m, alpha, min_points, min_relative, np.zeros(p.seen.shape[0], dtype=bool))
    loops = _loop_pass(p, m, alpha, min_points, min_relative)
    harmful = [p.touchpoints.index(k) for k, found in first.items() if any(_harm(e) > 0 for e in found)]
    if not harmful:
        return Effects(first, p.days, loops)
    second = _pass(p, m, alpha, min_points, min_relative, np.asarray(p.seen[:, harmful].any(axis=1)))
    by = {k: [e for e in found if _harm(e) > 0] for k, found in first.items()}
    for key, found in second.items():
        if key not in {p.touchpoints[i] for i in harmful}:
            by.setdefault(key, []).extend(e for e in found if _harm(e) < 0)
    return Effects({k: v for k, v in by.items() if v}, p.days, loops)


def _loop_pass(
    p: Periods, m: TouchpointMap, alpha: float, min_points: float, min_relative: float
) -> dict[frozenset[str], list[OutcomeEffect]]:
    """What going back and forth costs: periods with the loop against the other periods that reached either of
    its touchpoints' stages; harmful, significant (Holm over the loops) and material effects only."""
    stage_of = {t.key: t.stage for t in m.touchpoints}
    tests: list[tuple[frozenset[str], OutcomeEffect]] = []
    for pair, has in p.loops.items():
        stages = {stage_of.get(k) for k in pair} - {None}
        columns = [i for i, k in enumerate(p.touchpoints) if stage_of.get(k) in stages or k in pair]
        reached = p.seen[:, columns].any(axis=1) if columns else np.zeros(has.size, dtype=bool)
        for outcome, (y, pool) in p.outcomes.items():
            found = _effect(outcome, y, pool & reached, has)
            if found is not None:
                tests.append((pair, found))
    adjusted = stats.holm([e.p_value for _, e in tests]) if tests else []
    by: dict[frozenset[str], list[OutcomeEffect]] = {}
    for (pair, e), q in zip(tests, adjusted, strict=True):
        if q < alpha and _material(e, min_points, min_relative) and _harm(e) > 0:
            by.setdefault(pair, []).append(_with_p(e, q))
    return by


def _pass(
    p: Periods, m: TouchpointMap, alpha: float, min_points: float, min_relative: float, left_out: np.ndarray
) -> dict[str, list[OutcomeEffect]]:
    stage_of = {t.key: t.stage for t in m.touchpoints}
    tests: list[tuple[str, OutcomeEffect]] = []
    pools: dict[tuple[int, ...], dict[str, np.ndarray]] = {}  # per stage: each outcome's periods that reached it
    for j, key in enumerate(p.touchpoints):
        stage = tuple(
            i for i, k in enumerate(p.touchpoints) if stage_of.get(k) and stage_of.get(k) == stage_of.get(key)
        )
        if len(stage) < 2:
            continue  # alone in its stage: nothing like it to compare with
        if stage not in pools:
            reached = p.seen[:, stage].any(axis=1) & ~left_out
            pools[stage] = {outcome: pool & reached for outcome, (_, pool) in p.outcomes.items()}
        for outcome, (y, _) in p.outcomes.items():
            found = _effect(outcome, y, pools[stage][outcome], p.seen[:, j])
            if found is not None:
                tests.append((key, found))
    adjusted = stats.holm([e.p_value for _, e in tests]) if tests else []
    by: dict[str, list[OutcomeEffect]] = {}
    for (key, e), q in zip(tests, adjusted, strict=True):
        if q < alpha and _material(e, min_points, min_relative):
            by.setdefault(key, []).append(_with_p(e, q))
    return by


def _material(e: OutcomeEffect, min_points: float, min_relative: float) -> bool:
    """Large enough to matter, and not a step of the outcome itself (everyone who meets it converts)."""
    structural = e.rate_with >= 0.99 or e.rate_with <= 0.01
    relative = abs(e.difference) / max(e.rate_without, 1e-9)
    return not structural and abs(e.difference) * 100 >= min_points and relative >= min_relative


def _effect(outcome: str, y: np.ndarray, pool: np.ndarray, has: np.ndarray) -> OutcomeEffect | None:
    # Counts of boolean masks, not the outcomes picked out by them: a hundred tests over a million periods. Those
    # without the touchpoint are the pool's less those with it: two masks made a test, not five.
    with_ = pool & has
    n1 = int(np.count_nonzero(with_))
    n0 = int(np.count_nonzero(pool)) - n1
    if n1 < MIN_PERIODS or n0 < MIN_PERIODS:
        return None
    k1 = int(np.count_nonzero(y & with_))
    k0 = int(np.count_nonzero(y & pool)) - k1
    c = stats.compare_shares(k1, n1, k0, n0)
    if c.difference is None or c.low is None or c.high is None or c.p_value is None:
        return None
    return OutcomeEffect(outcome, k1 / n1, k0 / n0, c.low, c.high, c.p_value, n1)


def _with_p(e: OutcomeEffect, p: float) -> OutcomeEffect:
    return OutcomeEffect(e.outcome, e.rate_with, e.rate_without, e.low, e.high, p, e.periods_with)


def stake(found: Sequence[OutcomeEffect], days: float, names: Names, helpful: bool = False) -> Stake | None:
    """The largest effect as outcome events a year: periods with the touchpoint × the rate difference."""
    if not found:
        return None

    def size(e: OutcomeEffect) -> float:
        return abs(e.difference) * e.periods_with

    best = max(found, key=size)
    per_year = YEAR / days
    bounds = sorted(abs(b) * best.periods_with * per_year for b in (best.low, best.high))
    low = 0.0 if best.low < 0 < best.high else bounds[0]
    return Stake(size(best) * per_year, low, bounds[1], names.stake_unit(best.outcome, helpful))


def attach(items: list[Insight], fx: Effects | None, m: TouchpointMap, names: Names, min_points: float) -> None:
    """Give each finding about touchpoints the harmful effects of those touchpoints and what is at stake.

    On a touchpoint the company sends, the evidence says that who receives it (customers whose payment failed)
    may explain part of the difference: only a holdout tells how much the message itself costs."""
    if fx is None:
        return
    sent = {t.key for t in m.touchpoints if t.initiative == Initiative.proactive}
    for item in items:
        if item.kind == "loop":
            harmful = fx.by_loop.get(frozenset(item.touchpoints), [])
        else:
            harmful = fx.harmful(item.touchpoints, min_points / 100)
        if not harmful:
            continue
        item.effects = harmful
        item.at_stake = stake(harmful, fx.days, names)
        if item.at_stake is not None and item.section in ("problems", "friction"):
            item.summary = f"{item.summary} {_cost(harmful, item.at_stake, names)}"
        if set(item.touchpoints) & sent:
            item.evidence["caveat"] = (
                "The company sends this touchpoint, so who receives it may explain part of the difference; a "
                "holdout (customers randomly not sent it) would tell how much is the touchpoint's own."
            )


def _cost(found: Sequence[OutcomeEffect], s: Stake, names: Names) -> str:
    e = max(found, key=lambda e: abs(e.difference) * e.periods_with)
    return (
        f"Where customers meet it, {names.rate(e.outcome)} is {percent(e.rate_with)} against "
        f"{percent(e.rate_without)} for the rest of its stage: about {s.text()}."
    )


def strengths(fx: Effects | None, m: TouchpointMap, names: Names, min_points: float) -> list[Insight]:
    """Touchpoints customers choose that significantly and materially raise a good outcome or lower a bad one.

    A proactive touchpoint is never called a strength from outcomes alone: the company chooses who receives it
    (a win-back e-mail goes to customers it expects back, an exchange e-mail to those who did not want a refund),
    so who gets it explains the difference as well as what it says; that takes a holdout to tell."""
    if fx is None:
        return []
    sent = {t.key for t in m.touchpoints if t.initiative == Initiative.proactive}
    found = []
    for key in (k for k in fx.by_touchpoint if k not in sent):
        good = fx.helpful(key, min_points / 100)
        if not good:
            continue
        s = stake(good, fx.days, names, helpful=True)
        e = max(good, key=lambda e: abs(e.difference) * e.periods_with)
        name = names.touchpoint(key)
        summary = (
            f"{name} helps: where customers meet it, {names.rate(e.outcome)} is {percent(e.rate_with)} against "
            f"{percent(e.rate_without)} for the rest of its stage" + (f" — worth about {s.text()}." if s else ".")
        )
        found.append(
            Insight("strength", f"{name} raises {names.rate(e.outcome)}" if GOOD_OUTCOMES.get(e.outcome, True)
                    else f"{name} lowers {names.rate(e.outcome)}", key, reach=0, impact=2.0,
                    confidence=1 - e.p_value, section="strengths", summary=summary, stage=names.stage_of(key),
                    effects=good, at_stake=s, evidence={"compared_with": "periods that reached its stage without it"})
        )  # fmt: skip
    return found
