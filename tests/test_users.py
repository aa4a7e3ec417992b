"""Users, sessions and tokens in the metadata store: hashed at rest, scoped, expiring; on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

import touchlens
from touchlens.store import users
from touchlens.store.meta import sessions


@pytest.fixture
def engine(meta_workspace: touchlens.Workspace) -> Iterator[sa.Engine]:
    engine = meta_workspace.meta_engine()
    yield engine
    engine.dispose()


def test_passwords_and_tokens_are_stored_only_as_hashes(engine) -> None:
    users.add_user(engine, "ann", "correct horse", "editor")
    token = users.add_token(engine, "ann", ("read",), "a script")
    session, _ = users.start_session(engine, users.User("ann", "editor"))
    with engine.connect() as conn:
        dump = " ".join(str(v) for table in ("users", "api_tokens", "sessions")
                        for row in conn.execute(sa.text(f"SELECT * FROM {table}")) for v in row)  # fmt: skip
    for secret in ("correct horse", token, session):
        assert secret not in dump


@pytest.mark.slow
def test_sign_in_checks_the_password_and_unknown_names_fail_alike(engine) -> None:
    users.add_user(engine, "ann", "correct horse", "viewer")
    assert users.authenticate(engine, "ann", "correct horse") == users.User("ann", "viewer")
    assert users.authenticate(engine, "ann", "wrong horse") is None
    assert users.authenticate(engine, "bob", "correct horse") is None


def test_roles_and_scopes(engine) -> None:
    users.add_user(engine, "ed", "password1", "editor")
    reader = users.token_user(engine, users.add_token(engine, "ed", ("read",)))
    assert reader is not None
    assert reader.can("viewer")
    assert not reader.can("editor", "write")  # a read token never writes, whatever the role
    writer = users.token_user(engine, users.add_token(engine, "ed", ("read", "write")))
    assert writer is not None
    assert writer.can("editor", "write")
    assert not writer.can("admin", "write")  # nor exceeds the role
    assert users.token_user(engine, "tl_not-a-token") is None
    with pytest.raises(ValueError, match="scopes"):
        users.add_token(engine, "ed", ("delete",))
    with pytest.raises(ValueError, match="role"):
        users.add_user(engine, "x", "password1", "owner")
    with pytest.raises(ValueError, match="8 characters"):
        users.add_user(engine, "x", "short", "viewer")


def test_sessions_expire_and_end(engine) -> None:
    users.add_user(engine, "ann", "password1", "viewer")
    token, csrf = users.start_session(engine, users.User("ann", "viewer"))
    found = users.session_user(engine, token)
    assert found == (users.User("ann", "viewer"), csrf)
    with engine.begin() as conn:
        conn.execute(sa.update(sessions).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert users.session_user(engine, token) is None
    token, _ = users.start_session(engine, users.User("ann", "viewer"))
    users.end_session(engine, token)
    assert users.session_user(engine, token) is None
    assert users.remove_user(engine, "ann")
    assert users.list_users(engine) == []


def test_session_times_are_the_same_instant_on_every_backend(engine) -> None:
    users.add_user(engine, "ann", "password1", "viewer")
    start = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    token, _ = users.start_session(engine, users.User("ann", "viewer"), now=start)
    assert users.session_user(engine, token, now=start + users.SESSION_IDLE - timedelta(seconds=1)) is not None
    assert users.session_user(engine, token, now=start + users.SESSION_LIFETIME) is None


def test_a_user_name_postgresql_cannot_store_is_refused_everywhere(engine) -> None:
    with pytest.raises(ValueError, match="user name"):
        users.add_user(engine, "ann\x00", "password1", "viewer")
    assert users.list_users(engine) == []


def _touchlens(root: object, *args: str, stdin: str | None) -> subprocess.CompletedProcess[str]:
    """The installed command in its own process, its standard input a pipe (never a terminal)."""
    command = [sys.executable, "-c", "from touchlens.cli import main; main()", "-w", str(root), *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)


def test_users_add_reads_the_password_from_stdin_and_says_what_to_do_without_a_terminal(tmp_path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    added = _touchlens(ws.root, "users", "add", "ann", "--role", "viewer", "--password-stdin", stdin="s3cret pass\n")
    assert added.returncode == 0, added.stderr
    assert users.authenticate(ws.meta_engine(), "ann", "s3cret pass") is not None  # the newline is not in it
    asked = _touchlens(ws.root, "users", "add", "bob", "--role", "viewer", stdin="")
    assert asked.returncode == 2
    assert "--password-stdin" in asked.stderr
    assert "Traceback" not in asked.stderr
    both = _touchlens(ws.root, "users", "add", "cy", "--role", "viewer", "--password", "x" * 9, "--password-stdin",
                      stdin="y" * 9)  # fmt: skip
    assert both.returncode == 2
    assert [u.name for u in ws.users.list()] == ["ann"]
