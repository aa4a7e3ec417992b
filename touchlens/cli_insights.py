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
from touchlens.console_insights import health_table, insights_table, roadmap_table
from touchlens.console_trends import anomalies_table, holdout_table, impact_table
from touchlens.insights.items import SECTIONS

change_app = typer.Typer(help="Changes made to touchpoints, to measure their impact.", no_args_is_help=True)
roadmap_app = typer.Typer(help="Opportunities to improve, scored and placed Now / Next / Later.", no_args_is_help=True)

FEEDBACK_COLUMNS = ["key", "responses", "nps", "csat", "ces", "sentiment", "negative_share", "comments"]
# The CSV's leading columns, in order (the rest follow as the JSON has them); the table is console_drivers'.
DRIVER_COLUMNS = ["feature", "kind", "touchpoint", "direction", "rate_with", "rate_without", "difference"]


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
        str | None,
        typer.Option(
            help="conversion, repeat or churn (one of the map's outcomes; default: every one it defines), "
            "or nps (key drivers of NPS)."
        ),
    ] = None,
    bootstrap_samples: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Resamples for the model's 95% intervals (0: none).")
    ] = 100,
    top: Annotated[int, typer.Option(min=1, help="Rows to show in each table.")] = 20,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Which touchpoints and experiences raise or lower the rate of each outcome the map defines — conversion,
    repeat purchase, churn — and by how many points (or, with --outcome nps, which touchpoint scores explain NPS)."""
    from touchlens import console_drivers as drivers_ui  # its model loads scikit-learn: only when asked

    ws = _ws(ctx)
    names = {t.key: t.name or t.key for t in ws.map_or_empty().touchpoints}
    if outcome == "nps":
        nps = ws.nps_drivers()
        show(nps, as_json, as_csv, lambda d: d["weights"], lambda d: drivers_ui.nps_view(d, names))
    elif outcome is None:
        report = ws.all_drivers(bootstrap_samples).to_dict()
        rows = _driver_rows(drivers_ui.report_rows(report))
        show(report, as_json, as_csv, lambda _: rows, lambda d: drivers_ui.report_view(d, names, top))
    else:
        one = ws.drivers(outcome, bootstrap_samples).to_dict()
        table = drivers_ui.drivers_table
        show(one, as_json, as_csv, lambda d: _driver_rows(d["drivers"]), lambda d: table(d, names, top))


def _driver_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first = ["outcome", *DRIVER_COLUMNS]
    return [{**{k: r[k] for k in first if k in r}, **r} for r in rows]


def _insights(ctx: typer.Context, sections: tuple[str, ...], as_json: bool, as_csv: bool, title: str) -> None:
    found = _ws(ctx).insights(sections)
    show(
        found.to_dict(),
        as_json,
        as_csv,
        lambda _: [i.record() for i in found.items()],
        lambda d: insights_table(title, d),
    )


@analyze_app.command("insights")
def analyze_insights(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """Sub-par touchpoints and moments of truth, gaps, friction and persona gaps, each with its evidence."""
    _insights(ctx, SECTIONS, as_json, as_csv, "Insights")


@analyze_app.command("gaps")
def analyze_gaps(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """What the map lacks and what the data says it lacks: unmapped events, silent periods, unused channels…"""
    _insights(ctx, ("gaps",), as_json, as_csv, "Gaps")


@analyze_app.command("friction")
def analyze_friction(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """Loops, repeats in a session, switches to a person, dead ends and high effort."""
    _insights(ctx, ("friction",), as_json, as_csv, "Friction")


@analyze_app.command("health")
def analyze_health(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """Each touchpoint's health — good, watch or poor — and why, by the one definition the canvas, inventory,
    journey map, report and insights share."""
    ws = _ws(ctx)
    rows = ws.health_report()
    names = {t.key: t.name or t.key for t in ws.map_or_empty().touchpoints}
    data = {"touchpoints": rows}
    show(data, as_json, as_csv, lambda d: d["touchpoints"], lambda d: health_table(d["touchpoints"], names))


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


@analyze_app.command("success")
def analyze_success(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """The map's CX success statements measured: met, not met, unknown (too few answers) or not measurable, with
    the value against the threshold and the touchpoints that miss it."""
    from touchlens.console_success import success_table

    data = {"statements": [s.to_dict() for s in _ws(ctx).success_status()]}
    show(data, as_json, as_csv, lambda d: [_success_row(s) for s in d["statements"]],
         lambda d: success_table(d["statements"]))  # fmt: skip


def _success_row(s: dict[str, Any]) -> dict[str, Any]:
    """A statement flattened for CSV: scope as its one `kind: value`, failing touchpoints as their keys."""
    scope = " ".join(f"{k}: {' '.join(v) if isinstance(v, list) else v}" for k, v in (s["scope"] or {}).items())
    flat = {k: v for k, v in s.items() if k not in ("scope", "failing", "measured")}
    return flat | {"scope": scope, "failing": " ".join(f["touchpoint"] for f in s["failing"])}


def _card_rows(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards flattened for CSV: at_stake spelled out, findings as their summaries."""
    rows = []
    for c in cards:
        stake = c["at_stake"] or {}
        flat = {k: v for k, v in c.items() if k not in ("at_stake", "findings", "touchpoints")}
        rows.append(flat | {"touchpoints": " ".join(c["touchpoints"]),
                            **{f"at_stake_{k}": stake.get(k) for k in ("value", "low", "high", "unit", "per")},
                            "findings": " | ".join(f["summary"] for f in c["findings"])})  # fmt: skip
    return rows


