"""Checks across map items: broken references and overlapping rules (errors), and design checks (advice).

Errors make a map invalid. Design checks point at what a complete journey map would still need.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from touchlens.model.map import TouchpointMap, slugify
from touchlens.model.rules import overlapping_pairs

Path = tuple[str | int, ...]

SECTIONS = ("channels", "personas", "journeys", "touchpoints", "opportunities")


@dataclass(frozen=True)
class RefProblem:
    """An error found across items; `path` uses indices of the map as checked.

    `other` names the second item involved (the touchpoint an overlapping rule collides with).
    """

    path: Path
    message: str
    other: str | None = None


@dataclass(frozen=True)
class Declared:
    """The keys a map declares, read from every item (valid or not) so one bad item hides no reference."""

    channels: frozenset[str]
    personas: frozenset[str]
    stages: frozenset[str]
    touchpoints: frozenset[str]

    @classmethod
    def of(cls, m: TouchpointMap) -> Declared:
        return cls(
            frozenset(c.key for c in m.channels),
            frozenset(p.key for p in m.personas),
            frozenset(m.stage_keys()),
            frozenset(t.key for t in m.touchpoints),
        )

    @classmethod
    def of_raw(cls, data: dict[str, Any]) -> Declared:
        def keys(items: Any) -> frozenset[str]:
            items = items if isinstance(items, list) else []
            return frozenset(i["key"] for i in items if isinstance(i, dict) and isinstance(i.get("key"), str))

        journeys = data.get("journeys")
        journeys = journeys if isinstance(journeys, list) else []
        stages = frozenset().union(*(keys(j.get("stages")) for j in journeys if isinstance(j, dict)))
        return cls(keys(data.get("channels")), keys(data.get("personas")), stages, keys(data.get("touchpoints")))


@dataclass(frozen=True)
class Finding:
    """One design-check result: which check, about which item, and what to do."""

    check: str
    subject: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "subject": self.subject, "message": self.message}


def item_key(item: Any, section: str) -> str | None:
    """An item's key as written, or (opportunities) as derived from its title."""
    if not isinstance(item, dict):
        return None
    key = item.get("key")
    if key is None and section == "opportunities" and isinstance(item.get("title"), str):
        return slugify(item["title"])
    return key if isinstance(key, str) else None


def duplicate_keys(raw_items: list[Any], section: str) -> Iterator[RefProblem]:
    """Duplicate keys in a raw section (checked before validation, so bad items count too)."""
    keys = [item_key(item, section) for item in raw_items]
    counts = Counter(k for k in keys if isinstance(k, str))
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        if not isinstance(key, str) or counts[key] < 2:
            continue
        if key in first:
            yield RefProblem(
                (section, index, "key"),
                f"duplicate key '{key}' (first used by {section}[{first[key]}])",
            )
        else:
            first[key] = index


def _unknown(kind: str, key: str, known: Iterable[str]) -> str:
    names = sorted(set(known))
    shown = ", ".join(names[:25]) + (", …" if len(names) > 25 else "")
    return f"unknown {kind} '{key}'; {kind}s are: {shown}"


def reference_problems(m: TouchpointMap, declared: Declared | None = None) -> list[RefProblem]:
    """Every broken reference and overlapping rule. A section nobody declared yet is not checked."""
    d = declared or Declared.of(m)
    return [
        *_journey_problems(m, d),
        *_touchpoint_problems(m, d),
        *_channel_problems(m, d),
        *_opportunity_problems(m, d),
    ]


def model_duplicates(m: TouchpointMap) -> list[RefProblem]:
    """Duplicate keys in a map built in code or by a merge, where no file was checked first."""
    return [
        problem
        for section in SECTIONS
        for problem in duplicate_keys([{"key": item.key} for item in getattr(m, section)], section)
    ]


def _journey_problems(m: TouchpointMap, d: Declared) -> Iterator[RefProblem]:
    personas = d.personas
    for j, journey in enumerate(m.journeys):
        if personas and journey.persona is not None and journey.persona not in personas:
            yield RefProblem(("journeys", j, "persona"), _unknown("persona", journey.persona, personas))
        seen: dict[str, int] = {}
        for s, stage in enumerate(journey.stages):
            if stage.key in seen:
                yield RefProblem(
                    ("journeys", j, "stages", s, "key"),
                    f"duplicate stage '{stage.key}' in journey '{journey.key}'",
                )
            seen.setdefault(stage.key, s)


