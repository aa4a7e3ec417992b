"""Shared fixtures: journeys declared as data (`journeys_for`), the CLI run in-process with its exit code and
output, and the metadata store on PostgreSQL as well as SQLite (a throwaway server from tests/pg.py, started once
per session)."""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import touchlens
from tests.pg import PostgresServer, PostgresUnavailable, start_server
from touchlens import console
from touchlens.cli import main
from touchlens.locate import SETTINGS_FILE
from touchlens.store import meta, workspace
from touchlens.store.settings import settings_file_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `touchlens ARGS…` in this process, as a user would from a shell, its output piped."""
    monkeypatch.delenv("TOUCHLENS_WORKSPACE", raising=False)
    # Piped, tables are 200 columns wide (console.py); pytest-xdist's workers start with COLUMNS=80, and the
    # console reads COLUMNS once, at import, so the width is set here as a pipe would get it.
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(console.out, "width", 200)

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


# -- journeys declared as data -------------------------------------------------------------------------------

JOURNEYS_START = datetime(2026, 1, 1, 10, tzinfo=UTC)
JourneysFor = Callable[..., touchlens.Workspace]


def journeys_workspace(
    folder: Path, paths: Mapping[str, Sequence[str]], gap: timedelta = timedelta(minutes=1)
) -> touchlens.Workspace:
    """A workspace in `folder`/ws whose map has a touchpoint per step name (claiming the event of that name) and
    whose events are `paths`: each customer's steps `gap` apart from JOURNEYS_START, in the order given."""
    folder.mkdir(parents=True)
    names = sorted({step for steps in paths.values() for step in steps})
    touchpoints = [{"key": name, "match": {"event": name}} for name in names]
    write(folder / "map.json", json.dumps({"name": "Journeys", "touchpoints": touchpoints}))
    with (folder / "events.csv").open("w", newline="", encoding="utf-8") as f:
        rows = csv.writer(f)
        rows.writerow(["customer_id", "ts", "event"])
        for customer, steps in paths.items():
            rows.writerows([customer, (JOURNEYS_START + i * gap).isoformat(), step] for i, step in enumerate(steps))
    ws = touchlens.init(folder / "ws")
    ws.import_map(folder / "map.json")
    ws.ingest_events([folder / "events.csv"])
    return ws


@pytest.fixture
def journeys_for(tmp_path: Path) -> JourneysFor:
    """`journeys_for({"ann": ["home", "cart", "buy"], "bob": ["home"]})`: a new workspace (DuckDB, in tmp_path)
    holding those journeys (see `journeys_workspace`); each call makes another. Like PostHog's journeys_for."""
    made = itertools.count()

    def build(paths: Mapping[str, Sequence[str]], gap: timedelta = timedelta(minutes=1)) -> touchlens.Workspace:
        return journeys_workspace(tmp_path / f"journeys-{next(made)}", paths, gap)

    return build


# -- the metadata store on PostgreSQL ---------------------------------------------------------------------

META_BACKENDS = ("sqlite", "postgresql")
# Test files that run twice: as written (SQLite), and as `FILE[postgresql]`, where every workspace they create
# keeps its metadata store on its own PostgreSQL database. Listed here, not marked, so those files stay untouched.
BOTH_BACKENDS = ("test_web_api.py",)


class PostgresModule(pytest.Module):
    """A test file collected a second time, its workspaces' metadata on PostgreSQL."""


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.name in BOTH_BACKENDS:
        name = f"{file_path.name}[postgresql]"
        # Its own node id, so its module-scoped fixtures (a template workspace) are its own too.
        nodeid = f"{parent.nodeid}/{name}" if parent.nodeid else name
        return PostgresModule.from_parent(parent, path=file_path, name=name, nodeid=nodeid)
    return None


# The longest files, longest first (seconds on two cores, 2026-12-07): `make test` hands files to its two workers
# in the order they are collected, so these go first and the short ones fill in after; when a long one came
# last, one worker ran it alone for minutes while the other had finished.
LONGEST_FIRST = (
    "test_engine_parity.py",  # 499
    "test_api_fuzz.py",  # 183
    "test_security_sql.py",  # 125
    "test_calibration.py",  # 94
    "test_hostile_strings.py",  # 81
    "test_security_auth.py",  # 71
    "test_audit.py",  # 66
    "test_hostile_input.py",  # 52
)


