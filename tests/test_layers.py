"""The import direction of docs/architecture.md, as `make lint` checks it (.importlinter): the contract holds on
the package as it is, and breaks when an upward import is planted in a copy of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT = Path(sys.executable).with_name("lint-imports")


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(where)}  # the copy, not the installed package, is what gets read
    return subprocess.run([str(LINT)], cwd=where, env=env, capture_output=True, text=True, timeout=300, check=False)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "touchlens", tmp_path / "touchlens", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_package_keeps_its_layers() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        ("model/durations.py", "import touchlens.api", "touchlens.model is not allowed to import touchlens.api"),
        ("store/meta.py", "import touchlens.analytics.flows", "touchlens.store is not allowed to import"),
        ("analytics/flows.py", "import touchlens.insights.items", "touchlens.analytics is not allowed to import"),
        ("insights/words.py", "import touchlens.web", "touchlens.insights is not allowed to import touchlens.web"),
    ],
)
def test_a_planted_upward_import_breaks_the_contract(tmp_path: Path, module: str, planted: str, broken: str) -> None:
    copy = _copy(tmp_path)
    with (copy / "touchlens" / module).open("a", encoding="utf-8") as f:
        f.write(f"\n{planted}  # planted by the test\n")
    result = _lint(copy)
    assert result.returncode != 0
    assert broken in result.stdout


def test_the_core_may_not_import_an_edge_library(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    with (copy / "touchlens" / "analytics" / "stats.py").open("a", encoding="utf-8") as f:
        f.write("\nimport typer  # planted by the test\n")
    result = _lint(copy)
    assert result.returncode != 0
    assert "touchlens.analytics is not allowed to import typer" in result.stdout
