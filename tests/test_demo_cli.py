"""`touchlens demo` builds a workspace whose ingested counts agree with the truths it planted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import touchlens


@pytest.mark.slow
def test_demo_builds_a_workspace_with_truths_and_exact_unmapped_counts(cli, tmp_path: Path) -> None:
    ws = tmp_path / "demo"
    result = cli("-w", ws, "demo", "--no-serve", "--customers", "300", "--seed", "3", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    truths = json.loads((ws / "truths.json").read_text())
    lines = Path(report["files"]["events"]).read_text().splitlines()
    assert report["events"]["accepted"] == len(lines)
    label = next(t for t in truths["truths"] if t["id"] == "unmapped_return_label")
    noise = sum(n["events"] for n in truths["noise"])
    assert report["events"]["unmapped"] == label["events"] + noise
    with touchlens.open(ws).events(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events WHERE event = 'return_label_created'").fetchone() == (
            label["events"],
        )
        assert con.execute("SELECT count(*) FROM customers WHERE persona IS NOT NULL").fetchone()[0] > 0
    again = cli("-w", ws, "demo", "--no-serve", "--customers", "300", "--seed", "3", "--json")
    assert json.loads(again.out)["events"]["accepted"] == len(lines)  # rebuilt clean, not doubled


def test_demo_refuses_a_folder_that_is_not_a_demo(cli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = cli("-w", tmp_path, "demo", "--no-serve", "--customers", "10")
    assert result.code == 1
    assert "not empty and not a demo workspace" in result.err
    assert (tmp_path / "notes.txt").read_text() == "mine"
