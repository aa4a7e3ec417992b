"""`touchlens analyze …`: thin shells over the analysis half of the `Workspace` facade."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from touchlens import console as ui
from touchlens.analytics.attribution_models import MODELS
from touchlens.cli_common import CsvOpt, JsonOpt, show
from touchlens.cli_common import ws_of as _ws
from touchlens.cli_generated import add_analyses
from touchlens.errors import TouchlensError
from touchlens.queries import funnels as fq
from touchlens.queries.base import keys

analyze_app = typer.Typer(help="Analyses of the journeys customers actually take.", no_args_is_help=True)
# flows, variants, sankey, paths, scorecard, weekdays …: one command per registry entry (cli_generated.py);
# the funnel's is written below, for its --dropped-at export.
add_analyses(analyze_app, written=("funnel",))


@analyze_app.command("funnel")
def analyze_funnel(
    ctx: typer.Context,
    steps: Annotated[str, typer.Option(help=fq.STEPS)],
    window: Annotated[str, typer.Option(help=fq.WINDOW)] = "7d",
    order: Annotated[str, typer.Option(help=fq.ORDER)] = "any",
    exclude: Annotated[str | None, typer.Option(help=fq.EXCLUDE)] = None,
    dropped_at: Annotated[
        int | None, typer.Option("--dropped-at", help="Export the customers who reached step K but not the next.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File for --dropped-at (default: stdout).")
    ] = None,
    breakdown: Annotated[str | None, typer.Option(help=fq.BREAKDOWN)] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """How many customers reach each step of a touchpoint sequence within the window, and how fast."""
    ws = _ws(ctx)
    query = fq.FunnelQuery(keys(steps), window, order, keys(exclude or ""), breakdown)
    if dropped_at is not None:
        _write_dropped(ws.funnel_dropped_at(query, dropped_at), output)
        return
    show(ws.run(query).to_dict(), as_json, as_csv, lambda f: f["steps"], ui.funnel_table)


def _write_dropped(customers: list[str], output: Path | None) -> None:
    # Customer ids come from whoever sends events (a public write key): quoted and formula-safe like any CSV.
    body = ui.csv_text(["customer_id"], ([c] for c in customers))
    if output is None:
        sys.stdout.write(body)
    else:
        output.write_text(body, encoding="utf-8")
        ui.err.print(f"Wrote {len(customers):,} customers to {ui.text(output)}")


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
    from touchlens.analyses import compare_attribution
    from touchlens.api import read_paths

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
