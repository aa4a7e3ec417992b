"""`touchlens survey …`: signed links that ask a customer about one touchpoint, for e-mail, SMS and QR codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from touchlens import console as ui
from touchlens.cli_common import CsvOpt, JsonOpt
from touchlens.cli_common import ws_of as _ws

survey_app = typer.Typer(
    help="Ask at the touchpoint: signed survey links (one answer each), mail-merge lists and QR codes.",
    no_args_is_help=True,
)
TouchpointArg = Annotated[str, typer.Argument(help="The touchpoint's key (as in `touchlens touchpoints`).")]
MetricOpt = Annotated[
    str | None, typer.Option(help="csat, nps or ces; default: the touchpoint's survey in the map, else csat.")
]
DaysOpt = Annotated[int | None, typer.Option(help="Days the link can be answered (default [surveys] link_days).")]


@survey_app.command("link")
def survey_link(
    ctx: typer.Context,
    touchpoint: TouchpointArg,
    customer: Annotated[
        str | None, typer.Option(help="The customer's id as your systems know it; none: an open link.")
    ] = None,
    metric: MetricOpt = None,
    days: DaysOpt = None,
) -> None:
    """Print a new signed link: answered once, then refused; add `?score=N` for a one-click rating."""
    ui.out.print(_ws(ctx).surveys.link(touchpoint, customer, metric=_metric(metric), days=days), soft_wrap=True)


@survey_app.command("links")
def survey_links(
    ctx: typer.Context,
    touchpoint: TouchpointArg,
    customers: Annotated[
        Path | None, typer.Option(help="CSV of the customers to ask, with a header; ids in --id-column.")
    ] = None,
    id_column: Annotated[str, typer.Option(help="The column of --customers holding the ids.")] = "customer_id",
    since: Annotated[
        str | None, typer.Option(help="Instead of --customers: everyone who met the touchpoint in this long (7d).")
    ] = None,
    metric: MetricOpt = None,
    days: DaysOpt = None,
    as_csv: CsvOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """One link per customer, for a mail-merge: customer_id,link."""
    ws = _ws(ctx)
    rows = ws.surveys.links_for(touchpoint, customers, id_column, since, metric=_metric(metric), days=days)
    if as_json:
        ui.print_json([{"customer_id": c, "link": link} for c, link in rows])
    elif as_csv:
        ui.print_csv(("customer_id", "link"), rows)
    else:
        for customer, link in rows:
            ui.out.print(f"{ui.text(customer)}  {link}", soft_wrap=True)
        ui.err.print(f"{len(rows)} links")


@survey_app.command("qr")
def survey_qr(
    ctx: typer.Context,
    touchpoint: TouchpointArg,
    out: Annotated[Path, typer.Option("-o", "--output", help="The file to write: .png or .svg.")],
    customer: Annotated[
        str | None, typer.Option(help="A customer's own code (a receipt); none: an open code (a poster).")
    ] = None,
) -> None:
    """Write a QR code of a new link, for an offline touchpoint."""
    path = _ws(ctx).surveys.qr(touchpoint, out, customer)
    ui.err.print(f"wrote {ui.text(path)}")


def _metric(value: str | None) -> str | None:
    return value.lower() if value else None
