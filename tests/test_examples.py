"""The bundled example maps: valid, rich (≥ 30 touchpoints, ≥ 3 personas, ≥ 5 stages), every field used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.conftest import EXAMPLES
from touchlens.model.map import (
    Channel,
    Desired,
    Journey,
    Opportunity,
    OutcomeRule,
    Outcomes,
    Persona,
    PropertyCondition,
    Stage,
    Targets,
    Touchpoint,
    TouchpointMap,
)
from touchlens.model.mapfile import parse_map

# The rich examples a team starts from; subscription_box.yaml is the judgment tests' generated business, smaller
# on purpose (its validity is checked in tests/test_demo_subscription.py).
GENERATED = {"subscription_box.yaml"}
FILES = sorted(p for p in EXAMPLES.glob("*.yaml") if p.name not in GENERATED)


def load(path: Path) -> TouchpointMap:
    return parse_map(path.read_text(encoding="utf-8"), str(path))


def test_there_are_two_examples_and_the_generated_business() -> None:
    assert [f.name for f in FILES] == ["food_delivery.yaml", "outdoor_retail.yaml"]
    assert {p.name for p in EXAMPLES.glob("*.yaml")} - set(f.name for f in FILES) == GENERATED


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_each_example_is_valid_and_rich(path: Path) -> None:
    m = load(path)
    assert len(m.touchpoints) >= 30
    assert len(m.personas) >= 3
    assert len(m.stage_keys()) >= 5
    assert {t.channel for t in m.touchpoints} >= {c.key for c in m.channels}


def _used(items: list[Any], model: type[BaseModel]) -> set[str]:
    return {name for item in items for name in model.model_fields if name in item.model_fields_set}


@pytest.mark.parametrize(
    ("model", "items"),
    [
        (TouchpointMap, lambda ms: ms),
        (Channel, lambda ms: [c for m in ms for c in m.channels]),
        (Persona, lambda ms: [p for m in ms for p in m.personas]),
        (PropertyCondition, lambda ms: []),
        (Journey, lambda ms: [j for m in ms for j in m.journeys]),
        (Stage, lambda ms: [s for m in ms for j in m.journeys for s in j.stages]),
        (Touchpoint, lambda ms: [t for m in ms for t in m.touchpoints]),
        (Desired, lambda ms: [t.desired for m in ms for t in m.touchpoints if t.desired]),
        (Targets, lambda ms: [t.targets for m in ms for t in m.touchpoints if t.targets]),
        (Outcomes, lambda ms: [m.outcomes for m in ms]),
        (OutcomeRule, lambda ms: [r for m in ms for r in m.outcomes.__dict__.values() if r]),
        (Opportunity, lambda ms: [o for m in ms for o in m.opportunities]),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_every_field_is_used_somewhere(model: type[BaseModel], items: Any) -> None:
    maps = [load(f) for f in FILES]
    found = items(maps)
    if model is PropertyCondition:
        ops = {c.operator for m in maps for p in m.personas for c in p.segment}
        assert ops >= {"equals", "in"}
        return
    assert set(model.model_fields) - _used(found, model) == set()


def test_every_condition_operator_is_used_in_match_rules() -> None:
    ops = set()
    for m in (load(f) for f in FILES):
        for t in m.touchpoints:
            if t.match:
                conds = [t.match.event, t.match.channel, *t.match.where.values()]
                ops |= {c.operator for c in conds if c is not None}
    assert ops == {"equals", "in", "prefix", "exists"}
