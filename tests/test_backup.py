"""`touchlens backup` and `touchlens restore`: every table of both stores comes back exactly, across SQLite and
PostgreSQL; a restore lands whole or not at all, never over data without --force, never from a newer schema."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from alembic import command

import touchlens
from tests.conftest import EXAMPLES, Result, workspace_on, write
from touchlens.store import audit, backup, contacts, keys, meta, users

EVENTS = (
    "customer_id,ts,event,channel\n"
    + "".join(
        f"c{i},2026-01-0{1 + i % 5}T10:00:00Z,page_viewed,\nc{i},2026-01-0{1 + i % 5}T10:05:00Z,ad_clicked,social\n"
        for i in range(8)
    )
    + "c9,not a time,page_viewed,\n"
)  # quarantined
FEEDBACK = "customer_id,ts,metric,score,comment\nc1,2026-01-02T10:00:00Z,csat,4,Fine\nc2,2026-01-03T10:00:00Z,nps,9,\n"


def _fill(ws: touchlens.Workspace, tmp_path: Path) -> None:
    """A small workspace with a row in every kind of table."""
    ws.import_map(EXAMPLES / "outdoor_retail.yaml")
    ws.ingest_events([write(tmp_path / "e.csv", EVENTS)])
    # A second touch for c1, so the wait sketches (pair_waits) hold a wait too, and an order (a conversion, which
    # the journey layer lists).
    again = (
        "customer_id,ts,event,channel\nc1,2026-01-02T11:00:00Z,ad_clicked,social\n"
        "c1,2026-01-02T12:00:00Z,order_placed,web\n"
    )
    ws.ingest_events([write(tmp_path / "e2.csv", again)])
    ws.ingest_feedback([write(tmp_path / "f.csv", FEEDBACK)])
    engine = ws.meta_engine()
    users.add_user(engine, "ann", "correct horse", "admin")
    users.add_token(engine, "ann", ("read", "write"), "a script")
    users.start_session(engine, users.User("ann", "admin"))
    keys.add_key(engine, "ingest", "site", "web", "tests")
    ws.add_change(ws.map().touchpoints[0].key, date(2026, 1, 3), "New hero image")
    audit.record(engine, "cli:tests", "map-change", "map", file="outdoor_retail.yaml")
    ws.forget(["c7"], "cli:tests")  # an erasure and a suppression
    now = datetime.now(UTC).isoformat()
    ws.ingest_feedback([write(tmp_path / "low.csv", f"customer_id,ts,metric,score\nc3,{now},csat,1\n")])  # a case
    ws.alerts.add("few answers", "survey_volume", threshold=100, webhook="http://127.0.0.1:9/nobody")
    ws.alerts.check()  # an alert, its delivery failed and recorded
    at = datetime.now(UTC)
    _, link = ws.audits.start("first_kit", "Olga")  # a walkthrough with one step walked
    ws.audits.record(link.rsplit("/walk/", 1)[1], 1, {"met": "yes", "emotion": "1"})
    contacts.started(engine, "shipping_update", at)  # a proactive rule that ran, and a contact it withheld
    contacts.record(engine, [{"rule": "shipping_update", "customer_id": "c3", "trigger_at": at, "due_at": at,
                              "status": "held_out", "sent_at": None}])  # fmt: skip
    engine.dispose()


def _metadata(ws: touchlens.Workspace) -> dict[str, list[tuple[Any, ...]]]:
    """Every metadata table's rows in key order, times as UTC instants (read here, not by the code under test)."""
    engine = ws.meta_engine()
    with engine.connect() as conn:
        found = {
            t.name: [tuple(meta.utc(v) if isinstance(v, datetime) else v for v in row) for row in conn.execute(
                sa.select(t).order_by(*t.primary_key.columns))]
            for t in meta.metadata.sorted_tables
        }  # fmt: skip
    engine.dispose()
    # The commands' own audit entries (the backup in the original, the restore in the copy) are checked apart.
    found["audit_log"] = [row for row in found["audit_log"] if row[3] not in ("backup", "restore")]
    return found


