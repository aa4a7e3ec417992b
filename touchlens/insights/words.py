"""Findings in words: names instead of keys, numbers in the units people use (%, points, days, customers)."""

from __future__ import annotations

from dataclasses import dataclass

from touchlens.model.map import TouchpointMap

# What one outcome event is called, per outcome, when the map gives no label.
OUTCOME_UNITS = {"conversion": "conversions", "repeat": "repeat purchases", "churn": "customers lost"}
GOOD_OUTCOMES = {"conversion": True, "repeat": True, "churn": False}


@dataclass(frozen=True)
class Names:
    """The map's names for keys; an unknown key is shown as it is."""

    touchpoints: dict[str, str]
    stages: dict[str, str]
    stage_keys: dict[str, str | None]
    outcomes: dict[str, str]

    @classmethod
    def of(cls, m: TouchpointMap) -> Names:
        stages: dict[str, str] = {}
        for s in (s for j in m.journeys for s in j.stages):
            # A stage seen by several personas keeps the name the first journey gives it.
            stages.setdefault(s.key, s.name or s.key)
        outcomes = {}
        for name, unit in OUTCOME_UNITS.items():
            rule = getattr(m.outcomes, name, None)
            label = getattr(rule, "label", None) if rule is not None else None
            outcomes[name] = _plural(label) if label else unit
        return cls(
            {t.key: t.name or t.key for t in m.touchpoints},
            stages,
            {t.key: t.stage for t in m.touchpoints},
            outcomes,
        )

    def touchpoint(self, key: str) -> str:
        return self.touchpoints.get(key, key)

    def stage(self, key: str | None) -> str:
        return "(no stage)" if key is None else self.stages.get(key, key)

    def stage_of(self, touchpoint: str) -> str | None:
        return self.stage_keys.get(touchpoint)

    def unit(self, outcome: str) -> str:
        """Outcome events in the plural: "renewals", "customers lost"."""
        return self.outcomes.get(outcome, outcome)

    def stake_unit(self, outcome: str, helpful: bool) -> str:
        """What a finding wins or loses: "renewals lost", "renewals won", "customers lost", "customers kept"."""
        if outcome == "churn" and self.unit(outcome) == OUTCOME_UNITS["churn"]:
            return "customers kept" if helpful else "customers lost"
        return f"{self.unit(outcome)} {'won' if helpful else 'lost'}"

    def rate(self, outcome: str) -> str:
        """The outcome as a rate's name: "the renewal rate", "the churn rate"."""
        unit = self.unit(outcome)
        name = {"customers lost": "churn", "repeat purchases": "repeat purchase"}.get(unit, unit.removesuffix("s"))
        return f"the {name} rate"


def _plural(label: str) -> str:
    return label if label.endswith("s") else f"{label}s"


def metric_text(metric: str, value: float, points: bool = False) -> str:
    """A score in its unit: CSAT 79% (or 5 points), NPS +32 (or 10 points), CES 2.4 (or 0.5 points)."""
    if points:
        shown = f"{value * 100:.0f}" if metric == "csat" else f"{value:.0f}" if metric == "nps" else f"{value:.1f}"
        return f"{shown} point" if shown == "1" else f"{shown} points"
    if metric == "csat":
        return f"{value * 100:.0f}%"
    return f"{value:+.0f}" if metric == "nps" else f"{value:.1f}"


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}%"


def days(seconds: float) -> str:
    """A wait in the unit that reads best: minutes, hours or days."""
    if seconds < 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 86400:.1f} days"


def count(n: int, what: str) -> str:
    return f"{n:,} {what if n != 1 else what.removesuffix('s')}"
