"""`touchlens report …` and `touchlens export …`: thin shells over `touchlens.report`, which writes what a person
can send (an HTML report, the journey map as SVG or PNG) and what other tools read (XES, CSV, Parquet, Mermaid)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from touchlens import console as ui
from touchlens.cli_common import ws_of as _ws
from touchlens.errors import BadOption

report_app = typer.Typer(
    help="Reports a person can send: one self-contained HTML file, the journey map as SVG or PNG.",
    no_args_is_help=True,
)
export_app = typer.Typer(
    help="Journeys and the map for other tools: XES (process mining), CSV, Parquet, Mermaid.", no_args_is_help=True
)

JourneyOpt = Annotated[
    str | None,
    typer.Option("--journey", help="Only this journey (its key): its stages and its persona's touchpoints."),
]
StdoutOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")]


def _target(output: Path) -> Path:
    """The file to write, refused up front when its folder does not exist."""
    if not output.parent.is_dir():
        raise BadOption(f"--output: folder '{output.parent}' does not exist")
    return output


def _wrote(what: str, output: Path) -> None:
    ui.err.print(f"Wrote {what} to {ui.text(output)}")


def _stdout_bytes() -> BinaryIO:
    sys.stdout.flush()  # text already written must come before the bytes
    return sys.stdout.buffer


@report_app.command("html")
def report_html(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The HTML file to write (one file, opens offline).")
    ] = Path("report.html"),
    journey: JourneyOpt = None,
) -> None:
    """One self-contained HTML report: mission, headline numbers, journey map, scorecard, feedback, insights and
    the Now / Next / Later roadmap. Inline CSS and charts, no script, nothing loaded from anywhere."""
    from touchlens.report.html import html_report

    body = html_report(_ws(ctx), journey, now=datetime.now(UTC))
    _target(output).write_text(body, encoding="utf-8")
    _wrote(f"the report ({len(body.encode()) / 1024:,.0f} KiB)", output)


@report_app.command("svg")
def report_svg(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The file to write (default: the SVG on stdout).")
    ] = None,
    png: Annotated[
        bool, typer.Option("--png", help="Write a PNG instead (needs Playwright and /usr/bin/chromium; needs -o).")
    ] = False,
    journey: JourneyOpt = None,
) -> None:
    """The journey map canvas: stages across, channel swimlanes down, touchpoint cards coloured by health, the
    stages' tasks, questions, weaknesses and opportunities, and the designed and measured emotion curves."""
    from touchlens.report.journey_svg import journey_svg

    if png and output is None:
        raise BadOption("--png writes a file: add --output FILE.png")
    svg = journey_svg(_ws(ctx), journey)
    if output is None:
        sys.stdout.write(svg)
    elif png:
        from touchlens.report.png import svg_to_png  # Playwright is optional; only --png needs it

        svg_to_png(svg, _target(output))
        _wrote("the journey map (PNG)", output)
    else:
        _target(output).write_text(svg, encoding="utf-8")
        _wrote("the journey map (SVG)", output)


@export_app.command("xes")
def export_xes(ctx: typer.Context, output: StdoutOpt = None) -> None:
    """Journeys as an XES event log (IEEE 1849) for process-mining tools: a trace per customer, an event per
    touchpoint visit with its time and channel. A file name ending in .gz is gzip-compressed."""
    from touchlens.report import xes

    ws = _ws(ctx)
    if output is None:
        xes.write_xes(ws, sys.stdout)
        return
    with xes.open_log(_target(output)) as out:
        traces, events = xes.write_xes(ws, out)
    _wrote(f"{events:,} events in {traces:,} traces", output)


RawCsvOpt = Annotated[
    bool,
    typer.Option(
        "--raw-csv",
        help="Write text cells as stored, even those a spreadsheet would run as formulas "
        "(by default a cell starting with = + - @, tab or CR gets a leading ').",
    ),
]


@export_app.command("csv")
def export_csv(ctx: typer.Context, output: StdoutOpt = None, raw_csv: RawCsvOpt = False) -> None:
    """Journeys as CSV: customer_id, ts, touchpoint, stage, channel, event, event_id, in journey order. Cells
    that would start a spreadsheet formula get a leading ' (docs/reports.md); --raw-csv writes them as stored."""
    from touchlens.report import export

    rows = export.write_csv(_ws(ctx), _stdout_bytes() if output is None else _target(output), raw=raw_csv)
    if output is not None:
        _wrote(f"{rows:,} events", output)


@export_app.command("parquet")
def export_parquet(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The Parquet file to write.")] = None,
    lake: Annotated[
        Path | None,
        typer.Option(
            "--lake",
            help="Instead, write a Parquet lake to this folder: events/ and feedback/ as date=YYYY-MM-DD/ "
            "partitions, and customers/; days already there are replaced, other days kept.",
        ),
    ] = None,
) -> None:
    """Journeys as one Parquet file (the CSV export's columns, typed, zstd-compressed), in journey order; or,
    with --lake, the whole store as a Parquet lake that Spark, DuckDB and warehouses read (docs/scale.md)."""
    from touchlens.report import export

    if (output is None) == (lake is None):
        raise BadOption("give one of --output FILE (the journeys) or --lake FOLDER (the whole store)")
    if output is not None:
        rows = export.write_parquet(_ws(ctx), _target(output))
        _wrote(f"{rows:,} events", output)
        return
    assert lake is not None
    if not lake.parent.is_dir():
        raise BadOption(f"--lake: folder '{lake.parent}' does not exist")
    with ui.row_progress() as advance:
        counts = export.write_lake(_ws(ctx), lake, lambda _table, n: advance(n))
    _wrote(", ".join(f"{n:,} {table}" for table, n in counts.items()), lake)


@export_app.command("mermaid")
def export_mermaid(
    ctx: typer.Context,
    output: StdoutOpt = None,
    journey: JourneyOpt = None,
    measured: Annotated[
        bool,
        typer.Option("--measured", help="Score touchpoints by their measured CSAT where they have one."),
    ] = False,
) -> None:
    """The map's journey as a Mermaid `journey` diagram: a section per stage, a task per touchpoint, scored 1–5
    from the stage's designed emotion (or, with --measured, the touchpoint's CSAT)."""
    from touchlens.report.mermaid import mermaid

    ws = _ws(ctx)
    csat = {r.key: r.csat.value for r in ws.feedback().rows} if measured else None
    text = mermaid(ws.map(), journey, csat)
    if output is None:
        sys.stdout.write(text)
    else:
        _target(output).write_text(text, encoding="utf-8")
        _wrote("the Mermaid diagram", output)
