"""The `touchlens` command: thin shells over the `Workspace` facade. Exit 0 ok, 1 bad input, 2 usage."""

from __future__ import annotations

import sys
from contextlib import nullcontext as _null
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import touchlens
from touchlens import cli_admin, cli_common, cli_privacy
from touchlens import console as ui
from touchlens.cli_alerts import alerts_app
from touchlens.cli_analyze import analyze_app
from touchlens.cli_cases import cases_app
from touchlens.cli_common import WORKSPACE_ENV, CsvOpt, JsonOpt
from touchlens.cli_common import ws_of as _ws
from touchlens.cli_design import design_app
from touchlens.cli_insights import change_app, roadmap_app
from touchlens.cli_privacy import cli_actor
from touchlens.cli_report import RawCsvOpt, export_app, report_app
from touchlens.cli_survey import survey_app
from touchlens.cli_walkthrough import walkthrough_app
from touchlens.cli_web import audit_log, demo_admin, serve, serve_workspace, tokens_app, users_app
from touchlens.errors import BadOption, MapError, TouchlensError, UsageError
from touchlens.ingest.formats import EVENT_FORMATS
from touchlens.model.phases import Phase

if TYPE_CHECKING:
    from touchlens.api import Workspace

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
app.add_typer(analyze_app, name="analyze")
app.add_typer(roadmap_app, name="roadmap")
app.add_typer(change_app, name="change")
app.add_typer(report_app, name="report")
app.add_typer(export_app, name="export")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(survey_app, name="survey")
app.add_typer(cases_app, name="cases")
app.add_typer(alerts_app, name="alerts")
app.add_typer(design_app, name="design")
app.add_typer(walkthrough_app, name="walkthrough")
app.command("serve")(serve)
app.command("audit")(audit_log)
cli_admin.register(app)
cli_privacy.register(app)
quarantine_app = typer.Typer(help="Rows ingest could not use, with the reason.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")


class ExportFormat(StrEnum):
    yaml = "yaml"
    json = "json"
    csv = "csv"


class DemoBusiness(StrEnum):
    retail = "retail"
    subscription = "subscription"


class ImportFormat(StrEnum):
    auto = "auto"
    yaml = "yaml"
    json = "json"
    csv = "csv"


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
            envvar=WORKSPACE_ENV,
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
    ws = _ws(ctx)
    report = ws.import_map(file, merge=merge, fmt=fmt.value, actor=cli_actor())
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
    raw_csv: RawCsvOpt = False,
) -> None:
    """Write the workspace map as YAML, JSON or a CSV inventory (cells that would start a spreadsheet formula get
    a leading ', which map import takes off again; --raw-csv writes them as stored)."""
    suffix = output.suffix.lower().lstrip(".") if output else ""
    chosen = fmt.value if fmt else {"json": "json", "csv": "csv"}.get(suffix, "yaml")
    if raw_csv and chosen != "csv":
        raise BadOption(f"--raw-csv applies to CSV only, not {chosen}: add --format csv")
    from touchlens.model.inventory import dump_inventory

    ws = _ws(ctx)
    body = dump_inventory(ws.map().touchpoints, raw=True) if raw_csv else ws.export_map(chosen)  # type: ignore[arg-type]
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
    from touchlens.api import read_map_file
    from touchlens.model.checks import design_checks

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
    from touchlens.model.views import TouchpointFilter

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
        report = ws.ingest_events(files, fmt=fmt, columns=columns, source=source, progress=advance, actor=cli_actor())
    if as_json:
        ui.print_json({k: v for k, v in report.to_dict().items() if k != "files"})
    else:
        ui.out.print(ui.ingest_table(report.to_dict()))
    if report.unmapped_events:
        ui.err.print(UNMAPPED_HINT, soft_wrap=True)


UNMAPPED_HINT = (
    "Some events have no touchpoint (named above, or under unmapped_events): add a touchpoint whose match is the "
    "event (touchlens map import, or the Data page), then run `touchlens remap`."
)


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
        report = ws.ingest_feedback(files, fmt, columns, source, attach_window, progress=advance, actor=cli_actor())
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
    counts = _ws(ctx).ingest_customers(file, id_column, actor=cli_actor())
    if as_json:
        ui.print_json(counts)
    else:
        ui.out.print(ui.counts_table("Customers", counts, ("count", "customers")))


