"""`touchlens keys …`, `touchlens forget …` and `touchlens audit`: write keys, erasure and the audit log."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `touchlens` command."""
