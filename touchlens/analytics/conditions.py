"""Map conditions and outcome rules as Ibis predicates, shared by every analysis that needs them."""

from __future__ import annotations

from typing import Any

import ibis

from touchlens.analytics.engine import property_text
from touchlens.ingest.rules import as_text
from touchlens.model.map import Condition, OutcomeRule


def condition(column: Any, cond: Condition) -> Any:
    """One map condition as an Ibis predicate (values compared as text)."""
    op = cond.operator
    if op == "exists":
        return column.notnull() if cond.exists else column.isnull()
    if op == "in":
        return column.isin([as_text(v) for v in cond.in_ or []])
    if op == "prefix":
        return column.startswith(cond.prefix or "")
    return column == as_text(cond.equals)


def outcome_predicate(t: ibis.Table, rule: OutcomeRule) -> Any:
    """Events that are the outcome: its event condition and property conditions (values compared as text)."""
    parts = [condition(t.event, rule.event)] if rule.event is not None else []
    parts += [condition(property_text(t, name), cond) for name, cond in rule.where.items()]
    return ibis.and_(*parts) if parts else ibis.literal(False)
