"""`touchlens design …`: proactive touchpoints from the map, replayed on the stored history."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from touchlens import console as ui
from touchlens.cli_common import CsvOpt, JsonOpt, show
from touchlens.cli_common import ws_of as _ws
from touchlens.console_trends import effect_cells, holdout_table

design_app = typer.Typer(
    help="Design new touchpoints: proactive rules from the map (`proactive:`) replayed on history.",
    no_args_is_help=True,
)


@design_app.command("rules")
def design_rules(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The map's proactive rules."""
    rules = _ws(ctx).design.rules()
    if as_json:
        ui.print_json([r.model_dump(mode="json", exclude_none=True) for r in rules])
        return
    table = Table("key", "name", "after", "wait", "unless", "channel", "holdout")
    for r in rules:
        after = r.after.touchpoint or f"event {r.after.event}"
        unless = "" if r.unless is None else (r.unless.touchpoint or f"event {r.unless.event}")
        table.add_row(r.key, ui.text(r.label), ui.text(after), r.wait, ui.text(unless), ui.text(r.channel or ""),
                      f"{r.holdout:.0%}")  # fmt: skip
    ui.out.print(table)


@design_app.command("simulate")
def design_simulate(
    ctx: typer.Context,
    rule: Annotated[str, typer.Argument(help="The rule's key in the map's `proactive:` section.")],
    as_json: JsonOpt = False,
) -> None:
    """Replay a rule on the stored events: reach, sends, what the cap and the cancelling event stopped, overlaps,
    and the likely effect on each outcome from customers who got a similar contact by chance."""
    sim = _ws(ctx).design.simulate(rule)
    if as_json:
        ui.print_json(sim.to_dict())
        return
    r = sim.replay
    ui.out.print(
        f"{ui.text(sim.name)}: would have reached {r['customers']:,} customers with {r['sends']:,} contacts "
        f"({r['sends_per_customer']:.2f} each) from {r['triggers']:,} triggers; {r['cancelled']:,} cancelled by "
        f"the event that makes it needless, {r['capped']:,} stopped by the contact cap, {r['held_out']:,} held "
        f"out, {r['not_due']:,} not due yet, {r['moved_by_quiet_hours']:,} moved out of quiet hours."
    )
    if sim.overlaps:
        near = ", ".join(f"{ui.text(k)} {v:,}" for k, v in list(sim.overlaps.items())[:5])
        ui.out.print(f"Within a day of: {near}.")
    table = Table("outcome", "with a similar contact", "without", "difference (95%)", "verdict")
    for e in sim.effects:
        table.add_row(*effect_cells(e.to_dict()))
    if sim.effects:
        ui.out.print(table)
    else:
        ui.out.print("No similar contact in history to learn the effect from (give the rule a `touchpoint`).")


@design_app.command("run")
def design_run(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Run the map's proactive rules once now (what `touchlens serve` does every [proactive] check_seconds): hand
    each due contact to [proactive] webhook, once, and withhold the holdout's."""
    results = _ws(ctx).contacts.run()
    if as_json:
        ui.print_json([r.to_dict() for r in results])
        return
    for r in results:
        if _ws(ctx).settings.proactive.queue:
            ui.out.print(f"{r.rule}: {r.queued} queued for the messaging tool, {r.held_out} held out")
        else:
            ui.out.print(
                f"{r.rule}: {r.sent} sent, {r.held_out} held out, {r.failed} not accepted (tried again next run)"
            )


@design_app.command("queue")
def design_queue(
    ctx: typer.Context,
    rule: Annotated[str | None, typer.Option(help="Only this rule's contacts.")] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """The due contacts waiting for the messaging tool ([proactive] queue = true), oldest due first: import them
    there, then confirm the ones it sent (touchlens design confirm)."""
    rows = _ws(ctx).contacts.queue(rule)
    columns = ["contact_id", "rule", "customer_id", "channel", "touchpoint", "trigger_at", "due_at"]
    if as_csv:
        ui.print_records([{c: r[c] for c in columns} for r in rows], columns)
        return
    show(rows, as_json, False, lambda r: r, lambda r: ui.records_table("Queued contacts", r, columns))


@design_app.command("confirm")
def design_confirm(
    ctx: typer.Context,
    contact: Annotated[list[int] | None, typer.Argument(help="The contacts' numbers (design queue).")] = None,
    file: Annotated[
        Path | None,
        typer.Option(help="A CSV or JSON list from the messaging tool with contact_id and optionally sent_at."),
    ] = None,
    sent_at: Annotated[
        str | None, typer.Option(help="When the given contacts were sent (ISO 8601; default now).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record queued contacts as sent by the messaging tool: each becomes the touchpoint's event, at the time it
    was sent. Confirming a contact twice changes nothing."""
    from touchlens.contacts import read_confirmations

    at = _time("--sent-at", sent_at)
    sent = [(c, at) for c in contact or []] + (read_confirmations(file) if file else [])
    if not sent:
        raise typer.BadParameter("give the contacts' numbers or --file")
    result = _ws(ctx).contacts.confirm(sent)
    if as_json:
        ui.print_json(result.to_dict())
        return
    ui.out.print(f"{result.confirmed} confirmed as sent, {result.already} already confirmed or not queued")


def _time(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} takes an ISO 8601 time, not {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@design_app.command("measure")
def design_measure(
    ctx: typer.Context,
    rule: Annotated[str, typer.Argument(help="The rule's key in the map's `proactive:` section.")],
    as_json: JsonOpt = False,
) -> None:
    """A running rule's effect on each outcome: customers contacted against its holdout (randomised)."""
    found = _ws(ctx).contacts.holdout(rule)
    if as_json:
        ui.print_json(found.to_dict())
        return
    ui.out.print(holdout_table(found.to_dict()))
