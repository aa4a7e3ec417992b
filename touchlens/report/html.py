"""The report a person can send: one self-contained HTML file that opens offline.

The map's name, mission and success statements, headline numbers, the journey map (inline SVG), the scorecard,
feedback per touchpoint with intervals, themes and recent comments, the insights with their evidence and the
roadmap in Now / Next / Later columns. CSS and charts are inline; the file loads nothing (its content security
policy forbids it too). Jinja2 escapes every string; only our own SVG goes in as markup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from touchlens.analytics.feedback import FeedbackReport, FeedbackRow
from touchlens.analytics.scorecard import Scorecard
from touchlens.analytics.stats import Estimate
from touchlens.api import Workspace
from touchlens.experience import Insights
from touchlens.insights.evidence import evidence_items
from touchlens.insights.health import measured_emotion
from touchlens.insights.items import stake_text
from touchlens.model.map import Horizon, Opportunity, TouchpointMap
from touchlens.model.views import journey_view
from touchlens.report import journey_svg
from touchlens.report.charts import Bar, bar_chart

SECTIONS = (("problems", "Problems"), ("strengths", "Strengths"), ("gaps", "Gaps"), ("friction", "Friction"))
HORIZONS = ((Horizon.now, "Now"), (Horizon.next, "Next"), (Horizon.later, "Later"))
COMMENTS = 3
SVG_NS = ' xmlns="http://www.w3.org/2000/svg"'


def html_report(ws: Workspace, journey: str | None = None, now: datetime | None = None) -> str:
    """The whole report as one HTML document (`journey` picks the journey map drawn; `now` dates it)."""
    return render(context(ws, journey, now))


def render(data: dict[str, Any]) -> str:
    """Fill the report template with `context`'s data (every string autoescaped)."""
    env = Environment(
        loader=PackageLoader("touchlens.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(**data)


def context(ws: Workspace, journey: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Everything the template shows, computed once: the analyses run here, the template only lays them out."""
    m = ws.map()
    journey_view(m, journey)  # an unknown journey fails before the analyses run
    feedback, card = ws.feedback(themes=True), ws.scorecard()
    states = ws.touchpoint_health(feedback, card)
    svg = journey_svg.render(m, states, measured_emotion(ws.feedback(by="stage")), journey)
    names = {t.key: t.label for t in m.touchpoints}
    return {
        "map": m,
        "success": [s.to_dict() for s in ws.success_status(feedback, card)],
        "generated": now.strftime("%Y-%m-%d %H:%M %Z").strip() if now else None,
        "headline": _headline(m, feedback, card),
        "journey_svg": Markup(_inline(svg)),  # noqa: S704 - built by journey_svg.render, which escapes every string
        "scorecard": _scorecard(card, names),
        "reach_chart": Markup(_inline(_reach_chart(card, names))),  # noqa: S704 - escaped by charts.bar_chart
        "feedback": _feedback(feedback, names, _comments(ws)),
        "csat_chart": Markup(_inline(_csat_chart(feedback, names))),  # noqa: S704 - escaped by charts.bar_chart
        "insights": _insights(ws.insights(tuple(s for s, _ in SECTIONS)), names),
        "roadmap": _roadmap(ws.roadmap(), names),
        "walkthroughs": _walkthroughs(ws, m, feedback),
    }


def _walkthroughs(ws: Workspace, m: TouchpointMap, feedback: FeedbackReport) -> list[dict[str, Any]]:
    """Each walked journey's comparison (`walkthrough compare`), in the map's order."""
    walked = {a["journey"] for a in ws.audits.list()}
    themes = {r.key: r.themes or [] for r in feedback.rows}
    return [ws.audits.compare(j.key, themes) for j in m.journeys if j.key in walked]


def _inline(svg: str) -> str:
    """An SVG document as HTML5 inline markup: no namespace (HTML implies it), so the page holds no URL at all."""
    return svg.replace(SVG_NS, "", 1)


def _headline(m: TouchpointMap, feedback: FeedbackReport, card: Scorecard) -> list[tuple[str, str, str]]:
    overall = feedback.overall
    return [
        ("Customers", f"{card.customers:,}", "with at least one mapped event"),
        ("Touchpoint events", f"{sum(s.events for s in card.scores):,}", f"over {len(m.touchpoints)} touchpoints"),
        ("Survey responses", f"{overall.responses:,}", f"{overall.comments:,} with a comment"),
        ("NPS", _number(overall.nps.value, "{:+.0f}"), _interval(overall.nps, "{:+.0f}")),
        ("CSAT", _number(overall.csat.value, "{:.0%}"), _interval(overall.csat, "{:.0%}")),
        ("CES", _number(overall.ces.value, "{:.2f}"), _interval(overall.ces, "{:.2f}")),
        ("Conversion", _number(card.baseline_conversion, "{:.1%}"), "of customers (the map's conversion outcome)"),
    ]


def _number(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def _interval(e: Estimate, fmt: str) -> str:
    if e.low is None or e.high is None:
        return f"n = {e.n:,}" if e.n else "no responses"
    return f"95% interval {fmt.format(e.low)} to {fmt.format(e.high)}, n = {e.n:,}"


def _estimate(e: Estimate, fmt: str) -> str:
    if e.value is None:
        return "–"
    if e.low is None or e.high is None:
        return fmt.format(e.value)
    return f"{fmt.format(e.value)} ({fmt.format(e.low)} – {fmt.format(e.high)})"


def _scorecard(card: Scorecard, names: dict[str, str]) -> list[dict[str, str]]:
    return [
        {
            "key": s.touchpoint,
            "name": names.get(s.touchpoint, s.touchpoint),
            "customers": f"{s.customers:,}",
            "events": f"{s.events_per_customer:.1f}",
            "conversion": _number(s.conversion, "{:.1%}"),
            "lift": "–" if s.lift is None else f"{s.lift:.2f} ({s.lift_low or 0:.2f} – {s.lift_high or 0:.2f})",
            "drop_off": _number(s.drop_off, "{:.1%}"),
            "repeat": _number(s.repeat_rate, "{:.1%}"),
        }
        for s in card.scores
    ]


def _reach_chart(card: Scorecard, names: dict[str, str]) -> str:
    bars = [Bar(names.get(s.touchpoint, s.touchpoint), s.customers) for s in card.scores]
    return bar_chart("Customers reached per touchpoint", bars)


def _comments(ws: Workspace) -> dict[str, list[dict[str, Any]]]:
    """The latest few comments per touchpoint, newest first."""
    return {
        touchpoint: [{"text": r["comment"], "metric": r["metric"].upper(), "score": f"{r['score']:g}"} for r in rows]
        for touchpoint, rows in ws.latest_comments(COMMENTS).items()
    }


def _feedback(
    report: FeedbackReport, names: dict[str, str], comments: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    return [_feedback_row(r, names, comments.get(r.key, [])) for r in report.rows]


def _feedback_row(r: FeedbackRow, names: dict[str, str], comments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "key": r.key,
        "name": names.get(r.key, r.key),
        "responses": f"{r.responses:,}",
        "nps": _estimate(r.nps, "{:+.0f}"),
        "csat": _estimate(r.csat, "{:.0%}"),
        "ces": _estimate(r.ces, "{:.2f}"),
        "sentiment": _number(r.sentiment, "{:+.2f}"),
        "themes": [
            {"label": t["label"], "count": t["count"], "example": (t.get("examples") or [""])[0]}
            for t in r.themes or []
        ],
        "comments": comments,
    }


def _csat_chart(report: FeedbackReport, names: dict[str, str]) -> str:
    rows = [r for r in report.rows if r.csat.value is not None]
    bars = [Bar(names.get(r.key, r.key), r.csat.value, r.csat.low, r.csat.high) for r in rows]
    return bar_chart("CSAT per touchpoint, with 95% intervals", bars, scale=1.0, fmt="{:.0%}".format)


def _insights(found: Insights, names: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "title": title,
            "entries": [
                {
                    "title": i.title,
                    "summary": i.summary,
                    "section": i.section,
                    "kind": i.kind.replace("_", " "),
                    "subject": names.get(i.subject, i.subject),
                    "reach": f"{i.reach:,} customers" if i.reach else "",
                    "at_stake": i.at_stake.text() if i.at_stake else "",
                    "evidence": evidence_items(i.evidence, names),
                }
                for i in found.sections.get(section, [])
            ],
        }
        for section, title in SECTIONS
    ]


def _roadmap(opportunities: list[Opportunity], names: dict[str, str]) -> list[dict[str, Any]]:
    columns = [(label, [o for o in opportunities if o.horizon == h]) for h, label in HORIZONS]
    unplaced = [o for o in opportunities if o.horizon is None]
    if unplaced:
        columns.append(("Unplaced", unplaced))
    return [{"label": label, "entries": [_opportunity(o, names) for o in items]} for label, items in columns]


def _opportunity(o: Opportunity, names: dict[str, str]) -> dict[str, Any]:
    score = o.evidence.get("score")
    stake = o.evidence.get("at_stake")
    return {
        "key": o.key,
        "at_stake": stake_text(stake) if isinstance(stake, dict) else "",
        "title": o.title,
        "description": o.description or "",
        "touchpoints": [names.get(k, k) for k in o.touchpoints],
        "score": f"{score:.0f}" if isinstance(score, int | float) else "–",
        "impact": _number(o.impact, "{:g}"),
        "effort": _number(o.effort, "{:g}"),
        "confidence": _number(o.confidence, "{:.0%}"),
        "status": o.status.value.replace("_", " "),
        "source": o.source.value,
        "owner": o.owner or "",
    }
