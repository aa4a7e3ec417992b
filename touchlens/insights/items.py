"""The insight: one finding (sub-par, gap, friction, driver) with the numbers behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Insight:
    """A finding about a touchpoint (or stage, channel, persona, event) with its evidence.

    `reach` is how many customers it touches; `impact` (0–5) how much it matters; `confidence` (0–1) how sure
    the numbers are. The roadmap scores opportunities from these.
    """

    kind: str  # subpar | moment_of_truth | gap | unmapped_event | silent_period | loop | repeat | switch | …
    title: str
    subject: str  # the touchpoint, stage, channel, persona or event it is about
    subject_type: str = "touchpoint"
    reach: int = 0
    impact: float = 1.0
    confidence: float = 0.5
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "subject": self.subject,
            "subject_type": self.subject_type,
            "reach": self.reach,
            "impact": round(self.impact, 3),
            "confidence": round(self.confidence, 3),
            "evidence": self.evidence,
        }

    def record(self) -> dict[str, Any]:
        """A flat row for CSV (the evidence as compact JSON text)."""
        import json

        return {**{k: v for k, v in self.to_dict().items() if k != "evidence"}, "evidence": json.dumps(self.evidence)}
