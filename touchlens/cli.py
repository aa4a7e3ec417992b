"""The `touchlens` command: thin shells over the `Workspace` facade. Exit 0 ok, 1 bad input, 2 usage."""

from __future__ import annotations

import sys
from contextlib import nullcontext as _null
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import duckdb
import pyarrow as pa
import typer

import touchlens
from touchlens import console as ui
from touchlens.analytics.attribution import MODELS
from touchlens.analytics.journeys import JourneyOptions
from touchlens.api import Workspace, attribution, read_map_file, read_paths
from touchlens.demo_workspace import build_demo
from touchlens.errors import MapError, TouchlensError
from touchlens.ingest.readers import EVENT_FORMATS
from touchlens.model.checks import design_checks
from touchlens.model.durations import parse_duration
from touchlens.model.map import Phase
from touchlens.model.views import TouchpointFilter
from touchlens.store.workspace import ENV_VAR

app = typer.Typer(
    help="touchlens: know, measure and improve every customer touchpoint.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
map_app = typer.Typer(help="Import, export and check the touchpoint map.", no_args_is_help=True)
app.add_typer(map_app, name="map")
ingest_app = typer.Typer(help="Read events, feedback and customers into the workspace.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
analyze_app = typer.Typer(help="Analyses of the journeys customers actually take.", no_args_is_help=True)
app.add_typer(analyze_app, name="analyze")
quarantine_app = typer.Typer(help="Rows ingest could not use, with the reason.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")


class ExportFormat(StrEnum):
    yaml = "yaml"
    json = "json"
    csv = "csv"


class ImportFormat(StrEnum):
    auto = "auto"
    yaml = "yaml"
    json = "json"
    csv = "csv"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(touchlens.__version__)
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            envvar=ENV_VAR,
            help="Workspace folder (default: the nearest folder upward holding touchlens.toml).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """touchlens: know, measure and improve every customer touchpoint."""
    ctx.obj = workspace


def _ws(ctx: typer.Context) -> Workspace:
    return touchlens.open(ctx.obj)


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[
        Path | None, typer.Argument(help="Folder to make a workspace (default: --workspace or .).")
    ] = None,
) -> None:
    """Create a workspace: touchlens.toml with every setting, and the metadata store."""
    target = directory or ctx.obj or Path(".")
    existed = (target / "touchlens.toml").exists()
    ws = touchlens.init(target)
    verb = "Opened existing" if existed else "Initialised"
    ui.out.print(f"{verb} touchlens workspace in {ui.text(ws.root)}")


@map_app.command("import")
def map_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Map file: YAML, JSON, or a CSV inventory of touchpoints.")],
    merge: Annotated[
        bool, typer.Option("--merge", help="Merge into the stored map by key instead of replacing it.")
    ] = False,
    fmt: Annotated[
        ImportFormat, typer.Option("--format", help="File format (default: from the extension).")
    ] = ImportFormat.auto,
    as_json: JsonOpt = False,
) -> None:
    """Replace the workspace map with FILE (or merge it in with --merge). A CSV fills the touchpoints."""
    report = _ws(ctx).import_map(file, merge=merge, fmt=fmt.value)
    for warning in report.warnings:
        ui.err.print(ui.text(warning), soft_wrap=True)
    for problem in report.problems:
        ui.err.print(ui.text(problem), soft_wrap=True)
    if as_json:
        ui.print_json(report.to_dict())
    else:
        ui.out.print(f"Imported {ui.text(file)} ({'merged into' if merge else 'replacing'} the map)")
        ui.out.print(ui.counts_table("The map now holds", report.counts))
        if report.problems:
            rows = len({p.line for p in report.problems})
            ui.err.print(f"{rows} row{'s' if rows != 1 else ''} left out; see the errors above.")
    if report.problems:
        raise typer.Exit(1)


@map_app.command("export")
def map_export(
    ctx: typer.Context,
    fmt: Annotated[
        ExportFormat | None,
        typer.Option("--format", help="yaml, json or csv (touchpoints only); default: from -o, else yaml."),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write the workspace map as YAML, JSON or a CSV inventory."""
    suffix = output.suffix.lower().lstrip(".") if output else ""
    chosen = fmt.value if fmt else {"json": "json", "csv": "csv"}.get(suffix, "yaml")
    body = _ws(ctx).export_map(chosen)  # type: ignore[arg-type]
    if output is None:
        sys.stdout.write(body)
    else:
        output.write_text(body, encoding="utf-8")
        ui.err.print(f"Wrote {ui.text(output)}")


@map_app.command("check")
def map_check(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Map file to check (default: the workspace map).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a design check finds something.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate a map, then run the design checks: what a complete journey map still lacks."""
    m = read_map_file(file) if file is not None else _ws(ctx).map()
    findings = design_checks(m)
    if as_json:
        ui.print_json({"valid": True, "findings": [f.to_dict() for f in findings]})
    else:
        ui.out.print(f"[green]✓[/] {ui.text(file or 'workspace map')} is valid: {len(m.touchpoints)} touchpoints")
        ui.out.print(ui.findings_table(findings))
    if strict and findings:
        raise typer.Exit(1)


@app.command()
def touchpoints(
    ctx: typer.Context,
    stage: Annotated[str | None, typer.Option(help="Only this stage (key).")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel (key).")] = None,
    persona: Annotated[str | None, typer.Option(help="Only touchpoints on this persona's journeys.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner (case-insensitive).")] = None,
    phase: Annotated[Phase | None, typer.Option(help="Only this phase.")] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """List the touchpoint inventory, optionally filtered."""
    ws = _ws(ctx)
    flt = TouchpointFilter(stage, channel, persona, owner, phase.value if phase else None)
    found = ws.touchpoints(flt)
    if as_json:
        ui.print_json(
            {"touchpoints": [tp.model_dump(mode="json", by_alias=True, exclude_defaults=True) for tp in found]}
        )
    elif as_csv:
        ui.print_csv(ui.INVENTORY_COLUMNS, ui.inventory_rows(found))
    else:
        ui.out.print(ui.inventory_table(ws.map(), found))


@app.command()
def matrix(
    ctx: typer.Context,
    persona: Annotated[str | None, typer.Option(help="Only touchpoints on this persona's journeys.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Touchpoints by stage × channel, empty cells shown, against the channel strategy's planned stages."""
    ws = _ws(ctx)
    mx = ws.matrix(persona)
    if as_json:
        ui.print_json(mx.to_dict())
    else:
        ui.out.print(ui.matrix_table(ws.map(), mx))


@ingest_app.command("events")
def ingest_events(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Event files: CSV, JSON Lines, Parquet, Segment, GA4, …")],
    fmt: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(EVENT_FORMATS)}.")] = "auto",
    columns: Annotated[
        str | None, typer.Option(help="Map column names: customer_id=user,ts=time,event=action,…")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source name for dedupe (default: the format).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest event files: map them to touchpoints, quarantine bad rows, never store a row twice."""
    ws = _ws(ctx)
    with ui.row_progress(enabled=not as_json) as advance:
        report = ws.ingest_events(files, fmt=fmt, columns=columns, source=source, progress=advance)
    if as_json:
        ui.print_json({k: v for k, v in report.to_dict().items() if k != "files"})
    else:
        ui.out.print(ui.ingest_table(report.to_dict()))


@ingest_app.command("feedback")
def ingest_feedback(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Feedback files: survey CSV, Qualtrics, Zendesk, Intercom.")],
    fmt: Annotated[str, typer.Option("--format", help="auto, csv, qualtrics, zendesk or intercom.")] = "auto",
    columns: Annotated[str | None, typer.Option(help="Map column names: customer_id=email,nps=Q1,…")] = None,
    source: Annotated[str | None, typer.Option(help="Source name for dedupe (default: the format).")] = None,
    attach_window: Annotated[
        str | None,
        typer.Option(help="Tie a response with no touchpoint to the customer's latest one this recent (default 48h)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest survey responses (NPS, CSAT, CES, ratings with comments), each tied to a touchpoint."""
    ws = _ws(ctx)
    with ui.row_progress(enabled=not as_json) as advance:
        report = ws.ingest_feedback(files, fmt, columns, source, attach_window, progress=advance)
    if as_json:
        ui.print_json({k: v for k, v in report.to_dict().items() if k not in ("files", "identified")})
    else:
        ui.out.print(ui.ingest_table(report.to_dict()))


@ingest_app.command("customers")
def ingest_customers(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with a customer id column and attribute columns.")],
    id_column: Annotated[
        str | None,
        typer.Option("--id-column", help="The customer id column (default: customer_id, user_id or id)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge customer attributes (segment, plan, country, …) and assign personas by the map's segment rules."""
    counts = _ws(ctx).ingest_customers(file, id_column)
    if as_json:
        ui.print_json(counts)
    else:
        ui.out.print(ui.counts_table("Customers", counts))


@app.command()
def remap(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Re-apply the map's touchpoint rules to every stored event (after editing the map)."""
    counts = _ws(ctx).remap()
    mapped = {str(k): v for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])) if k}
    if as_json:
        ui.print_json({"by_touchpoint": mapped, "unmapped": counts.get(None, 0)})
    else:
        table = ui.counts_table("Events by touchpoint after remapping", {**mapped, "(unmapped)": counts.get(None, 0)})
        ui.out.print(table)


@quarantine_app.command("list")
def quarantine_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Example rows shown per reason.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Show quarantined rows grouped by reason, with counts and examples (file, row, field)."""
    groups = _ws(ctx).quarantine(limit)
    if as_json:
        ui.print_json({"reasons": groups})
    elif not groups:
        ui.out.print("Quarantine is empty: every row read so far was usable.")
    else:
        ui.out.print(ui.quarantine_table(groups))


@quarantine_app.command("clear")
def quarantine_clear(ctx: typer.Context) -> None:
    """Delete every quarantined row (before re-ingesting fixed files, so only what is still wrong returns)."""
    n = _ws(ctx).clear_quarantine()
    ui.out.print(f"Cleared {n} quarantined rows")


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
    if as_json:
        ui.print_json(card)
    elif as_csv:
        rows = card[f"{card['by']}s"]
        ui.print_csv(list(rows[0]) if rows else ["touchpoint"], [r.values() for r in rows])
    else:
        ui.out.print(ui.scorecard_table(card))


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
    flows = _ws(ctx).flows(_journey_options(session_gap))
    if as_json:
        ui.print_json(flows.to_dict())
    elif as_csv:
        edges = flows.to_dict()["edges"]
        ui.print_csv(("source", "target", "count", "median_seconds", "p90_seconds"), [e.values() for e in edges])
    else:
        ui.out.print(ui.flows_table(flows.to_dict()))


@analyze_app.command("paths")
def analyze_paths(
    ctx: typer.Context,
    from_: Annotated[str | None, typer.Option("--from", help="Show what follows this touchpoint.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Show what leads to this touchpoint.")] = None,
    steps: Annotated[int, typer.Option(min=1, max=20, help="How many steps after (or before).")] = 3,
    top: Annotated[int, typer.Option(min=1, help="How many of the most frequent paths to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The N touchpoints right after (--from) or before (--to) a touchpoint, with counts and shares."""
    if (from_ is None) == (to is None):
        raise typer.BadParameter("give exactly one of --from or --to")
    result = _ws(ctx).paths_around(from_ or to or "", steps, before=to is not None, top=top).to_dict()
    if as_json:
        ui.print_json(result)
    else:
        ui.out.print(ui.paths_table(result))


@analyze_app.command("sankey")
def analyze_sankey(
    ctx: typer.Context,
    depth: Annotated[int, typer.Option(min=2, max=20, help="How many first steps of each journey.")] = 5,
    top: Annotated[int, typer.Option(min=1, help="Touchpoints kept per step; the rest become 'other'.")] = 8,
    session_gap: SessionGap = None,
) -> None:
    """Sankey data (JSON) for the first steps of the journeys: nodes per step and the links between them."""
    ui.print_json(_ws(ctx).sankey(depth, top, _journey_options(session_gap)))


@analyze_app.command("variants")
def analyze_variants(
    ctx: typer.Context,
    top: Annotated[int, typer.Option(min=1, help="How many of the most frequent variants to show.")] = 10,
    session_gap: SessionGap = None,
    as_json: JsonOpt = False,
) -> None:
    """Journey variants: each distinct full touchpoint sequence with its count, share and cumulative coverage."""
    variants = _ws(ctx).variants(top, _journey_options(session_gap))
    if as_json:
        ui.print_json(variants.to_dict())
    else:
        ui.out.print(ui.variants_table(variants.to_dict()))


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
) -> None:
    """How many customers reach each step of a touchpoint sequence within the window, and how fast."""
    ws = _ws(ctx)
    query = ws.funnel(_keys(steps), window, order, _keys(exclude or ""))
    if dropped_at is not None:
        customers = ws.funnel_dropped(query, dropped_at)
        body = "customer_id\n" + "".join(f"{c}\n" for c in customers)
        if output is None:
            sys.stdout.write(body)
        else:
            output.write_text(body, encoding="utf-8")
            ui.err.print(f"Wrote {len(customers):,} customers to {ui.text(output)}")
        return
    funnel = ws.run_funnel(query, breakdown).to_dict()
    if as_json:
        ui.print_json(funnel)
    else:
        ui.out.print(ui.funnel_table(funnel))


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
) -> None:
    """Credit conversions to touchpoints, channels or stages (first, last, linear, position, time-decay, Markov…)."""
    every = (*MODELS, "time-decay") if paths is None else MODELS
    if model not in every:
        raise TouchlensError(f"unknown model '{model}' here; models are: {', '.join(every)}")
    chosen = every if compare else (model,)
    source = read_paths(paths) if paths is not None else _ws(ctx)
    results = [attribution(source, m, by, order, half_life, bootstrap_samples, lookback).to_dict() for m in chosen]
    if as_json:
        ui.print_json(results if compare else results[0])
    else:
        ui.out.print(ui.attribution_table(results))


@app.command()
def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(min=1, help="How many customers to simulate.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the web app afterwards (not built yet: --no-serve).")
    ] = False,
    planted: Annotated[
        bool, typer.Option("--planted/--no-planted", help="Plant the known effects listed in truths.json.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Build a demo workspace (default ./touchlens-demo) from the retail example with realistic data."""
    target = ctx.obj or Path("touchlens-demo")
    with ui.err.status("Simulating customers and ingesting their data…") if ui.err.is_terminal else _null():
        report = build_demo(target, customers=customers, seed=seed, planted=planted)
    if as_json:
        ui.print_json(report.to_dict())
    else:
        ui.out.print(ui.demo_summary(report.to_dict()))
    if serve:
        ui.err.print("The web app arrives in a later release; the workspace is ready for the CLI.")


def main() -> None:
    """Entry point: touchlens errors print their message (every problem, one a line) and exit 1."""
    try:
        app()
    except MapError as exc:
        for problem in exc.problems:
            ui.err.print(ui.text(problem), soft_wrap=True)
        ui.err.print(f"[red]{len(exc.problems)} error(s)[/]")
        sys.exit(1)
    except TouchlensError as exc:
        ui.err.print(f"[red]error:[/] {ui.text(exc)}", soft_wrap=True)
        sys.exit(1)
    except (duckdb.Error, pa.ArrowException) as exc:
        # The engine refused something the checks before it did not catch: say so plainly, without a traceback.
        ui.err.print(f"[red]error:[/] {ui.text(type(exc).__name__)}: {ui.text(exc)}", soft_wrap=True)
        sys.exit(1)
