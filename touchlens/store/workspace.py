"""The workspace folder: `touchlens.toml` plus the stores it names. Found like git finds a repository."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa
from pydantic import ValidationError

from touchlens.errors import WorkspaceError
from touchlens.locate import SETTINGS_FILE
from touchlens.store import meta
from touchlens.store.modes import PRIVATE_DIR, create_private, make_private, write_private
from touchlens.store.settings import Settings, load_settings, settings_file_text


@dataclass
class Storage:
    """The open stores of one workspace folder."""

    root: Path
    settings: Settings

    @cached_property
    def meta_engine(self) -> sa.Engine:
        url = resolve_url(self.settings.store.meta_url, self.root)
        sqlite = sqlite_file(url)
        if sqlite is not None and sqlite.parent.is_dir():
            create_private(sqlite)  # SQLite takes an empty file as a new database, and gives its journals its mode
        engine = sa.create_engine(url)
        meta.migrate(engine)
        return engine

    @property
    def events_path(self) -> Path:
        return self.root / self.settings.store.events_path

    def private_files(self) -> list[Path]:
        """The files of this workspace that only its owner may read: settings (the salt), both stores and their
        journals (whichever exist)."""
        files = [self.root / SETTINGS_FILE, *_with_journals(self.events_path, (".wal",))]
        sqlite = sqlite_file(resolve_url(self.settings.store.meta_url, self.root))
        return files + (_with_journals(sqlite, ("-wal", "-shm", "-journal")) if sqlite is not None else [])


def _with_journals(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return [path, *(path.with_name(path.name + suffix) for suffix in suffixes)]


def tighten(storage: Storage) -> None:
    """Make the workspace folder and its files owner-only (0700, 0600), for one created before they were."""
    make_private(storage.root)
    for path in storage.private_files():
        make_private(path)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    parsed = sa.make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def resolve_url(url: str, root: Path) -> str:
    """A relative SQLite path in the settings is relative to the workspace folder."""
    parsed = sa.make_url(url)
    database = parsed.database
    local = parsed.get_backend_name() == "sqlite" and database and database != ":memory:"
    if local and not Path(str(database)).is_absolute():
        parsed = parsed.set(database=str(root / str(database)))
    return parsed.render_as_string(hide_password=False)


def open_storage(root: Path) -> Storage:
    try:
        settings = load_settings(root / SETTINGS_FILE)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise WorkspaceError(f"{root / SETTINGS_FILE}: invalid settings: {details}") from None
    except ValueError as exc:  # the TOML itself does not parse
        raise WorkspaceError(f"{root / SETTINGS_FILE}: invalid settings: {exc}") from None
    storage = Storage(root, settings)
    tighten(storage)  # a workspace made before files were owner-only becomes so the next time it is used
    return storage


def init_storage(root: Path) -> tuple[Storage, bool]:
    """Create the folder, its settings file and the metadata schema. Returns (storage, created)."""
    root = root.expanduser().resolve()
    root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    settings_path = root / SETTINGS_FILE
    created = not settings_path.exists()
    if created:
        write_private(settings_path, settings_file_text())
    storage = open_storage(root)
    _ = storage.meta_engine  # creates and migrates the metadata store now, not on first use
    return storage, created
