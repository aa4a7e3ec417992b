"""Read-only views of a map: the filtered inventory and the stage × channel matrix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from touchlens.errors import UnknownItem
from touchlens.model.map import Touchpoint, TouchpointMap


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
