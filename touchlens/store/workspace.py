"""The workspace folder: `touchlens.toml` plus the stores it names. Found like git finds a repository."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa
from pydantic import ValidationError

from touchlens.errors import WorkspaceError
from touchlens.store import meta
from touchlens.store.settings import SETTINGS_FILE, Settings, load_settings, settings_file_text

ENV_VAR = "TOUCHLENS_WORKSPACE"


def find_root(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """The workspace: `explicit`, else `$TOUCHLENS_WORKSPACE`, else the nearest `touchlens.toml` upward."""
    chosen = explicit or os.environ.get(ENV_VAR)
    if chosen:
        root = Path(chosen).expanduser().resolve()
        if not (root / SETTINGS_FILE).is_file():
            raise WorkspaceError(
                f"{root} is not a touchlens workspace (no {SETTINGS_FILE}); run: touchlens init {root}"
            )
        return root
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / SETTINGS_FILE).is_file():
            return folder
    raise WorkspaceError(
        f"no touchlens workspace here or above {start}; run 'touchlens init', or pass --workspace DIR or set {ENV_VAR}"
    )


@dataclass
class Storage:
    """The open stores of one workspace folder."""

    root: Path
    settings: Settings

    @cached_property
    def meta_engine(self) -> sa.Engine:
        engine = sa.create_engine(resolve_url(self.settings.store.meta_url, self.root))
        meta.migrate(engine)
        return engine

    @property
    def events_path(self) -> Path:
        return self.root / self.settings.store.events_path


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
    return Storage(root, settings)


def init_storage(root: Path) -> tuple[Storage, bool]:
    """Create the folder, its settings file and the metadata schema. Returns (storage, created)."""
    root = root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    settings_path = root / SETTINGS_FILE
    created = not settings_path.exists()
    if created:
        settings_path.write_text(settings_file_text(), encoding="utf-8")
    storage = open_storage(root)
    _ = storage.meta_engine  # creates and migrates the metadata store now, not on first use
    return storage, created
