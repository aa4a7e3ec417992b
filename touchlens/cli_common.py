"""What every command module of the CLI shares: output options and opening the workspace."""

from __future__ import annotations

from typing import Annotated

import typer

import touchlens
from touchlens.api import Workspace

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]


def ws_of(ctx: typer.Context) -> Workspace:
    """The workspace named by --workspace (kept on the root context), the environment, or found upward."""
    return touchlens.open(ctx.find_root().obj)
