"""`touchlens design …`: proactive touchpoints from the map, replayed on the stored history."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from touchlens import console as ui
from touchlens.cli_common import JsonOpt
from touchlens.cli_common import ws_of as _ws

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
        table.add_row(ui.text(e.outcome), _rate(e.rate_with, e.with_contact), _rate(e.rate_without, e.without_contact),
                      _difference(e.difference, e.low, e.high), ui.text(e.verdict))  # fmt: skip
    if sim.effects:
        ui.out.print(table)
    else:
        ui.out.print("No similar contact in history to learn the effect from (give the rule a `touchpoint`).")


def _difference(d: float | None, low: float | None, high: float | None) -> str:
    if d is None or low is None or high is None:
        return "—"
    return f"{d * 100:+.1f} ({low * 100:+.1f} to {high * 100:+.1f}) points"


def _rate(rate: float | None, n: int) -> str:
    return "—" if rate is None else f"{rate:.0%} of {n:,}"


@design_app.command("run")
def design_run(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Run the map's proactive rules once now (what `touchlens serve` does every [proactive] check_seconds): hand
    each due contact to [proactive] webhook, once, and withhold the holdout's."""
    results = _ws(ctx).contacts.run()
    if as_json:
        ui.print_json([r.to_dict() for r in results])
        return
    for r in results:
        ui.out.print(f"{r.rule}: {r.sent} sent, {r.held_out} held out, {r.failed} not accepted (tried again next run)")


@design_app.command("measure")
def design_measure(
    ctx: typer.Context,
    rule: Annotated[str, typer.Argument(help="The rule's key in the map's `proactive:` section.")],
    as_json: JsonOpt = False,
) -> None:
    """A running rule's effect on each outcome: customers contacted against its holdout (randomised)."""
    ws = _ws(ctx)
    effects = ws.contacts.measure(rule)
    if as_json:
        ui.print_json(
            {"rule": rule, "contacts": len(ws.contacts.list(rule)), "effects": [e.to_dict() for e in effects]}
        )
        return
    table = Table("outcome", "contacted", "held out", "difference (95%)", "verdict")
    for e in effects:
        table.add_row(ui.text(e.outcome), _rate(e.rate_with, e.with_contact), _rate(e.rate_without, e.without_contact),
                      _difference(e.difference, e.low, e.high), ui.text(e.verdict))  # fmt: skip
    ui.out.print(table)
