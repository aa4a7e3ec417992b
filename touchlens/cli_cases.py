"""`touchlens cases …`: follow-up cases opened by low scores and negative comments, for the touchpoints' owners."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from touchlens import console as ui
from touchlens.cli_common import JsonOpt
from touchlens.cli_common import ws_of as _ws
from touchlens.errors import BadOption

if TYPE_CHECKING:
    from touchlens.cases import Case

cases_app = typer.Typer(
    help="Follow up with unhappy customers: cases opened by low scores and negative comments.", no_args_is_help=True
)
CaseArg = Annotated[int, typer.Argument(help="The case's number (cases list).")]


@cases_app.command("list")
def cases_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="open (open or in progress), in_progress, closed or all.")] = "open",
    touchpoint: Annotated[str | None, typer.Option(help="Only this touchpoint's cases.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cases, newest first, with whose they are and when they are due."""
    found = _ws(ctx).cases.list(status, touchpoint)
    if as_json:
        ui.print_json([c.to_dict() for c in found])
        return
    if not found:
        ui.err.print(f"no {'' if status == 'all' else status + ' '}cases")
        return
    now = datetime.now(UTC)
    table = Table("#", "touchpoint", "customer", "why", "owner", "assignee", "status", "due")
    for c in found:
        due = c.due.date().isoformat() + (" (overdue)" if c.overdue(now) else "")
        table.add_row(str(c.id), ui.text(c.touchpoint), ui.text(c.customer_id), ui.text(c.reason),
                      ui.text(c.owner), ui.text(c.assignee), c.status, due)  # fmt: skip
    ui.out.print(table)


@cases_app.command("show")
def cases_show(ctx: typer.Context, case_id: CaseArg, as_json: JsonOpt = False) -> None:
    """One case: what the customer said, their journey before it, and what was done."""
    case = _ws(ctx).cases.show(case_id)
    if as_json:
        ui.print_json(case.to_dict())
        return
    _print_case(case)


@cases_app.command("assign")
def cases_assign(
    ctx: typer.Context,
    case_id: CaseArg,
    assignee: Annotated[str, typer.Argument(help="Who takes it (a name or a team).")],
    due: Annotated[str | None, typer.Option(help="A new due date, YYYY-MM-DD.")] = None,
) -> None:
    """Give a case to someone; it is in progress from then."""
    case = _ws(ctx).cases.assign(case_id, assignee, _day(due))
    ui.err.print(f"case {case.id}: {ui.text(case.assignee)}, due {case.due:%Y-%m-%d}")


@cases_app.command("close")
def cases_close(
    ctx: typer.Context,
    case_id: CaseArg,
    note: Annotated[str, typer.Option(help="What was done (required).")],
) -> None:
    """Close a case with a note saying what was done."""
    case = _ws(ctx).cases.close(case_id, note)
    ui.err.print(f"case {case.id} closed")


@cases_app.command("stats")
def cases_stats(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Per touchpoint: cases, time to first action and to close, and followed-up customers who came back."""
    found = _ws(ctx).cases.stats()
    if as_json:
        ui.print_json([f.to_dict() for f in found])
        return
    if not found:
        ui.err.print("no cases yet")
        return
    table = Table("touchpoint", "cases", "open", "closed", "h to act", "h to close", "came back")
    for f in found:
        back = "—" if f.came_back_share is None else f"{f.came_back} of {f.closed} ({f.came_back_share:.0%})"
        table.add_row(ui.text(f.touchpoint), str(f.opened), str(f.open_now), str(f.closed),
                      _hours(f.hours_to_first_action), _hours(f.hours_to_close), back)  # fmt: skip
    ui.out.print(table)


def _print_case(case: Case) -> None:
    ui.out.print(f"case {case.id} · {case.status} · {ui.text(case.touchpoint)} · {ui.text(case.customer_id)}")
    who = f"owner {ui.text(case.owner or '-')} · assignee {ui.text(case.assignee or '-')}"
    ui.out.print(f"{who} · due {case.due:%Y-%m-%d}")
    ui.out.print(f"{ui.text(case.reason)}: {ui.text(case.comment or '(no comment)')}")
    ui.out.print("their journey before they answered, latest first:")
    for e in case.journey:
        ui.out.print(f"  {e['ts']:%Y-%m-%d %H:%M}  {ui.text(e['touchpoint'] or '-')}  {ui.text(e['event'])}")
    ui.out.print("what they said, latest first:")
    for a in case.answers:
        said = f"{a['metric']} {a['score']:g}" + (f": {a['comment']}" if a["comment"] else "")
        ui.out.print(f"  {a['ts']:%Y-%m-%d %H:%M}  {ui.text(a['touchpoint'] or '-')}  {ui.text(said)}")
    if case.note:
        ui.out.print(f"closed: {ui.text(case.note)}")


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _day(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), time(23, 59), UTC)
    except ValueError as exc:
        raise BadOption(f"--due: '{text}' is not a date (YYYY-MM-DD)") from exc
