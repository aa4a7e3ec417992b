"""What of the map an analysis can depend on, as one hash: editing prose (descriptions, expectations, scripts,
stage texts) or a roadmap card leaves it as it was, so cached analyses survive those edits; a change to a match
rule, a stage, an outcome, a persona's segment, a name or a target changes it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from touchlens.model.map import Channel, Journey, Persona, Stage, Touchpoint, TouchpointMap

# What no analysis reads: the words people write for each other, and the roadmap's cards (read by the roadmap
# itself, live, never cached). tests/test_fingerprint.py checks that the analytics, insights and queries do not
# read them. Names stay out of this list: results show them.
UNREAD: dict[type[BaseModel], frozenset[str]] = {
    TouchpointMap: frozenset({"description", "mission", "opportunities"}),
    Channel: frozenset({"description", "strategy"}),
    Persona: frozenset({"description", "goals", "frustrations"}),
    Journey: frozenset({"description"}),
    Stage: frozenset({"description", "goal", "tasks", "questions", "weaknesses", "opportunities"}),
    Touchpoint: frozenset({"description", "expectations", "annoyances", "desired", "script"}),
}


def analysis_fingerprint(m: TouchpointMap) -> str:
    """A hash of everything in `m` that an analysis may read."""
    text = json.dumps(_read(m), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _read(value: Any) -> Any:
    if isinstance(value, BaseModel):
        unread = UNREAD.get(type(value), frozenset())
        return {name: _read(getattr(value, name)) for name in type(value).model_fields if name not in unread}
    if isinstance(value, dict):
        return {str(k): _read(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_read(v) for v in value]
    return value
