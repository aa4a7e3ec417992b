"""Design new touchpoints: a proactive rule from the map replayed on the stored history (`ws.design`).

`simulate` says how many customers the rule would have reached and how often, how many contacts the contact cap,
the cancelling event, quiet hours and the holdout changed, which existing touchpoints the contacts would have
landed next to, and, from customers who got a similar contact by chance, what it is likely to do to each of the
map's outcomes (or that it cannot tell). See `insights/proactive.py` for the rules of the replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from touchlens.errors import UnknownItem, WorkspaceError
from touchlens.host import Host
from touchlens.model.map import Initiative, OutcomeRule, ProactiveRule, TouchpointMap, Trigger

if TYPE_CHECKING:
    import duckdb

    from touchlens.insights.proactive import Effect, Replay

OVERLAP = timedelta(days=1)  # an existing touchpoint this close to a contact is said to overlap it
DEFAULT_WITHIN = timedelta(days=30)  # an outcome counts this long after the contact, unless the map says


@dataclass(frozen=True)
class Simulation:
    rule: str
    name: str
    replay: dict[str, Any]
    holdout: int  # customers the holdout would have withheld (what a live run measures the effect against)
    overlaps: dict[str, int]  # touchpoint → contacts within a day of it
    similar: list[str]  # the touchpoints counted as a similar contact in history
    effects: list[Effect] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "name": self.name, **self.replay, "holdout_customers": self.holdout,
            "overlaps": self.overlaps, "similar": self.similar, "effects": [e.to_dict() for e in self.effects],
        }  # fmt: skip


class Design:
    def __init__(self, ws: Host) -> None:
        self.ws = ws

    def rules(self) -> list[ProactiveRule]:
        return list(self.ws.map_or_empty().proactive)

    def simulate(self, key: str) -> Simulation:
        """Replay the map's proactive rule `key` on the stored events."""
        from touchlens.insights.proactive import replay
        from touchlens.store import proactive as store

        m = self.ws.map_or_empty()
        rule = _rule(m, key)
        with self.ws.events(read_only=True) as con:
            end = store.history_end(con)
            if end is None:
                raise WorkspaceError("no events stored yet: a rule is replayed on history")
            column, value = match(rule.after)
            triggers = store.times(con, column, [value], rule.persona)
            cancels = store.times(con, *_as_list(rule.unless)) if rule.unless else {}
            others = [t.key for t in m.touchpoints if t.initiative == Initiative.proactive and t.key != rule.touchpoint]
            prior = store.times(con, "touchpoint", others) if others else {}
            done = replay(plan_of(m, rule), triggers, cancels, prior, end)
            due = [(c, d) for c, _, d in done.sends]
            overlaps = store.overlaps(con, due, OVERLAP, rule.touchpoint) if due else {}
            similar = _similar(m, rule)
            effects = self._effects(con, m, rule, done, similar, end)
        holdout = len({c for c, _, _ in done.holdout_sends})
        return Simulation(rule.key, rule.label, done.to_dict(), holdout, overlaps, similar, effects)

    def _effects(
        self, con: duckdb.DuckDBPyConnection, m: TouchpointMap, rule: ProactiveRule, done: Replay,
        similar: list[str], end: Any,
    ) -> list[Effect]:  # fmt: skip
        """Per outcome: customers whose contact was due, with a similar contact by chance against without."""
        from touchlens.insights.proactive import effect
        from touchlens.model.durations import parse_duration
        from touchlens.store import proactive as store

        if not similar:
            return []
        got = store.times(con, "touchpoint", similar)
        span = 2 * parse_duration(rule.wait)
        eligible = done.sends + done.holdout_sends
        treated = [any(t < s <= t + span for s in got.get(c, ())) for c, t, _ in eligible]
        out = []
        for name, outcome in outcome_rules(m):
            hits, usable = outcome_hits(con, outcome, [(c, d) for c, _, d in eligible], end)
            pairs = [(tr, hit) for tr, hit, ok in zip(treated, hits, usable, strict=True) if ok]
            with_ = [hit for tr, hit in pairs if tr]
            without = [hit for tr, hit in pairs if not tr]
            out.append(effect(outcome.label or name, sum(with_), len(with_), sum(without), len(without)))
        return out


def outcome_hits(
    con: duckdb.DuckDBPyConnection, outcome: OutcomeRule, due: list[tuple[str, Any]], end: Any
) -> tuple[list[bool], list[bool]]:
    """Whether each (customer, due time) was followed by the outcome, and whether the history tells by `end`."""
    from touchlens.ingest.rules import outcome_sql
    from touchlens.store import proactive as store

    if outcome.inactive_days is not None:  # churn: no event in the days after
        window = timedelta(days=outcome.inactive_days)
        return [not s for s in store.stayed(con, due, window)], [d + window <= end for _, d in due]
    within = timedelta(days=outcome.within_days) if outcome.within_days else DEFAULT_WITHIN
    return store.outcome_hits(con, due, outcome_sql(outcome), within), [d + within <= end for _, d in due]


def _rule(m: TouchpointMap, key: str) -> ProactiveRule:
    found = next((r for r in m.proactive if r.key == key), None)
    if found is None:
        known = ", ".join(r.key for r in m.proactive) or "none (add a `proactive:` section to the map)"
        raise UnknownItem(f"unknown proactive rule '{key}'; rules are: {known}")
    return found


def plan_of(m: TouchpointMap, rule: ProactiveRule) -> Any:
    from touchlens.insights.proactive import Plan
    from touchlens.model.durations import parse_duration

    cap = (m.contact_cap.max, parse_duration(m.contact_cap.per)) if m.contact_cap else None
    return Plan(rule.key, parse_duration(rule.wait), rule.holdout, rule.quiet, rule.timezone, cap)


def match(trigger: Trigger) -> tuple[str, str]:
    if trigger.touchpoint is not None:
        return "touchpoint", trigger.touchpoint
    assert trigger.event is not None
    return "event", trigger.event


def _as_list(trigger: Trigger) -> tuple[str, list[str]]:
    column, value = match(trigger)
    return column, [value]


def _similar(m: TouchpointMap, rule: ProactiveRule) -> list[str]:
    """What counts as a similar contact in history: the rule's own touchpoint, else the proactive touchpoints on
    its channel."""
    if rule.touchpoint is not None:
        return [rule.touchpoint]
    return [
        t.key
        for t in m.touchpoints
        if t.initiative == Initiative.proactive and rule.channel and t.channel == rule.channel
    ]


def outcome_rules(m: TouchpointMap) -> list[tuple[str, OutcomeRule]]:
    return [(name, o) for name in ("conversion", "repeat", "churn") if (o := getattr(m.outcomes, name)) is not None]
