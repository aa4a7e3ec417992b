"""Map conditions and outcome rules as Ibis predicates, shared by every analysis that needs them."""

from __future__ import annotations

from typing import Any

import ibis

from touchlens.analytics.engine import property_text
from touchlens.ingest.operators import condition_ibis
from touchlens.model.map import Condition, OutcomeRule


def condition(column: Any, cond: Condition) -> Any:
    """One map condition as an Ibis predicate (values compared as text), from the one operator table."""
    return condition_ibis(column, cond)


def outcome_predicate(t: ibis.Table, rule: OutcomeRule) -> Any:
    """Events that are the outcome: its event condition and property conditions (values compared as text)."""
    parts = [condition(t.event, rule.event)] if rule.event is not None else []
    parts += [condition(property_text(t, name), cond) for name, cond in rule.where.items()]
    return ibis.and_(*parts) if parts else ibis.literal(False)
