"""A whole workspace in one file and back: `touchlens backup` and `touchlens restore`.

The file is a .tar.gz holding a manifest, `touchlens.toml`, a consistent copy of the events store (DuckDB) and
the metadata store table by table as JSON rows with its Alembic revision, so a backup taken on SQLite restores
onto PostgreSQL and back. A restore lands whole or not at all.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata as dist
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.pool import StaticPool

from touchlens.errors import WorkspaceError
from touchlens.locate import SETTINGS_FILE
from touchlens.store import meta
from touchlens.store.events import scalar
from touchlens.store.modes import create_private
from touchlens.store.settings import load_settings
from touchlens.store.workspace import Storage, open_storage, resolve_url, tighten

FORMAT = 1  # of the backup file; a newer one is refused
MANIFEST = "touchlens-backup.json"
EVENTS = "events.duckdb"
TABLES = "metadata"  # folder of one <table>.json per metadata table
_STAGING = ".touchlens-restore-"


@dataclass
class Summary:
    """What a backup holds, or what a restore put back: rows per metadata table, and the events store's."""

    file: str
    workspace: str
    revision: str | None
    metadata: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BackupError(WorkspaceError):
    """A backup cannot be written or restored; the message says why and what to do."""


# The events store as a connection this process holds: a block that gives a cursor of it.
OpenEvents = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]

# -- the metadata store as JSON rows ---------------------------------------------------------------------


def _encode(value: Any) -> Any:
    """A column value as JSON: times in UTC ISO 8601 (SQLite hands back naive UTC, PostgreSQL aware times)."""
    if isinstance(value, datetime):
        return meta.utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _decode(column: sa.Column[Any], value: Any) -> Any:
    """A JSON value back as the column's Python type (the inverse of `_encode`)."""
    if value is None:
        return None
    if isinstance(column.type, sa.DateTime):
        return meta.utc(value if isinstance(value, datetime) else datetime.fromisoformat(value))
    if isinstance(column.type, sa.Date) and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def revision_of(conn: sa.Connection) -> str | None:
    """The Alembic revision the metadata store is at; None for an empty one."""
    return MigrationContext.configure(conn).get_current_revision()


def _tables(conn: sa.Connection) -> list[sa.Table]:
    """The store's tables as they are (not as this version declares them), parents before children."""
    found = sa.MetaData()
    found.reflect(conn)
    return [t for t in found.sorted_tables if t.name != "alembic_version"]


def dump_metadata(conn: sa.Connection) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """(revision, {table: {"columns": [...], "rows": [[...], ...]}}) of every table, rows in key order."""
    out: dict[str, dict[str, Any]] = {}
    for table in _tables(conn):
        rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns))
        out[table.name] = {"columns": list(rows.keys()), "rows": [[_encode(v) for v in row] for row in rows]}
    return revision_of(conn), out


def _records(table: sa.Table, dumped: dict[str, Any]) -> list[dict[str, Any]]:
    names = dumped["columns"]
    unknown = [n for n in names if n not in table.c]
    if unknown:
        raise BackupError(f"the backup's table {table.name} has columns this version lacks: {', '.join(unknown)}")
    return [{n: _decode(table.c[n], v) for n, v in zip(names, row, strict=True)} for row in dumped["rows"]]


