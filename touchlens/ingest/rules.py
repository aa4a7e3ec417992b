"""Touchpoint rules compiled to one SQL CASE expression, evaluated by the engine over whole batches.

Every value from the map travels as a bound parameter; the SQL text holds only our own column names, so no
user text is ever spliced into a statement. Example::

    expr = compile_rules(touchpoints)
    con.execute(f"SELECT {expr.sql} AS touchpoint FROM events", expr.params)
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from touchlens.errors import BadOption
from touchlens.ingest.operators import SqlExpr, condition_sql
from touchlens.model.map import MAX_PROPERTY_NAME, OutcomeRule, PropertyCondition, Touchpoint


def property_name(name: str) -> str:
    """`name` when every engine can take it as a property name; a `BadOption` naming it otherwise."""
    if not name:
        raise BadOption("property name is empty; name a property, as in property:plan")
    if "\x00" in name:
        raise BadOption(f"property name {name!r}: a NUL character cannot be part of a property name")
    if not name.isascii() and not _encodable(name):
        raise BadOption(f"property name {name!r}: not valid text (a byte that is not UTF-8)")
    if len(name) > MAX_PROPERTY_NAME:
        raise BadOption(f"property name {name[:40]!r}…: longer than {MAX_PROPERTY_NAME} characters")
    return name


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: what Python makes of a command-line byte that is not UTF-8
        return False
    return True


def json_pointer(name: str) -> str:
    """The JSON pointer (RFC 6901) to one top-level property: the one way any engine addresses a property by name.

    A pointer has a single escape (``~`` → ``~0``, ``/`` → ``~1``) and no quoting, so quotes, backslashes, dots,
    brackets and control characters are plain characters in it; a JSON path (``$."name"``) needs JSON escapes
    that DuckDB does not decode. sqlglot also leaves a path starting with ``/`` unparsed, so through Ibis it
    reaches DuckDB as one correctly quoted string literal (a ``$.`` path is re-rendered without escaping).
    """
    return "/" + property_name(name).replace("~", "~0").replace("/", "~1")


def _property(json_column: str, name: str) -> SqlExpr:
    return SqlExpr(f"json_extract_string({json_column}, ?)", [json_pointer(name)])


def _all(parts: list[SqlExpr]) -> SqlExpr:
    if not parts:
        return SqlExpr("TRUE")
    return SqlExpr("(" + " AND ".join(p.sql for p in parts) + ")", [v for p in parts for v in p.params])


def rule_properties(touchpoints: list[Touchpoint]) -> list[str]:
    """Every property name some rule tests, in first-use order."""
    names = [name for tp in touchpoints if tp.match for name in tp.match.where]
    return list(dict.fromkeys(names))


def property_columns(
    touchpoints: list[Touchpoint], present: Collection[str] = (), props: str = "properties"
) -> tuple[dict[str, str], SqlExpr]:
    """Columns ``__p0, __p1, …`` holding each tested property once, and the SQL select list that makes them.

    Extracting each property once per row, rather than once per rule, keeps mapping cheap for big maps. A
    column a reader already provides as ``__pN_in`` (listed in `present`) is taken as it is, unparsed.
    """
    names = rule_properties(touchpoints)
    columns = {name: f"__p{i}" for i, name in enumerate(names)}
    parts = [SqlExpr(f"{columns[n]}_in") if f"{columns[n]}_in" in present else _property(props, n) for n in names]
    select = ", ".join(f"{p.sql} AS {columns[n]}" for n, p in zip(names, parts, strict=True))
    return columns, SqlExpr(select, [v for p in parts for v in p.params])


def rule_sql(
    tp: Touchpoint,
    event: str = "event",
    channel: str = "channel",
    props: str = "properties",
    prop_columns: dict[str, str] | None = None,
) -> SqlExpr:
    """The condition an event must meet to belong to `tp` (FALSE when it has no rule)."""
    if tp.match is None:
        return SqlExpr("FALSE")
    parts = []
    if tp.match.event is not None:
        parts.append(condition_sql(SqlExpr(event), tp.match.event))
    if tp.match.channel is not None:
        parts.append(condition_sql(SqlExpr(channel), tp.match.channel))
    for name, cond in tp.match.where.items():
        column = SqlExpr(prop_columns[name]) if prop_columns else _property(props, name)
        parts.append(condition_sql(column, cond))
    return _all(parts)


def compile_rules(touchpoints: list[Touchpoint], prop_columns: dict[str, str] | None = None) -> SqlExpr:
    """``CASE WHEN rule THEN key … END``: the touchpoint of each event, NULL when no rule claims it."""
    ruled = [tp for tp in touchpoints if tp.match is not None]
    if not ruled:
        return SqlExpr("CAST(NULL AS VARCHAR)")
    sql, params = "CASE", []
    for tp in ruled:
        cond = rule_sql(tp, prop_columns=prop_columns)
        sql += f" WHEN {cond.sql} THEN ?"
        params += [*cond.params, tp.key]
    return SqlExpr(sql + " END", params)


def segment_sql(segment: list[PropertyCondition], attributes: str = "attributes") -> SqlExpr:
    """All of a persona's segment conditions on a customer's attributes (JSON)."""
    return _all([condition_sql(_property(attributes, c.property), c) for c in segment])


def compile_personas(personas: list[tuple[str, list[PropertyCondition]]], attributes: str = "attributes") -> SqlExpr:
    """The first persona (in map order) whose segment a customer meets; NULL when none has a rule that fits."""
    ruled = [(key, seg) for key, seg in personas if seg]
    if not ruled:
        return SqlExpr("CAST(NULL AS VARCHAR)")
    sql, params = "CASE", []
    for key, seg in ruled:
        cond = segment_sql(seg, attributes)
        sql += f" WHEN {cond.sql} THEN ?"
        params += [*cond.params, key]
    return SqlExpr(sql + " END", params)


def outcome_sql(rule: OutcomeRule | None) -> tuple[str, list[Any]]:
    """The events that are the outcome, as `analytics.conditions.outcome_predicate` picks them (its event and
    property conditions, values as text), over the events store's columns; FALSE for no outcome."""
    if rule is None:
        return "FALSE", []
    parts = [condition_sql(SqlExpr("event"), rule.event)] if rule.event is not None else []
    parts += [condition_sql(_property("properties", name), cond) for name, cond in rule.where.items()]
    if not parts:
        return "FALSE", []
    expr = _all(parts)
    return expr.sql, expr.params
