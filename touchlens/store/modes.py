"""Owner-only files and folders: a workspace holds customer data (the events store), password hashes (the
metadata store) and the salt that pseudonymises customer ids (`touchlens.toml`), and so do its backups.

Files touchlens creates are made 0600 and the workspace folder 0700; an existing one is tightened when it is
opened. Tightening only takes group and other bits away, never adds any, and leaves alone what this user does
not own (it could not change it anyway): a folder shared on purpose through its group keeps working for the
owner, and says so in the log.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_OTHERS = 0o077  # the group and other bits taken away

logger = logging.getLogger(__name__)


def make_private(path: Path) -> None:
    """Take group and other access away from `path` when it exists and is this user's; a file system that
    refuses (read-only, not POSIX) leaves it as it was, with a warning in the log."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if not st.st_mode & _OTHERS or os.name != "posix":
        return
    if st.st_uid != os.getuid():
        logger.warning("%s is open to others (mode %o) but not ours to tighten", path, stat.S_IMODE(st.st_mode))
        return
    try:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~_OTHERS)
    except OSError as exc:
        logger.warning("cannot make %s owner-only: %s", path, exc)


def create_private(path: Path) -> bool:
    """Create `path` empty and owner-only (0600) unless it exists; True when it was created. Whatever is
    written into it later (SQLite's journals copy its mode) stays owner-only."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private(path: Path, text: str) -> None:
    """Write text to `path`, which is created owner-only: it is never readable by others, not even for an
    instant (a chmod after writing would leave such an instant)."""
    create_private(path)
    make_private(path)
    path.write_text(text, encoding="utf-8")
