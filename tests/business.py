"""A generated business for judgment tests: Crate & Kettle's map and data ingested into a fresh workspace.

`business(tmp)` returns the workspace and its truths (`truths.json` as a dict); `planted=False` gives the null
twin, the same world with every planted effect off. Built through the library, as a user's script would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import touchlens
from touchlens.demo_subscription import write_subscription_files


def business(
    tmp: Path, seed: int = 7, customers: int = 3000, planted: bool = True
) -> tuple[touchlens.Workspace, dict[str, Any]]:
    """A workspace at `tmp/workspace` holding the subscription map and generated data, and the truths."""
    files = write_subscription_files(tmp / "data", customers=customers, seed=seed, planted=planted)
    ws = touchlens.init(tmp / "workspace")
    ws.import_map(files.map)
    ws.ingest_customers(files.customers)
    ws.ingest_events([files.events])
    ws.ingest_feedback([files.feedback])
    truths: dict[str, Any] = json.loads(files.truths.read_text(encoding="utf-8"))
    return ws, truths
