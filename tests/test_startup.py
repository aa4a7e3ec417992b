"""The command line starts at once: importing it loads none of the heavy libraries, which only the commands that
use them import (issue 19). Checked in a fresh interpreter, since this one has loaded everything already."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import touchlens
from tests.conftest import EXAMPLES

HEAVY = ("sklearn", "scipy", "ibis", "fastapi", "pyarrow", "pandas", "duckdb", "sqlalchemy", "numpy")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_command_line_loads_no_heavy_library() -> None:
    assert _loaded_after("import touchlens.cli") == []


@pytest.mark.parametrize("args", [["--help"], ["analyze", "--help"], ["analyze", "funnel", "--help"]])
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    code = (
        "from typer.testing import CliRunner\nfrom touchlens.cli import app\n"
        f"assert CliRunner().invoke(app, {args!r}).exit_code == 0"
    )
    assert _loaded_after(code) == []


def test_the_light_names_equal_the_ones_the_heavy_modules_use() -> None:
    """Names the CLI shows without loading their modules (formats, models, actions) are the modules' own."""
    from touchlens import locate
    from touchlens.analytics import attribution
    from touchlens.analytics.funnels import Order
    from touchlens.cli_common import WORKSPACE_ENV
    from touchlens.ingest.formats import EVENT_FORMATS
    from touchlens.ingest.readers import EVENT_READERS
    from touchlens.queries.funnels import ORDERS
    from touchlens.store import audit, users
    from touchlens.vocabulary import ACTIONS, MAX_TOKEN_DAYS

    assert ("auto", *EVENT_READERS) == EVENT_FORMATS
    assert tuple(Order.__members__) == ORDERS
    assert WORKSPACE_ENV == locate.ENV_VAR
    assert attribution.MODELS[:4] == attribution.HEURISTICS
    assert audit.ACTIONS is ACTIONS
    assert users.MAX_TOKEN_DAYS is MAX_TOKEN_DAYS


def test_opening_a_workspace_and_reading_its_map_loads_no_engine(tmp_path: Path) -> None:
    """`touchlens touchpoints` and the like open the facade and read the map: the metadata store, nothing more."""
    touchlens.init(tmp_path).import_map(EXAMPLES / "outdoor_retail.yaml")
    code = f"import touchlens\nassert touchlens.open({str(tmp_path)!r}).map().touchpoints"
    engine_and_statistics = {"sklearn", "scipy", "ibis", "pyarrow", "pandas", "duckdb", "numpy"}
    assert engine_and_statistics & set(_loaded_after(code)) == set()


def test_the_flows_command_loads_no_pandas_and_no_statistics(tmp_path: Path) -> None:
    """`analyze flows` fetches its result through DuckDB's own Arrow (analytics/engine.arrow), not Ibis's
    converter, which loads pandas: a quarter of a second of the command (benchmarks/startup.py)."""
    (tmp_path / "events.csv").write_text(
        "customer_id,ts,event\nc1,2025-01-01T10:00:00Z,homepage\nc1,2025-01-01T10:05:00Z,product_page\n"
    )
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(EXAMPLES / "outdoor_retail.yaml")
    ws.ingest_events([tmp_path / "events.csv"])
    code = (
        "import sys\nfrom touchlens.cli import invoke\n"
        f"assert invoke(['-w', {str(tmp_path / 'ws')!r}, 'analyze', 'flows', '--json']) == 0"
    )
    assert {"pandas", "sklearn", "scipy"} & set(_loaded_after(code)) == set()
