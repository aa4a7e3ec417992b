"""Shared fixtures: a fresh workspace, and the CLI run in-process with its exit code and output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import touchlens
from touchlens.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def fresh_workspace(tmp_path: Path) -> touchlens.Workspace:
    return touchlens.init(tmp_path / "ws")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `touchlens ARGS…` in this process, as a user would from a shell."""
    monkeypatch.delenv("TOUCHLENS_WORKSPACE", raising=False)

    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["touchlens", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def workspace_with(cli: Callable[..., Result], tmp_path: Path, map_text: str, events_csv: str | None = None) -> Path:
    """A workspace holding `map_text` (YAML) and, if given, events from CSV text (header row included)."""
    ws = tmp_path / "ws"
    assert cli("init", ws).code == 0
    assert cli("-w", ws, "map", "import", write(tmp_path / "m.yaml", map_text)).code == 0
    if events_csv is not None:
        result = cli("-w", ws, "ingest", "events", write(tmp_path / "e.csv", events_csv))
        assert result.code == 0, result.err
    return ws
