"""`touchlens walkthrough …`: audits of a journey walked touchpoint by touchpoint, as a customer would."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from touchlens import console as ui
from touchlens.cli_common import JsonOpt
from touchlens.cli_common import ws_of as _ws
from touchlens.cli_privacy import cli_actor

walkthrough_app = typer.Typer(
    help="Walkthrough audits: walk a journey as a customer would and record each touchpoint.", no_args_is_help=True
)


@walkthrough_app.command("start")
def walkthrough_start(
    ctx: typer.Context,
    journey: Annotated[str, typer.Argument(help="The journey's key in the map.")],
    auditor: Annotated[str, typer.Option(help="Who walks it (an outsider is fine).")],
) -> None:
    """Start a walkthrough and print the link that walks it (and nothing else)."""
    audit_id, link = _ws(ctx).audits.start(journey, auditor, actor=cli_actor())
    ui.out.print(link, soft_wrap=True)
    ui.err.print(f"walkthrough {audit_id} of {ui.text(journey)} for {ui.text(auditor)}")


@walkthrough_app.command("list")
def walkthrough_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every walkthrough: journey, auditor, started, finished."""
    found = _ws(ctx).audits.list()
    if as_json:
        ui.print_json(found)
        return
    table = Table("#", "journey", "auditor", "started", "finished")
    for a in found:
        finished = f"{a['finished_at']:%Y-%m-%d %H:%M}" if a["finished_at"] else "not yet"
        table.add_row(str(a["id"]), ui.text(a["journey"]), ui.text(a["auditor"]), f"{a['created_at']:%Y-%m-%d %H:%M}",
                      finished)  # fmt: skip
    ui.out.print(table)


@walkthrough_app.command("export")
def walkthrough_export(ctx: typer.Context) -> None:
    """Every walkthrough with its steps, as JSON, for the record."""
    ui.print_json(_ws(ctx).audits.export())
