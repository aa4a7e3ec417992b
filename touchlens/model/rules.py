"""Static reasoning about match rules: can one event satisfy two rules at once?

Two touchpoints must never claim the same event, so the map rejects rules that can overlap. A rule
constrains a field only when it names it; a field only one rule names can always be chosen to fit.
"""

from __future__ import annotations

from collections.abc import Iterator

from touchlens.model.map import Condition, MatchRule, Touchpoint


def _values(cond: Condition) -> set[str] | None:
    """The finite set of values a condition allows, or None when it allows infinitely many."""
    if cond.equals is not None:
        return {str(cond.equals)}
    if cond.in_ is not None:
        return {str(v) for v in cond.in_}
    return None


def _fits(value: str, cond: Condition) -> bool:
    if cond.prefix is not None:
        return value.startswith(cond.prefix)
    if cond.exists is not None:
        return cond.exists
    allowed = _values(cond)
    return allowed is not None and value in allowed


def conditions_can_overlap(a: Condition, b: Condition) -> bool:
    """True when some value (or its absence) satisfies both conditions."""
    if a.exists is False or b.exists is False:
        # Absence only fits "exists: false"; any other condition needs a value.
        return a.exists is False and b.exists is False
    finite_a, finite_b = _values(a), _values(b)
    if finite_a is not None:
        return any(_fits(v, b) for v in finite_a)
    if finite_b is not None:
        return any(_fits(v, a) for v in finite_b)
    if a.prefix is not None and b.prefix is not None:
        return a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
    return True


def _fields(rule: MatchRule) -> dict[str, Condition]:
    fields = {f"where.{name}": cond for name, cond in rule.where.items()}
    if rule.event is not None:
        fields["event"] = rule.event
    if rule.channel is not None:
        fields["channel"] = rule.channel
    return fields


def rules_can_overlap(a: MatchRule, b: MatchRule) -> bool:
    """True when one event could satisfy both rules."""
    fa, fb = _fields(a), _fields(b)
    return all(conditions_can_overlap(fa[name], fb[name]) for name in fa.keys() & fb.keys())


def overlapping_pairs(touchpoints: list[Touchpoint]) -> Iterator[tuple[int, int]]:
    """Index pairs (i < j) of touchpoints whose match rules can claim the same event."""
    for i, j in sorted(_candidate_pairs(touchpoints)):
        rule_i, rule_j = touchpoints[i].match, touchpoints[j].match
        if rule_i is not None and rule_j is not None and rules_can_overlap(rule_i, rule_j):
            yield i, j


def _candidate_pairs(touchpoints: list[Touchpoint]) -> set[tuple[int, int]]:
    """Pairs that could overlap: rules sharing an event name, or either allowing open-ended names.

    Most rules name their events outright, so bucketing by name keeps a large map far from all pairs.
    """
    by_event: dict[str, list[int]] = {}
    open_ended: list[int] = []
    ruled = [i for i, t in enumerate(touchpoints) if t.match is not None]
    for i in ruled:
        rule = touchpoints[i].match
        names = _values(rule.event) if rule is not None and rule.event is not None else None
        if names is None:
            open_ended.append(i)
        for name in names or ():
            by_event.setdefault(name, []).append(i)
    pairs = {(a, b) for group in by_event.values() for a in group for b in group if a < b}
    pairs |= {(min(a, b), max(a, b)) for a in open_ended for b in ruled if a != b}
    return pairs
