"""The admin half of the `Workspace` facade: users, their sessions and API tokens, write keys, backups and the
audit log.

Every change made here records its own audit entry naming `actor` (``"library"`` unless the caller says who:
``"cli:ann"`` at the command line, the signed-in user's name on the web), so no caller, library or edge, changes
the workspace unseen. Example::

    ws = touchlens.open("acme")
    ws.users.add("ann", "correct horse", "editor", actor="cli:ops")
    ws.keys.create(label="shop backend", actor="cli:ops")
    ws.backup.create(Path("acme.tar.gz"), actor="cli:ops")
    ws.audit_entries(limit=10, action="user-change")
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from touchlens.errors import BadOption
from touchlens.locate import ENV_VAR, find_root
from touchlens.store import audit
from touchlens.store import keys as key_store
from touchlens.store import users as user_store
from touchlens.store.keys import WriteKey
from touchlens.store.users import (
    ROLES,
    SCOPES,
    SESSION_LIFETIME,
    TOKEN_DAYS,
    CredentialError,
    Token,
    User,
    name_key,
)
from touchlens.store.workspace import open_storage
from touchlens.vocabulary import ACTIONS, MAX_TOKEN_DAYS

if TYPE_CHECKING:
    from touchlens.store.backup import BackupError, OpenEvents, Summary

LIBRARY = "library"  # the actor of a change whose caller did not say who made it

__all__ = [
    "ACTIONS",
    "ENV_VAR",
    "LIBRARY",
    "MAX_TOKEN_DAYS",
    "ROLES",
    "SCOPES",
    "SESSION_LIFETIME",
    "TOKEN_DAYS",
    "BackupError",
    "Backups",
    "CredentialError",
    "Keys",
    "Summary",
    "Token",
    "User",
    "Users",
    "WriteKey",
    "entries",
    "name_key",
    "record",
    "restore",
]


def record(engine: sa.Engine, actor: str, action: str, target: str = "", **detail: Any) -> None:
    """One audit entry: `actor` did `action` (one of ACTIONS) to `target`; `detail` holds no secret."""
    audit.record(engine, actor, action, target, **detail)


def entries(engine: sa.Engine, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
    """The newest `limit` entries (of one action), newest first; an unknown action names those there are."""
    if action is not None and action not in ACTIONS:
        raise BadOption(f"unknown action '{action}'; actions are: {', '.join(ACTIONS)}")
    return audit.entries(engine, limit, action)


class Users:
    """Users of the web app with their roles, their sessions and their API tokens."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def list(self) -> builtins.list[User]:
        return user_store.list_users(self._engine)

    def add(self, name: str, password: str, role: str, *, actor: str = LIBRARY) -> tuple[str, bool]:
        """Add a user, or set an existing one's password and role (ending their sessions and tokens);
        (the name as stored, whether the user existed already)."""
        before = {u.name for u in self.list()}
        stored = user_store.add_user(self._engine, name, password, role)
        existed = stored in before  # the stored name: NFKC may have changed what was sent
        change = "update" if existed else "add"
        record(self._engine, actor, "user-change", f"user {stored}", role=role, change=change)
        return stored, existed

    def remove(self, name: str, *, actor: str = LIBRARY) -> bool:
        """Remove a user with their sessions and tokens; False (and no entry) when there is no such user."""
        if not user_store.remove_user(self._engine, name):
            return False
        record(self._engine, actor, "user-change", f"user {name}", change="remove")
        return True

    def sign_in(self, name: str, password: str, *, address: str) -> tuple[User, str] | None:
        """Check the password and start a session: (the user, the session's secret), or None. Either way the
        attempt is recorded, with the client's address; a failure as `anonymous`, with the name tried."""
        user = user_store.authenticate(self._engine, name, password)
        if user is None:
            record(self._engine, "anonymous", "sign-in-failed", f"user {name}", address=address)
            return None
        session, _ = user_store.start_session(self._engine, user)
        record(self._engine, user.name, "sign-in", f"user {user.name}", address=address)
        return user, session

    def sign_out(self, session: str, *, address: str) -> User | None:
        """End a session in the store (a copied cookie stops working) and record it; None when it had ended."""
        found = user_store.session_user(self._engine, session)
        if found is None:
            return None
        user_store.end_session(self._engine, session)
        record(self._engine, found[0].name, "sign-out", f"user {found[0].name}", address=address)
        return found[0]

    def session_user(self, session: str) -> tuple[User, str] | None:
        """The user of a live session and its CSRF token (the session's idle time starts again)."""
        return user_store.session_user(self._engine, session)

    def token_user(self, token: str) -> User | None:
        """The user an unexpired API token acts as, limited to its scopes."""
        return user_store.token_user(self._engine, token)

    def issue_token(
        self, user: str, scopes: tuple[str, ...], label: str = "", days: int = TOKEN_DAYS, *, actor: str = LIBRARY
    ) -> tuple[str, Token]:
        """A new API token for `user`: (the secret, shown once; what is kept of it)."""
        token, kept = user_store.issue_token(self._engine, user, scopes, label, days)
        record(self._engine, actor, "token-create", f"user {user}", scopes=list(scopes), label=label, id=kept.id,
               days=days)  # fmt: skip
        return token, kept

    def tokens(self, user: str | None = None) -> builtins.list[Token]:
        """Every API token (of one user): never the secret itself."""
        return user_store.list_tokens(self._engine, user)

    def revoke_token(self, token_id: str, *, actor: str = LIBRARY) -> Token | None:
        """End the token with this public id at once; what it was, or None (and no entry) when none has it."""
        found = user_store.revoke_token(self._engine, token_id)
        if found is not None:
            record(self._engine, actor, "token-revoke", f"user {found.user}", id=found.id, label=found.label)
        return found


