"""Gaps: what the map lacks (stages without touchpoints, unused channels, personas without journeys) and what
the data shows the map lacks (events no touchpoint claims, touchpoints never seen, channels not in the map,
personas with no customers, silent periods between stages).

A silent period is a pair of consecutive designed stages A → B where customers go directly from a touchpoint
of A to one of B (no mapped touchpoint between) and the median wait is long (3 days by default).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import ibis

from touchlens.analytics import sketches
from touchlens.analytics.engine import seconds_between
from touchlens.analytics.journeys import JourneyOptions
from touchlens.insights.items import Insight
from touchlens.insights.words import Names, days
from touchlens.model.map import Initiative, TouchpointMap


def map_gaps(m: TouchpointMap) -> list[Insight]:
    """Stages with no touchpoint, channels no touchpoint uses, personas no journey is for."""
    used_stages = {t.stage for t in m.touchpoints}
    used_channels = {t.channel for t in m.touchpoints}
    found = [
        Insight("gap", f"stage {s.name or s.key} of journey {j.name or j.key} has no touchpoint", s.key, "stage",
                impact=2.0, confidence=1.0, section="gaps", stage=s.key,
                summary=f"The {s.name or s.key} stage of {j.name or j.key} has no touchpoint: nothing from us there.",
                evidence={"journey": j.key, "stage": s.key})
        for j in m.journeys for s in j.stages if s.key not in used_stages
    ]  # fmt: skip
    found += [
        Insight("gap", f"channel {c.name or c.key} has no touchpoint", c.key, "channel", impact=1.0,
                confidence=1.0, section="gaps", summary=f"The map plans the {c.name or c.key} channel but no "
                "touchpoint uses it.", evidence={"channel": c.key, "planned_stages": c.stages})
        for c in m.channels if c.key not in used_channels
    ]  # fmt: skip
    with_journeys = {j.persona for j in m.journeys}
    found += [
        Insight("gap", f"persona {p.name or p.key} has no journey", p.key, "persona", impact=1.0,
                confidence=1.0, section="gaps", summary=f"Persona {p.name or p.key} has no journey map.",
                evidence={"persona": p.key})
        for p in m.personas if p.key not in with_journeys
    ]  # fmt: skip
    return found


def data_gaps(backend: ibis.BaseBackend, m: TouchpointMap, min_events: int = 20, top: int = 20) -> list[Insight]:
    """Events no touchpoint claims (by volume), touchpoints never seen, channels and personas the data and the
    map disagree on."""
    e = backend.table("events")
    loose = e.filter(e.touchpoint.isnull())
    unmapped = loose.group_by("event").aggregate(events=loose.count(), customers=loose.customer_id.nunique())
    rows = backend.to_pyarrow(unmapped.order_by([ibis.desc("events"), "event"]).limit(top)).to_pylist()
    found = [
        Insight("unmapped_event", f"event {r['event']} ({r['events']:,} events) is claimed by no touchpoint",
                r["event"], "event", reach=int(r["customers"]), impact=2.0, confidence=1.0, section="gaps",
                summary=f"{r['events']:,} {r['event']} events from {r['customers']:,} customers belong to no "
                "touchpoint: map them, or the journey has a hole.",
                evidence={"event": r["event"], "events": int(r["events"]), "customers": int(r["customers"])})
        for r in rows if r["events"] >= min_events
    ]  # fmt: skip
    seen = {r["touchpoint"] for r in backend.to_pyarrow(e.select("touchpoint").distinct()).to_pylist()}
    found += [
        Insight("never_seen", f"touchpoint {t.name or t.key} never appears in the data", t.key, impact=1.0,
                confidence=0.8, section="gaps", stage=t.stage,
                summary=f"{t.name or t.key} never appears in the data: its match rule may be wrong.",
                evidence={"touchpoint": t.key, "match": t.match.model_dump(exclude_none=True) if t.match else None})
        for t in m.touchpoints if t.key not in seen and t.match is not None
    ]  # fmt: skip
    known = {c.key for c in m.channels}
    channels = backend.to_pyarrow(e.group_by("channel").aggregate(events=e.count())).to_pylist()
    found += [
        Insight("unknown_channel", f"channel {r['channel']} is in the data but not in the map", r["channel"],
                "channel", impact=1.0, confidence=1.0, section="gaps",
                summary=f"{r['events']:,} events come through channel {r['channel']}, which the map does not have.",
                evidence={"channel": r["channel"], "events": int(r["events"])})
        for r in channels if r["channel"] and known and r["channel"] not in known
    ]  # fmt: skip
    c = backend.table("customers")
    personas = {r["persona"] for r in backend.to_pyarrow(c.select("persona").distinct()).to_pylist()}
    found += [
        Insight("empty_persona", f"persona {p.name or p.key} has no customers", p.key, "persona", impact=1.0,
                confidence=0.8, section="gaps", summary=f"No customer matches persona {p.name or p.key}'s segment.",
                evidence={"persona": p.key, "segment": [s.model_dump(by_alias=True, exclude_none=True)
                                                        for s in p.segment]})
        for p in m.personas if p.segment and p.key not in personas
    ]  # fmt: skip
    return found


def _stage_tables(stage_of: dict[str, str]) -> tuple[ibis.Table, ibis.Table]:
    """Each touchpoint's stage, as the touch's (`s_touchpoint`, `stage`) and as its previous touch's (`b_touchpoint`,
    `prev_stage`)."""
    keys, labels = list(stage_of), list(stage_of.values())
    stage = ibis.memtable({"s_touchpoint": keys, "stage": labels}, schema={"s_touchpoint": "string", "stage": "string"})
    before = ibis.memtable({"b_touchpoint": keys, "prev_stage": labels},
                           schema={"b_touchpoint": "string", "prev_stage": "string"})  # fmt: skip
    return stage, before


def _screened(
    backend: ibis.BaseBackend,
    stage_of: dict[str, str],
    proactive: set[str],
    pairs: set[tuple[str, str]],
    longer_than: timedelta,
) -> dict[str, str]:
    """`stage_of` less the touchpoints of stages that no silent period can start or end in, as the wait sketches
    tell (all of it where they do not serve). Their median of a stage pair's waits is at least (1 − α) × the exact
    one, so a pair whose sketched median is under (1 − 2α) × `longer_than` (α more for rounding at a bucket's edge)
    is under `longer_than` exactly. At 100M events no pair of the demo's is near, and the exact query (3.6 s) is
    not run at all. The screen and the exact query are two reads: a refresh that commits between them may leave
    out a pair that its batch just brought over the line, until the next computation (as insights' other sections,
    each read at its own moment)."""
    if not sketches.served(backend):
        return stage_of
    s = sketches.sketch(backend)
    if proactive:
        s = s.filter(s.target.isin(sorted(proactive)))
    stage, before = _stage_tables(stage_of)
    s = s.join(stage, s.target == stage.s_touchpoint).join(before, s.source == before.b_touchpoint)
    s = s.filter(s.prev_stage != s.stage)
    medians = sketches.wait_quantiles(backend, ["prev_stage", "stage"], {"median": 0.5}, rows=s)
    bound = (1 - 2 * sketches.ALPHA) * longer_than.total_seconds()
    near = {(r["prev_stage"], r["stage"]) for r in backend.to_pyarrow(medians).to_pylist() if r["median"] >= bound}
    near &= pairs
    ends = {a for a, _ in near} | {b for _, b in near}
    return {k: v for k, v in stage_of.items() if v in ends}


def silence_rule(a: str, b: str, median: float, before: list[str], after: list[str]) -> dict[str, Any]:
    """A proactive rule that breaks the silence: an update halfway through the median wait after the touch that
    starts it, unless the touch that ends it came first (a starting point for the map's `proactive:`)."""
    half_days = max(1, math.ceil(median / 86400 / 2))
    return {"key": f"update_{a}_{b}"[:120], "name": f"Update between {a} and {b}",
            "after": {"touchpoint": before[0]}, "wait": f"{half_days}d", "unless": {"touchpoint": after[0]},
            "holdout": 0.1}  # fmt: skip


def silent_periods(
    backend: ibis.BaseBackend, m: TouchpointMap, names: Names, longer_than: timedelta = timedelta(days=3)
) -> list[Insight]:
    """Consecutive designed stages whose direct transitions take longer than `longer_than` at the median, counting
    only the waits that end with our move (a proactive touchpoint: the shipped SMS after the order). A wait that
    ends with the customer's own move — deciding to buy, coming for support — is their time, not our silence.
    A map that marks no touchpoint proactive has every wait counted."""
    stage_of = {t.key: t.stage for t in m.touchpoints if t.stage}
    pairs = {(a.key, b.key) for j in m.journeys for a, b in zip(j.stages, j.stages[1:], strict=False)}
    if not pairs or not stage_of:
        return []
    proactive = {t.key for t in m.touchpoints if t.initiative == Initiative.proactive}
    stage_of = _screened(backend, stage_of, proactive, pairs, longer_than)
    if not stage_of:
        return []
    t = JourneyOptions().touches(backend, "prev_touchpoint", "prev_ts")
    if proactive:
        t = t.filter(t.touchpoint.isin(sorted(proactive)))
    # Stages by joins with the map's (touchpoint, stage) pairs, not a CASE per touch: with dozens of touchpoints
    # the CASE compared strings dozens of times a touch (1.4 s of 2.6 s at 10M events). Unstaged ones drop out.
    stage, before = _stage_tables(stage_of)
    t = t.join(stage, t.touchpoint == stage.s_touchpoint)
    t = t.join(before, t.prev_touchpoint == before.b_touchpoint)
    moves = t.filter(t.prev_stage != t.stage).mutate(
        prev=t.prev_touchpoint, gap=seconds_between(backend, t.ts, t.prev_ts)
    )
    summary = moves.group_by(["prev_stage", "stage"]).aggregate(
        n=moves.count(),
        median=moves.gap.median(),
        customers=moves.customer_id.nunique(),
        before=moves.prev.collect(distinct=True),
        after=moves.touchpoint.collect(distinct=True),
    )
    found = []
    for r in sorted(backend.to_pyarrow(summary).to_pylist(), key=lambda r: (r["prev_stage"], r["stage"])):
        a, b = r["prev_stage"], r["stage"]
        if (a, b) not in pairs or r["median"] is None or r["median"] < longer_than.total_seconds():
            continue
        rule = silence_rule(a, b, float(r["median"]), sorted(r["before"]), sorted(r["after"]))
        found.append(
            Insight("silent_period", f"{names.stage(a)} → {names.stage(b)}: {days(r['median'])} with nothing from us",
                    f"{a}→{b}", "stages", reach=int(r["customers"]), impact=2.5, confidence=0.8, section="gaps",
                    stage=a,
                    summary=f"Between {names.stage(a)} and {names.stage(b)}, {r['customers']:,} customers waited "
                    f"{days(r['median'])} (the median) with nothing from us. Try a proactive update "
                    f"{rule['wait']} after {names.touchpoint(rule['after']['touchpoint'])}, unless "
                    f"{names.touchpoint(rule['unless']['touchpoint'])} came first (evidence.proactive_rule, for the "
                    "map's `proactive:`; `touchlens design simulate` replays it).",
                    evidence={"from_stage": a, "to_stage": b, "median_seconds": float(r["median"]),
                              "transitions": int(r["n"]), "touchpoints_before": sorted(r["before"]),
                              "touchpoints_after": sorted(r["after"]),
                              "proactive_in_stages": sorted(k for k in proactive if stage_of.get(k) in (a, b)),
                              "proactive_rule": rule})
        )  # fmt: skip
    return found