def _alembic(conn: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(meta.MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _check_revision(revision: str | None) -> None:
    script = ScriptDirectory(str(meta.MIGRATIONS))
    head = script.get_current_head()
    try:
        known = revision is None or script.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupError(
            f"the backup's metadata schema is revision {revision}, newer than this touchlens knows ({head}): "
            "upgrade touchlens, then restore"
        )


def _at_head(revision: str | None, tables: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The backup's rows as this version's tables hold them: an older backup goes through the migrations first,
    in a scratch SQLite database, so its rows change exactly as a store upgraded in place would."""
    if revision == ScriptDirectory(str(meta.MIGRATIONS)).get_current_head():
        return {t.name: _records(t, tables[t.name]) for t in meta.metadata.sorted_tables if t.name in tables}
    scratch = sa.create_engine("sqlite://", poolclass=StaticPool)
    with scratch.begin() as conn:
        if revision is not None:
            command.upgrade(_alembic(conn), revision)
        for table in _tables(conn):
            if table.name in tables and tables[table.name]["rows"]:
                conn.execute(table.insert(), _records(table, tables[table.name]))
        command.upgrade(_alembic(conn), "head")
        _, upgraded = dump_metadata(conn)
    scratch.dispose()
    return {t.name: _records(t, upgraded[t.name]) for t in meta.metadata.sorted_tables if t.name in upgraded}


def _holds_rows(conn: sa.Connection) -> bool:
    return any(conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first() for t in _tables(conn))


def _replace_rows(conn: sa.Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Every metadata table's rows replaced by `rows`, in the caller's transaction."""
    for table in reversed(meta.metadata.sorted_tables):
        conn.execute(table.delete())
    for table in meta.metadata.sorted_tables:
        if rows.get(table.name):
            conn.execute(table.insert(), rows[table.name])
    if conn.dialect.name == "postgresql":
        _reset_sequences(conn)


def _reset_sequences(conn: sa.Connection) -> None:
    """PostgreSQL's id counters do not see rows inserted with their ids: start each after the largest id."""
    for table in meta.metadata.sorted_tables:
        keys = list(table.primary_key.columns)
        if len(keys) == 1 and isinstance(keys[0].type, sa.Integer):
            sequence = sa.func.pg_get_serial_sequence(table.name, keys[0].name)
            after = sa.func.coalesce(sa.func.max(keys[0]), 0) + 1
            conn.execute(sa.select(sa.func.setval(sequence, after, sa.false())).select_from(table))


# -- the events store --------------------------------------------------------------------------------------


def _in_use(path: Path, exc: duckdb.Error) -> BackupError:
    return BackupError(
        f"the events store {path} is in use by another process (is `touchlens serve` running on this workspace? "
        f"stop it first): {exc}"
    )


def copy_events(source: Path, dest: Path) -> None:
    """A consistent copy of the events store: DuckDB copies every table as of one moment into a new file."""
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute("ATTACH ? AS src (READ_ONLY)", [str(source)])
        except duckdb.IOException as exc:
            raise _in_use(source, exc) from None
        con.execute("ATTACH ? AS dst", [str(dest)])
        con.execute("COPY FROM DATABASE src TO dst")
    finally:
        con.close()


def copy_open_events(con: duckdb.DuckDBPyConnection, dest: Path) -> None:
    """The same copy through a connection this process holds (a server's): every table read in one transaction,
    so as of one moment, streamed in batches into a new file."""
    out = duckdb.connect(str(dest))
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            tables = con.execute(
                "SELECT table_name, sql FROM duckdb_tables() WHERE database_name = current_database() "
                "AND schema_name = 'main' ORDER BY table_name"
            ).fetchall()
            for name, create in tables:
                out.execute(create)
                quoted = '"' + str(name).replace('"', '""') + '"'
                batches = con.sql(f"SELECT * FROM {quoted}").to_arrow_reader()  # noqa: S608 (names from the store)
                out.register("touchlens_batches", batches)
                out.execute(f"INSERT INTO {quoted} SELECT * FROM touchlens_batches")  # noqa: S608 (names from the store)
                out.unregister("touchlens_batches")
        finally:
            con.execute("COMMIT")
    finally:
        out.close()


def event_counts(path: Path) -> dict[str, int]:
    """Rows in each table of an events store file (none when there is no file)."""
    if not path.exists():
        return {}
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        raise _in_use(path, exc) from None
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY table_name").fetchall()]
        quoted = {n: '"' + n.replace('"', '""') + '"' for n in names}
        return {n: int(scalar(con, f"SELECT count(*) FROM {q}")) for n, q in quoted.items()}  # noqa: S608 (names from the file)
    finally:
        con.close()


def _check_unlocked(path: Path) -> None:
    """Refuse to replace an events store another process has open: it would keep writing to the old file."""
    if not path.exists():
        return
    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as exc:
        raise _in_use(path, exc) from None


# -- backup ------------------------------------------------------------------------------------------------


def _version() -> str:
    try:
        return dist.version("touchlens")
    except dist.PackageNotFoundError:
        return "unknown"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def backup(root: Path, dest: Path, open_events: OpenEvents | None = None) -> Summary:
    """Write the workspace at `root` to the new file `dest` (.tar.gz); an existing file is never overwritten.
    `open_events`: the events store as this process already has it open (a server's), to copy through."""
    dest = dest.expanduser().resolve()
    if dest.exists():
        raise BackupError(f"{dest} exists already; choose another name or remove it first")
    if not dest.parent.is_dir():
        raise BackupError(f"no folder {dest.parent} to write the backup in")
    storage = open_storage(root)
    with storage.meta_engine.connect() as conn:
        revision, tables = dump_metadata(conn)
    storage.meta_engine.dispose()
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".touchlens-backup-") as tmp:
        events = Path(tmp) / EVENTS
        if open_events is not None:
            with open_events() as con:
                copy_open_events(con, events)
        elif storage.events_path.exists():
            copy_events(storage.events_path, events)
        summary = Summary(
            str(dest),
            str(storage.root),
            revision,
            {name: len(t["rows"]) for name, t in tables.items()},
            event_counts(events),
        )
        partial = Path(tmp) / "backup.tar.gz"
        _write_archive(partial, storage.root / SETTINGS_FILE, summary, tables, events)
        os.replace(partial, dest)  # a half-written backup never carries the final name
    return summary


def _write_archive(
    path: Path, settings: Path, summary: Summary, tables: dict[str, dict[str, Any]], events: Path
) -> None:
    manifest = {"format": FORMAT, "touchlens": _version(), "created": datetime.now(UTC).isoformat()}
    manifest |= {k: v for k, v in summary.to_dict().items() if k not in ("file",)}
    create_private(path)  # the backup holds the salt, password hashes and every event: owner-only (0600)
    with tarfile.open(path, "w:gz", compresslevel=6) as tar:
        _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
        tar.add(settings, SETTINGS_FILE)
        for name, table in tables.items():
            _add(tar, f"{TABLES}/{name}.json", json.dumps(table).encode())  # ASCII: any text survives
        if events.exists():
            tar.add(events, EVENTS)


# -- restore -----------------------------------------------------------------------------------------------


@dataclass
class _Contents:
    """A backup file unpacked into a staging folder."""

    folder: Path
    manifest: dict[str, Any]
    tables: dict[str, dict[str, Any]]

    @property
    def settings(self) -> Path:
        return self.folder / SETTINGS_FILE

    @property
    def events(self) -> Path:
        return self.folder / EVENTS


def _unpack(archive: Path, folder: Path) -> _Contents:
    """Read the backup's known members in one pass, each to a fixed name (so none can land outside `folder`)."""
    small: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                stream = tar.extractfile(member) if member.isfile() else None
                if stream is None:
                    continue
                if member.name == EVENTS:
                    with (folder / EVENTS).open("wb") as out:
                        shutil.copyfileobj(stream, out, 1 << 20)
                elif member.name in (MANIFEST, SETTINGS_FILE) or member.name.startswith(f"{TABLES}/"):
                    small[member.name] = stream.read()
        manifest = json.loads(small[MANIFEST])
        if manifest.get("format") != FORMAT:
            raise BackupError(f"{archive}: backup format {manifest.get('format')} is not one this touchlens reads")
        (folder / SETTINGS_FILE).write_bytes(small[SETTINGS_FILE])
        tables = {name: json.loads(small[f"{TABLES}/{name}.json"]) for name in manifest["metadata"]}
    except KeyError as exc:
        raise BackupError(f"{archive} is not a complete touchlens backup: it lacks {exc}") from None
    except (OSError, tarfile.TarError, ValueError, TypeError) as exc:
        raise BackupError(f"{archive} is not a readable touchlens backup: {exc}") from None
    if manifest.get("events") and not (folder / EVENTS).exists():
        raise BackupError(f"{archive} is not a complete touchlens backup: it lacks {EVENTS}")
    return _Contents(folder, manifest, tables)


def set_meta_url(text: str, url: str) -> str:
    """Settings text with `[store] meta_url` set to `url`, comments and every other setting kept."""
    quoted, lines, section, done = json.dumps(url), text.splitlines(), "", False
    for i, line in enumerate(lines):
        header = re.fullmatch(r"\s*\[([^\[\]]+)\]\s*(#.*)?", line)
        if header:
            section = header.group(1).strip()
        elif section == "store" and re.match(r"\s*meta_url\s*=", line):
            lines[i], done = f"meta_url = {quoted}", True
    if not done:
        at = next((i + 1 for i, line in enumerate(lines) if line.strip() == "[store]"), None)
        if at is None:
            lines += ["", "[store]"]
            at = len(lines)
        lines.insert(at, f"meta_url = {quoted}")
    result = "\n".join(lines) + "\n"
    if tomllib.loads(result).get("store", {}).get("meta_url") != url:
        raise BackupError("cannot set [store] meta_url in the settings file; set it by hand, then restore")
    return result


@dataclass
class _Target:
    """Where a restore goes: the folder, whether it is a workspace already, and what it held before."""

    root: Path
    existing: bool  # a workspace already (its settings file is kept)
    created: bool  # the folder did not exist

    @classmethod
    def at(cls, root: Path) -> _Target:
        root = root.expanduser().resolve()
        if (root / SETTINGS_FILE).is_file():
            return cls(root, True, False)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise BackupError(f"{root} is neither a touchlens workspace nor an empty folder: restore elsewhere")
        created = not root.exists()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root, False, created)


def restore(archive: Path, root: Path, force: bool = False, meta_url: str | None = None) -> Summary:
    """Restore the backup `archive` into the workspace or empty folder `root`, whole or not at all.

    A workspace keeps its own settings file (a new folder gets the backup's); `meta_url` sets where the
    metadata store goes. A store already holding data is replaced only with `force`."""
    archive = archive.expanduser().resolve()
    if not archive.is_file():
        raise BackupError(f"no backup file {archive}")
    target = _Target.at(root)
    staging = Path(tempfile.mkdtemp(dir=target.root, prefix=_STAGING))
    try:
        return _restore(archive, target, staging, force, meta_url)
    except BaseException:
        if not target.existing:  # leave the folder as it was: empty, or not there
            _empty(target.root)
            if target.created:
                target.root.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _restore(archive: Path, target: _Target, staging: Path, force: bool, meta_url: str | None) -> Summary:
    contents = _unpack(archive, staging)
    revision = contents.manifest.get("revision")
    _check_revision(revision)
    rows = _at_head(revision, contents.tables)
    settings_file = _settings_to_restore(target, contents, meta_url)
    settings = load_settings(settings_file)
    events_path = target.root / settings.store.events_path
    engine = sa.create_engine(resolve_url(settings.store.meta_url, target.root))
    try:
        meta.migrate(engine)
        _check_unlocked(events_path)
        if not force:
            _refuse_data(engine, events_path)
        with _swapped(events_path, contents.events, target.root / SETTINGS_FILE, settings_file), engine.begin() as conn:
            _replace_rows(conn, rows)  # the files go back as they were when this transaction fails
    finally:
        engine.dispose()
    tighten(Storage(target.root, settings))  # restored files are owner-only, like those of a new workspace
    counts = {name: len(r) for name, r in rows.items()}
    return Summary(str(archive), str(target.root), _head(), counts, event_counts(events_path))


def _head() -> str | None:
    head: str | None = ScriptDirectory(str(meta.MIGRATIONS)).get_current_head()
    return head


def _settings_to_restore(target: _Target, contents: _Contents, meta_url: str | None) -> Path:
    """The settings file the restored workspace gets, checked: its own when it is one, else the backup's."""
    text = (target.root / SETTINGS_FILE if target.existing else contents.settings).read_text("utf-8")
    if meta_url is not None:
        text = set_meta_url(text, meta_url)
    path = contents.folder / "settings.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_settings(path)
    except ValueError as exc:  # pydantic's ValidationError and TOML's decode error are both ValueErrors
        raise BackupError(f"the settings to restore are invalid: {exc}") from None
    return path


def _refuse_data(engine: sa.Engine, events_path: Path) -> None:
    where = engine.url.render_as_string(hide_password=True)
    with engine.connect() as conn:
        if _holds_rows(conn):
            raise BackupError(f"the metadata store {where} holds data already; pass --force to replace it")
    if any(event_counts(events_path).values()):
        raise BackupError(f"the events store {events_path} holds data already; pass --force to replace it")


@contextmanager
def _swapped(events: Path, new_events: Path, settings: Path, new_settings: Path) -> Iterator[None]:
    """Put the restored files in place, keeping the old ones aside until the block ends: then they are dropped,
    or put back when it failed."""
    # An old write-ahead log would be replayed into the new events store: it goes aside with its file.
    olds = [settings, events, events.with_name(events.name + ".wal")]
    aside = [(old, old.with_name(old.name + ".before-restore")) for old in olds if old.exists()]
    placed: list[Path] = []
    try:
        for old, kept in aside:
            os.replace(old, kept)
        for new, dest in ((new_settings, settings), (new_events, events)):
            if new.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(new, dest)
                placed.append(dest)
        yield
    except BaseException:
        for dest in placed:
            dest.unlink(missing_ok=True)
        for old, kept in aside:
            if kept.exists():
                os.replace(kept, old)
        raise
    for _, kept in aside:
        kept.unlink()
