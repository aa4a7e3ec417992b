"""Friction: loops (A → B → A within a day), one touchpoint repeated within a session, switching from a
digital channel to a human one within a day for the same need, dead ends, and high effort (CES).

Loops, repeats and switches are counted in the engine; each is reported when it happens often enough
(`min_count`) to a large enough share (`min_share`) of the customers who reach its touchpoint.
"""

from __future__ import annotations

from datetime import timedelta

import ibis

from touchlens.analytics.engine import within
from touchlens.analytics.feedback import FeedbackReport
from touchlens.analytics.journeys import JourneyOptions, in_order
from touchlens.analytics.scorecard import Scorecard
from touchlens.insights.items import Insight
from touchlens.model.map import ChannelKind, Initiative, TouchpointMap

DAY = timedelta(days=1)


def loops(backend: ibis.BaseBackend, m: TouchpointMap, min_count: int = 20, min_share: float = 0.05) -> list[Insight]:
    """A → B → A within a day: customers sent back where they came from. A loop through help (a human channel
    or a reactive touchpoint) weighs more than browsing back and forth, which shoppers do by choice."""
    kind = {c.key: c.kind for c in m.channels}
    helpful = {
        t.key
        for t in m.touchpoints
        if t.initiative == Initiative.reactive or kind.get(t.channel or "") == ChannelKind.human
    }
    t = JourneyOptions().apply(backend)
    w = in_order(t)
    s = t.mutate(b=t.touchpoint.lead(1).over(w), a2=t.touchpoint.lead(2).over(w), ts2=t.ts.lead(2).over(w))
    hit = s.filter((s.a2 == s.touchpoint) & (s.b != s.touchpoint) & within(s.ts2, s.ts, DAY))
    counted = hit.group_by(["touchpoint", "b"]).aggregate(loops=hit.count(), customers=hit.customer_id.nunique())
    reach = _reach(backend)
    found = []
    for r in backend.to_pyarrow(counted).to_pylist():
        share = r["customers"] / reach.get(r["touchpoint"], 1)
        if r["loops"] >= min_count and share >= min_share:
            a, b = r["touchpoint"], r["b"]
            through_help = a in helpful or b in helpful
            found.append(
                Insight("loop", f"{a} → {b} → {a}: {r['customers']:,} customers sent back within a day", a,
                        reach=int(r["customers"]), impact=min(5.0, 1.0 + (10 if through_help else 2) * share),
                        confidence=0.9,
                        evidence={"cycle": [a, b, a], "loops": int(r["loops"]), "customers": int(r["customers"]),
                                  "share_of_customers": share, "through_help": through_help,
                                  "within_seconds": DAY.total_seconds()})
            )  # fmt: skip
    return sorted(found, key=lambda i: -i.reach)


def repeats(
    backend: ibis.BaseBackend, session_gap: timedelta = timedelta(minutes=30), times: int = 3, min_share: float = 0.05
) -> list[Insight]:
    """One touchpoint `times` or more in one session: customers who cannot find what they came for."""
    t = JourneyOptions(session_gap=session_gap).apply(backend)
    per = t.group_by(["journey", "customer_id", "touchpoint"]).aggregate(n=t.count())
    many = per.filter(per.n >= times)
    counted = many.group_by("touchpoint").aggregate(sessions=many.count(), customers=many.customer_id.nunique())
    reach = _reach(backend)
    found = []
    for r in backend.to_pyarrow(counted).to_pylist():
        share = r["customers"] / reach.get(r["touchpoint"], 1)
        if share >= min_share:
            found.append(
                Insight("repeat", f"{r['touchpoint']}: {share:.0%} of its customers come {times}+ times in a session",
                        r["touchpoint"], reach=int(r["customers"]), impact=min(5.0, 1.0 + 5 * share), confidence=0.8,
                        evidence={"sessions": int(r["sessions"]), "customers": int(r["customers"]),
                                  "share_of_customers": share, "times": times})
            )  # fmt: skip
    return sorted(found, key=lambda i: -i.reach)


def switches(backend: ibis.BaseBackend, m: TouchpointMap, min_count: int = 20) -> list[Insight]:
    """A digital touchpoint followed within a day by a human one: self-service that did not do the job."""
    kind = {c.key: c.kind for c in m.channels}
    digital = [t.key for t in m.touchpoints if t.channel and kind.get(t.channel) == ChannelKind.digital]
    human = [t.key for t in m.touchpoints if t.channel and kind.get(t.channel) == ChannelKind.human]
    if not digital or not human:
        return []
    t = JourneyOptions().apply(backend)
    w = in_order(t)
    s = t.mutate(nxt=t.touchpoint.lead().over(w), nxt_ts=t.ts.lead().over(w))
    hit = s.filter(s.touchpoint.isin(digital) & s.nxt.isin(human) & within(s.nxt_ts, s.ts, DAY))
    counted = hit.group_by(["touchpoint", "nxt"]).aggregate(n=hit.count(), customers=hit.customer_id.nunique())
    found = [
        Insight("switch", f"{r['touchpoint']} → {r['nxt']}: {r['customers']:,} customers switch to a person",
                r["touchpoint"], reach=int(r["customers"]), impact=2.0, confidence=0.7,
                evidence={"from": r["touchpoint"], "to": r["nxt"], "switches": int(r["n"]),
                          "customers": int(r["customers"]), "within_seconds": DAY.total_seconds()})
        for r in backend.to_pyarrow(counted).to_pylist() if r["n"] >= min_count
    ]  # fmt: skip
    return sorted(found, key=lambda i: -i.reach)


def dead_ends(card: Scorecard, top: int = 3, min_share: float = 0.1) -> list[Insight]:
    """Touchpoints where the journeys of customers who never convert end most often."""
    ends = sorted((s for s in card.scores if s.drop_off and s.drop_off >= min_share), key=lambda s: -(s.drop_off or 0))
    return [
        Insight("dead_end", f"{s.touchpoint}: {s.drop_off:.0%} of non-converting journeys end here", s.touchpoint,
                reach=s.customers, impact=min(5.0, 1.0 + 4 * (s.drop_off or 0)), confidence=0.7,
                evidence={"drop_off": s.drop_off, "customers": s.customers, "conversion": s.conversion})
        for s in ends[:top]
    ]  # fmt: skip


def high_effort(report: FeedbackReport, threshold: float = 5.0, min_responses: int = 20) -> list[Insight]:
    """Touchpoints whose mean CES (1–7, higher is harder) is `threshold` or more."""
    return [
        Insight("high_effort", f"{r.key}: customer effort {r.ces.value:.1f} of 7", r.key, reach=r.responses,
                impact=2.0 + (r.ces.value or 0) - threshold, confidence=0.8, evidence={"ces": r.ces.to_dict()})
        for r in report.rows if r.ces.value is not None and r.ces.n >= min_responses and r.ces.value >= threshold
    ]  # fmt: skip


def _reach(backend: ibis.BaseBackend) -> dict[str, int]:
    t = JourneyOptions().apply(backend)
    rows = backend.to_pyarrow(t.group_by("touchpoint").aggregate(n=t.customer_id.nunique())).to_pylist()
    return {r["touchpoint"]: int(r["n"]) for r in rows}
