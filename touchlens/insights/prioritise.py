"""The roadmap: insights become scored opportunities placed Now, Next or Later.

score = reach × impact × confidence ÷ effort, times `success_weight` when the CX success statements name the
touchpoint (or its stage or channel); reach is taken as its square root, so a problem for many customers
counts more without drowning the rest. Scores are scaled so the best is 100. Now: score ≥ `now_score` and
effort ≤ `now_max_effort`; Next: score ≥ `next_score`; Later: the rest. Opportunities a person wrote or
edited are never replaced: suggestions only add new keys or refresh earlier suggestions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from touchlens.insights.items import Insight
from touchlens.model.map import Horizon, Opportunity, OpportunitySource, TouchpointMap

# How much work a fix of each kind of finding usually is (1 easy – 5 hard): a rewrite of a message is
# quicker than a new touchpoint, which is quicker than a process change across teams.
EFFORT = {
    "moment_of_truth": 2.0,
    "subpar": 2.0,
    "below_target": 2.0,
    "unmapped_event": 1.0,
    "never_seen": 1.0,
    "unknown_channel": 1.0,
    "gap": 2.0,
    "empty_persona": 1.0,
    "silent_period": 2.0,
    "loop": 3.0,
    "repeat": 3.0,
    "switch": 3.0,
    "dead_end": 3.0,
    "high_effort": 3.0,
    "driver": 3.0,
    "persona_gap": 2.0,
}
ACTIONS = {
    "moment_of_truth": "Fix {s}: it lets customers down where it matters most",
    "subpar": "Improve {s}",
    "below_target": "Bring {s} up to its target",
    "unmapped_event": "Map the {s} event to a touchpoint",
    "never_seen": "Check why {s} never shows in the data",
    "unknown_channel": "Add channel {s} to the map",
    "gap": "Fill the gap: {s}",
    "empty_persona": "Check the segment of persona {s}",
    "silent_period": "Break the silence {s} with a proactive update",
    "loop": "Stop the loop at {s}",
    "repeat": "Help customers find what they need at {s}",
    "switch": "Make {s} answer the question without a call",
    "dead_end": "Give journeys that end at {s} a next step",
    "high_effort": "Make {s} easier",
    "persona_gap": "Tailor {s} to the persona it fails",
}


@dataclass(frozen=True)
class Placement:
    now_score: float = 60
    now_max_effort: float = 3
    next_score: float = 30
    success_weight: float = 1.5


def suggest(insights: list[Insight], m: TouchpointMap, placement: Placement | None = None) -> list[Opportunity]:
    """One opportunity per insight subject and kind (the strongest insight wins), scored and placed."""
    p = placement or Placement()
    best: dict[str, tuple[float, Insight]] = {}
    for item in insights:
        raw = _raw_score(item, m, p)
        key = _key(item)
        if key not in best or raw > best[key][0]:
            best[key] = (raw, item)
    top = max((raw for raw, _ in best.values()), default=0.0) or 1.0
    out = []
    for key, (raw, item) in best.items():
        score = round(100 * raw / top, 1)
        effort = EFFORT.get(item.kind, 3.0)
        out.append(
            Opportunity(
                key=key,
                title=ACTIONS.get(item.kind, "Look into {s}").format(s=item.subject),
                description=item.title,
                touchpoints=[item.subject] if item.subject_type == "touchpoint" and _known(m, item.subject) else [],
                horizon=_horizon(score, effort, p),
                impact=round(min(5.0, item.impact), 2),
                effort=effort,
                confidence=round(item.confidence, 3),
                source=OpportunitySource.suggested,
                evidence={"score": score, "reach": item.reach, "insight": item.to_dict()},
            )
        )
    return sorted(out, key=lambda o: (-float(o.evidence["score"]), o.key))


def merge(m: TouchpointMap, suggested: list[Opportunity]) -> tuple[TouchpointMap, list[str], list[str]]:
    """The map with the suggestions in: new keys added, earlier suggestions refreshed, people's kept.

    Returns the map, the keys added or refreshed, and the keys left alone because a person wrote or edited them.
    """
    existing = {o.key: o for o in m.opportunities}
    kept, changed = [], []
    result = list(m.opportunities)
    for o in suggested:
        old = existing.get(o.key)
        if old is not None and old.source == OpportunitySource.person:
            kept.append(o.key)
            continue
        if old is not None:
            # A refreshed suggestion keeps the progress made on it.
            o = o.model_copy(update={"status": old.status, "owner": old.owner})
            result[result.index(old)] = o
        else:
            result.append(o)
        changed.append(o.key)
    return m.model_copy(update={"opportunities": result}), changed, kept


def _raw_score(item: Insight, m: TouchpointMap, p: Placement) -> float:
    weight = p.success_weight if _named_in_success(item, m) else 1.0
    return math.sqrt(max(item.reach, 1)) * item.impact * item.confidence / EFFORT.get(item.kind, 3.0) * weight


def _named_in_success(item: Insight, m: TouchpointMap) -> bool:
    """Whether the success statements name the subject, or its stage or channel (as a word)."""
    text = " ".join(m.success).lower()
    if not text:
        return False
    tp = next((t for t in m.touchpoints if t.key == item.subject), None)
    names = {item.subject, item.subject.replace("_", " ")}
    if tp is not None:
        names |= {n for n in (tp.name, tp.stage, tp.channel) if n}
    return any(re.search(rf"\b{re.escape(n.lower())}\b", text) for n in names)


def _horizon(score: float, effort: float, p: Placement) -> Horizon:
    if score >= p.now_score and effort <= p.now_max_effort:
        return Horizon.now
    return Horizon.next if score >= p.next_score else Horizon.later


def _key(item: Insight) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", item.subject.lower()).strip("_")
    kind = "subpar" if item.kind in ("moment_of_truth", "below_target") else item.kind
    return f"fix_{kind}_{slug}"[:80]


def _known(m: TouchpointMap, key: str) -> bool:
    return any(t.key == key for t in m.touchpoints)
