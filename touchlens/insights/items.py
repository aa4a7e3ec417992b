"""The finding: one problem, strength or gap, in outcome units, with the numbers behind it.

Every analysis that judges (sub-par, gaps, friction, personalisation, strengths) returns findings of this one
shape, so the insights page, the CLI, the report and the roadmap read them alike. `reach` counts customers who
met the touchpoint(s) over the data, never survey responses. `effects` say how each outcome the map defines
differs for those customers; `at_stake` turns the largest material effect into outcome events a year.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SECTIONS = ("problems", "strengths", "gaps", "friction", "personalisation")


@dataclass(frozen=True)
class OutcomeEffect:
    """How often an outcome happens with the finding's touchpoint(s) and without, with a 95% interval for the
    difference (`rate_with − rate_without`, in rate points: −0.41 is 41 points fewer)."""

    outcome: str
    rate_with: float
    rate_without: float
    low: float
    high: float
    p_value: float
    periods_with: int

    @property
    def difference(self) -> float:
        return self.rate_with - self.rate_without

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "rate_with": round(self.rate_with, 4),
            "rate_without": round(self.rate_without, 4),
            "difference": round(self.difference, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "p_value": self.p_value,
            "periods_with": self.periods_with,
        }


@dataclass(frozen=True)
class Stake:
    """What a finding is worth: `value` (between `low` and `high`) `unit` per `per`, e.g. 335 renewals a year."""

    value: float
    low: float
    high: float
    unit: str
    per: str = "year"

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": round(self.value),
            "low": round(self.low),
            "high": round(self.high),
            "unit": self.unit,
            "per": self.per,
        }

    def text(self) -> str:
        return f"{self.value:,.0f} {self.unit} a {self.per} ({self.low:,.0f}–{self.high:,.0f})"


def stake_text(stake: dict[str, Any] | None) -> str:
    """A stake as `Stake.to_dict` gives it, in words: "83 conversions lost a year (73–91)"."""
    if not stake:
        return "–"
    return f"{stake['value']:,} {stake['unit']} a {stake['per']} ({stake['low']:,}–{stake['high']:,})"


@dataclass
class Insight:
    """A finding about touchpoints (or a stage, channel, persona or event) with its evidence.

    `subject` is what it is about (the first touchpoint, or the stage, channel, persona, event); `impact` (0–5)
    and `confidence` (0–1) score it where nothing is at stake in outcome units.
    """

    kind: str  # subpar | moment_of_truth | below_target | gap | unmapped_event | silent_period | loop | strength …
    title: str
    subject: str
    subject_type: str = "touchpoint"
    reach: int = 0
    impact: float = 1.0
    confidence: float = 0.5
    evidence: dict[str, Any] = field(default_factory=dict)
    section: str = "problems"
    summary: str = ""
    touchpoints: list[str] = field(default_factory=list)
    stage: str | None = None
    effects: list[OutcomeEffect] = field(default_factory=list)
    at_stake: Stake | None = None

    def __post_init__(self) -> None:
        if not self.touchpoints and self.subject_type == "touchpoint":
            self.touchpoints = [self.subject]
        if not self.summary:
            self.summary = self.title

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "section": self.section,
            "title": self.title,
            "summary": self.summary,
            "touchpoints": list(self.touchpoints),
            "stage": self.stage,
            "subject": self.subject,
            "subject_type": self.subject_type,
            "reach": self.reach,
            "effects": [e.to_dict() for e in self.effects],
            "at_stake": self.at_stake.to_dict() if self.at_stake else None,
            "impact": round(self.impact, 3),
            "confidence": round(self.confidence, 3),
            "evidence": self.evidence,
        }

    def record(self) -> dict[str, Any]:
        """A flat row for CSV: the stake spelled out, effects and evidence as compact JSON text."""
        d = self.to_dict()
        stake = d.pop("at_stake") or {}
        flat = {k: v for k, v in d.items() if k not in ("evidence", "effects", "touchpoints")}
        return {
            **flat,
            "touchpoints": " ".join(self.touchpoints),
            **{f"at_stake_{k}": stake.get(k) for k in ("value", "low", "high", "unit", "per")},
            "effects": json.dumps(d["effects"]),
            "evidence": json.dumps(self.evidence, default=str),
        }