def _touchpoint_problems(m: TouchpointMap, d: Declared) -> Iterator[RefProblem]:
    stages, channels, personas = d.stages, d.channels, d.personas
    for t, tp in enumerate(m.touchpoints):
        if stages and tp.stage is not None and tp.stage not in stages:
            yield RefProblem(("touchpoints", t, "stage"), _unknown("stage", tp.stage, stages))
        if channels and tp.channel is not None and tp.channel not in channels:
            yield RefProblem(("touchpoints", t, "channel"), _unknown("channel", tp.channel, channels))
        for p, persona in enumerate(tp.personas):
            if personas and persona not in personas:
                yield RefProblem(("touchpoints", t, "personas", p), _unknown("persona", persona, personas))
    for i, j in overlapping_pairs(m.touchpoints):
        yield RefProblem(
            ("touchpoints", j, "match"),
            f"match rule overlaps the rule of touchpoint '{m.touchpoints[i].key}': "
            "one event could belong to both; add a condition that tells them apart",
            other=m.touchpoints[i].key,
        )


def _channel_problems(m: TouchpointMap, d: Declared) -> Iterator[RefProblem]:
    stages = d.stages
    for c, channel in enumerate(m.channels):
        for s, stage in enumerate(channel.stages):
            if stages and stage not in stages:
                yield RefProblem(("channels", c, "stages", s), _unknown("stage", stage, stages))


def _opportunity_problems(m: TouchpointMap, d: Declared) -> Iterator[RefProblem]:
    touchpoints = d.touchpoints
    for o, opp in enumerate(m.opportunities):
        for t, key in enumerate(opp.touchpoints):
            if touchpoints and key not in touchpoints:
                yield RefProblem(("opportunities", o, "touchpoints", t), _unknown("touchpoint", key, touchpoints))


def design_checks(m: TouchpointMap) -> list[Finding]:
    """What a complete journey map still lacks; none of these make the map invalid."""
    return [*_coverage_findings(m), *_touchpoint_findings(m), *_strategy_findings(m)]


def _coverage_findings(m: TouchpointMap) -> Iterator[Finding]:
    used_stages = {t.stage for t in m.touchpoints}
    used_channels = {t.channel for t in m.touchpoints}
    for stage in m.stages():
        if stage.key not in used_stages:
            yield Finding("stage_without_touchpoint", stage.key, "no touchpoint serves this stage")
    for journey in m.journeys:
        for stage in journey.stages:
            if stage.emotion is None:
                yield Finding("stage_without_emotion", f"{journey.key}/{stage.key}", "no emotion (-2..2) recorded")
    for channel in m.channels:
        if channel.key not in used_channels:
            yield Finding("unused_channel", channel.key, "no touchpoint uses this channel")
    with_journey = {j.persona for j in m.journeys}
    for persona in m.personas:
        if persona.key not in with_journey:
            yield Finding("persona_without_journey", persona.key, "no journey is mapped for this persona")


def _touchpoint_findings(m: TouchpointMap) -> Iterator[Finding]:
    declared_channels, declared_stages = {c.key for c in m.channels}, set(m.stage_keys())
    for tp in m.touchpoints:
        if not tp.owner:
            yield Finding("touchpoint_without_owner", tp.key, "nobody owns this touchpoint")
        if not tp.expectations:
            yield Finding("touchpoint_without_expectations", tp.key, "customer expectations not written down")
        if tp.match is None:
            yield Finding("touchpoint_without_match", tp.key, "no match rule: events cannot be mapped to it")
        if tp.channel is not None and tp.channel not in declared_channels:
            yield Finding("undeclared_channel", tp.key, f"channel '{tp.channel}' is not declared in channels")
        if tp.stage is not None and tp.stage not in declared_stages:
            yield Finding("undeclared_stage", tp.key, f"stage '{tp.stage}' is in no journey")


def _strategy_findings(m: TouchpointMap) -> Iterator[Finding]:
    served = {(t.stage, t.channel) for t in m.touchpoints}
    for channel in m.channels:
        for stage in channel.stages:
            if (stage, channel.key) not in served:
                yield Finding(
                    "planned_cell_empty",
                    f"{stage}/{channel.key}",
                    f"the channel strategy plans {channel.key} in stage {stage}, but no touchpoint is there",
                )
