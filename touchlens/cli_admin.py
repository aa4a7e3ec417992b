"""`touchlens backup` and `touchlens restore`: a whole workspace into one file and back."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `touchlens` command."""
