"""The experience half of the `Workspace` facade: feedback, drivers, insights and the roadmap.

A mixin of `Workspace`, which supplies the map, the engine, the settings and the scorecard.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, overload

from touchlens.errors import UnknownItem, WorkspaceError
from touchlens.insights.items import SECTIONS, Insight
from touchlens.insights.words import Names
from touchlens.model.durations import as_duration
from touchlens.model.map import Horizon, Opportunity, OpportunitySource, OpportunityStatus, TouchpointMap
from touchlens.once import Latest
from touchlens.store import meta

if TYPE_CHECKING:
    import duckdb
    import ibis
    import sqlalchemy as sa

    from touchlens.analytics.drivers import Drivers, DriversQuery, PeriodReader
    from touchlens.analytics.drivers_model import DriversReport
    from touchlens.analytics.feedback import FeedbackReport
    from touchlens.analytics.scorecard import Scorecard
    from touchlens.insights.conformance import Conformance
    from touchlens.insights.effects import Effects
    from touchlens.insights.health import Health
    from touchlens.insights.subpar import Judgement, Thresholds
    from touchlens.insights.success import SuccessStatus
    from touchlens.store.settings import Settings

ALIASES = {"subpar": "problems"}  # the section's name before findings had sections of their own


T = TypeVar("T")


@dataclass(frozen=True)
class Judging:
    """The shared inputs of every section's judgment."""

    m: TouchpointMap
    backend: ibis.BaseBackend
    names: Names
    thresholds: Thresholds
    min_rate_points: float
    report: FeedbackReport | None
    judged: dict[str, Judgement]
    fx: Effects | None
    card: Scorecard | None
    _read: dict[str, Any] = field(default_factory=dict)  # what sections share, read once

    def reach(self) -> dict[str, int]:
        """Customers who met each touchpoint: read once, however many sections ask (a scan of every event)."""
        if "reach" not in self._read:
            from touchlens.insights import friction

            self._read["reach"] = friction.touchpoint_reach(self.backend)
        reach: dict[str, int] = self._read["reach"]
        return reach


def _problems(c: Judging) -> list[Insight]:
    """Poor touchpoints; one customers rate poorly that also costs an outcome is a moment of truth. A miss of a
    behaviour target (conversion after it) is not also given an outcome cost: it is already about outcomes."""
    # The insights load Ibis and the statistics: imported where used, since the CLI opens this facade for light
    # commands too (tests/test_startup.py).
    from touchlens.insights import effects, subpar
    from touchlens.insights.health import below_target

    scored = subpar.subpar(c.judged, c.names)
    effects.attach(scored, c.fx, c.m, c.names, c.min_rate_points)
    for item in scored:
        if item.at_stake is not None:
            item.kind = "moment_of_truth"
    found = scored + below_target(c.m, c.card, set(c.judged), c.thresholds)
    return sorted(found, key=lambda i: -(i.at_stake.value if i.at_stake else 0.0))


def _strengths(c: Judging) -> list[Insight]:
    from touchlens.insights import effects, subpar

    return effects.strengths(c.fx, c.m, c.names, c.min_rate_points) + subpar.well_rated(c.judged, c.names, c.thresholds)


def _gaps(c: Judging) -> list[Insight]:
    return _gaps_on(c.m, c.backend)


def _gaps_on(m: TouchpointMap, backend: ibis.BaseBackend) -> list[Insight]:
    from touchlens.insights import gaps

    return gaps.map_gaps(m) + gaps.data_gaps(backend, m) + gaps.silent_periods(backend, m, Names.of(m))


def _friction(c: Judging) -> list[Insight]:
    from touchlens.insights import effects, friction

    found = friction.merge_pairs(
        friction.loops(c.backend, c.m, c.names, reach=c.reach)
        + friction.switches(c.backend, c.m, c.names)
        + friction.repeats(c.backend, c.m, c.names, reach=c.reach)
    )
    if c.card is not None:
        found += friction.dead_ends(c.card, c.m, c.names)
    found += friction.high_effort(c.report, c.names) if c.report is not None else []
    # What a loop costs is the loop's own comparison; high effort, its touchpoint's. Other friction: not measured.
    effects.attach([i for i in found if i.kind in ("loop", "high_effort")], c.fx, c.m, c.names, c.min_rate_points)
    return found


def _personalisation(c: Judging) -> list[Insight]:
    return _personalisation_on(c.m, c.backend)


def _personalisation_on(m: TouchpointMap, backend: ibis.BaseBackend) -> list[Insight]:
    from touchlens.insights import personalisation

    return personalisation.persona_gaps(personalisation.persona_scores(backend))


