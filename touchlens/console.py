"""Rich rendering for the command line: tables for people, JSON and CSV for machines."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from touchlens.model.checks import Finding
from touchlens.model.map import Touchpoint, TouchpointMap
from touchlens.model.views import Matrix


def _width() -> int | None:
    # Piped output keeps whole rows instead of wrapping at 80 columns; COLUMNS still wins.
    return None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200


out = Console(width=_width(), highlight=False)
err = Console(stderr=True, highlight=False)


def text(value: Any) -> str:
    """User text is data, never Rich markup."""
    return escape("" if value is None else str(getattr(value, "value", value)))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def print_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else getattr(v, "value", v) for v in row] for row in rows)
    sys.stdout.write(buf.getvalue())


INVENTORY_COLUMNS = ("key", "name", "stage", "channel", "phase", "initiative", "directness", "owner")


def inventory_rows(touchpoints: Iterable[Touchpoint]) -> list[list[Any]]:
    return [[getattr(tp, col) for col in INVENTORY_COLUMNS] for tp in touchpoints]


def inventory_table(m: TouchpointMap, touchpoints: list[Touchpoint]) -> Table:
    table = Table(title=f"{text(m.name)} — {len(touchpoints)} touchpoints", title_justify="left")
    for col in INVENTORY_COLUMNS:
        table.add_column(col, overflow="fold")
    for row in inventory_rows(touchpoints):
        table.add_row(*(text(v) for v in row))
    return table


_CELL_STYLE = {"served": "green", "off_plan": "yellow", "gap": "red", "empty": "dim"}


def matrix_table(m: TouchpointMap, mx: Matrix) -> Table:
    """Stages down, channels across; planned-but-empty cells show as gaps."""
    table = Table(title="Touchpoints by stage × channel", title_justify="left", show_lines=True)
    table.add_column("stage", style="bold")
    for channel in mx.channels:
        ch = m.channel(channel)
        table.add_column(text(channel) + (f"\n({text(ch.kind)})" if ch and ch.kind else ""), overflow="fold")
    for stage in mx.stages:
        cells = []
        for channel in mx.channels:
            cell = mx.cell(stage, channel)
            body = "\n".join(text(k) for k in cell.touchpoints) or ("planned, none" if cell.planned else "·")
            if cell.status == "off_plan":
                body += "\n(off plan)"
            cells.append(f"[{_CELL_STYLE[cell.status]}]{body}[/]")
        table.add_row(text(stage), *cells)
    table.caption = (
        "green: served as planned · yellow (off plan): served where the channel strategy plans no presence · "
        "red (planned, none): the strategy plans this channel here but no touchpoint exists · ·: none"
    )
    return table


def findings_table(findings: list[Finding]) -> Table:
    table = Table(title=f"Design checks — {len(findings)} to look at", title_justify="left")
    for col in ("check", "subject", "message"):
        table.add_column(col, overflow="fold")
    for f in findings:
        table.add_row(text(f.check), text(f.subject), text(f.message))
    return table


def counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("section")
    table.add_column("items", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    return table
