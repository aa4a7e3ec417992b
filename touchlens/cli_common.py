"""What every command module of the CLI shares: output options and opening the workspace."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import RenderableType

import touchlens
from touchlens import console as ui
from touchlens.locate import ENV_VAR

if TYPE_CHECKING:  # the facade loads the engine: a command opens it when it runs, not when the CLI starts
    from touchlens.api import Workspace

WORKSPACE_ENV = ENV_VAR  # the option's environment variable, found without loading the store
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]


# The open workspace of the server a command runs in (cli_host), which every command then uses.
hosted: Workspace | None = None


def ws_of(ctx: typer.Context) -> Workspace:
    """The workspace named by --workspace (kept on the root context), the environment, or found upward."""
    return hosted if hosted is not None else touchlens.open(ctx.find_root().obj)


def show(
    data: Any,
    as_json: bool,
    as_csv: bool,
    records: Callable[[Any], list[dict[str, Any]]],
    table: Callable[[Any], RenderableType],
) -> None:
    """One result three ways: JSON (the documented shape), CSV (its main rows), or a Rich table."""
    if as_json:
        ui.print_json(data)
    elif as_csv:
        ui.print_records(records(data))
    else:
        ui.out.print(table(data))