class Keys:
    """Write keys for the live ingestion endpoint (/v1): they send events and read nothing."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def create(
        self, scope: str = "ingest", label: str = "", source: str = "live", *, actor: str = LIBRARY
    ) -> tuple[int, str]:
        """A new key: (its id, the key itself, shown once); `actor` is kept as who created it."""
        try:
            key_id, key = key_store.add_key(self._engine, scope, label, source, actor)
        except ValueError as exc:
            raise BadOption(str(exc)) from None
        record(self._engine, actor, "key-create", f"key {key_id}", scope=scope, label=label, source=source)
        return key_id, key

    def list(self) -> builtins.list[WriteKey]:
        return key_store.list_keys(self._engine)

    def find(self, key: str) -> WriteKey | None:
        """The live key with this secret, or None."""
        return key_store.find_key(self._engine, key)

    def revoke(self, key_id: int, *, actor: str = LIBRARY) -> bool:
        """Stop a key from working; False (and no entry) when no live key has the id."""
        if not key_store.revoke_key(self._engine, key_id):
            return False
        record(self._engine, actor, "key-revoke", f"key {key_id}")
        return True


class Backups:
    """The whole workspace in one file (settings, events store, metadata store) and back."""

    def __init__(self, root: Path, engine: sa.Engine, open_events: OpenEvents | None = None) -> None:
        self._root = root
        self._engine = engine
        self._open_events = open_events

    def create(self, dest: str | Path, *, actor: str = LIBRARY) -> Summary:
        """Write a backup to `dest` (a new .tar.gz); recorded with the file's name."""
        # The backup module loads DuckDB: imported here, since the CLI opens the facade for light commands too
        # (tests/test_startup.py).
        from touchlens.store import backup as backups

        dest = Path(dest)
        summary = backups.backup(self._root, dest, self._open_events)
        record(self._engine, actor, "backup", dest.name)
        return summary

    def restore(
        self,
        archive: str | Path,
        *,
        into: str | Path | None = None,
        force: bool = False,
        meta_url: str | None = None,
        actor: str = LIBRARY,
    ) -> Summary:
        """Restore `archive` over this workspace, or `into` another folder (see `restore`)."""
        return restore(archive, into if into is not None else self._root, force=force, meta_url=meta_url, actor=actor)


def restore(
    archive: str | Path, root: str | Path, *, force: bool = False, meta_url: str | None = None, actor: str = LIBRARY
) -> Summary:
    """Restore a backup into the workspace or empty folder `root`, all or nothing (no workspace needs to be open).

    Recorded in the restored store: its log comes from the backup, and this entry says where it came from."""
    from touchlens.store import backup as backups

    archive = Path(archive)
    summary = backups.restore(archive, Path(root), force=force, meta_url=meta_url)
    storage = open_storage(find_root(root))
    try:
        record(storage.meta_engine, actor, "restore", archive.name, forced=force)
    finally:
        storage.meta_engine.dispose()
    return summary


def __getattr__(name: str) -> Any:
    """`BackupError` and `Summary`, still importable from here, without loading DuckDB until one is asked for."""
    if name in ("BackupError", "Summary"):
        from touchlens.store import backup

        return getattr(backup, name)
    raise AttributeError(f"module 'touchlens.admin' has no attribute '{name}'")
