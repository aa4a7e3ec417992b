"""Combining maps: merge one into another by key, and lay a CSV inventory over a map."""

from __future__ import annotations

from typing import Any, TypeVar

from touchlens.errors import MapError, Problem
from touchlens.model.checks import reference_problems
from touchlens.model.inventory import Inventory
from touchlens.model.map import TouchpointMap
from touchlens.model.mapfile import dotted

T = TypeVar("T")


def merge_items(base: list[T], incoming: list[T]) -> list[T]:
    """Items of `incoming` replace those of `base` with the same key; new keys are appended in order."""
    by_key: dict[Any, T] = {getattr(item, "key"): item for item in base}  # noqa: B009
    for item in incoming:
        by_key[getattr(item, "key")] = item  # noqa: B009
    return list(by_key.values())


def merge_maps(base: TouchpointMap, incoming: TouchpointMap) -> TouchpointMap:
    """`incoming` wins wherever it says something: fields it sets, items by key, outcomes by name."""
    data = base.model_dump(by_alias=True)
    given = incoming.model_dump(by_alias=True, exclude_defaults=True)
    for section in ("channels", "personas", "journeys", "touchpoints", "opportunities"):
        given.pop(section, None)
        data[section] = merge_items(getattr(base, section), getattr(incoming, section))
    outcomes = given.pop("outcomes", {})
    data["outcomes"] = {**data["outcomes"], **outcomes}
    data.update(given)
    return TouchpointMap.model_validate(data)


def apply_inventory(
    base: TouchpointMap, inv: Inventory, merge: bool, filename: str = "<inventory>"
) -> tuple[TouchpointMap, list[Problem]]:
    """The map with the inventory's touchpoints (replacing the map's, or merged by key with `merge`).

    Rows that break a reference (unknown stage, overlapping rule, …) are left out and reported with their
    line, like rows bad on their own. Returns the new map and every row problem.
    """
    problems = list(inv.problems)
    rows = list(inv.rows)
    while True:
        incoming = [row.touchpoint for row in rows]
        touchpoints = merge_items(base.touchpoints, incoming) if merge else incoming
        candidate = base.model_copy(update={"touchpoints": touchpoints})
        bad = _rows_with_problems(candidate, rows, filename)
        if not bad:
            return candidate, problems
        problems += [problem for _, problem in bad]
        dropped = {line for line, _ in bad}
        rows = [row for row in rows if row.line not in dropped]


def _rows_with_problems(m: TouchpointMap, rows: list[Any], filename: str) -> list[tuple[int, Problem]]:
    line_of_key = {row.touchpoint.key: row.line for row in rows}
    found: list[tuple[int, Problem]] = []
    others: list[Problem] = []
    for ref in reference_problems(m):
        tp = m.touchpoints[int(ref.path[1])] if ref.path[:1] == ("touchpoints",) else None
        if tp is not None and tp.key in line_of_key:
            column = str(ref.path[2]) if len(ref.path) > 2 else ""
            found.append((line_of_key[tp.key], Problem(ref.message, column, filename, line_of_key[tp.key])))
        else:
            others.append(Problem(ref.message, dotted(ref.path), filename))
    if others and not found:
        raise MapError(others)
    return found
