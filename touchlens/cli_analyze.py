"""`touchlens analyze …`: thin shells over the analysis half of the `Workspace` facade."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from touchlens import console as ui
from touchlens.analyses import compare_attribution
from touchlens.analytics.attribution import MODELS
from touchlens.analytics.journeys import JourneyOptions
from touchlens.api import read_paths
from touchlens.cli_common import CsvOpt, JsonOpt, show
from touchlens.cli_common import ws_of as _ws
from touchlens.errors import TouchlensError
from touchlens.model.durations import parse_duration

analyze_app = typer.Typer(help="Analyses of the journeys customers actually take.", no_args_is_help=True)


@analyze_app.command("scorecard")
def analyze_scorecard(
    ctx: typer.Context,
    window: Annotated[
        str, typer.Option(help="Count a conversion this soon after the touchpoint (30d, 7d, 48h).")
    ] = "30d",
    by: Annotated[
        str, typer.Option(help="touchpoint (default) or stage: one row per stage of the journey.")
    ] = "touchpoint",
    breakdown: Annotated[str | None, typer.Option(help="One scorecard per persona or per channel (JSON).")] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Per touchpoint: customers reached, events, conversion after it and lift (95% interval), drop-off, repeats."""
    if breakdown is not None:
        ui.print_json(_ws(ctx).scorecard_breakdown(breakdown, window, by))
        return
    card = _ws(ctx).scorecard(window, by).to_dict()
    show(card, as_json, as_csv, lambda c: c[f"{c['by']}s"], ui.scorecard_table)


SessionGap = Annotated[
    str | None, typer.Option("--session-gap", help="Split journeys where a customer is silent this long (e.g. 30m).")
]


def _journey_options(session_gap: str | None) -> JourneyOptions:
    if session_gap is None:
        return JourneyOptions()
    try:
        return JourneyOptions(session_gap=parse_duration(session_gap))
    except ValueError as exc:
        raise TouchlensError(f"--session-gap: {exc}") from None


