"""The experience half of the `Workspace` facade: feedback, drivers, insights and the roadmap.

A mixin of `Workspace`, which supplies the map, the engine, the settings and the scorecard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import ibis

from touchlens.analytics.drivers import OUTCOMES, Drivers, DriversQuery
from touchlens.analytics.feedback import GROUPINGS, CommentsQuery, FeedbackQuery, FeedbackReport
from touchlens.analytics.scorecard import Scorecard
from touchlens.errors import UnknownItem, WorkspaceError
from touchlens.insights import friction, gaps, prioritise, subpar
from touchlens.insights.items import Insight
from touchlens.model.map import Horizon, Opportunity, OpportunitySource, OpportunityStatus, Phase, TouchpointMap
from touchlens.store.settings import Settings
from touchlens.text.themes import find_themes

SECTIONS = ("subpar", "gaps", "friction")


@dataclass
class Insights:
    """Every finding, by section, each with its evidence."""

    sections: dict[str, list[Insight]] = field(default_factory=dict)

    def items(self) -> list[Insight]:
        return [i for items in self.sections.values() for i in items]

    def to_dict(self) -> dict[str, Any]:
        return {name: [i.to_dict() for i in items] for name, items in self.sections.items()}


class Experience:
    """Feedback, drivers, insights and the roadmap over the workspace; `Workspace` provides what raises."""

    @property
    def settings(self) -> Settings:
        raise NotImplementedError

    def map(self) -> TouchpointMap:
        raise NotImplementedError

    def map_or_empty(self) -> TouchpointMap:
        raise NotImplementedError

    def save_map(self, m: TouchpointMap) -> None:
        raise NotImplementedError

    def _backend(self) -> ibis.BaseBackend:
        raise NotImplementedError

    def scorecard(self, window: str | timedelta = "30d", by: str = "touchpoint") -> Scorecard:
        raise NotImplementedError

    def feedback(self, by: str = "touchpoint", period: str = "week", themes: bool = False) -> FeedbackReport:
        """NPS, CSAT and CES with 95% intervals and comment sentiment, per touchpoint, stage, persona, channel
        or period; with `themes`, each touchpoint's recurring topics and example comments."""
        if by not in GROUPINGS:
            raise UnknownItem(f"unknown --by '{by}'; choose {', '.join(GROUPINGS)}")
        m = self.map_or_empty()
        stage_of = tuple((t.key, t.stage or "(none)") for t in m.touchpoints)
        try:
            report = FeedbackQuery(by, period, stage_of=stage_of).run(self._backend())
        except ValueError as exc:
            raise UnknownItem(str(exc)) from None
        if themes and by == "touchpoint":
            comments = CommentsQuery(tuple(r.key for r in report.rows)).run(self._backend())
            for row in report.rows:
                row.themes = _themes(comments.get(row.key, []))
        return report

    def drivers(self, outcome: str = "churn", samples: int = 100) -> Drivers:
        """What raises or lowers the odds of conversion, repeat purchase or churn, period by period."""
        if outcome not in OUTCOMES:
            raise UnknownItem(f"unknown outcome '{outcome}'; choose {', '.join(OUTCOMES)}")
        m = self.map()
        if m.outcomes.conversion is None:
            raise WorkspaceError("the map has no conversion outcome; add outcomes: {conversion: {event: …}}")
        purchase = tuple(t.key for t in m.touchpoints if t.phase == Phase.purchase)
        query = DriversQuery(outcome, m.outcomes.conversion, m.outcomes.churn, samples=samples, exclude=purchase)
        return query.run(self._backend())

    def insights(self, sections: tuple[str, ...] = SECTIONS, samples: int = 50) -> Insights:
        """Sub-par touchpoints and moments of truth, gaps (map and data) and friction, each with its evidence."""
        unknown = [s for s in sections if s not in SECTIONS]
        if unknown:
            raise UnknownItem(f"unknown section '{unknown[0]}'; choose {', '.join(SECTIONS)}")
        m, backend = self.map(), self._backend()
        report = self.feedback() if {"subpar", "friction"} & set(sections) else None
        out = Insights()
        if "subpar" in sections and report is not None:
            found = subpar.subpar(report, m)
            drivers = [self.drivers("churn", samples)] if m.outcomes.conversion is not None else []
            out.sections["subpar"] = subpar.moments_of_truth(found, drivers) + found
        if "gaps" in sections:
            out.sections["gaps"] = gaps.map_gaps(m) + gaps.data_gaps(backend, m) + gaps.silent_periods(backend, m)
        if "friction" in sections and report is not None:
            found = friction.loops(backend) + friction.repeats(backend) + friction.switches(backend, m)
            if m.outcomes.conversion is not None:
                found += friction.dead_ends(self.scorecard())
            out.sections["friction"] = found + friction.high_effort(report)
        return out

    def roadmap_suggest(self, samples: int = 50) -> tuple[list[Opportunity], list[str]]:
        """Turn the insights into scored opportunities in the map; returns the suggestions and the keys left
        alone because a person wrote or edited them."""
        r = self.settings.roadmap
        placement = prioritise.Placement(r.now_score, r.now_max_effort, r.next_score, r.success_weight)
        m = self.map()
        suggested = prioritise.suggest(self.insights(samples=samples).items(), m, placement)
        merged, _, kept = prioritise.merge(m, suggested)
        self.save_map(merged)
        return [o for o in suggested if o.key not in kept], kept

    def roadmap(self) -> list[Opportunity]:
        """The map's opportunities, Now first, then Next, Later and unplaced; best score first within each."""
        order = {Horizon.now: 0, Horizon.next: 1, Horizon.later: 2, None: 3}
        return sorted(self.map_or_empty().opportunities, key=lambda o: (order[o.horizon], -_score(o), o.key))

    def roadmap_update(self, key: str, horizon: str | None = None, status: str | None = None) -> Opportunity:
        """Move an opportunity to now / next / later or set its status; the edit makes it a person's, so later
        suggestions never overwrite it."""
        m = self.map()
        found = next((o for o in m.opportunities if o.key == key), None)
        if found is None:
            keys = ", ".join(o.key for o in m.opportunities) or "none yet: run touchlens roadmap suggest"
            raise UnknownItem(f"unknown opportunity '{key}'; opportunities are: {keys}")
        changes: dict[str, Any] = {"source": OpportunitySource.person}
        if horizon is not None:
            if horizon not in Horizon.__members__:
                raise UnknownItem(f"unknown horizon '{horizon}'; choose now, next or later")
            changes["horizon"] = Horizon(horizon)
        if status is not None:
            changes["status"] = OpportunityStatus(status)
        updated = found.model_copy(update=changes)
        self.save_map(m.model_copy(update={"opportunities": [updated if o.key == key else o for o in m.opportunities]}))
        return updated


def _score(o: Opportunity) -> float:
    value = o.evidence.get("score")
    return float(value) if isinstance(value, int | float) else 0.0


def _themes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Themes of one touchpoint's comments, with example comments in place of their indexes."""
    texts = [r["comment"] for r in rows]
    found = find_themes(texts)
    out = []
    for theme in found.themes:
        members = [rows[i] for i in theme.members]
        scores = [r["sentiment"] for r in members if r["sentiment"] is not None]
        out.append(
            {
                "label": theme.label,
                "terms": theme.terms,
                "count": theme.count,
                "sentiment": sum(scores) / len(scores) if scores else None,
                "examples": [texts[i] for i in theme.examples],
            }
        )
    return out
