"""The roadmap: findings become one card per problem, ranked by what is at stake and placed Now, Next or Later.

Findings on the same problem share a card: the sub-par score, the missed target and the outcome effect of one
touchpoint; a loop and the switch between the same two touchpoints. A card's score is at_stake × confidence ÷
effort (times `success_weight` when the CX success statements name its touchpoint, stage or channel), scaled so
the best card scores 100. Now: score ≥ `now_score` and effort ≤ `now_max_effort`; Next: score ≥ `next_score`;
Later: the rest. A finding with nothing at stake in outcome units (a gap in the map, a silent period, a loop
whose cost is not significant) can rank no higher than Next, and a strength ("keep it", "extend it") never goes
to Now, which is for fixing what costs customers. Cards people wrote or edited are never replaced: a suggestion
on the same touchpoints is linked to the person's card instead of added beside it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from touchlens.insights.items import Insight
from touchlens.insights.words import Names
from touchlens.model.map import Horizon, Opportunity, OpportunitySource, OpportunityStatus, TouchpointMap

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
    "persona_gap": 2.0,
    "strength": 2.0,
    "well_rated": 1.0,
}
ACTIONS = {
    "moment_of_truth": "Fix {s}: it loses customers",
    "subpar": "Improve {s}",
    "below_target": "Bring {s} up to its target",
    "unmapped_event": "Map the {s} event to a touchpoint",
    "never_seen": "Check why {s} never shows in the data",
    "unknown_channel": "Add channel {s} to the map",
    "gap": "Fill the gap: {s}",
    "empty_persona": "Check the segment of persona {s}",
    "silent_period": "Break the silence {s} with a proactive update",
    "loop": "Stop customers going back and forth between {s}",
    "repeat": "Help customers find what they need at {s}",
    "switch": "Make {s} answer the question without a call",
    "dead_end": "Give journeys that end at {s} a next step",
    "high_effort": "Make {s} easier",
    "persona_gap": "Tailor {s} to the persona it fails",
    "strength": "Keep {s} and extend it to more customers",
    "well_rated": "Keep {s} as it is and learn from it",
}
# Kinds that are one problem when they are about the same touchpoints: the card takes the worst as its kind.
SAME_PROBLEM = {"moment_of_truth": "score", "subpar": "score", "below_target": "score", "high_effort": "score",
                "loop": "loop", "switch": "loop", "strength": "keep", "well_rated": "keep"}  # fmt: skip
RANK = ["moment_of_truth", "subpar", "below_target", "high_effort", "loop", "switch", "strength", "well_rated"]
STRENGTHS = ("strength", "well_rated")


@dataclass(frozen=True)
class Placement:
    now_score: float = 60
    now_max_effort: float = 3
    next_score: float = 30
    success_weight: float = 1.5


@dataclass
class _Card:
    key: str
    findings: list[Insight]

    @property
    def main(self) -> Insight:
        staked = [f for f in self.findings if f.at_stake is not None]
        if staked:
            return max(staked, key=lambda f: f.at_stake.value if f.at_stake else 0.0)
        return min(self.findings, key=lambda f: (RANK.index(f.kind) if f.kind in RANK else len(RANK), -f.impact))


def suggest(insights: list[Insight], m: TouchpointMap, placement: Placement | None = None) -> list[Opportunity]:
    """One scored, placed opportunity per problem (findings on the same problem merged), best first."""
    p = placement or Placement()
    cards = _cards(insights)
    staked = {c.key: _raw(c, m, p) for c in cards if c.main.at_stake is not None}
    loose = {c.key: _fallback(c, m, p) for c in cards if c.main.at_stake is None}
    # Problems set the scale: a large strength must not push the costliest problem out of Now.
    fixing = [staked[c.key] for c in cards if c.key in staked and c.main.kind not in STRENGTHS]
    top = max(fixing or list(staked.values()) or [0.0]) or 1.0
    top_loose = max(loose.values(), default=0.0) or 1.0
    names = Names.of(m)
    out = []
    for c in cards:
        # Unstaked findings top out just under Now: without outcome units they cannot outrank a measured cost.
        if c.key in staked:
            score = min(100.0, 100 * staked[c.key] / top)
        else:
            score = (p.now_score - 0.1) * loose[c.key] / top_loose
        out.append(_opportunity(c, round(score, 1), m, names, p))
    return sorted(out, key=lambda o: (-float(o.evidence["score"]), o.key))


def _cards(insights: list[Insight]) -> list[_Card]:
    cards: dict[str, _Card] = {}
    for item in insights:
        key = _key(item)
        cards.setdefault(key, _Card(key, [])).findings.append(item)
    return list(cards.values())


def _key(item: Insight) -> str:
    family = SAME_PROBLEM.get(item.kind, item.kind)
    subject = "_".join(sorted(item.touchpoints)) if family in ("loop",) and item.touchpoints else item.subject
    slug = re.sub(r"[^a-z0-9]+", "_", subject.lower()).strip("_")
    prefix = "keep" if family == "keep" else "fix"
    family = {"score": "subpar", "keep": "strength"}.get(family, family)
    return f"{prefix}_{family}_{slug}"[:80]


def _raw(c: _Card, m: TouchpointMap, p: Placement) -> float:
    main = c.main
    value = main.at_stake.value if main.at_stake else 0.0
    return value * main.confidence / EFFORT.get(main.kind, 3.0) * _weight(main, m, p)


def _fallback(c: _Card, m: TouchpointMap, p: Placement) -> float:
    main = c.main
    reach = max(max(f.reach for f in c.findings), 1)
    return math.sqrt(reach) * main.impact * main.confidence / EFFORT.get(main.kind, 3.0) * _weight(main, m, p)


def _weight(item: Insight, m: TouchpointMap, p: Placement) -> float:
    return p.success_weight if _named_in_success(item, m) else 1.0


def _opportunity(c: _Card, score: float, m: TouchpointMap, names: Names, p: Placement) -> Opportunity:
    main = c.main
    effort = EFFORT.get(main.kind, 3.0)
    subject = _subject(main, names)
    return Opportunity(
        key=c.key,
        title=ACTIONS.get(main.kind, "Look into {s}").format(s=subject),
        description=main.summary,
        touchpoints=sorted({t for f in c.findings for t in f.touchpoints if _known(m, t)}),
        horizon=_horizon(score, effort, main, p),
        impact=round(min(5.0, main.impact), 2),
        effort=effort,
        confidence=round(main.confidence, 3),
        source=OpportunitySource.suggested,
        evidence={
            "score": score,
            "kind": main.kind,
            "reach": max(f.reach for f in c.findings),
            "at_stake": main.at_stake.to_dict() if main.at_stake else None,
            "findings": [f.to_dict() for f in c.findings],
        },
    )


def _subject(item: Insight, names: Names) -> str:
    if item.kind in ("loop", "switch") and len(item.touchpoints) == 2:
        return " and ".join(names.touchpoint(t) for t in item.touchpoints)
    if item.subject_type == "touchpoint":
        return names.touchpoint(item.subject)
    if item.subject_type == "stages" and "→" in item.subject:
        a, _, b = item.subject.partition("→")
        return f"{names.stage(a)} → {names.stage(b)}"
    return item.subject


def _horizon(score: float, effort: float, main: Insight, p: Placement) -> Horizon:
    fixing = main.kind not in STRENGTHS and main.at_stake is not None
    if fixing and score >= p.now_score and effort <= p.now_max_effort:
        return Horizon.now
    return Horizon.next if score >= p.next_score else Horizon.later


def merge(m: TouchpointMap, suggested: list[Opportunity]) -> tuple[TouchpointMap, list[str], list[str]]:
    """The map with the suggestions in: new cards added, earlier suggestions refreshed (keeping their status
    and owner), stale undone suggestions dropped, and a suggestion on the touchpoints of a card a person wrote
    linked to that card instead of added.

    Returns the map, the keys added or refreshed, and the keys of people's cards that were linked or kept.
    """
    existing = {o.key: o for o in m.opportunities}
    people = [o for o in m.opportunities if o.source == OpportunitySource.person]
    fresh = {o.key for o in suggested}
    result = {o.key: o for o in m.opportunities if not _stale(o, fresh)}
    kept, changed = [], []
    for o in suggested:  # best first: a person's card takes the evidence of the best suggestion on it
        old = existing.get(o.key)
        person = old if old is not None and old.source == OpportunitySource.person else _match(o, people)
        if person is not None:
            if old is not None and old.source == OpportunitySource.suggested:
                result.pop(o.key)  # the card suggested earlier is now the person's card: never both
            first = person.key not in kept
            result[person.key] = _link(result.get(person.key, person), o, first)
            if first:
                kept.append(person.key)
            continue
        if old is not None:
            o = o.model_copy(update={"status": old.status, "owner": old.owner})
        result[o.key] = o
        changed.append(o.key)
    return m.model_copy(update={"opportunities": list(result.values())}), changed, kept


def _stale(o: Opportunity, fresh: set[str]) -> bool:
    """An earlier suggestion nobody acted on and the data no longer supports."""
    return o.source == OpportunitySource.suggested and o.key not in fresh and o.status == OpportunityStatus.idea


def _match(o: Opportunity, people: list[Opportunity]) -> Opportunity | None:
    if not o.touchpoints or o.evidence.get("kind") in STRENGTHS:
        return None
    return next((p for p in people if set(p.touchpoints) & set(o.touchpoints)), None)


def _link(person: Opportunity, o: Opportunity, first: bool) -> Opportunity:
    """A person's card with the suggestion's evidence; its words and place kept. The first (best) suggestion
    linked in a run gives the score and at_stake; every linked suggestion adds its findings."""
    if first:
        evidence = {**person.evidence, **{k: o.evidence[k] for k in ("score", "kind", "at_stake", "reach")}}
        return person.model_copy(
            update={"evidence": {**evidence, "findings": list(o.evidence["findings"]), "linked_suggestion": o.key}}
        )
    findings = [*person.evidence.get("findings", []), *o.evidence["findings"]]
    return person.model_copy(update={"evidence": {**person.evidence, "findings": findings}})


def card(o: Opportunity) -> dict[str, Any]:
    """A roadmap card as `roadmap list --json` gives it."""
    e = o.evidence
    findings = e.get("findings") if isinstance(e.get("findings"), list) else []
    return {
        "key": o.key,
        "title": o.title,
        "description": o.description,
        "kind": e.get("kind"),
        "touchpoints": list(o.touchpoints),
        "horizon": o.horizon.value if o.horizon else None,
        "score": e.get("score"),
        "at_stake": e.get("at_stake"),
        "findings": findings,
        "impact": o.impact,
        "effort": o.effort,
        "confidence": o.confidence,
        "source": o.source.value,
        "status": o.status.value,
        "owner": o.owner,
    }


def _named_in_success(item: Insight, m: TouchpointMap) -> bool:
    """Whether the success statements name the subject, or its stage or channel (as a word)."""
    text = " ".join(str(s) for s in m.success).lower()
    if not text:
        return False
    tp = next((t for t in m.touchpoints if t.key == item.subject), None)
    names = {item.subject, item.subject.replace("_", " ")}
    if tp is not None:
        names |= {n for n in (tp.name, tp.stage, tp.channel) if n}
    return any(re.search(rf"\b{re.escape(n.lower())}\b", text) for n in names)


def _known(m: TouchpointMap, key: str) -> bool:
    return any(t.key == key for t in m.touchpoints)