@analyze_app.command("flows")
def analyze_flows(
    ctx: typer.Context,
    session_gap: SessionGap = None,
    by_conversion: Annotated[
        bool, typer.Option("--by-conversion", help="Converters' and non-converters' flows side by side (JSON).")
    ] = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """The directly-follows graph over touchpoints: edges with counts and median / p90 time, starts, ends."""
    if by_conversion:
        both = _ws(ctx).flows_by_conversion(_journey_options(session_gap))
        ui.print_json({name: flows.to_dict() for name, flows in both.items()})
        return
    flows = _ws(ctx).flows(_journey_options(session_gap)).to_dict()
    show(flows, as_json, as_csv, lambda f: f["edges"], ui.flows_table)


@analyze_app.command("paths")
def analyze_paths(
    ctx: typer.Context,
    from_: Annotated[str | None, typer.Option("--from", help="Show what follows this touchpoint.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Show what leads to this touchpoint.")] = None,
    steps: Annotated[int, typer.Option(min=1, max=20, help="How many steps after (or before).")] = 3,
    top: Annotated[int, typer.Option(min=1, help="How many of the most frequent paths to show.")] = 20,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """The N touchpoints right after (--from) or before (--to) a touchpoint, with counts and shares."""
    if (from_ is None) == (to is None):
        raise typer.BadParameter("give exactly one of --from or --to")
    result = _ws(ctx).paths_around(from_ or to or "", steps, before=to is not None, top=top).to_dict()
    show(result, as_json, as_csv, lambda r: r["paths"], ui.paths_table)


@analyze_app.command("sankey")
def analyze_sankey(
    ctx: typer.Context,
    depth: Annotated[int, typer.Option(min=2, max=20, help="How many first steps of each journey.")] = 5,
    top: Annotated[int, typer.Option(min=1, help="Touchpoints kept per step; the rest become 'other'.")] = 8,
    session_gap: SessionGap = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the links as CSV instead of JSON.")] = False,
) -> None:
    """Sankey data (JSON) for the first steps of the journeys: nodes per step and the links between them."""
    sankey = _ws(ctx).sankey(depth, top, _journey_options(session_gap))
    show(sankey, not as_csv, as_csv, lambda s: s["links"], ui.flows_table)


@analyze_app.command("variants")
def analyze_variants(
    ctx: typer.Context,
    top: Annotated[int, typer.Option(min=1, help="How many of the most frequent variants to show.")] = 10,
    session_gap: SessionGap = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Journey variants: each distinct full touchpoint sequence with its count, share and cumulative coverage."""
    variants = _ws(ctx).variants(top, _journey_options(session_gap)).to_dict()
    show(variants, as_json, as_csv, lambda v: v["variants"], ui.variants_table)


@analyze_app.command("funnel")
def analyze_funnel(
    ctx: typer.Context,
    steps: Annotated[str, typer.Option(help="Touchpoint keys in order, comma-separated: a,b,c (any number).")],
    window: Annotated[str, typer.Option(help="Time allowed from the first step to the last (30m, 48h, 7d).")] = "7d",
    order: Annotated[str, typer.Option(help="any: other events may come between steps; strict: none may.")] = "any",
    exclude: Annotated[
        str | None, typer.Option(help="Touchpoints (comma-separated) that spoil a journey between first and last step.")
    ] = None,
    dropped_at: Annotated[
        int | None, typer.Option("--dropped-at", help="Export the customers who reached step K but not the next.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File for --dropped-at (default: stdout).")
    ] = None,
    breakdown: Annotated[
        str | None, typer.Option(help="Counts per persona, channel or property:NAME (of the first step's event).")
    ] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """How many customers reach each step of a touchpoint sequence within the window, and how fast."""
    ws = _ws(ctx)
    query = ws.funnel(_keys(steps), window, order, _keys(exclude or ""))
    if dropped_at is not None:
        customers = ws.funnel_dropped(query, dropped_at)
        # Customer ids come from whoever sends events (a public write key): quoted and formula-safe like any CSV.
        body = ui.csv_text(["customer_id"], ([c] for c in customers))
        if output is None:
            sys.stdout.write(body)
        else:
            output.write_text(body, encoding="utf-8")
            ui.err.print(f"Wrote {len(customers):,} customers to {ui.text(output)}")
        return
    funnel = ws.run_funnel(query, breakdown).to_dict()
    show(funnel, as_json, as_csv, lambda f: f["steps"], ui.funnel_table)


def _keys(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


@analyze_app.command("attribution")
def analyze_attribution(
    ctx: typer.Context,
    paths: Annotated[
        Path | None,
        typer.Option(help="Aggregated paths file (path, total_conversions, …) instead of the workspace's journeys."),
    ] = None,
    by: Annotated[str, typer.Option(help="Credit touchpoint, channel or stage (workspace journeys).")] = "touchpoint",
    model: Annotated[str, typer.Option(help=f"One of: {', '.join(MODELS)}, time-decay (journeys only).")] = "markov",
    order: Annotated[int, typer.Option(min=1, max=3, help="Markov order: 1 to 3.")] = 1,
    half_life: Annotated[str, typer.Option(help="time-decay: credit halves this long before the conversion.")] = "7d",
    bootstrap_samples: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Resample the paths N times for 95% intervals (0: none).")
    ] = 0,
    lookback: Annotated[
        str | None, typer.Option(help="Only touches this close before their conversion count (e.g. 30d).")
    ] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Every model side by side.")] = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Credit conversions to touchpoints, channels or stages (first, last, linear, position, time-decay, Markov…)."""
    every = (*MODELS, "time-decay") if paths is None else MODELS
    if model not in every:
        raise TouchlensError(f"unknown model '{model}' here; models are: {', '.join(every)}")
    chosen = every if compare else (model,)
    source = read_paths(paths) if paths is not None else _ws(ctx)
    results = [
        r.to_dict() for r in compare_attribution(source, chosen, by, order, half_life, bootstrap_samples, lookback)
    ]
    show(results if compare else results[0], as_json, as_csv, _credit_records, lambda _: ui.attribution_table(results))


def _credit_records(data: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One CSV row per model and key, so --compare prints one long table."""
    models = data if isinstance(data, list) else [data]
    return [{"model": m["model"], "by": m["by"], **credit} for m in models for credit in m["results"]]
