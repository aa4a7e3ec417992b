"""The map's condition operators, once: each compiles to SQL (ingest's CASE expression, with bound parameters) and
to an Ibis predicate (the analyses), from the same row of one table, so the two can never disagree.

Values are compared as text, the way JSON extraction yields them (``True`` → ``true``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from touchlens.model.map import Condition


@dataclass
class SqlExpr:
    """SQL text with `?` placeholders and the values to bind to them, in order."""

    sql: str
    params: list[Any] = field(default_factory=list)


def as_text(value: Any) -> str:
    """A map value as the text JSON extraction yields: ``True`` → ``true``, ``1.5`` → ``1.5``."""
    return value if isinstance(value, str) else json.dumps(value)


def _texts(values: Any) -> list[str]:
    return [as_text(v) for v in values or []]


@dataclass(frozen=True)
class Operator:
    """One operator: its SQL over a column expression of ours, and its Ibis predicate over a column."""

    sql: Callable[[SqlExpr, Any], SqlExpr]
    ibis: Callable[[Any, Any], Any]


OPERATORS: dict[str, Operator] = {
    "equals": Operator(
        sql=lambda col, v: SqlExpr(f"({col.sql} = ?)", [*col.params, as_text(v)]),
        ibis=lambda col, v: col == as_text(v),
    ),
    "in": Operator(
        sql=lambda col, v: SqlExpr(f"list_contains(?::VARCHAR[], {col.sql})", [_texts(v), *col.params]),
        ibis=lambda col, v: col.isin(_texts(v)),
    ),
    "prefix": Operator(
        sql=lambda col, v: SqlExpr(f"starts_with({col.sql}, ?)", [*col.params, v or ""]),
        ibis=lambda col, v: col.startswith(v or ""),
    ),
    "exists": Operator(
        sql=lambda col, v: SqlExpr(f"({col.sql} IS {'NOT ' if v else ''}NULL)", col.params),
        ibis=lambda col, v: col.notnull() if v else col.isnull(),
    ),
}


def condition_sql(column: SqlExpr, cond: Condition) -> SqlExpr:
    """One condition on a column expression of ours (its own parameters kept in place)."""
    return OPERATORS[cond.operator].sql(column, cond.operand(cond.operator))


def condition_ibis(column: Any, cond: Condition) -> Any:
    """One condition as an Ibis predicate on `column`."""
    return OPERATORS[cond.operator].ibis(column, cond.operand(cond.operator))
