"""Local users, sessions and API tokens in the metadata store.

Passwords are hashed with Argon2id; session and API tokens are random and only their SHA-256 is stored, so a
copy of the database gives no way in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from touchlens.store.meta import api_tokens, sessions, users

ROLES = ("viewer", "editor", "admin")
SCOPES = ("read", "write")
SESSION_LIFETIME = timedelta(hours=12)  # from sign-in, however active the session is
SESSION_IDLE = timedelta(hours=2)  # without a request
# The idle deadline moves on at most this often: one write a minute per session, not one per request.
SESSION_SLIDE_STEP = timedelta(minutes=1)
_hasher = PasswordHasher()


@dataclass(frozen=True)
class User:
    name: str
    role: str
    scopes: tuple[str, ...] = SCOPES  # a session may do what the role allows; a token only its scopes

    def can(self, role: str, scope: str = "read") -> bool:
        """Whether this user has at least `role` and, through a token, the `scope`."""
        return ROLES.index(self.role) >= ROLES.index(role) and scope in self.scopes


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(engine: sa.Engine, name: str, password: str, role: str) -> None:
    """Create a user, or replace the password and role of an existing one."""
    if role not in ROLES:
        raise ValueError(f"unknown role '{role}'; roles are: {', '.join(ROLES)}")
    if not name.strip() or len(name) > 120 or "\x00" in name:
        raise ValueError("a user name is 1 to 120 characters, none of them NUL")
    if len(password) < 8:
        raise ValueError("a password has at least 8 characters")
    values = {"password_hash": _hasher.hash(password), "role": role}
    with engine.begin() as conn:
        found = conn.execute(sa.select(users.c.name).where(users.c.name == name)).first()
        if found:
            conn.execute(sa.update(users).where(users.c.name == name).values(**values))
            # A new password signs the user out everywhere: whoever knew the old one keeps no session.
            conn.execute(sa.delete(sessions).where(sessions.c.user == name))
        else:
            conn.execute(sa.insert(users).values(name=name, **values))


def list_users(engine: sa.Engine) -> list[User]:
    with engine.connect() as conn:
        return [
            User(r.name, r.role) for r in conn.execute(sa.select(users.c.name, users.c.role).order_by(users.c.name))
        ]


def remove_user(engine: sa.Engine, name: str) -> bool:
    if not _storable(name):
        return False
    with engine.begin() as conn:
        conn.execute(sa.delete(sessions).where(sessions.c.user == name))
        conn.execute(sa.delete(api_tokens).where(api_tokens.c.user == name))
        return conn.execute(sa.delete(users).where(users.c.name == name)).rowcount > 0


def authenticate(engine: sa.Engine, name: str, password: str) -> User | None:
    """The user when the password is right; None otherwise (the same answer for an unknown name)."""
    row = None
    if _storable(name):
        with engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    stored = row.password_hash if row else _hasher.hash("not a user: spend the same time")
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(row.name, row.role) if row else None


def _now() -> datetime:
    return datetime.now(UTC)


def start_session(engine: sa.Engine, user: User, now: datetime | None = None) -> tuple[str, str]:
    """A new session for `user`: (session token for the cookie, CSRF token for forms and scripts).

    The token starts with its sign-in time; only its hash is stored, so the time cannot be altered, and it caps
    the session at SESSION_LIFETIME however active it stays."""
    now = now if now is not None else _now()
    token, csrf = f"{int(now.timestamp())}.{secrets.token_urlsafe(32)}", secrets.token_urlsafe(32)
    expires = now + min(SESSION_IDLE, SESSION_LIFETIME)
    with engine.begin() as conn:
        conn.execute(sa.delete(sessions).where(sessions.c.expires_at < now))
        conn.execute(
            sa.insert(sessions).values(token_hash=_digest(token), user=user.name, csrf=csrf, expires_at=expires)
        )
    return token, csrf


def session_user(engine: sa.Engine, token: str, now: datetime | None = None) -> tuple[User, str] | None:
    """The signed-in user and the session's CSRF token, while the session lasts (each call counts as activity)."""
    now = now if now is not None else _now()
    query = (
        sa.select(users.c.name, users.c.role, sessions.c.csrf, sessions.c.expires_at)
        .join(users, users.c.name == sessions.c.user)
        .where(sessions.c.token_hash == _digest(token))
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None or _aware(row.expires_at) <= now:
        return None
    _slide(engine, token, _aware(row.expires_at), now)
    return User(row.name, row.role), row.csrf


def _slide(engine: sa.Engine, token: str, expires: datetime, now: datetime) -> None:
    """Move the idle deadline to SESSION_IDLE from now, never past the session's absolute end."""
    wanted = min(now + SESSION_IDLE, _absolute_end(token, expires))
    if wanted - expires < SESSION_SLIDE_STEP:
        return
    with engine.begin() as conn:
        conn.execute(sa.update(sessions).where(sessions.c.token_hash == _digest(token)).values(expires_at=wanted))


def _absolute_end(token: str, stored: datetime) -> datetime:
    """Sign-in time (from the token) plus the lifetime; a token without one ends at its stored expiry."""
    issued, dot, _ = token.partition(".")
    if not dot or not issued.isdigit():
        return stored
    return datetime.fromtimestamp(int(issued), UTC) + SESSION_LIFETIME


def end_session(engine: sa.Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(sessions).where(sessions.c.token_hash == _digest(token)))


def add_token(engine: sa.Engine, user: str, scopes: tuple[str, ...], label: str = "") -> str:
    """A new API token for `user` with `scopes`; the token is shown once and only its hash is kept."""
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"scopes are: {', '.join(SCOPES)}")
    token = "tl_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        if not _storable(user) or conn.execute(sa.select(users.c.name).where(users.c.name == user)).first() is None:
            raise ValueError(f"unknown user '{user}'")
        label = label.replace("\x00", "")[:200]
        conn.execute(
            sa.insert(api_tokens).values(token_hash=_digest(token), user=user, scopes=",".join(scopes), label=label)
        )
    return token


def token_user(engine: sa.Engine, token: str) -> User | None:
    query = (
        sa.select(users.c.name, users.c.role, api_tokens.c.scopes)
        .join(users, users.c.name == api_tokens.c.user)
        .where(api_tokens.c.token_hash == _digest(token))
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return User(row.name, row.role, tuple(row.scopes.split(","))) if row else None


def _storable(name: str) -> bool:
    """Whether a name could be stored: PostgreSQL refuses NUL even in a query, and no stored name holds one."""
    return "\x00" not in name


def _aware(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)
