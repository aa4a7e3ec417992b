"""Render the terminal screenshots in docs/img from the bundled example map."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console

import touchlens
from touchlens import console as ui

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = touchlens.init(tmp)
        ws.import_map(ROOT / "examples" / "outdoor_retail.yaml")
        m = ws.map()
        shots = {
            "matrix.svg": ui.matrix_table(m, ws.matrix()),
            "inventory.svg": ui.inventory_table(m, ws.touchpoints()[:14]),
        }
        for name, table in shots.items():
            console = Console(record=True, width=170, file=open("/dev/null", "w"))  # noqa: SIM115
            console.print(table)
            console.save_svg(str(ROOT / "docs" / "img" / name), title=f"touchlens — {name[:-4]}")


if __name__ == "__main__":
    main()
