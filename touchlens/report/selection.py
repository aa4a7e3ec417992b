"""Which stages and touchpoints a report shows: one journey's (for its persona), or the whole map's."""

from __future__ import annotations

from dataclasses import dataclass

from touchlens.errors import UnknownItem
from touchlens.model.map import Stage, Touchpoint, TouchpointMap


@dataclass(frozen=True)
class Selection:
    """A title, the stages in order and each stage's touchpoints (key None: touchpoints without a stage)."""

    title: str
    stages: list[Stage]
    touchpoints: dict[str | None, list[Touchpoint]]
    persona: str | None = None

    def shown(self) -> list[Touchpoint]:
        return [t for tps in self.touchpoints.values() for t in tps]


def select(m: TouchpointMap, journey: str | None = None) -> Selection:
    """One journey's stages and the touchpoints open to its persona; without a key, every stage and touchpoint
    (those without a stage under the key None)."""
    if journey is None:
        stages, title, persona = m.stages(), m.name, None
    else:
        chosen = next((j for j in m.journeys if j.key == journey), None)
        if chosen is None:
            known = ", ".join(j.key for j in m.journeys) or "none"
            raise UnknownItem(f"unknown journey '{journey}'; journeys are: {known}")
        stages, title, persona = chosen.stages, f"{m.name} — {chosen.name or chosen.key}", chosen.persona
    keys = {s.key for s in stages}
    by_stage: dict[str | None, list[Touchpoint]] = {s.key: [] for s in stages}
    for tp in m.touchpoints:
        if persona is not None and tp.personas and persona not in tp.personas:
            continue
        if tp.stage in keys:
            by_stage[tp.stage].append(tp)
        elif tp.stage is None and journey is None:
            by_stage.setdefault(None, []).append(tp)
    return Selection(title, stages, by_stage, persona)