@app.command()
def remap(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Re-apply the map's touchpoint rules to every stored event (after editing the map)."""
    counts = _ws(ctx).remap(actor=cli_actor())
    mapped = {str(k): v for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])) if k}
    if as_json:
        ui.print_json({"by_touchpoint": mapped, "unmapped": counts.get(None, 0)})
    else:
        counted = {**mapped, "(unmapped)": counts.get(None, 0)}
        table = ui.counts_table("Events by touchpoint after remapping", counted, ("touchpoint", "events"))
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
    n = _ws(ctx).clear_quarantine(actor=cli_actor())
    ui.out.print(f"Cleared {n:,} quarantined row{'' if n == 1 else 's'}")


@app.command()
def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(min=1, help="How many customers to simulate.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the web app afterwards, with a demo admin.")
    ] = True,
    host: Annotated[str, typer.Option(help="With --serve: the address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="With --serve: the port to listen on.")] = 8000,
    planted: Annotated[
        bool, typer.Option("--planted/--no-planted", help="Plant the known effects listed in truths.json.")
    ] = True,
    business: Annotated[
        DemoBusiness, typer.Option(help="Which example business: the outdoor retailer or the coffee subscription.")
    ] = DemoBusiness.retail,
    as_json: JsonOpt = False,
) -> None:
    """Build a demo workspace (default ./touchlens-demo) from an example business with realistic data."""
    from touchlens.demo_workspace import build_demo

    target = ctx.obj or Path("touchlens-demo")
    with ui.err.status("Simulating customers and ingesting their data…") if ui.err.is_terminal else _null():
        report = build_demo(
            target, customers=customers, seed=seed, planted=planted, business=business.value, actor=cli_actor()
        )
    if as_json:
        ui.print_json(report.to_dict())
    else:
        ui.out.print(ui.demo_summary(report.to_dict()))
    name, password = demo_admin(target)
    ui.err.print(
        f"Demo admin (one-time credentials, shown only now): name [bold]{name}[/]  password [bold]{password}[/]",
        soft_wrap=True,  # a password broken over two lines is easy to copy wrong
    )
    if serve:
        serve_workspace(target, host, port)


def flag_message(exc: TouchlensError) -> str:
    """The error as the command line says it: the field at fault named as its flag (``--half-life: …``)."""
    if exc.field is None:
        return str(exc)
    return f"--{exc.field.rstrip('_').replace('_', '-')}: {exc.message}"


def main() -> None:
    """Entry point: while a server holds the workspace, the command runs there (cli_remote); else here."""
    from touchlens import cli_remote

    argv = sys.argv[1:]
    refused = cli_remote.refusal(argv)
    if refused is not None:
        ui.err.print(f"[red]error:[/] {ui.text(refused)}", soft_wrap=True)
        sys.exit(1)
    code = cli_remote.forward(argv)
    sys.exit(invoke(argv) if code is None else code)


def invoke(argv: list[str], hosted: Workspace | None = None) -> int:
    """Run one command and give its exit status: touchlens errors print their message (every problem, one a
    line) and give 1 (2 for a usage error). `hosted`: the open workspace every command uses (a server's)."""
    cli_common.hosted = hosted
    try:
        app(args=argv, prog_name="touchlens")
    except SystemExit as exc:
        return _status(exc.code)
    except MapError as exc:
        for problem in exc.problems:
            ui.err.print(ui.text(problem), soft_wrap=True)
        ui.err.print(f"[red]{len(exc.problems)} error(s)[/]")
        return 1
    except TouchlensError as exc:
        ui.err.print(f"[red]error:[/] {ui.text(flag_message(exc))}", soft_wrap=True)
        return 2 if isinstance(exc, UsageError) else 1
    except Exception as exc:
        message = _plain_failure(exc)
        if message is None:
            raise
        ui.err.print(f"[red]error:[/] {message}", soft_wrap=True)
        return 1
    finally:
        cli_common.hosted = None
    return 0


def _status(code: object) -> int:
    if code is None or isinstance(code, int):
        return code or 0
    ui.err.print(ui.text(code))
    return 1


def _plain_failure(exc: Exception) -> str | None:
    """What to say, without a traceback, when the metadata store cannot be reached (PostgreSQL down or refusing)
    or the engine refused something the checks before it did not catch; None for anything else (a bug). Only a
    library that was loaded can have raised, so none is imported here for the check."""
    sa, duckdb, pa = (sys.modules.get(name) for name in ("sqlalchemy", "duckdb", "pyarrow"))
    if sa is not None and isinstance(exc, sa.exc.OperationalError):
        return f"the metadata store cannot be reached: {ui.text(exc.orig)}"
    engine_errors = tuple(e for e in (getattr(duckdb, "Error", None), getattr(pa, "ArrowException", None)) if e)
    if engine_errors and isinstance(exc, engine_errors):
        return f"{ui.text(type(exc).__name__)}: {ui.text(exc)}"
    return None
