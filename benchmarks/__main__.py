"""Run every benchmark, print one table, and write benchmarks/results/*.json."""

from __future__ import annotations

import importlib
import sys

from rich.console import Console
from rich.table import Table

BENCHMARKS = [
    "startup", "mapfile", "ingest", "journeys", "layer", "attribution", "text", "web", "first_load", "page_cache",
    "load", "flood", "live_pages",
]  # fmt: skip


def main(names: list[str]) -> None:
    console = Console(width=160)
    for name in names or BENCHMARKS:
        rows = importlib.import_module(f"benchmarks.{name}").run()
        table = Table(title=f"benchmark: {name}", title_justify="left")
        for column in rows[0]:
            table.add_column(column, justify="left" if column in ("task", "peer") else "right")
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
    console.print("results written to benchmarks/results/")


if __name__ == "__main__":
    main(sys.argv[1:])
