"""`touchlens analyze feedback | drivers | insights | gaps | friction` and `touchlens roadmap …`: thin shells over
the experience half of the `Workspace` facade."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from touchlens import console as ui
from touchlens.cli_analyze import analyze_app
from touchlens.cli_common import CsvOpt, JsonOpt, show
from touchlens.cli_common import ws_of as _ws
from touchlens.cli_privacy import cli_actor
from touchlens.store import audit

change_app = typer.Typer(help="Changes made to touchpoints, to measure their impact.", no_args_is_help=True)
roadmap_app = typer.Typer(help="Opportunities to improve, scored and placed Now / Next / Later.", no_args_is_help=True)

FEEDBACK_COLUMNS = ["key", "responses", "nps", "csat", "ces", "sentiment", "negative_share", "comments"]
DRIVER_COLUMNS = [
    "feature",
    "periods_with",
    "rate_with",
    "rate_without",
    "lift",
    "p_value",
    "coefficient",
    "low",
    "high",
]
INSIGHT_COLUMNS = ["kind", "title", "reach", "impact", "confidence"]
ROADMAP_COLUMNS = ["horizon", "key", "title", "score", "impact", "effort", "confidence", "status", "source"]


@analyze_app.command("feedback")
def analyze_feedback(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(help="touchpoint, stage, persona, channel or period.")] = "touchpoint",
    period: Annotated[str, typer.Option(help="With --by period: day, week or month.")] = "week",
    themes: Annotated[bool, typer.Option("--themes", help="Recurring topics of each touchpoint's comments.")] = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """NPS, CSAT and CES with 95% intervals and comment sentiment, per touchpoint, stage, persona, channel or period."""
    report = _ws(ctx).feedback(by, period, themes)
    show(
        report.to_dict(),
        as_json,
        as_csv,
        lambda _: [r.record() for r in report.rows],
        lambda _: ui.records_table(f"Feedback by {by}", [_flat(r.to_dict()) for r in report.rows], FEEDBACK_COLUMNS),
    )
    if themes and not (as_json or as_csv):
        for row in report.rows:
            for t in row.themes or []:
                ui.out.print(
                    f"{ui.text(row.key)} · {ui.text(t['label'])} ({t['count']}): “{ui.text(t['examples'][0])}”"
                )


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v["value"] if isinstance(v, dict) else v) for k, v in row.items()}


@analyze_app.command("drivers")
def analyze_drivers(
    ctx: typer.Context,
    outcome: Annotated[
        str, typer.Option(help="conversion, repeat or churn (the map's outcomes), or nps (key drivers of NPS).")
    ] = "churn",
    bootstrap_samples: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Resamples for the model's 95% intervals (0: none).")
    ] = 100,
    top: Annotated[int, typer.Option(min=1, help="Rows to show in the table.")] = 20,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Which touchpoints and experiences raise or lower the odds of conversion, repeat purchase or churn (or, with
    --outcome nps, which touchpoint scores explain overall NPS)."""
    if outcome == "nps":
        nps = _ws(ctx).nps_drivers()
        title = f"Key drivers of NPS — {nps['customers']:,} customers, R² {nps['r2'] or 0:.2f}"
        columns = ["touchpoint", "weight", "share"]
        show(nps, as_json, as_csv, lambda d: d["weights"], lambda d: ui.records_table(title, d["weights"], columns))
        return
    result = _ws(ctx).drivers(outcome, bootstrap_samples).to_dict()
    show(
        result,
        as_json,
        as_csv,
        lambda d: d["drivers"],
        lambda d: ui.records_table(
            f"Drivers of {outcome} — {d['periods']:,} periods, base rate {d['base_rate'] or 0:.1%}",
            d["drivers"][:top],
            DRIVER_COLUMNS,
        ),
    )


def _insights(ctx: typer.Context, sections: tuple[str, ...], as_json: bool, as_csv: bool, title: str) -> None:
    found = _ws(ctx).insights(sections)
    show(
        found.to_dict(),
        as_json,
        as_csv,
        lambda _: [{"section": s, **i.record()} for s, items in found.sections.items() for i in items],
        lambda _: ui.records_table(title, [i.to_dict() for i in found.items()], INSIGHT_COLUMNS),
    )


