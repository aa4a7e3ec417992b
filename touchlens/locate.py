"""Finding the workspace folder, like git finds a repository: light enough for the command line to do before it
decides whether a running server should answer (no settings model, no store)."""

from __future__ import annotations

import os
from pathlib import Path

from touchlens.errors import WorkspaceError

SETTINGS_FILE = "touchlens.toml"
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
