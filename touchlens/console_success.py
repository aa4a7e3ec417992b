"""Success statements as a terminal table: each statement, its status, value against threshold, failing
touchpoints by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from touchlens.console import text
from touchlens.insights.success import STATUS_WORDS

STATUS_STYLES = {"met": "green", "not_met": "red", "unknown": "yellow", "not_measurable": "dim"}


def success_table(statements: Sequence[dict[str, Any]]) -> Table:
    """One row per statement, from `SuccessStatus.to_dict()` rows."""
    table = Table(title="CX success statements", title_justify="left", show_lines=True)
    table.add_column("statement", ratio=3)
    table.add_column("status")
    table.add_column("value", ratio=2)
    table.add_column("failing touchpoints", ratio=2)
    for s in statements:
        style = STATUS_STYLES[s["status"]]
        failing = ", ".join(text(f["name"]) for f in s["failing"]) or "–"
        if s["status"] == "not_measurable":
            value = f"[dim]{text(s['reason'].removeprefix('not measurable: '))}[/]"
        else:
            value = f"{text(s['summary'])}\n[dim]{text(s['reason'])}[/]"
        table.add_row(text(s["text"]), f"[{style}]{STATUS_WORDS[s['status']]}[/]", value, failing)
    if not statements:
        table.add_row("The map has no success statements (`success:` in the map).", "", "", "")
    return table