@analyze_app.command("insights")
def analyze_insights(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """Sub-par touchpoints and moments of truth, gaps, friction and persona gaps, each with its evidence."""
    _insights(ctx, ("subpar", "gaps", "friction", "personalisation"), as_json, as_csv, "Insights")


@analyze_app.command("gaps")
def analyze_gaps(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """What the map lacks and what the data says it lacks: unmapped events, silent periods, unused channels…"""
    _insights(ctx, ("gaps",), as_json, as_csv, "Gaps")


@analyze_app.command("friction")
def analyze_friction(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """Loops, repeats in a session, switches to a person, dead ends and high effort."""
    _insights(ctx, ("friction",), as_json, as_csv, "Friction")


@analyze_app.command("conformance")
def analyze_conformance(
    ctx: typer.Context,
    journey: Annotated[str | None, typer.Option(help="The designed journey (default: the map's first).")] = None,
    top: Annotated[int, typer.Option(min=1, help="How many of the most frequent deviations to list.")] = 10,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """The designed stage order against actual journeys: who follows it, skipped stages, backward moves."""
    result = _ws(ctx).conformance(journey, top).to_dict()
    title = (
        f"Journey {result['journey']}: {result['following']:,} of {result['customers']:,} journeys follow the "
        f"designed order; {result['with_backward_moves']:,} move back"
    )
    show(result, as_json, as_csv, lambda d: d["deviations"], lambda d: ui.records_table(
        title, d["deviations"], ["stages", "count", "backward", "skipped"]))  # fmt: skip


def _opportunity_rows(items: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "horizon": o.horizon.value if o.horizon else None,
            "key": o.key,
            "title": o.title,
            "score": o.evidence.get("score"),
            "impact": o.impact,
            "effort": o.effort,
            "confidence": o.confidence,
            "status": o.status.value,
            "source": o.source.value,
        }
        for o in items
    ]


@roadmap_app.command("suggest")
def roadmap_suggest(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """Turn the insights into scored opportunities in the map, placed Now / Next / Later (people's edits kept)."""
    ws = _ws(ctx)
    suggested, kept = ws.roadmap_suggest()
    audit.record(ws.meta_engine(), cli_actor(), "roadmap-change", "roadmap", suggested=len(suggested), kept=kept)
    data = [o.model_dump(mode="json") for o in suggested]
    rows = _opportunity_rows(suggested)
    show(
        data,
        as_json,
        as_csv,
        lambda _: rows,
        lambda _: ui.records_table("Suggested opportunities", rows, ROADMAP_COLUMNS),
    )
    if kept and not (as_json or as_csv):
        ui.err.print(f"Left as people wrote them: {', '.join(ui.text(k) for k in kept)}")


@roadmap_app.command("list")
def roadmap_list(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """Every opportunity, Now first, then Next and Later, best score first."""
    items = _ws(ctx).roadmap()
    show([o.model_dump(mode="json") for o in items], as_json, as_csv, lambda _: _opportunity_rows(items),
         lambda _: ui.records_table("Roadmap", _opportunity_rows(items), ROADMAP_COLUMNS))  # fmt: skip


@roadmap_app.command("move")
def roadmap_move(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The opportunity's key.")],
    horizon: Annotated[str, typer.Argument(help="now, next or later.")],
) -> None:
    """Move an opportunity to Now, Next or Later (it becomes a person's: suggestions never overwrite it)."""
    ws = _ws(ctx)
    o = ws.roadmap_update(key, horizon=horizon)
    audit.record(ws.meta_engine(), cli_actor(), "roadmap-change", f"opportunity {key}", horizon=horizon)
    ui.err.print(f"{ui.text(o.key)} is in {ui.text(o.horizon)}")


@roadmap_app.command("done")
def roadmap_done(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The opportunity's key.")],
    change: Annotated[
        int | None, typer.Option(help="The recorded change (touchlens change add) it produced, to measure it.")
    ] = None,
) -> None:
    """Mark an opportunity done, linked to the change it produced."""
    ws = _ws(ctx)
    o = ws.roadmap_update(key, status="done", change=change)
    audit.record(ws.meta_engine(), cli_actor(), "roadmap-change", f"opportunity {key}", status="done", change=change)
    linked = f", measured by: touchlens analyze impact {change}" if change is not None else ""
    ui.err.print(f"{ui.text(o.key)} is done{linked}")


@change_app.command("add")
def change_add(
    ctx: typer.Context,
    touchpoint: Annotated[str, typer.Argument(help="The touchpoint that changed.")],
    when: Annotated[str, typer.Option("--date", help="When the change went live (YYYY-MM-DD; default today).")] = "",
    note: Annotated[str, typer.Option(help="What changed.")] = "",
) -> None:
    """Record a change made to a touchpoint, so its impact can be measured."""
    try:
        day = date.fromisoformat(when) if when else date.today()
    except ValueError:
        raise typer.BadParameter(f"--date takes YYYY-MM-DD, not {when!r}") from None
    change_id = _ws(ctx).add_change(touchpoint, day, note)
    ui.out.print(f"change {change_id}: {ui.text(touchpoint)} on {day.isoformat()}")


@change_app.command("list")
def change_list(
    ctx: typer.Context,
    touchpoint: Annotated[str | None, typer.Option(help="Only this touchpoint's changes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every recorded change, oldest first."""
    rows = [{**c, "date": c["date"].isoformat()} for c in _ws(ctx).changes(touchpoint)]
    show(
        rows,
        as_json,
        False,
        lambda r: r,
        lambda r: ui.records_table("Changes", r, ["id", "touchpoint", "date", "note"]),
    )


@analyze_app.command("trends")
def analyze_trends(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="day, week or month.")] = "week",
    touchpoint: Annotated[list[str] | None, typer.Option(help="Only these touchpoints (repeat the option).")] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Each touchpoint's events, customers, CSAT and sentiment per period, with anomalies flagged."""
    result = _ws(ctx).trends(period, tuple(touchpoint or ()))
    points = [{"touchpoint": s["touchpoint"], **p} for s in result["series"] for p in s["points"]]
    flagged = [{"touchpoint": s["touchpoint"], **a} for s in result["series"] for a in s["anomalies"]]
    columns = ["touchpoint", "period", "metric", "value", "z"]
    show(result, as_json, as_csv, lambda _: points, lambda _: ui.records_table("Anomalies", flagged, columns))


@analyze_app.command("impact")
def analyze_impact(
    ctx: typer.Context,
    change: Annotated[int, typer.Argument(help="The change's id (touchlens change list).")],
    window: Annotated[str, typer.Option(help="Length of each side: before and after the change (28d, 8w).")] = "28d",
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """A change's before/after impact on volume, CSAT and sentiment over equal windows, with a test."""
    result = _ws(ctx).impact(change, window)
    columns = ["metric", "before", "after", "change", "low", "high", "p_value"]
    title = f"Change {change} on {result['touchpoint']}, {result['date']}: {result['window_days']} days each side"
    show(result, as_json, as_csv, lambda r: r["metrics"], lambda r: ui.records_table(title, r["metrics"], columns))
