"""The demo workspace: an example map (retail or subscription) plus simulated data with planted truths, ingested."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from touchlens.admin import LIBRARY
from touchlens.api import Workspace, init
from touchlens.errors import BadOption, WorkspaceError
from touchlens.ingest.pipeline import IngestReport

if TYPE_CHECKING:
    from touchlens.demo import DemoFiles

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_MARKER = ".touchlens-demo"


@dataclass
class DemoReport:
    """What `build_demo` made: the workspace, the data files, and what their ingestion counted."""

    workspace: Workspace
    files: dict[str, str]
    events: IngestReport
    feedback: IngestReport
    customers: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace.root),
            "files": self.files,
            "truths": str(self.workspace.root / "truths.json"),
            "events": self.events.to_dict(),
            "feedback": self.feedback.to_dict(),
            "customers": self.customers,
        }


BUSINESSES = {"retail": "outdoor_retail.yaml", "subscription": "subscription_box.yaml"}  # demo → its example map


def _writer(business: str) -> Callable[..., DemoFiles]:
    """The data generator of a demo business (imported when used, as before: the generators are sizeable)."""
    from touchlens.demo import write_demo_files
    from touchlens.demo_subscription import write_subscription_files

    return {"retail": write_demo_files, "subscription": write_subscription_files}[business]


def build_demo(
    path: str | os.PathLike[str],
    customers: int = 5000,
    seed: int = 7,
    planted: bool = True,
    business: str = "retail",
    *,
    actor: str = LIBRARY,
) -> DemoReport:
    """A workspace with an example map (`business`: the outdoor retailer or the coffee subscription) and
    realistic data with planted truths (`truths.json`); the import and the ingests are audited as `actor`'s.

    Refuses a folder that holds anything but an earlier demo, so it never overwrites a real workspace.
    """
    if business not in BUSINESSES:
        raise BadOption(f"unknown demo business '{business}'; businesses are: {', '.join(BUSINESSES)}")
    root = Path(path).expanduser().resolve()
    if root.exists() and any(root.iterdir()) and not (root / DEMO_MARKER).exists():
        raise WorkspaceError(f"{root} is not empty and not a demo workspace; choose another folder")
    example = EXAMPLES / BUSINESSES[business]
    if not example.is_file():
        raise WorkspaceError(f"the example map is missing: {example} (run from a source checkout)")
    _reset_demo(root)
    ws = init(root)
    (root / DEMO_MARKER).write_text("made by touchlens demo; safe to delete\n", encoding="utf-8")
    ws.import_map(example, actor=actor)
    files = _writer(business)(root / "demo-data", customers=customers, seed=seed, planted=planted)
    (root / "truths.json").write_bytes(files.truths.read_bytes())
    people = ws.ingest_customers(files.customers, actor=actor)
    events = ws.ingest_events([files.events], actor=actor)
    feedback = ws.ingest_feedback([files.feedback], actor=actor)
    names = {"events": files.events, "feedback": files.feedback, "customers": files.customers}
    return DemoReport(ws, {k: str(v) for k, v in names.items()}, events, feedback, people)


def _reset_demo(root: Path) -> None:
    """Remove an earlier demo's stores so a new seed or size starts clean."""
    for name in ("events.duckdb", "events.duckdb.wal", "touchlens.db"):
        (root / name).unlink(missing_ok=True)
