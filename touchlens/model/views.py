"""Read-only views of a map: the filtered inventory, the stage × channel matrix, and a journey as every picture
of it shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from touchlens.errors import UnknownItem
from touchlens.model.map import Stage, Touchpoint, TouchpointMap


@dataclass(frozen=True)
class TouchpointFilter:
    """Inventory filters; each one given must hold. `persona` keeps touchpoints on that persona's journeys."""

    stage: str | None = None
    channel: str | None = None
    persona: str | None = None
    owner: str | None = None
    phase: str | None = None

    def validate(self, m: TouchpointMap) -> None:
        """Raise `UnknownItem` for a filter value the map does not know, listing the known ones."""
        known = {
            "stage": m.stage_keys() or [t.stage for t in m.touchpoints if t.stage],
            "channel": [c.key for c in m.channels] or [t.channel for t in m.touchpoints if t.channel],
            "persona": [p.key for p in m.personas],
        }
        for name, keys in known.items():
            value = getattr(self, name)
            if value is not None and value not in keys:
                listed = ", ".join(sorted(set(keys))) or "none"
                raise UnknownItem(f"unknown {name} '{value}'; {name}s are: {listed}")

    def keep(self, m: TouchpointMap, tp: Touchpoint) -> bool:
        if self.stage is not None and tp.stage != self.stage:
            return False
        if self.channel is not None and tp.channel != self.channel:
            return False
        if self.owner is not None and (tp.owner or "").casefold() != self.owner.casefold():
            return False
        if self.phase is not None and (tp.phase.value if tp.phase else None) != self.phase:
            return False
        return self.persona is None or serves_persona(m, tp, self.persona)


def serves_persona(m: TouchpointMap, tp: Touchpoint, persona: str) -> bool:
    """True when its stage is on the persona's journey and it is not limited to other personas."""
    if tp.personas and persona not in tp.personas:
        return False
    return tp.stage in m.persona_stage_keys(persona) or (bool(tp.personas) and tp.stage is None)


def filter_touchpoints(m: TouchpointMap, flt: TouchpointFilter) -> list[Touchpoint]:
    flt.validate(m)
    return [tp for tp in m.touchpoints if flt.keep(m, tp)]


@dataclass
class MatrixCell:
    stage: str
    channel: str
    touchpoints: list[str] = field(default_factory=list)
    planned: bool = False
    planned_any: bool = False  # the channel's strategy names stages at all

    @property
    def status(self) -> str:
        """served (planned and present), off_plan (present, not planned), gap (planned, empty) or empty."""
        if self.touchpoints:
            return "served" if self.planned or not self.planned_any else "off_plan"
        return "gap" if self.planned else "empty"


@dataclass
class Matrix:
    """Touchpoints by stage × channel: the customer's view against the company's channel strategy."""

    stages: list[str]
    channels: list[str]
    cells: list[MatrixCell]

    def cell(self, stage: str, channel: str) -> MatrixCell:
        return next(c for c in self.cells if c.stage == stage and c.channel == channel)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": self.stages,
            "channels": self.channels,
            "cells": [
                {
                    "stage": c.stage,
                    "channel": c.channel,
                    "touchpoints": c.touchpoints,
                    "planned": c.planned,
                    "status": c.status,
                }
                for c in self.cells
            ],
        }


def _ordered(first: list[str], extra: list[str | None]) -> list[str]:
    out = list(first)
    for key in extra:
        if key is not None and key not in out:
            out.append(key)
    return out


def matrix(m: TouchpointMap, touchpoints: list[Touchpoint] | None = None) -> Matrix:
    """Every stage × every channel, empty cells included; a channel's `stages` is its planned presence.

    A touchpoint with no stage or channel sits in the row or column named ``-``.
    """
    tps = m.touchpoints if touchpoints is None else touchpoints
    stages = _ordered(m.stage_keys(), [t.stage or "-" for t in tps])
    channels = _ordered([c.key for c in m.channels], [t.channel or "-" for t in tps])
    planned = {(s, c.key) for c in m.channels for s in c.stages}
    strategy = {c.key for c in m.channels if c.stages}
    cells = [MatrixCell(s, c, planned=(s, c) in planned, planned_any=c in strategy) for s in stages for c in channels]
    index = {(cell.stage, cell.channel): cell for cell in cells}
    for tp in tps:
        index[(tp.stage or "-", tp.channel or "-")].touchpoints.append(tp.key)
    return Matrix(stages, channels, cells)


@dataclass(frozen=True)
class JourneyView:
    """What every picture of a journey shows (the canvas, the SVG map, the Mermaid diagram): its stages in order
    and each stage's touchpoints. `touchpoints[None]`: those with no stage (whole map only)."""

    title: str
    stages: list[Stage]
    touchpoints: dict[str | None, list[Touchpoint]]
    persona: str | None = None
    journey: str | None = None
    # Which journey describes each stage (the chosen one, else the first that names it); none for a stage only
    # touchpoints name.
    described_by: dict[str, str] = field(default_factory=dict)
    channels: frozenset[str] = frozenset()  # the map's channel keys

    def shown(self) -> list[Touchpoint]:
        return [t for tps in self.touchpoints.values() for t in tps]

    def channel_of(self, tp: Touchpoint) -> str | None:
        """The touchpoint's lane: its channel when the map has it, else None (drawn under "No channel")."""
        return tp.channel if tp.channel in self.channels else None

    def cell(self, stage: str | None, channel: str | None) -> list[Touchpoint]:
        return [t for t in self.touchpoints.get(stage, []) if self.channel_of(t) == channel]


def journey_view(m: TouchpointMap, journey: str | None = None) -> JourneyView:
    """One journey's stages and the touchpoints open to its persona; without a key, every stage and touchpoint.

    A touchpoint limited to other personas is not on this persona's journey. Without a journey, a stage key only
    touchpoints name (a map with no journeys yet) is a stage of its own, so no touchpoint is left out."""
    if journey is None:
        stages, title, persona, chosen = m.stages(), m.name, None, m.journeys
    else:
        found = next((j for j in m.journeys if j.key == journey), None)
        if found is None:
            known = ", ".join(j.key for j in m.journeys) or "none"
            raise UnknownItem(f"unknown journey '{journey}'; journeys are: {known}")
        stages, title, persona, chosen = found.stages, f"{m.name} — {found.name or found.key}", found.persona, [found]
    described: dict[str, str] = {}
    for j in chosen:
        for s in j.stages:
            described.setdefault(s.key, j.key)
    if journey is None:
        named = {s.key for s in stages}
        extra = dict.fromkeys(t.stage for t in m.touchpoints if t.stage is not None and t.stage not in named)
        # a stage of its own, named by its key
        stages = [*stages, *(Stage(key=key) for key in extra)]
    keys = {s.key for s in stages}
    by_stage: dict[str | None, list[Touchpoint]] = {s.key: [] for s in stages}
    for tp in m.touchpoints:
        if persona is not None and tp.personas and persona not in tp.personas:
            continue
        if tp.stage in keys:
            by_stage[tp.stage].append(tp)
        elif tp.stage is None and journey is None:
            by_stage.setdefault(None, []).append(tp)
    channels = frozenset(c.key for c in m.channels)
    return JourneyView(title, stages, by_stage, persona, journey, described, channels)
