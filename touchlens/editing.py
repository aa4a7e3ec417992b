"""Edits to the stored map from the edges: a touchpoint's fields, a journey stage's, an opportunity's place.

Each edit builds the whole updated map, validates it as a map file would be (every problem at once) and stores it
through `Workspace.save_map`, so a broken reference is refused and nothing changes. Each edit that changes the
map is audited once, as `actor`'s, naming the item and the fields sent. Example::

    update_touchpoint(ws, "refund_email", TouchpointChanges(expectations="Know when the money arrives."), actor="ann")
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from touchlens.admin import LIBRARY
from touchlens.api import Workspace
from touchlens.errors import MapError, Problem, UnknownItem
from touchlens.model.map import (
    Desired,
    Directness,
    Horizon,
    Initiative,
    Key,
    MatchRule,
    Opportunity,
    OpportunityStatus,
    Phase,
    Stage,
    Survey,
    Targets,
    Text,
    Touchpoint,
    TouchpointMap,
)
from touchlens.model.mapfile import map_to_data, validate_map

# One edit at a time: each reads the map, changes it and saves it whole, so two at once would lose one.
LOCK = threading.RLock()


class NotFound(UnknownItem):
    """The item an edit names does not exist (the web answers 404)."""


class Changes(BaseModel):
    """Fields to change; a field left out stays as it is, a field sent as null is cleared."""

    model_config = ConfigDict(extra="forbid")

    def as_data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return data


class TouchpointChanges(Changes):
    """Any subset of a touchpoint's fields except its key."""

    name: str | None = None
    description: Text | None = None
    stage: Key | None = Field(default=None, description="A stage key of the map's journeys.")
    channel: Key | None = Field(default=None, description="A channel key of the map.")
    phase: Phase | None = None
    initiative: Initiative | None = None
    directness: Directness | None = None
    owner: str | None = None
    personas: list[Key] | None = None
    expectations: Text | None = None
    annoyances: Text | None = None
    desired: Desired | None = Field(default=None, description="What the customer should think, do and feel.")
    script: Text | None = None
    match: MatchRule | None = Field(default=None, description="Which events belong to the touchpoint.")
    targets: Targets | None = None
    survey: Survey | None = Field(default=None, description="How survey links ask about the touchpoint.")


class StageChanges(Changes):
    """Any subset of a journey stage's fields except its key."""

    name: str | None = None
    description: Text | None = None
    goal: str | None = None
    tasks: list[str] | None = None
    questions: list[str] | None = None
    emotion: int | None = Field(default=None, ge=-2, le=2, description="From -2 (very negative) to 2.")
    weaknesses: list[str] | None = None
    opportunities: list[str] | None = None


class NewTouchpoint(Changes):
    """A touchpoint made from events no touchpoint claims: its key and name, the event it matches, and where it
    sits (all checked against the map, as any edit is)."""

    key: Key
    name: str = Field(min_length=1, max_length=200)
    event: str = Field(min_length=1, max_length=500, description="The event name its match rule claims.")
    stage: Key | None = Field(default=None, description="A stage key of the map's journeys.")
    channel: Key | None = Field(default=None, description="A channel key of the map.")


class OpportunityChanges(Changes):
    """Where an opportunity sits on the roadmap and how far it got."""

    horizon: Horizon | None = None
    status: OpportunityStatus | None = None


def update_touchpoint(ws: Workspace, key: str, changes: TouchpointChanges, *, actor: str = LIBRARY) -> Touchpoint:
    """Change some fields of touchpoint `key`; a `MapError` lists every problem (an unknown stage, say)."""
    with LOCK:
        m = ws.map()
        i = _index([t.key for t in m.touchpoints], key, "touchpoint")
        data = map_to_data(m)
        data["touchpoints"][i] = _merged(data["touchpoints"][i], changes)
        return _save(ws, m, data, Edit(actor, f"touchpoint {key}", changes)).touchpoints[i]


def add_touchpoint(ws: Workspace, new: NewTouchpoint, *, actor: str = LIBRARY) -> Touchpoint:
    """Add a touchpoint whose match rule claims `new.event`; refused whole (a `MapError` naming every problem) when
    the key is taken, the stage or channel unknown, or another touchpoint's rule already claims the event."""
    with LOCK:
        m = ws.map()
        data = map_to_data(m)
        item = {k: v for k, v in new.as_data().items() if k != "event" and v is not None}
        data.setdefault("touchpoints", []).append({**item, "match": {"event": new.event}})
        return _save(ws, m, data, Edit(actor, f"touchpoint {new.key}", new)).touchpoints[-1]


def update_stage(ws: Workspace, journey: str, stage: str, changes: StageChanges, *, actor: str = LIBRARY) -> Stage:
    """Change some fields of `stage` as journey `journey` describes it (its persona's tasks, emotion …)."""
    with LOCK:
        m = ws.map()
        j = _index([x.key for x in m.journeys], journey, "journey")
        s = _index([x.key for x in m.journeys[j].stages], stage, f"stage of journey '{journey}'")
        data = map_to_data(m)
        stages = data["journeys"][j]["stages"]
        stages[s] = _merged(stages[s], changes)
        return _save(ws, m, data, Edit(actor, f"stage {journey}/{stage}", changes)).journeys[j].stages[s]


def update_opportunity(ws: Workspace, key: str, changes: OpportunityChanges, *, actor: str = LIBRARY) -> Opportunity:
    """Move opportunity `key` to another horizon or set its status (it becomes a person's)."""
    with LOCK:
        _index([o.key for o in ws.map().opportunities], key, "opportunity")
        horizon = changes.horizon.value if changes.horizon is not None else None
        status = changes.status.value if changes.status is not None else None
        return ws.roadmap_update(key, horizon=horizon, status=status, actor=actor)


def suggest_opportunities(ws: Workspace, *, actor: str = LIBRARY) -> tuple[list[Opportunity], list[str]]:
    """`Workspace.roadmap_suggest`, serialised with the other edits."""
    with LOCK:
        return ws.roadmap_suggest(actor=actor)


def _index(keys: list[str], key: str, kind: str) -> int:
    if key not in keys:
        raise NotFound(f"unknown {kind} '{key}'; known: {', '.join(keys) or 'none'}")
    return keys.index(key)


def _merged(item: dict[str, Any], changes: Changes) -> dict[str, Any]:
    merged = {**item, **changes.as_data()}
    return {name: value for name, value in merged.items() if value is not None}


@dataclass(frozen=True)
class Edit:
    """Who edited which item (`touchpoint KEY`, `stage JOURNEY/STAGE`), sending which changes: its audit entry."""

    actor: str
    target: str
    changes: Changes


def _save(ws: Workspace, old: TouchpointMap, data: dict[str, Any], edit: Edit) -> TouchpointMap:
    """Validate the edited map data and store it, audited (unless nothing changed: cached results stay valid, and
    there is no change to record)."""
    try:
        m = validate_map(data)
    except MapError as exc:
        # No file here: the problems name the field, as `touchpoints[3].stage: unknown stage 'x'`.
        raise MapError([Problem(p.message, p.path) for p in exc.problems]) from None
    if m != old:
        ws.save_map(m, actor=edit.actor, target=edit.target, fields=sorted(edit.changes.model_fields_set))
    return m
