"""`touchlens alerts …`: rules that tell a touchpoint's owner when something goes wrong, by webhook and e-mail."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from touchlens import console as ui
from touchlens.cli_common import JsonOpt
from touchlens.cli_common import ws_of as _ws
from touchlens.cli_privacy import cli_actor
from touchlens.errors import TouchlensError

alerts_app = typer.Typer(
    help="Alert rules on CSAT drops, health, anomalies, what is at stake, survey volume and case age; sent to a "
    "webhook and by e-mail.",
    no_args_is_help=True,
)
RuleArg = Annotated[int, typer.Argument(help="The rule's number (alerts list).")]


@alerts_app.command("add")
def alerts_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="What the rule is called in its alerts.")],
    kind: Annotated[str, typer.Option(help="csat_drop, health, anomaly, at_stake, survey_volume or case_age.")],
    scope: Annotated[str, typer.Option(help="all, stage:KEY or touchpoint:KEY.")] = "all",
    threshold: Annotated[
        float | None, typer.Option(help="csat_drop: points (10); survey_volume: answers (1); case_age: hours (48).")
    ] = None,
    window: Annotated[
        float | None, typer.Option(help="Hours the rule looks back: csat_drop and survey_volume (24).")
    ] = None,
    webhook: Annotated[str | None, typer.Option(help="A URL that takes Slack-compatible JSON.")] = None,
    email: Annotated[list[str] | None, typer.Option(help="An address to e-mail (repeat for more).")] = None,
    quiet: Annotated[str | None, typer.Option(help="Quiet hours, HH:MM-HH:MM: alerts wait, then one digest.")] = None,
    timezone: Annotated[str, typer.Option(help="The quiet hours' time zone (e.g. Europe/London).")] = "UTC",
) -> None:
    """Add a rule; prints its number."""
    rule = _ws(ctx).alerts.add(
        name, kind, scope, threshold=threshold, window_hours=window, webhook=webhook, emails=email or [],
        quiet=quiet, timezone=timezone, actor=cli_actor(),
    )  # fmt: skip
    ui.out.print(rule.id)
    ui.err.print(f"alert rule {rule.id} ({rule.kind}, {ui.text(rule.scope)}) added")


@alerts_app.command("list")
def alerts_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every rule: what it watches and where its alerts go."""
    rules = _ws(ctx).alerts.list()
    if as_json:
        ui.print_json([r.to_dict() for r in rules])
        return
    table = Table("#", "name", "kind", "scope", "threshold", "window h", "webhook", "e-mail", "quiet")
    for r in rules:
        quiet = f"{r.quiet} {r.timezone}" if r.quiet else ""
        threshold = "" if r.threshold is None else f"{r.threshold:g}"
        window = f"{r.window_hours:g}" if r.window_hours else "—"
        table.add_row(str(r.id), ui.text(r.name), r.kind, ui.text(r.scope), threshold, window,
                      ui.text(r.webhook or ""), ui.text(", ".join(r.emails)), quiet)  # fmt: skip
    ui.out.print(table)


@alerts_app.command("test")
def alerts_test(ctx: typer.Context, rule_id: RuleArg) -> None:
    """Send a test message through the rule's channels now; says what each channel answered."""
    outcomes = _ws(ctx).alerts.test(rule_id)
    for channel, outcome in outcomes.items():
        ui.out.print(f"{channel}: {ui.text(outcome)}")
    if "sent" not in outcomes.values():
        raise TouchlensError(f"alert rule {rule_id}: no channel took the test message")


@alerts_app.command("remove")
def alerts_remove(ctx: typer.Context, rule_id: RuleArg) -> None:
    """Remove a rule and its alerts."""
    _ws(ctx).alerts.remove(rule_id)
    ui.err.print(f"alert rule {rule_id} removed")


@alerts_app.command("check")
def alerts_check(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check every rule now (what `touchlens serve` and each ingest do): fire, clear and send what is due."""
    result = _ws(ctx).alerts.check()
    if as_json:
        ui.print_json(result.to_dict())
        return
    for line in result.fired:
        ui.out.print(f"fired: {ui.text(line)}")
    for line in result.cleared:
        ui.out.print(f"cleared: {ui.text(line)}")
    ui.err.print(f"{result.sent} messages sent, {result.waiting} alerts waiting")


@alerts_app.command("history")
def alerts_history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many of the latest alerts.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The latest alerts, newest first: when they fired, cleared and were sent, and how."""
    found = _ws(ctx).alerts.history(limit)
    if as_json:
        ui.print_json(found)
        return
    table = Table("fired", "rule", "subject", "message", "sent", "cleared")
    for a in found:
        table.add_row(_when(a["fired_at"]), ui.text(a["rule"]), ui.text(a["subject"]), ui.text(a["message"]),
                      _when(a["sent_at"]), _when(a["cleared_at"]))  # fmt: skip
    ui.out.print(table)


def _when(at: object) -> str:
    return "" if at is None else f"{at:%Y-%m-%d %H:%M}"
