"""`touchlens keys …` and `touchlens forget …`: write keys for live ingestion, and erasure on request."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from touchlens import console as ui
from touchlens.cli_common import JsonOpt
from touchlens.cli_common import ws_of as _ws
from touchlens.errors import TouchlensError

keys_app = typer.Typer(help="Write keys for the live ingestion endpoint (/v1): they send events, read nothing.")


def cli_actor() -> str:
    """Who did it, for the audit log: the operating-system user at the command line."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli:unknown"


@keys_app.command("add")
def keys_add(
    ctx: typer.Context,
    scope: Annotated[str, typer.Option(help="What the key may do: ingest (send events to /v1).")] = "ingest",
    label: Annotated[str, typer.Option(help="What the key is for (e.g. the sending pipeline).")] = "",
    source: Annotated[
        str, typer.Option(help="Source name its events are stored under (dedupe on messageId is per source).")
    ] = "live",
) -> None:
    """Create a write key (shown once): Segment-style Basic auth with the key as user name, or Bearer KEY."""
    key_id, key = _ws(ctx).keys.create(scope, label, source, actor=cli_actor())
    ui.out.print(key, soft_wrap=True)
    ui.err.print(f"key {key_id} ({scope}, source {ui.text(source)}): keep it secret; it is not shown again")


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every write key (never the key itself): id, scope, label, source, who made it, revoked or not."""
    found = _ws(ctx).keys.list()
    if as_json:
        ui.print_json([k.__dict__ for k in found])
        return
    table = Table("id", "scope", "label", "source", "created by", "created", "revoked")
    for k in found:
        table.add_row(
            str(k.id),
            k.scope,
            ui.text(k.label),
            ui.text(k.source),
            ui.text(k.created_by),
            k.created_at,
            "yes" if k.revoked else "",
        )
    ui.out.print(table)


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: Annotated[int, typer.Argument(help="The key's id (keys list).")]) -> None:
    """Stop a write key from working (within ten seconds on a running server)."""
    if not _ws(ctx).keys.revoke(key_id, actor=cli_actor()):
        raise TouchlensError(f"no live write key with id {key_id}")
    ui.err.print(f"revoked key {key_id}")


def forget(
    ctx: typer.Context,
    customer_ids: Annotated[list[str], typer.Argument(help="The customers' ids, as your systems know them.")],
    keep_sending: Annotated[
        bool, typer.Option("--no-suppress", help="Erase now but let later events for them in.")
    ] = False,
    lift: Annotated[bool, typer.Option("--lift", help="Lift an earlier erasure's suppression instead.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Erase customers from events, feedback, customers and quarantine; record it; drop their later events.

    With pseudonymisation on, give the real ids: they are turned into the stored pseudonyms. While `touchlens
    serve` runs, the command runs in the server (as DELETE /api/customers/{id} does).
    """
    ws = _ws(ctx)
    if lift:
        lifted = ws.lift_suppression(customer_ids, actor=cli_actor())
        result: list[dict[str, object]] = [
            {"customer": c, "lifted": done} for c, done in zip(customer_ids, lifted, strict=True)
        ]
        lines = [
            f"{'lifted' if done else 'no suppression for'} {c}" for c, done in zip(customer_ids, lifted, strict=True)
        ]
    else:
        counts = ws.forget(customer_ids, actor=cli_actor(), suppress=not keep_sending)
        result = [
            {"customer": c, "rows": n, "suppressed": not keep_sending}
            for c, n in zip(customer_ids, counts, strict=True)
        ]
        lines = [
            f"erased {c}: " + ", ".join(f"{table} {rows}" for table, rows in n.items())
            for c, n in zip(customer_ids, counts, strict=True)
        ]
    if as_json:
        ui.print_json(result)
        return
    for line in lines:
        ui.out.print(ui.text(line), soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `touchlens` command."""
    app.add_typer(keys_app, name="keys", no_args_is_help=True)
    app.command("forget")(forget)