FINDERS: dict[str, Callable[[Judging], list[Insight]]] = {
    "problems": _problems,
    "strengths": _strengths,
    "gaps": _gaps,
    "friction": _friction,
    "personalisation": _personalisation,
}
# The sections that need none of the shared judgment, only the map and an engine, so they can run beside it.
# (Friction's journey queries too would, but beside the periods' read on two cores they slowed it more than they
# saved: 3.1–3.3 s against 3.0 s at 10M events.)
ALONE: dict[str, Callable[[TouchpointMap, ibis.BaseBackend], list[Insight]]] = {
    "gaps": _gaps_on,
    "personalisation": _personalisation_on,
}


def _interrupt(backends: list[ibis.BaseBackend], running: list[Future[list[Insight]]]) -> None:
    """Interrupt the backends' queries until the work on them has ended: an interrupt that lands between two
    queries is lost, and the work may start another."""
    from touchlens.limits import INTERRUPT_EVERY

    while not all(f.done() for f in running):
        for backend in backends:
            backend.con.interrupt()
        wait(running, timeout=INTERRUPT_EVERY)


def _fill_reach(items: list[Insight], c: Judging) -> None:
    """Customers who met the finding's touchpoints, where the finding itself did not count them."""
    missing = [i for i in items if not i.reach and i.touchpoints]
    if not missing:
        return
    reach = c.reach()
    for item in missing:
        item.reach = max((reach.get(t, 0) for t in item.touchpoints), default=0)


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

    def _store_map(self, m: TouchpointMap) -> None:
        raise NotImplementedError

    def _record(self, actor: str, action: str, target: str = "", **detail: Any) -> None:
        raise NotImplementedError

    def _backend(self) -> ibis.BaseBackend:
        raise NotImplementedError

    def _shared_version(self) -> tuple[Any, ...] | None:
        raise NotImplementedError

    def _backend_per_call(self) -> bool:
        raise NotImplementedError

    _period_reads: Latest[tuple[list[str], Any]]

    def _period_reader(self) -> PeriodReader | None:
        """The drivers' read of every customer's periods, shared by the callers asking for it on the same data
        at about the same time (the server's touchpoint page computes drivers and insights side by side): one
        read, not one each. Keyed by the data version and what the read depends on; None (each reads its own)
        outside a server's shared connection, where one command asks once."""
        from touchlens.analytics.drivers import periods_key, read_periods

        version = self._shared_version()
        if version is None:
            return None

        def read(query: DriversQuery, backend: ibis.BaseBackend) -> tuple[list[str], Any]:
            return self._period_reads.get((version, periods_key(query)), lambda: read_periods(query, backend))

        return read

    def scorecard(self, window: str | timedelta = "30d", by: str = "touchpoint") -> Scorecard:
        raise NotImplementedError

    def feedback(self, by: str = "touchpoint", period: str = "week", themes: bool = False) -> FeedbackReport:
        """NPS, CSAT and CES with 95% intervals and comment sentiment, per touchpoint, stage, persona, channel
        or period; with `themes`, each touchpoint's recurring topics and example comments."""
        from touchlens.analytics.feedback import GROUPINGS, CommentsQuery, FeedbackQuery

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

    def comments(
        self,
        touchpoint: str | None = None,
        text: str | None = None,
        metric: str | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The newest comments with their score, metric, sentiment, touchpoint and time, filtered (all optional;
        `text` matches anywhere, case-insensitively, as plain text)."""
        from touchlens.analytics.feedback import CommentSearch

        query = CommentSearch(touchpoint, text, metric, min_score, max_score, limit)
        return query.run(self._backend())

    def counts(self) -> dict[str, int]:
        """Rows in the events store: events, feedback, customers and quarantined."""
        from touchlens.store import events as events_store

        with self.events(read_only=True) as con:
            return events_store.counts(con)

    def latest_comments(self, per_touchpoint: int = 3) -> dict[str, list[dict[str, Any]]]:
        """Each touchpoint's newest comments, newest first."""
        from touchlens.analytics.feedback import CommentsQuery

        return CommentsQuery(limit=per_touchpoint).run(self._backend())

    def unmapped_events(self, limit: int = 20) -> list[dict[str, Any]]:
        """The events no touchpoint claims, by event name, most frequent first (what to map next)."""
        from touchlens.store import events as events_store

        with self.events(read_only=True) as con:
            return events_store.unmapped_events(con, limit)

    def ingest_history(self, limit: int = 200) -> list[dict[str, Any]]:
        """Every ingest run, newest first: source, kind, file, rows read, accepted, duplicates, quarantined."""
        from touchlens.store import events as events_store

        with self.events(read_only=True) as con:
            return events_store.ingest_history(con, limit)

    def events(self, read_only: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        raise NotImplementedError

    def touchpoint_health(
        self, feedback: FeedbackReport | None = None, card: Scorecard | None = None
    ) -> dict[str, Health]:
        """Each touchpoint's health (good, watch, poor, or None unmeasured), from results already at hand or
        computed here."""
        from touchlens.insights.health import health

        feedback = feedback if feedback is not None else self.feedback()
        card = card if card is not None else self.scorecard()
        t = self._thresholds()
        return health(self.map_or_empty(), feedback, card, t)

    def nps_drivers(self) -> dict[str, Any]:
        """Key drivers of overall NPS on touchpoint scores: each touchpoint's share of the explained variance, and
        a `message` in words when too few customers answered both surveys or the scores explain almost none of it."""
        from touchlens.analytics.drivers import NpsDriversQuery

        return NpsDriversQuery().run(self._backend())

    @overload
    def drivers(self, outcome: None = None, samples: int = 100) -> DriversReport: ...

    @overload
    def drivers(self, outcome: str, samples: int = 100) -> Drivers: ...

    def drivers(self, outcome: str | None = None, samples: int = 100) -> Drivers | DriversReport:
        """What raises or lowers the rate of conversion, repeat purchase or churn, period by period; with no
        outcome, every outcome the map defines (`all_drivers`). An outcome the map lacks raises `MissingOutcome`,
        whose message names the map lines to add."""
        if outcome is None:
            return self.all_drivers(samples)
        from touchlens.analytics.drivers import OUTCOMES, query_for

        if outcome not in OUTCOMES:
            raise UnknownItem(f"unknown outcome '{outcome}'; choose {', '.join(OUTCOMES)}")
        return query_for(self.map(), outcome, samples).run_each(self._backend(), (outcome,), self._period_reader())[0]

    def all_drivers(self, samples: int = 100) -> DriversReport:
        """Drivers of every outcome the map defines, and for each it does not, the map lines to add."""
        from touchlens.analytics.drivers import every_outcome

        return every_outcome(self.map(), self._backend(), samples, self._period_reader())

    def insights(self, sections: tuple[str, ...] = SECTIONS, samples: int = 0) -> Insights:
        """Findings by section — problems, strengths, gaps, friction, personalisation — each with its reach
        in customers, its effects on the map's outcomes and what is at stake (see `touchlens.insights`).

        `samples` is kept for callers of earlier versions; the judgment no longer bootstraps."""
        chosen = tuple(dict.fromkeys(ALIASES.get(s, s) for s in sections))
        unknown = [s for s in chosen if s not in SECTIONS]
        if unknown:
            raise UnknownItem(f"unknown section '{unknown[0]}'; choose {', '.join(SECTIONS)}")
        m, backend = self.map(), self._backend()
        out = Insights()
        # The scorecard and the sections that need no shared judgment run on threads beside the judgment, each
        # on a backend of its own: the engine works on one while Python builds the queries of another and reads
        # their answers (insights at 10M events: 3.5 s one after the other).
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="touchlens-insights")
        engines = {name: self._backend() for name in ALONE if name in chosen}
        alone: dict[str, Future[list[Insight]]] = {}
        try:
            card = self._beside(pool, self.scorecard) if {"problems", "friction"} & set(chosen) else None
            alone = {name: self._beside(pool, partial(ALONE[name], m, b)) for name, b in engines.items()}
            ctx = self._judging(m, backend, chosen, card)
            for name in chosen:
                out.sections[name] = alone[name].result() if name in alone else FINDERS[name](ctx)
        except BaseException:
            # Nothing more is started, and the sections' queries are stopped; the scorecard, whose engine its own
            # call opens, runs to its end (a request's time limit stops it too).
            pool.shutdown(wait=False, cancel_futures=True)
            if self._backend_per_call():
                _interrupt(list(engines.values()), list(alone.values()))
            raise
        finally:
            pool.shutdown(wait=True)
        _fill_reach(out.items(), ctx)
        return out

    def _judging(
        self, m: TouchpointMap, backend: ibis.BaseBackend, sections: tuple[str, ...], card: Future[Scorecard] | None
    ) -> Judging:
        """What every section's judgment needs, computed once: scores judged, outcome effects, reach (the
        scorecard, being computed, as `card`)."""
        from touchlens.insights import effects
        from touchlens.insights.subpar import judge

        s = self.settings.insights
        t = self._thresholds()
        needs_scores = bool({"problems", "strengths", "friction"} & set(sections))
        report = self.feedback() if needs_scores else None
        judged = judge(report, m, t) if report is not None else {}
        fx = None
        if {"problems", "strengths", "friction"} & set(sections):
            p = effects.periods(backend, m, self._period_reader())
            fx = effects.effects(p, m, s.alpha, s.min_rate_points, s.min_relative_effect) if p is not None else None
        scorecard = card.result() if card is not None else None
        return Judging(m, backend, Names.of(m), t, s.min_rate_points, report, judged, fx, scorecard)

    def _beside(self, pool: ThreadPoolExecutor, work: Callable[[], T]) -> Future[T]:
        """`work` on `pool`'s thread while the caller goes on, in the caller's context (a request's time limit
        stops its queries too); on this thread, done, where the workspace has one backend for every call (an
        engine it was given), which two threads may not share."""
        if not self._backend_per_call():
            done: Future[T] = Future()
            done.set_result(work())
            return done
        return pool.submit(contextvars.copy_context().run, work)

    def _thresholds(self) -> Thresholds:
        """How sure and how large a gap must be, from the `[insights]` settings (declared once there)."""
        from touchlens.insights.subpar import Thresholds

        s = self.settings.insights
        return Thresholds(s.alpha, s.min_responses, s.min_csat_points, s.min_nps_points, s.min_ces_points)

    def health_report(self) -> list[dict[str, Any]]:
        """`{"touchpoint", "health", "reason"}` for every touchpoint of the map (see `insights.health`)."""
        from touchlens.insights.health import health_rows

        t = self._thresholds()
        return health_rows(self.map_or_empty(), self.feedback(), self.scorecard(), t)

    def success_status(
        self, feedback: FeedbackReport | None = None, card: Scorecard | None = None
    ) -> list[SuccessStatus]:
        """Each CX success statement judged on the data: met, not met, unknown (too few answers) or not measurable
        (plain text); see `insights.success`. Results already at hand may be passed in."""
        from touchlens.insights.success import status as success_statuses

        m = self.map_or_empty()
        converts = any(not isinstance(s, str) and s.metric == "conversion" for s in m.success)
        if card is None and converts and m.outcomes.conversion is not None:
            card = self.scorecard()
        feedback = feedback if feedback is not None else self.feedback()
        return success_statuses(m, feedback, card, self.settings.insights.min_responses)

    def conformance(self, journey: str | None = None, top: int = 10) -> Conformance:
        """Actual journeys against a designed journey's stage order (the map's first journey by default)."""
        from touchlens.insights.conformance import ConformanceQuery

        m = self.map()
        if not m.journeys:
            raise WorkspaceError("the map has no journeys: conformance needs a designed stage order")
        chosen = next((j for j in m.journeys if j.key == journey), None) if journey else m.journeys[0]
        if chosen is None:
            raise UnknownItem(f"unknown journey '{journey}'; journeys are: {', '.join(j.key for j in m.journeys)}")
        stage_of = tuple((t.key, t.stage) for t in m.touchpoints if t.stage)
        query = ConformanceQuery(chosen.key, tuple(s.key for s in chosen.stages), stage_of, top)
        return query.run(self._backend())

    def trends(self, period: str = "week", touchpoints: tuple[str, ...] = ()) -> dict[str, Any]:
        """Each touchpoint's events, customers, CSAT and sentiment per period, with anomalies flagged."""
        from touchlens.analytics.trends import TrendsQuery

        self._check_touchpoints(touchpoints)
        try:
            s = self.settings.insights
            names = tuple((t.key, t.name or t.key) for t in self.map_or_empty().touchpoints)
            query = TrendsQuery(period, touchpoints, fdr=s.anomaly_fdr, min_csat_points=s.anomaly_min_csat_points,
                                min_volume_change=s.anomaly_min_volume_change, names=names)  # fmt: skip
            return query.run(self._backend())
        except ValueError as exc:
            raise UnknownItem(str(exc)) from None

    def add_change(self, touchpoint: str, when: date, note: str, *, actor: str = "library") -> int:
        """Record a change made to a touchpoint on a date, so `impact` can measure it."""
        self._check_touchpoints((touchpoint,))
        change = meta.add_change(self._meta_engine(), touchpoint, when, note)
        self._record(actor, "change-add", f"touchpoint {touchpoint}", id=change, date=when.isoformat())
        return change

    def changes(self, touchpoint: str | None = None) -> list[dict[str, Any]]:
        return meta.list_changes(self._meta_engine(), touchpoint)

    def impact(self, change_id: int, window: str | timedelta = "28d") -> dict[str, Any]:
        """A recorded change's before/after comparison over equal windows on each side of its date, against the
        touchpoints it did not touch: the others of its stage, else all the others (a difference in differences);
        where proactive rules send this touchpoint, their holdouts' randomised comparison too."""
        from touchlens.analytics.trends import ImpactQuery

        found = next((c for c in self.changes() if c["id"] == change_id), None)
        if found is None:
            raise UnknownItem(f"unknown change {change_id}; see touchlens change list")
        touchpoints = self.map_or_empty().touchpoints
        stage = next((t.stage for t in touchpoints if t.key == found["touchpoint"]), None)
        others = [t for t in touchpoints if t.key != found["touchpoint"]]
        comparison = [t.key for t in others if stage and t.stage == stage] or [t.key for t in others]
        query = ImpactQuery(found["touchpoint"], found["date"], as_duration(window, "window"), tuple(comparison),
                            self.settings.insights.impact_min_responses)  # fmt: skip
        result = query.run(self._backend())
        holdout = self._holdouts(found["touchpoint"])
        return {"change": {**found, "date": found["date"].isoformat()}, **result, "holdout": holdout}

    def _holdouts(self, touchpoint: str) -> list[dict[str, Any]]:
        """The randomised measurements of the proactive rules sending this touchpoint (a workspace has them)."""
        return []

    def _check_touchpoints(self, keys: tuple[str, ...]) -> None:
        known = {t.key for t in self.map_or_empty().touchpoints}
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise UnknownItem(f"unknown touchpoint '{unknown[0]}'; touchpoints are: {', '.join(sorted(known))}")

    def _meta_engine(self) -> sa.Engine:
        raise NotImplementedError

    def roadmap_suggest(self, samples: int = 0, *, actor: str = "library") -> tuple[list[Opportunity], list[str]]:
        """Turn the insights into scored opportunities in the map; returns the suggestions and the keys left
        alone because a person wrote or edited them."""
        from touchlens.insights import prioritise

        r = self.settings.roadmap
        placement = prioritise.Placement(r.now_score, r.now_max_effort, r.next_score, r.success_weight)
        m = self.map()
        suggested = prioritise.suggest(self.insights().items(), m, placement)
        merged, changed, kept = prioritise.merge(m, suggested)
        self._store_map(merged)
        touched = set(changed) | set(kept)
        found = [o for o in _in_order(merged.opportunities) if o.key in touched]
        self._record(actor, "roadmap-change", "roadmap", suggested=len(found), kept=kept)
        return found, kept

    def roadmap(self) -> list[Opportunity]:
        """The map's opportunities, Now first, then Next, Later and unplaced; best score first within each."""
        return _in_order(self.map_or_empty().opportunities)

    def roadmap_update(
        self,
        key: str,
        horizon: str | None = None,
        status: str | None = None,
        change: int | None = None,
        *,
        actor: str = "library",
    ) -> Opportunity:
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
        if change is not None:
            if not any(c["id"] == change for c in self.changes()):
                raise UnknownItem(f"unknown change {change}; record it with: touchlens change add TOUCHPOINT")
            # The change it produced, so `touchlens analyze impact` can measure whether it worked.
            changes["evidence"] = {**found.evidence, "change": change}
        updated = found.model_copy(update=changes)
        self._store_map(
            m.model_copy(update={"opportunities": [updated if o.key == key else o for o in m.opportunities]})
        )
        given = {"horizon": horizon, "status": status, "change": change}
        self._record(actor, "roadmap-change", f"opportunity {key}", **{k: v for k, v in given.items() if v is not None})
        return updated


def _in_order(items: list[Opportunity]) -> list[Opportunity]:
    """Now, Next, Later, unplaced; best score first within each. A done (or dropped) card leaves Now: open work
    comes first."""
    order = {Horizon.now: 0, Horizon.next: 1, Horizon.later: 2, None: 3}
    closed = (OpportunityStatus.done, OpportunityStatus.dropped)
    return sorted(items, key=lambda o: (o.status in closed, order[o.horizon], -_score(o), o.key))


def _score(o: Opportunity) -> float:
    value = o.evidence.get("score")
    return float(value) if isinstance(value, int | float) else 0.0


def _themes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Themes of one touchpoint's comments, with example comments in place of their indexes."""
    from touchlens.text.themes import find_themes

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
