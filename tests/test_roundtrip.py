"""Import then export is lossless: YAML, JSON, the metadata store (SQLite and PostgreSQL) and the CSV inventory
give back the map."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import maps
from touchlens.model.inventory import dump_inventory, parse_inventory
from touchlens.model.map import TouchpointMap
from touchlens.model.mapfile import dump_map, parse_map, validate_map
from touchlens.store import meta

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@FAST
@given(maps(), st.sampled_from(["yaml", "json"]))
def test_any_valid_map_survives_dump_and_parse(data: dict[str, Any], fmt: str) -> None:
    m = validate_map(data)
    assert parse_map(dump_map(m, fmt), f"m.{fmt}") == m  # type: ignore[arg-type]


@pytest.mark.slow
@FAST
@given(maps())
def test_dump_then_parse_gives_the_same_text(data: dict[str, Any]) -> None:
    m = validate_map(data)
    text = dump_map(m)
    assert dump_map(parse_map(text)) == text


@pytest.fixture
def store(meta_url: str) -> Iterator[sa.Engine]:
    """A migrated metadata store on each backend in turn (SQLite, PostgreSQL)."""
    engine = sa.create_engine(meta_url)
    meta.migrate(engine)
    yield engine
    engine.dispose()


# One store for all examples is right: each save replaces the whole map.
@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=maps())
def test_the_store_gives_back_what_it_was_given(store: sa.Engine, data: dict[str, Any]) -> None:
    m = validate_map(data)
    meta.save_map(store, m)
    assert meta.load_map(store) == m


def test_free_text_postgresql_cannot_index_still_round_trips(store: sa.Engine) -> None:
    # PostgreSQL's text holds no NUL and its columns have lengths; the document keeps the text exactly.
    m = TouchpointMap.model_validate(
        {"name": "nul\x00" + "n" * 600, "touchpoints": [{"key": "x", "owner": "o\x00" * 400}]}
    )
    meta.save_map(store, m)
    assert meta.load_map(store) == m


stripped = st.text(max_size=20).map(str.strip)


@pytest.mark.slow
@FAST
@given(maps())
def test_the_csv_inventory_round_trips_touchpoints(data: dict[str, Any]) -> None:
    # Cells are trimmed on import, as spreadsheets pad them; compare on trimmed text.
    m = validate_map(_trimmed(data))
    inv = parse_inventory(dump_inventory(m.touchpoints), "inv.csv")
    assert inv.problems == []
    assert [row.touchpoint for row in inv.rows] == m.touchpoints


def _trimmed(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or "x"
    if isinstance(value, list):
        return [_trimmed(v) for v in value]
    if isinstance(value, dict):
        return {k: _trimmed(v) for k, v in value.items()}
    return value


def test_store_replaces_the_whole_map() -> None:
    engine = sa.create_engine("sqlite://")
    meta.migrate(engine)
    meta.save_map(engine, TouchpointMap.model_validate({"name": "A", "touchpoints": [{"key": "x"}]}))
    meta.save_map(engine, TouchpointMap.model_validate({"name": "B", "channels": [{"key": "email"}]}))
    loaded = meta.load_map(engine)
    assert loaded is not None
    assert (loaded.name, loaded.touchpoints, [c.key for c in loaded.channels]) == ("B", [], ["email"])