@roadmap_app.command("suggest")
def roadmap_suggest(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """Turn the insights into scored opportunities in the map, placed Now / Next / Later (people's edits kept)."""
    from touchlens.insights.prioritise import card

    ws = _ws(ctx)
    suggested, kept = ws.roadmap_suggest(actor=cli_actor())
    cards = [card(o) for o in suggested]
    show(cards, as_json, as_csv, _card_rows, lambda d: roadmap_table("Suggested opportunities", d))
    if kept and not (as_json or as_csv):
        linked = ", ".join(ui.text(k) for k in kept)
        ui.err.print(f"Linked to the cards people wrote (their words and places kept): {linked}")


@roadmap_app.command("list")
def roadmap_list(ctx: typer.Context, as_json: JsonOpt = False, as_csv: CsvOpt = False) -> None:
    """Every opportunity, Now first, then Next and Later, best score first."""
    from touchlens.insights.prioritise import card

    cards = [card(o) for o in _ws(ctx).roadmap()]
    show(cards, as_json, as_csv, _card_rows, lambda d: roadmap_table("Roadmap", d))


@roadmap_app.command("move")
def roadmap_move(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The opportunity's key.")],
    horizon: Annotated[str, typer.Argument(help="now, next or later.")],
) -> None:
    """Move an opportunity to Now, Next or Later (it becomes a person's: suggestions never overwrite it)."""
    o = _ws(ctx).roadmap_update(key, horizon=horizon, actor=cli_actor())
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
    o = _ws(ctx).roadmap_update(key, status="done", change=change, actor=cli_actor())
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
    change_id = _ws(ctx).add_change(touchpoint, day, note, actor=cli_actor())
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
    """Each touchpoint's events, customers, CSAT and sentiment per period, and the periods that depart from
    what was expected of them (last year's same period, else their neighbours) surely and by enough."""
    ws = _ws(ctx)
    result = ws.trends(period, tuple(touchpoint or ()))
    points = [{"touchpoint": s["touchpoint"], **p} for s in result["series"] for p in s["points"]]
    fdr = ws.settings.insights.anomaly_fdr
    show(result, as_json, as_csv, lambda _: points, lambda r: anomalies_table(r, fdr))


@analyze_app.command("impact")
def analyze_impact(
    ctx: typer.Context,
    change: Annotated[int, typer.Argument(help="The change's id (touchlens change list).")],
    window: Annotated[str, typer.Option(help="Length of each side: before and after the change (28d, 8w).")] = "28d",
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """A change's impact on volume, CSAT and sentiment: equal windows before and after it, at its touchpoint and
    at the touchpoints it did not touch (a difference in differences), with a verdict in words."""
    ws = _ws(ctx)
    result = ws.impact(change, window)
    names = {t.key: t.name or t.key for t in ws.map_or_empty().touchpoints}
    show(result, as_json, as_csv, lambda r: r["metrics"], lambda r: impact_table(_impact_title(r, names), r["metrics"]))
    if not (as_json or as_csv):
        for holdout in result["holdout"]:
            ui.out.print(holdout_table(holdout))


def _impact_title(result: dict[str, Any], names: dict[str, str]) -> str:
    """Which change, where, how long each side, and against what."""
    change, key = result["change"], result["touchpoint"]
    against = ", ".join(names.get(k, k) for k in result["comparison"]) or "nothing (no other touchpoint)"
    return (f"Change {change['id']} on {ui.text(names.get(key, key))}, {result['date']}: {result['window_days']} "
            f"days each side, compared with {ui.text(against)}")  # fmt: skip
