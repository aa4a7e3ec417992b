"""`touchlens backup` and `touchlens restore`: a whole workspace into one file and back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from touchlens import console as ui
from touchlens.cli_common import JsonOpt, ws_of
from touchlens.cli_privacy import cli_actor

if TYPE_CHECKING:
    from touchlens.admin import Summary


def _report(verb: str, summary: Summary, as_json: bool) -> None:
    if as_json:
        ui.print_json(summary.to_dict())
        return
    rows = sum(summary.metadata.values())
    events = sum(summary.events.values())
    ui.err.print(
        f"{verb} {ui.text(summary.workspace)} ({ui.text(summary.file)}): {rows} metadata rows in "
        f"{len(summary.metadata)} tables at revision {ui.text(summary.revision)}, {events:,} rows in the events store",
        soft_wrap=True,
    )


def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The backup file to write (.tar.gz); it must not exist yet.")],
    as_json: JsonOpt = False,
) -> None:
    """Back up the whole workspace into one file: its settings, the events store and the metadata store.

    The events store is copied as of one moment (while `touchlens serve` runs, through the server). The metadata
    goes in table by table, so the backup restores onto SQLite or PostgreSQL alike. The file holds password and
    token hashes and touchlens.toml (with any secret in it): keep it as safe as the workspace.
    """
    summary = ws_of(ctx).backup.create(file, actor=cli_actor())
    _report("backed up", summary, as_json)


def restore(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The backup file (from touchlens backup).")],
    into: Annotated[
        Path | None,
        typer.Option(help="Restore into this folder: a new or empty one, or a workspace (default: this workspace)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the data a workspace already holds (refused without it).")
    ] = False,
    meta_url: Annotated[
        str | None,
        typer.Option(help="Put the metadata store here (a SQLAlchemy URL), written into the restored settings."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into a new folder (--into DIR) or over a workspace, all or nothing.

    A new folder gets the backup's touchlens.toml; a workspace keeps its own, so its stores stay where they are.
    A workspace or database that holds data already is replaced only with --force. A backup from a newer
    touchlens (a newer metadata schema) is refused; an older one is upgraded as it is restored.
    """
    root = into if into is not None else ws_of(ctx).root
    from touchlens.admin import restore as restore_backup

    summary = restore_backup(file, root, force=force, meta_url=meta_url, actor=cli_actor())
    _report("restored", summary, as_json)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `touchlens` command."""
    app.command("backup")(backup)
    app.command("restore")(restore)