def _events(ws: touchlens.Workspace) -> dict[str, list[tuple[Any, ...]]]:
    with ws.events(read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {n: con.execute(f'SELECT * FROM "{n}" ORDER BY ALL').fetchall() for n in names}


def _same(a: touchlens.Workspace, b: touchlens.Workspace) -> None:
    left, events = _metadata(a), _events(a)
    assert all(left.values()), "every metadata table holds a row"
    # The journey layer's queue of stale customers is empty whenever the layer is fresh, as it is after an ingest.
    assert all(rows for name, rows in events.items() if name != "touches_stale"), "every events table holds a row"
    assert {"touches", "touches_stale"} <= events.keys()
    assert _metadata(b) == left
    assert _events(b) == events


def test_a_backup_restores_every_table_of_both_stores(
    meta_workspace: touchlens.Workspace,
    meta_backend: str,
    cli: Callable[..., Result],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    _fill(meta_workspace, tmp_path)
    assert cli("-w", meta_workspace.root, "backup", tmp_path / "b.tar.gz").code == 0
    into = ["--into", tmp_path / "copy"]
    # The backup's settings name the original's store, which holds data: a restore never merges into it.
    refused = cli("restore", tmp_path / "b.tar.gz", *into)
    assert refused.code == 1
    assert "holds data already" in refused.err
    assert not (tmp_path / "copy").exists()
    into += ["--meta-url", _another_store(meta_backend, request)]
    restored = cli("restore", tmp_path / "b.tar.gz", *into, "--json")
    assert restored.code == 0, restored.err
    assert json.loads(restored.out)["metadata"]["users"] == 1
    _same(meta_workspace, touchlens.open(tmp_path / "copy"))
    made = audit.entries(meta_workspace.meta_engine(), action="backup")
    taken = audit.entries(touchlens.open(tmp_path / "copy").meta_engine(), action="restore")
    assert [(e["target"], e["actor"][:4]) for e in made + taken] == [("b.tar.gz", "cli:"), ("b.tar.gz", "cli:")]


def test_a_sqlite_backup_restores_onto_postgresql_and_back(
    tmp_path: Path, postgres: Any, cli: Callable[..., Result]
) -> None:
    source = touchlens.init(tmp_path / "lite")
    _fill(source, tmp_path)
    backup.backup(source.root, tmp_path / "lite.tar.gz")
    team = workspace_on(tmp_path / "team", postgres.fresh_url(migrated=False))
    assert cli("-w", team.root, "restore", tmp_path / "lite.tar.gz").code == 0  # an empty workspace needs no --force
    _same(source, team)
    assert "postgresql" in (team.root / "touchlens.toml").read_text()  # it kept its own settings
    backup.backup(team.root, tmp_path / "team.tar.gz")
    backup.restore(tmp_path / "team.tar.gz", tmp_path / "again", meta_url="sqlite:///touchlens.db")
    _same(source, touchlens.open(tmp_path / "again"))


def _another_store(meta_backend: str, request: pytest.FixtureRequest) -> str:
    """An empty metadata store on the backend, for a restore that must not touch the original's."""
    if meta_backend == "sqlite":
        return "sqlite:///touchlens.db"  # in the restored folder
    url: str = request.getfixturevalue("postgres").fresh_url(migrated=False)
    return url


def test_ids_carry_on_after_a_restore(
    meta_workspace: touchlens.Workspace, meta_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _fill(meta_workspace, tmp_path)
    backup.backup(meta_workspace.root, tmp_path / "b.tar.gz")
    backup.restore(tmp_path / "b.tar.gz", tmp_path / "copy", meta_url=_another_store(meta_backend, request))
    copy = touchlens.open(tmp_path / "copy")
    engine = copy.meta_engine()
    before = max(c["id"] for c in meta.list_changes(engine))
    assert copy.add_change(copy.map().touchpoints[0].key, date(2026, 2, 1), "later") == before + 1
    audit.record(engine, "cli:tests", "map-change", "map")
    assert keys.add_key(engine, "ingest", "second", "web", "tests")[0] == 2
    engine.dispose()


@pytest.mark.slow
def test_restore_over_data_needs_force_and_then_replaces_it_all(tmp_path: Path, cli: Callable[..., Result]) -> None:
    source = touchlens.init(tmp_path / "a")
    _fill(source, tmp_path)
    backup.backup(source.root, tmp_path / "a.tar.gz")
    other = touchlens.init(tmp_path / "b")
    other.ingest_events([write(tmp_path / "other.csv", "customer_id,ts,event\nzz,2025-01-01T00:00:00Z,x\n")])
    users.add_user(other.meta_engine(), "bob", "password1", "viewer")
    before = (_metadata(other), _events(other))
    refused = cli("-w", other.root, "restore", tmp_path / "a.tar.gz")
    assert refused.code == 1
    assert "--force" in refused.err
    assert (_metadata(other), _events(other)) == before
    assert cli("-w", other.root, "restore", tmp_path / "a.tar.gz", "--force").code == 0
    _same(source, touchlens.open(other.root))
    assert [p.name for p in other.root.iterdir() if "restore" in p.name] == []


def test_a_failed_restore_leaves_the_workspace_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meta_workspace: touchlens.Workspace
) -> None:
    _fill(meta_workspace, tmp_path)
    backup.backup(meta_workspace.root, tmp_path / "b.tar.gz")
    users.add_user(meta_workspace.meta_engine(), "later", "password1", "viewer")
    before = (_metadata(meta_workspace), _events(meta_workspace), (meta_workspace.root / "touchlens.toml").read_text())
    real = backup._replace_rows

    def half_then_fail(conn: sa.Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
        real(conn, rows)
        raise OSError("disk full")

    monkeypatch.setattr(backup, "_replace_rows", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        backup.restore(tmp_path / "b.tar.gz", meta_workspace.root, force=True)
    ws = touchlens.open(meta_workspace.root)
    assert (_metadata(ws), _events(ws), (ws.root / "touchlens.toml").read_text()) == before
    assert sorted(p.name for p in ws.root.iterdir() if "restore" in p.name) == []


def _repack(src: Path, dest: Path, change: Callable[[dict[str, Any], dict[str, bytes]], None]) -> Path:
    """A copy of a backup with its manifest and members changed by `change`."""
    with tarfile.open(src, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    manifest = json.loads(members.pop(backup.MANIFEST))
    change(manifest, members)
    with tarfile.open(dest, "w:gz") as tar:
        for name, data in [(backup.MANIFEST, json.dumps(manifest).encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def test_a_backup_from_a_newer_schema_or_format_is_refused(tmp_path: Path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    backup.backup(ws.root, tmp_path / "b.tar.gz")
    newer = _repack(tmp_path / "b.tar.gz", tmp_path / "newer.tar.gz", lambda m, _: m.update(revision="0999"))
    with pytest.raises(backup.BackupError, match="revision 0999, newer than this touchlens knows"):
        backup.restore(newer, tmp_path / "into")
    assert not (tmp_path / "into").exists()
    future = _repack(tmp_path / "b.tar.gz", tmp_path / "future.tar.gz", lambda m, _: m.update(format=2))
    with pytest.raises(backup.BackupError, match="backup format 2"):
        backup.restore(future, tmp_path / "into")
    write(tmp_path / "junk.tar.gz", "not a backup")
    with pytest.raises(backup.BackupError, match="not a readable touchlens backup"):
        backup.restore(tmp_path / "junk.tar.gz", tmp_path / "into")
    with pytest.raises(backup.BackupError, match="neither a touchlens workspace nor an empty folder"):
        backup.restore(tmp_path / "b.tar.gz", tmp_path)
    with pytest.raises(backup.BackupError, match="exists already"):
        backup.backup(ws.root, tmp_path / "b.tar.gz")


def test_a_backup_from_an_older_schema_is_upgraded_as_it_is_restored(tmp_path: Path) -> None:
    old = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with old.begin() as conn:
        cfg = backup._alembic(conn)
        command.upgrade(cfg, "0003")
        conn.execute(sa.text("INSERT INTO users (name, password_hash, role) VALUES ('ann', 'h', 'admin')"))
        revision, tables = backup.dump_metadata(conn)
    old.dispose()
    assert revision == "0003"
    assert "audit_log" not in tables
    ws = touchlens.init(tmp_path / "ws")
    backup.backup(ws.root, tmp_path / "b.tar.gz")

    def at_0003(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
        manifest.update(revision=revision, metadata={n: len(t["rows"]) for n, t in tables.items()})
        for name in [n for n in members if n.startswith("metadata/")]:
            del members[name]
        members.update({f"metadata/{n}.json": json.dumps(t).encode() for n, t in tables.items()})

    older = _repack(tmp_path / "b.tar.gz", tmp_path / "old.tar.gz", at_0003)
    summary = backup.restore(older, tmp_path / "restored")
    assert summary.revision == backup._head()
    assert [u.name for u in users.list_users(touchlens.open(tmp_path / "restored").meta_engine())] == ["ann"]


def test_a_backup_while_another_process_writes_the_events_store_says_to_stop_it(tmp_path: Path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    ws.ingest_events([write(tmp_path / "e.csv", EVENTS)])
    path = ws.root / ws.settings.store.events_path
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('ok', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(backup.BackupError, match=r"events\.duckdb is in use .*touchlens serve.* stop it first"):
            backup.backup(ws.root, tmp_path / "b.tar.gz")
    finally:
        holder.communicate("")
    assert not (tmp_path / "b.tar.gz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv", "ws"]


def test_settings_get_the_new_meta_url_and_keep_everything_else() -> None:
    text = '# mine\n[store]\n# where\nmeta_url = "sqlite:///touchlens.db"\nevents_path = "e.duckdb"\n'
    changed = backup.set_meta_url(text, "postgresql+psycopg://app@db/tl")
    assert changed == text.replace("sqlite:///touchlens.db", "postgresql+psycopg://app@db/tl")
    assert 'meta_url = "x"' in backup.set_meta_url("[store]\n", "x")
    assert backup.set_meta_url("[ingest]\nbatch_rows = 5\n", "x").endswith('[store]\nmeta_url = "x"\n')


def test_the_restored_events_store_opens_read_write(tmp_path: Path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    ws.ingest_events([write(tmp_path / "e.csv", EVENTS)])
    backup.backup(ws.root, tmp_path / "b.tar.gz")
    backup.restore(tmp_path / "b.tar.gz", tmp_path / "copy")
    copy = touchlens.open(tmp_path / "copy")
    copy.ingest_events([write(tmp_path / "more.csv", "customer_id,ts,event\nnew,2026-02-01T00:00:00Z,x\n")])
    with duckdb.connect(str(copy.root / "events.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (17,)  # 16 from the backup, 1 new
