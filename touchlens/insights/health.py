"""A touchpoint's health on the map: good, watch or poor, or None where nothing is measured.

One definition for the canvas, the inventory, the SVG journey map, the report, insights and `analyze health`:
the touchpoint's scores judged by `subpar.judge` (poor only when significantly AND materially below its target
or its stage; see that module), and without scores, its scorecard against its behaviour targets (conversion a
floor; drop-off and repeats ceilings): a miss by more than a quarter of the target is poor, a smaller one watch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from scipy import stats as sps

from touchlens.analytics import stats
from touchlens.analytics.feedback import FeedbackReport
from touchlens.analytics.scorecard import Score, Scorecard
from touchlens.insights.items import Insight
from touchlens.insights.subpar import Judgement, Thresholds, judge, reason
from touchlens.insights.words import Names, percent
from touchlens.model.map import Touchpoint, TouchpointMap

Health = Literal["good", "watch", "poor"] | None


def health(
    m: TouchpointMap, feedback: FeedbackReport, scorecard: Scorecard | None = None, t: Thresholds | None = None
) -> dict[str, Health]:
    """Each touchpoint's health: good, watch, poor, or None where nothing is measured."""
    return {row["touchpoint"]: row["health"] for row in health_rows(m, feedback, scorecard, t)}


def health_rows(
    m: TouchpointMap, feedback: FeedbackReport, scorecard: Scorecard | None = None, t: Thresholds | None = None
) -> list[dict[str, Any]]:
    """`{"touchpoint", "health", "reason"}` per touchpoint, in map order; the reason is a sentence with units."""
    judged = judge(feedback, m, t)
    names = Names.of(m)
    behaviour = behaviour_judgements(m, scorecard, set(judged), t or Thresholds())
    rows = []
    for tp in m.touchpoints:
        j = judged.get(tp.key)
        state, why = _scored(j, names) if j is not None else behaviour.get(tp.key, (None, NOT_MEASURED))[:2]
        rows.append({"touchpoint": tp.key, "health": state, "reason": why})
    return rows


NOT_MEASURED = "not measured: too few survey answers and no behaviour targets in the map"


def _scored(j: Judgement, names: Names) -> tuple[Health, str]:
    h: Health = "poor" if j.health == "poor" else ("watch" if j.health == "watch" else "good")
    return h, reason(j, names)


@dataclass(frozen=True)
class _Check:
    touchpoint: str
    name: str
    actual: float
    target: float
    customers: int
    ceiling: bool

    @property
    def miss(self) -> float:
        """How far past its target, as a share of the target (0 when it meets it)."""
        over = self.actual - self.target if self.ceiling else self.target - self.actual
        return max(0.0, over) / max(self.target, 0.01)

    def p_value(self) -> float:
        """One-sided binomial test of the customers' share against the target, in the bad direction."""
        k, p0 = round(self.actual * self.customers), min(max(self.target, 1e-9), 1 - 1e-9)
        side = "greater" if self.ceiling else "less"
        return float(sps.binomtest(k, self.customers, p0, alternative=side).pvalue)

    def words(self) -> str:
        target = percent(self.target)
        return f"{self.name} {percent(self.actual)} against a target of {target} ({self.customers:,} customers)"


def behaviour_judgements(
    m: TouchpointMap, scorecard: Scorecard | None, scored: set[str], t: Thresholds
) -> dict[str, tuple[Health, str, float]]:
    """Touchpoints without enough answers, judged on their behaviour targets (conversion a floor; drop-off and
    repeats ceilings): poor only when a miss is significant (binomial test over its customers, Holm-adjusted over
    every check) AND more than a quarter of the target; a miss that is either is watch. (health, reason, miss)."""
    scores = {s.touchpoint: s for s in scorecard.scores} if scorecard else {}
    checks = [c for tp in m.touchpoints if tp.key not in scored for c in _checks(tp, scores.get(tp.key))]
    missed = [c for c in checks if c.miss > 0]
    adjusted = dict(zip(map(id, missed), stats.holm([c.p_value() for c in missed]) if missed else [], strict=True))
    out: dict[str, tuple[Health, str, float]] = {}
    for tp in (tp for tp in m.touchpoints if tp.key not in scored):
        mine = [c for c in checks if c.touchpoint == tp.key]
        if not mine:
            continue
        worst = max(mine, key=lambda c: c.miss)
        if worst.miss == 0:
            out[tp.key] = ("good", "meets its behaviour targets", 0.0)
            continue
        sure, large = adjusted[id(worst)] < t.alpha, worst.miss > 0.25
        state: Health = "poor" if sure and large else ("watch" if sure or large else "good")
        note = "" if state == "poor" else (" — within what chance explains" if not sure else " — sure, but small")
        out[tp.key] = (state, worst.words() + note, worst.miss)
    return out


def _checks(tp: Touchpoint, score: Score | None) -> list[_Check]:
    if score is None or not score.customers or tp.targets is None:
        return []
    t = tp.targets
    found = [("conversion", score.conversion, t.conversion, False), ("drop-off", score.drop_off, t.drop_off, True),
             ("repeats", score.repeat_rate, t.repeat_rate, True)]  # fmt: skip
    return [_Check(tp.key, n, a, g, score.customers, c) for n, a, g, c in found if a is not None and g is not None]


def below_target(m: TouchpointMap, scorecard: Scorecard | None, scored: set[str], t: Thresholds) -> list[Insight]:
    """The touchpoints poor on their behaviour targets, as findings, so insights and health agree."""
    names = Names.of(m)
    return [
        Insight("below_target", f"{names.touchpoint(key)}: below its behaviour target", key, impact=2.0,
                confidence=0.95, summary=f"{names.touchpoint(key)} misses its target: {why}.",
                stage=names.stage_of(key), evidence={"reason": why, "miss_share_of_target": miss})
        for key, (state, why, miss) in behaviour_judgements(m, scorecard, scored, t).items() if state == "poor"
    ]  # fmt: skip


def measured_emotion(by_stage: FeedbackReport) -> dict[str, float]:
    """Mean comment sentiment per stage (−1..1) scaled onto the designed emotion's axis (−2..2)."""
    return {r.key: 2.0 * r.sentiment for r in by_stage.rows if r.sentiment is not None}
