"""Friction: loops through help (A → B → A within a day), help repeated within a session, switching from a
digital channel to a human one within a day for the same need, dead ends, and high effort (CES).

Loops, repeats and switches are counted in the engine; each is reported when it happens often enough
(`min_count`) to a large enough share (`min_share`) of the customers who reach its touchpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import ibis

from touchlens.analytics.engine import at_most_apart
from touchlens.analytics.feedback import FeedbackReport
from touchlens.analytics.journeys import JourneyOptions, firsts, layer_state
from touchlens.analytics.scorecard import Scorecard
from touchlens.insights.items import Insight
from touchlens.insights.words import Names
from touchlens.model.map import ChannelKind, Initiative, Phase, TouchpointMap

DAY = timedelta(days=1)


def help_touchpoints(m: TouchpointMap) -> set[str]:
    """Where a customer goes for help: any touchpoint on a human channel, and touchpoints the customer starts
    after buying (reactive, post-purchase: help pages, tracking, the returns portal). Before buying, a customer
    who starts a touchpoint is shopping, not asking for help."""
    kind = {c.key: c.kind for c in m.channels}
    return {
        t.key
        for t in m.touchpoints
        if kind.get(t.channel or "") == ChannelKind.human
        or (t.initiative == Initiative.reactive and t.phase == Phase.post_purchase)
    }


def loops(
    backend: ibis.BaseBackend,
    m: TouchpointMap,
    names: Names,
    min_count: int = 20,
    min_share: float = 0.05,
    reach: Callable[[], Mapping[str, int]] | None = None,
) -> list[Insight]:
    """A → B → A within a day through help: customers sent back and forth to get one thing done.

    Browsing back and forth between pages (product page and reviews) is what shoppers do by choice, so a loop is
    reported only when one of its touchpoints is help (a human channel, or a reactive help or support
    touchpoint). A → B → A and B → A → B between the same two touchpoints are one loop.
    """
    helpful = help_touchpoints(m)
    t = JourneyOptions().touches(backend, "next_touchpoint", "next2_touchpoint", "next2_ts")
    s = t.mutate(b=t.next_touchpoint, a2=t.next2_touchpoint, ts2=t.next2_ts)
    hit = s.filter((s.a2 == s.touchpoint) & (s.b != s.touchpoint) & at_most_apart(backend, s.ts2, s.ts, DAY))
    hit = hit.mutate(lo=ibis.least(hit.touchpoint, hit.b), hi=ibis.greatest(hit.touchpoint, hit.b))
    counted = hit.group_by(["lo", "hi"]).aggregate(loops=hit.count(), customers=hit.customer_id.nunique())
    rows = backend.to_pyarrow(counted).to_pylist()
    met = (reach or (lambda: touchpoint_reach(backend)))() if rows else {}
    found = []
    for r in rows:
        a, b = r["lo"], r["hi"]
        share = r["customers"] / max(1, min(met.get(a, 1), met.get(b, 1)))
        if r["loops"] < min_count or share < min_share or not ({a, b} & helpful):
            continue
        found.append(_loop(a, b, r, share, helpful, names))
    return sorted(found, key=lambda i: -i.reach)


def _loop(a: str, b: str, r: dict[str, Any], share: float, helpful: set[str], names: Names) -> Insight:
    first, second = (b, a) if a in helpful and b not in helpful else (a, b)
    pair = f"{names.touchpoint(first)} and {names.touchpoint(second)}"
    return Insight(
        "loop", f"Customers go back and forth between {pair}", first, reach=int(r["customers"]),
        impact=min(5.0, 1.0 + 10 * share), confidence=0.9, section="friction", touchpoints=[first, second],
        stage=names.stage_of(first),
        summary=f"{r['customers']:,} customers went back and forth between {pair} within a day "
        f"({r['loops']:,} times; {share:.0%} of those who reach it): one thing took several tries.",
        evidence={"cycle": [first, second, first], "loops": int(r["loops"]), "customers": int(r["customers"]),
                  "share_of_customers": share, "within_seconds": DAY.total_seconds()},
    )  # fmt: skip


def repeats(
    backend: ibis.BaseBackend,
    m: TouchpointMap,
    names: Names,
    session_gap: timedelta = timedelta(minutes=30),
    times: int = 3,
    min_share: float = 0.05,
    reach: Callable[[], Mapping[str, int]] | None = None,
) -> list[Insight]:
    """A help touchpoint `times` or more in one session: customers who cannot find what they came for.

    Only help counts: viewing many product pages in a session is shopping, not friction."""
    helpful = help_touchpoints(m)
    if not helpful:
        return []
    # Only a customer with `times` touches of one help touchpoint at all can have them in one session: numbering
    # sessions (a sort) for those few customers, not every customer, took the repeats from 3 s to a fraction at
    # 10M events. Those customers counted from the journey layer where it serves (its touches are the mapped
    # events, stored by customer): 1.6 s against 4.0 s from the events at 100M.
    touches = JourneyOptions().touches(backend)
    helps = touches.filter(touches.touchpoint.isin(sorted(helpful)))
    often = helps.group_by(["customer_id", "touchpoint"]).aggregate(n=helps.count())
    candidates = often.filter(often.n >= times).select("customer_id").distinct()
    t = help_sessions(backend, sorted(helpful), session_gap, candidates)
    per = t.group_by(["journey", "customer_id", "touchpoint"]).aggregate(n=t.count())
    many = per.filter(per.n >= times)
    counted = many.group_by("touchpoint").aggregate(sessions=many.count(), customers=many.customer_id.nunique())
    rows = backend.to_pyarrow(counted).to_pylist()
    met = (reach or (lambda: touchpoint_reach(backend)))() if rows else {}
    found = []
    for r in rows:
        share = r["customers"] / met.get(r["touchpoint"], 1)
        if share >= min_share:
            name = names.touchpoint(r["touchpoint"])
            found.append(
                Insight("repeat", f"{name}: customers come back {times}+ times in one visit", r["touchpoint"],
                        reach=int(r["customers"]), impact=min(5.0, 1.0 + 5 * share), confidence=0.8,
                        section="friction", stage=names.stage_of(r["touchpoint"]),
                        summary=f"{r['customers']:,} customers ({share:.0%} of those who use it) came to {name} "
                        f"{times} or more times in one visit without finding what they needed.",
                        evidence={"sessions": int(r["sessions"]), "customers": int(r["customers"]),
                                  "share_of_customers": share, "times": times})
            )  # fmt: skip
    return sorted(found, key=lambda i: -i.reach)


def help_sessions(
    backend: ibis.BaseBackend, helpful: list[str], session_gap: timedelta, only: ibis.Table | None = None
) -> ibis.Table:
    """(journey, customer_id, touchpoint): each touch of a help touchpoint and its session (`journey`; a new one
    after each gap longer than `session_gap`, as `JourneyOptions(session_gap=…)` cuts them); of the customers in
    `only` (a `customer_id` column) when given.

    From the journey layer, sessions are numbered over their first touches and the help touches alone (a sort of
    far fewer rows than every event); without it, from the events."""
    if layer_state(backend) == "none":
        t = JourneyOptions(session_gap=session_gap).apply(backend)
        t = t if only is None else t.semi_join(only, "customer_id")
        return t.filter(t.touchpoint.isin(helpful)).select("journey", "customer_id", "touchpoint")
    t = JourneyOptions().touches(backend, "pos", "prev_ts")
    t = t if only is None else t.semi_join(only, "customer_id")
    first = (~at_most_apart(backend, t.ts, t.prev_ts, session_gap)).fill_null(True)
    starts = t.filter(first).select("customer_id", "pos", start=ibis.literal(1), touchpoint=ibis.null("string"))
    helps = t.filter(t.touchpoint.isin(helpful)).select(
        "customer_id", "pos", start=ibis.literal(0), touchpoint=t.touchpoint
    )
    u = starts.union(helps)
    # A help touch that starts a session comes after its own start: starts first at the same position.
    w = ibis.cumulative_window(group_by=u.customer_id, order_by=[u.pos, ibis.desc(u.start)])
    u = u.mutate(journey=u.start.sum().over(w))
    return u.filter(u.start == 0).select("journey", "customer_id", "touchpoint")


def switches(backend: ibis.BaseBackend, m: TouchpointMap, names: Names, min_count: int = 20) -> list[Insight]:
    """A digital touchpoint followed within a day by a human one the customer started: self-service that did not
    do the job. A call the company makes (a proactive welcome call) is no switch: the customer did not ask."""
    kind = {c.key: c.kind for c in m.channels}
    digital = [t.key for t in m.touchpoints if t.channel and kind.get(t.channel) == ChannelKind.digital]
    human = [
        t.key
        for t in m.touchpoints
        if t.channel and kind.get(t.channel) == ChannelKind.human and t.initiative != Initiative.proactive
    ]
    if not digital or not human:
        return []
    t = JourneyOptions().touches(backend, "next_touchpoint", "next_ts")
    s = t.mutate(nxt=t.next_touchpoint, nxt_ts=t.next_ts)
    hit = s.filter(s.touchpoint.isin(digital) & s.nxt.isin(human) & at_most_apart(backend, s.nxt_ts, s.ts, DAY))
    counted = hit.group_by(["touchpoint", "nxt"]).aggregate(n=hit.count(), customers=hit.customer_id.nunique())
    found = []
    for r in backend.to_pyarrow(counted).to_pylist():
        if r["n"] < min_count:
            continue
        a, b = names.touchpoint(r["touchpoint"]), names.touchpoint(r["nxt"])
        found.append(
            Insight("switch", f"From {a} to {b}: self-service did not do the job", r["touchpoint"],
                    reach=int(r["customers"]), impact=2.0, confidence=0.7, section="friction",
                    touchpoints=[r["touchpoint"], r["nxt"]], stage=names.stage_of(r["touchpoint"]),
                    summary=f"{r['customers']:,} customers turned to {b} within a day of {a}.",
                    evidence={"from": r["touchpoint"], "to": r["nxt"], "switches": int(r["n"]),
                              "customers": int(r["customers"]), "within_seconds": DAY.total_seconds()})
        )  # fmt: skip
    return sorted(found, key=lambda i: -i.reach)


def dead_ends(
    card: Scorecard, m: TouchpointMap, names: Names, top: int = 3, min_share: float = 0.1, over: float = 1.5
) -> list[Insight]:
    """Touchpoints the customer chose to visit where the journeys of customers who never convert end far more
    often than the touchpoint's reach explains.

    A proactive touchpoint (a reminder, a win-back e-mail) is no dead end: it comes last for every customer
    who does not act on it by construction — the company sent it, the customer did nothing after. And a page
    nearly everyone visits (the plans page, the product page) is where many journeys end simply because every
    journey passes it: it must end `over` times more non-converting journeys than its share of customers."""
    sent = {t.key for t in m.touchpoints if t.initiative == Initiative.proactive}
    everyone = max(card.customers, 1)
    ends = sorted(
        (
            s
            for s in card.scores
            if s.drop_off
            and s.drop_off >= min_share
            and s.touchpoint not in sent
            and s.drop_off >= over * s.customers / everyone
        ),
        key=lambda s: -(s.drop_off or 0),
    )
    return [
        Insight("dead_end", f"{names.touchpoint(s.touchpoint)}: journeys that do not convert end here",
                s.touchpoint, reach=s.customers, impact=min(5.0, 1.0 + 4 * (s.drop_off or 0)), confidence=0.7,
                section="friction", stage=names.stage_of(s.touchpoint),
                summary=f"{s.drop_off:.0%} of journeys that do not convert end at {names.touchpoint(s.touchpoint)}.",
                evidence={"drop_off": s.drop_off, "customers": s.customers, "conversion": s.conversion})
        for s in ends[:top]
    ]  # fmt: skip


def high_effort(report: FeedbackReport, names: Names, threshold: float = 5.0, min_responses: int = 20) -> list[Insight]:
    """Touchpoints whose mean CES (1–7, higher is harder) is `threshold` or more."""
    return [
        Insight("high_effort", f"{names.touchpoint(r.key)}: hard work for customers", r.key, reach=0,
                impact=2.0 + (r.ces.value or 0) - threshold, confidence=0.8, section="friction",
                stage=names.stage_of(r.key),
                summary=f"Customers rate the effort of {names.touchpoint(r.key)} {r.ces.value:.1f} of 7 "
                f"({r.ces.n:,} answers); {threshold:.0f} or more is hard work.",
                evidence={"ces": r.ces.to_dict()})
        for r in report.rows if r.ces.value is not None and r.ces.n >= min_responses and r.ces.value >= threshold
    ]  # fmt: skip


def merge_pairs(found: list[Insight]) -> list[Insight]:
    """A switch between the same two touchpoints as a loop is the same problem: its evidence joins the loop."""
    loops_by_pair = {frozenset(i.touchpoints): i for i in found if i.kind == "loop"}
    out = []
    for item in found:
        loop = loops_by_pair.get(frozenset(item.touchpoints)) if item.kind == "switch" else None
        if loop is None:
            out.append(item)
            continue
        loop.evidence["switches"] = item.evidence
        loop.reach = max(loop.reach, item.reach)
        loop.summary += f" {item.summary}"
    return out


def touchpoint_reach(backend: ibis.BaseBackend) -> dict[str, int]:
    """Customers who met each touchpoint, over all the data: their first touches of it in the journey layer, or
    the distinct customers of its events."""
    first = firsts(backend, JourneyOptions(), "prev_same_ts")
    if first is not None:
        counted = first.group_by("touchpoint").aggregate(n=first.count())
    else:
        t = JourneyOptions().apply(backend)
        counted = t.group_by("touchpoint").aggregate(n=t.customer_id.nunique())
    rows = backend.to_pyarrow(counted).to_pylist()
    return {r["touchpoint"]: int(r["n"]) for r in rows}
