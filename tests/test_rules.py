"""Overlap of match rules, checked against a brute-force evaluation over a small universe of events."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from touchlens.model.map import Condition, MatchRule
from touchlens.model.rules import conditions_can_overlap, rules_can_overlap

VALUES = ["a", "ab", "abc", "b", "ba", ""]
ABSENT = object()


def holds(cond: Condition, value: Any) -> bool:
    """Reference semantics of one condition on a value (ABSENT: the field is missing)."""
    if cond.exists is not None:
        return (value is not ABSENT) == cond.exists
    if value is ABSENT:
        return False
    if cond.prefix is not None:
        return str(value).startswith(cond.prefix)
    if cond.in_ is not None:
        return value in cond.in_
    return bool(value == cond.equals)


conditions = st.one_of(
    st.sampled_from(VALUES).map(lambda v: Condition.model_validate({"equals": v})),
    st.lists(st.sampled_from(VALUES), min_size=1, max_size=3).map(lambda v: Condition.model_validate({"in": v})),
    st.sampled_from(VALUES).map(lambda v: Condition.model_validate({"prefix": v})),
    st.booleans().map(lambda v: Condition.model_validate({"exists": v})),
)


@settings(max_examples=400)
@given(conditions, conditions)
def test_two_conditions_overlap_exactly_when_some_value_meets_both(a: Condition, b: Condition) -> None:
    # Every prefix and equality here draws from VALUES, so a witness, if any, is among them or absent.
    universe = [*VALUES, "abcd", "bb", "zz", ABSENT]
    assert conditions_can_overlap(a, b) == any(holds(a, v) and holds(b, v) for v in universe)


rules = st.builds(
    lambda event, where: MatchRule(event=event, where=where),
    conditions,
    st.dictionaries(st.sampled_from(["p", "q"]), conditions, max_size=2),
)


@pytest.mark.slow
@settings(max_examples=300)
@given(rules, rules)
def test_two_rules_overlap_exactly_when_some_event_meets_both(a: MatchRule, b: MatchRule) -> None:
    universe = [*VALUES, "abcd", ABSENT]
    fields = ["event", "p", "q"]
    witness = False
    for combo in itertools.product(universe, repeat=len(fields)):
        event = dict(zip(fields, combo, strict=True))
        if all(_rule_holds(r, event) for r in (a, b)):
            witness = True
            break
    assert rules_can_overlap(a, b) == witness


def _rule_holds(rule: MatchRule, event: dict[str, Any]) -> bool:
    conds = {"event": rule.event, **rule.where}
    return all(holds(c, event[name]) for name, c in conds.items() if c is not None)


@pytest.fixture(scope="module")
def values_table() -> Any:
    """The universe of values (and a missing one) as a one-column table both compilers run against."""
    import ibis

    backend = ibis.duckdb.connect()
    backend.con.execute("CREATE TABLE t AS SELECT * FROM (VALUES " + ", ".join(["(?)"] * (len(VALUES) + 1)) + ") v(v)",
                        [*VALUES, None])  # fmt: skip
    return backend


@settings(max_examples=200, deadline=None)
@given(cond=conditions)
def test_one_operator_table_compiles_the_same_condition_to_sql_and_to_ibis(cond: Condition, values_table: Any) -> None:
    """Ingest's SQL and the analyses' Ibis predicate select the rows the reference semantics say."""
    from touchlens.ingest.operators import SqlExpr, condition_ibis, condition_sql

    expected = {v for v in VALUES if holds(cond, v)} | ({None} if holds(cond, ABSENT) else set())
    expr = condition_sql(SqlExpr("v"), cond)
    by_sql = {r[0] for r in values_table.con.execute(f"SELECT v FROM t WHERE {expr.sql}", expr.params).fetchall()}
    table = values_table.table("t")
    by_ibis = set(values_table.to_pyarrow(table.filter(condition_ibis(table.v, cond))).column("v").to_pylist())
    assert by_sql == expected
    assert by_ibis == expected
