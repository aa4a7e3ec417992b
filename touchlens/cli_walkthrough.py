"""`touchlens walkthrough …`: audits of a journey walked touchpoint by touchpoint, as a customer would."""

from __future__ import annotations

from typing import Annotated, Any

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


@walkthrough_app.command("compare")
def walkthrough_compare(
    ctx: typer.Context,
    journey: Annotated[str, typer.Argument(help="The journey's key in the map.")],
    as_json: JsonOpt = False,
) -> None:
    """The journey's walkthroughs side by side, oldest first: each touchpoint's answers, the annoyances (the map's
    and those seen) against the themes of its comments, and each stage's emotion per walkthrough."""
    found = _ws(ctx).audits.compare(journey)
    if as_json:
        ui.print_json(found)
        return
    heads = [f"#{a['id']} {a['auditor']} {a['created_at'][:10]}" for a in found["audits"]]
    table = Table("touchpoint", *map(ui.text, heads), title=f"Walkthroughs of {ui.text(found['name'])}")
    for t in found["touchpoints"]:
        table.add_row(ui.text(t["name"]), *(_cell(c) for c in t["cells"]))
    ui.out.print(table)
    stages = Table("stage", "designed", *map(ui.text, heads), title="Emotion per stage (−2 to 2)")
    for s in found["stages"]:
        stages.add_row(ui.text(s["name"]), _emotion(s["designed"]), *map(_emotion, s["audited"]))
    ui.out.print(stages)
    ui.out.print(_heard(found["touchpoints"]))


def _cell(c: dict[str, Any]) -> str:
    if not c["walked"]:
        return "—"
    met = {True: "met", False: "NOT met", None: "not sure"}[c["met"]]
    return f"{met}, {_emotion(c['emotion'])}" + (f"\n{ui.text(c['annoyances'])}" if c["annoyances"] else "")


def _emotion(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}".replace("+0.0", "0")


def _heard(touchpoints: list[dict[str, Any]]) -> Table:
    table = Table(
        "touchpoint", "annoyance", "written by", "in the comments", title="Annoyances against what customers say"
    )
    for t in touchpoints:
        for h in t["heard"]:
            said = (
                f"theme “{ui.text(h['theme'])}” ({h['comments']:,} comments)" if h["theme"] else "not heard in comments"
            )
            table.add_row(ui.text(t["name"]), ui.text(h["annoyance"]), ui.text(h["source"]), said)
        for u in t["unlisted"]:
            table.add_row(ui.text(t["name"]), "—", "—", f"theme “{ui.text(u['theme'])}” ({u['comments']:,} comments): "
                          "customers complain, no annoyance names it")  # fmt: skip
    return table
