"""Combining maps: merge one into another by key, and lay a CSV inventory over a map."""

from __future__ import annotations

from typing import Any, TypeVar

from touchlens.errors import MapError, Problem
from touchlens.model.checks import reference_problems
from touchlens.model.inventory import Inventory, InventoryRow
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
    row, like rows bad on their own. Returns the new map and every row problem. Raises `MapError` when no
    row is valid, or when the result breaks something outside the rows (an opportunity's touchpoint).
    """
    problems = list(inv.problems)
    rows = list(inv.rows)
    while True:
        incoming = [row.touchpoint for row in rows]
        touchpoints = merge_items(base.touchpoints, incoming) if merge else incoming
        candidate = base.model_copy(update={"touchpoints": touchpoints})
        bad, others = _row_problems(candidate, rows, filename)
        problems += [problem for _, problem in bad]
        if others or (not rows and problems):
            raise MapError(sorted(problems, key=lambda p: p.line or 0) + others)
        if not bad:
            return candidate, problems
        dropped = {line for line, _ in bad}
        rows = [row for row in rows if row.line not in dropped]


def _row_problems(
    m: TouchpointMap, rows: list[InventoryRow], filename: str
) -> tuple[list[tuple[int, Problem]], list[Problem]]:
    """Reference problems split into those a row of the inventory causes, and the rest."""
    row_of = {row.touchpoint.key: row.line for row in rows}
    found: list[tuple[int, Problem]] = []
    others: list[Problem] = []
    for ref in reference_problems(m):
        key = m.touchpoints[int(ref.path[1])].key if ref.path[:1] == ("touchpoints",) else None
        if key in row_of:
            column = str(ref.path[2]) if len(ref.path) > 2 else ""
            found.append((row_of[key], Problem(ref.message, column, filename, row_of[key])))
        elif ref.other in row_of:
            # An overlap with a touchpoint already stored: the new row is the one to fix.
            message = ref.message.replace(f"'{ref.other}'", f"'{key}'")
            found.append((row_of[ref.other], Problem(message, "match", filename, row_of[ref.other])))
        else:
            others.append(Problem(ref.message, dotted(ref.path), filename))
    return found, others
