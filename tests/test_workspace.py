"""The workspace: init writes settings and a migrated store; commands find it like git finds a repository."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import touchlens
from tests.conftest import workspace_on
from touchlens.errors import WorkspaceError
from touchlens.locate import find_root
from touchlens.store import meta
from touchlens.store.settings import documented_settings, load_settings, settings_file_text
from touchlens.store.workspace import resolve_url


def test_init_writes_every_setting_and_a_migrated_sqlite_store(tmp_path: Path) -> None:
    ws = touchlens.init(tmp_path / "acme")
    written = tomllib.loads((ws.root / "touchlens.toml").read_text())
    assert written["store"]["meta_url"] == "sqlite:///touchlens.db"
    assert (ws.root / "touchlens.db").is_file()
    assert not ws.has_map()


def test_migrations_build_exactly_the_schema_the_code_declares(
    meta_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}" if meta_backend == "sqlite" else _empty_postgres(request)
    engine = sa.create_engine(url)
    meta.migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), meta.metadata)
    engine.dispose()
    assert diff == []


def _empty_postgres(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("postgres").fresh_url(migrated=False)
    return url


def test_init_twice_keeps_the_map(meta_workspace: touchlens.Workspace) -> None:
    meta_workspace.save_map(touchlens.model.map.TouchpointMap(name="Kept"))
    assert touchlens.init(meta_workspace.root).map().name == "Kept"


def test_a_postgresql_workspace_keeps_no_metadata_file(tmp_path: Path, postgres: Any) -> None:
    ws = workspace_on(tmp_path / "team", postgres.fresh_url(migrated=False))
    ws.save_map(touchlens.model.map.TouchpointMap(name="Team"))
    assert not (ws.root / "touchlens.db").exists()
    assert touchlens.open(ws.root).map().name == "Team"
    assert ws.map_version() is not None


def test_the_workspace_is_found_upward_by_env_or_explicitly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOUCHLENS_WORKSPACE", raising=False)
    root = touchlens.init(tmp_path / "ws").root
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    assert find_root(cwd=deep) == root
    assert find_root(root) == root
    monkeypatch.setenv("TOUCHLENS_WORKSPACE", str(root))
    assert find_root(cwd=tmp_path) == root


def test_no_workspace_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOUCHLENS_WORKSPACE", raising=False)
    with pytest.raises(WorkspaceError, match="no touchlens workspace here or above"):
        find_root(cwd=tmp_path)
    with pytest.raises(WorkspaceError, match="is not a touchlens workspace"):
        find_root(tmp_path)


def test_environment_variables_override_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "touchlens.toml"
    toml.write_text('[store]\nevents_path = "from_file.duckdb"\n')
    assert load_settings(toml).store.events_path == "from_file.duckdb"
    monkeypatch.setenv("TOUCHLENS_STORE__EVENTS_PATH", "from_env.duckdb")
    assert load_settings(toml).store.events_path == "from_env.duckdb"


def test_a_typo_in_the_settings_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "touchlens.toml").write_text('[store]\nmeta_ulr = "x"\n')
    with pytest.raises(WorkspaceError, match="invalid settings"):
        touchlens.open(tmp_path)


def test_relative_sqlite_paths_are_relative_to_the_workspace(tmp_path: Path) -> None:
    assert resolve_url("sqlite:///touchlens.db", tmp_path) == f"sqlite:///{tmp_path / 'touchlens.db'}"
    assert resolve_url("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert resolve_url("postgresql://u:p@h/db", tmp_path) == "postgresql://u:p@h/db"
    assert resolve_url("postgresql+psycopg://u@h:5433/db", tmp_path) == "postgresql+psycopg://u@h:5433/db"


def test_the_metadata_url_can_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "touchlens.toml"
    toml.write_text("")
    monkeypatch.setenv("TOUCHLENS_STORE__META_URL", "postgresql+psycopg://app@db/touchlens")
    assert load_settings(toml).store.meta_url == "postgresql+psycopg://app@db/touchlens"


@pytest.mark.slow
def test_the_settings_file_lists_every_setting_with_its_help() -> None:
    text = settings_file_text()
    for dotted, _default, help_text in documented_settings():
        assert f"{dotted.split('.')[1]} = " in text
        assert help_text[:40] in text


def test_the_head_revision_the_store_checks_is_alembics() -> None:
    """`meta.HEAD` lets an up-to-date store open without Alembic: it must name the newest migration."""
    from alembic.script import ScriptDirectory

    assert ScriptDirectory(str(meta.MIGRATIONS)).get_current_head() == meta.HEAD