def _file_rank(item: pytest.Item) -> int:
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first (`LONGEST_FIRST`; a stable sort keeps each file's own order). A test on the PostgreSQL
    server is an `engine` test: its file runs twice, its `meta_backend` is postgresql, or it asks for the server
    itself. Marked here, as parameters and copied files cannot be marked."""
    items.sort(key=_file_rank)
    for item in items:
        params = item.callspec.params if isinstance(item, pytest.Function) and hasattr(item, "callspec") else {}
        on_server = item.getparent(PostgresModule) is not None or params.get("meta_backend") == "postgresql"
        if on_server or "postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)


class _Postgres:
    """The session's server, with a migrated database to copy (a copy is quicker than migrating)."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.migrated = server.database()
        engine = sa.create_engine(server.url(self.migrated))
        meta.migrate(engine)
        engine.dispose()  # a database is copied only while nobody is connected to it

    def fresh_url(self, migrated: bool = True) -> str:
        """The URL of a new database: migrated already, or empty."""
        return self.server.url(self.server.database(self.migrated if migrated else None))


@pytest.fixture(scope="session")
def postgres() -> Iterator[_Postgres]:
    """The PostgreSQL server; a test needing it fails (never skips) when it cannot start, so CI shows it ran."""
    try:
        server, problem = start_server(), ""
    except PostgresUnavailable as exc:
        problem = str(exc)
    if problem:  # outside the except block, so the failure shows this message alone
        pytest.fail(f"the PostgreSQL tests could not start a server: {problem}", pytrace=False)
    try:
        yield _Postgres(server)
    finally:
        server.stop()


@pytest.fixture(params=META_BACKENDS)
def meta_backend(request: pytest.FixtureRequest) -> str:
    """Run the test once per metadata backend."""
    backend: str = request.param
    return backend


@pytest.fixture
def meta_url(meta_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh metadata store's URL on the backend: a new SQLite file, or a new (migrated) PostgreSQL database."""
    if meta_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    pg: _Postgres = request.getfixturevalue("postgres")
    return pg.fresh_url()


def workspace_on(root: Path, url: str) -> touchlens.Workspace:
    """A new workspace whose settings file puts its metadata store at `url`, as a team would write it."""
    root.mkdir(parents=True, exist_ok=True)
    default = 'meta_url = "sqlite:///touchlens.db"'
    (root / SETTINGS_FILE).write_text(settings_file_text().replace(default, f'meta_url = "{url}"'), encoding="utf-8")
    return touchlens.init(root)


@pytest.fixture
def meta_workspace(meta_url: str, tmp_path: Path) -> touchlens.Workspace:
    """A fresh workspace with its metadata store on each backend in turn."""
    return workspace_on(tmp_path / "ws", meta_url)


MARKER = ".postgres-test-db"  # in a workspace folder: which folder it was made for, and its database


@pytest.fixture(scope="module", autouse=True)
def _workspaces_on_postgres(request: pytest.FixtureRequest) -> Iterator[None]:
    """In a PostgresModule, a workspace whose metadata would be a local SQLite file gets a PostgreSQL database.

    Tests copy workspace folders (a template per module, a copy per test); a copy must not share the original's
    database, so a folder notes its database and the folder it was made for, and a copied folder gets a copy."""
    if not isinstance(request.node, PostgresModule):
        yield
        return
    pg: _Postgres = request.getfixturevalue("postgres")
    local = workspace.resolve_url

    def resolve(url: str, root: Path) -> str:
        if sa.make_url(url).get_backend_name() != "sqlite":
            return local(url, root)
        marker = root / MARKER
        made_for, _, database = marker.read_text().partition("\n") if marker.is_file() else ("", "", "")
        if made_for != str(root):
            database = pg.server.database(template=database or pg.migrated)
            marker.write_text(f"{root}\n{database}")
        return pg.server.url(database)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(workspace, "resolve_url", resolve)
        yield
