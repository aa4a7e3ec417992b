"""Local users, sessions and API tokens in the metadata store.

Passwords are hashed with Argon2id; session and API tokens are random and only their SHA-256 is stored, so a
copy of the database gives no way in. API tokens expire, can be revoked one by one (by a public id that is not
the secret) and end, with every session, when their user's password is set again.

User names are stored in Unicode NFKC form; two names that differ only in case, in compatibility forms (full-width
letters, ligatures) or in surrounding spaces are the same person: a new user may not take such a look-alike of an
existing name, and signing in with one finds the existing user.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from touchlens.errors import TouchlensError
from touchlens.store.meta import api_tokens, sessions, users
from touchlens.vocabulary import MAX_TOKEN_DAYS

ROLES = ("viewer", "editor", "admin")
SCOPES = ("read", "write")
SESSION_LIFETIME = timedelta(hours=12)  # from sign-in, however active the session is
SESSION_IDLE = timedelta(hours=2)  # without a request
# The idle deadline moves on at most this often: one write a minute per session, not one per request.
SESSION_SLIDE_STEP = timedelta(minutes=1)
MIN_PASSWORD, MAX_PASSWORD = 8, 1024  # characters; the upper bound refuses a huge text before hashing it
MAX_NAME = 120
TOKEN_DAYS = 90  # a token's life when the caller names none (the CLI passes `[web] token_days`)
# Characters that do not show, or show as something else: a name holding one looks like another name.
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_hasher = PasswordHasher()


class CredentialError(TouchlensError, ValueError):
    """A user name, password, role, scope or token lifetime that the store refuses; the message says why.
    A ValueError too, so callers that caught the ValueError it used to be keep working."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    scopes: tuple[str, ...] = SCOPES  # a session may do what the role allows; a token only its scopes

    def can(self, role: str, scope: str = "read") -> bool:
        """Whether this user has at least `role` and, through a token, the `scope`."""
        return ROLES.index(self.role) >= ROLES.index(role) and scope in self.scopes


@dataclass(frozen=True)
class Token:
    """What is known of an API token besides its secret: enough to list it and to revoke it."""

    id: str
    user: str
    scopes: tuple[str, ...]
    label: str
    created_at: datetime
    expires_at: datetime

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now if now is not None else _now())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def name_key(name: str) -> str:
    """What two user names must differ in to name two people: NFKC, case-folded, surrounding spaces ignored."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).strip().casefold())


def check_password(password: str) -> None:
    """Refuse a password that is too short, too long to hash cheaply, or nothing but spaces."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise CredentialError(f"a password has at least {MIN_PASSWORD} characters and at most {MAX_PASSWORD}")
    if not password.strip():
        raise CredentialError("a password cannot be only spaces")


def _new_name(name: str) -> str:
    """The stored form of a new user's name (NFKC), or CredentialError saying what is wrong with it."""
    stored = unicodedata.normalize("NFKC", name)
    if not 1 <= len(stored) <= MAX_NAME:
        raise CredentialError(f"a user name is 1 to {MAX_NAME} characters")
    if stored != stored.strip():
        raise CredentialError("a user name cannot begin or end with a space")
    if any(unicodedata.category(c) in _HIDDEN or (c.isspace() and c != " ") for c in stored):
        raise CredentialError("a user name cannot hold control, invisible or line-breaking characters")
    return stored


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise CredentialError(f"unknown role '{role}'; roles are: {', '.join(ROLES)}")


def add_user(engine: sa.Engine, name: str, password: str, role: str) -> str:
    """Create a user, or replace the password and role of an existing one; returns the name as stored.

    A new name is stored in NFKC form and may not look like an existing one (see `name_key`). Setting the
    password of an existing user ends all their sessions and API tokens."""
    _check_role(role)
    check_password(password)
    values = {"password_hash": _hasher.hash(password), "role": role}
    with engine.begin() as conn:
        if _storable(name) and _has_user(conn, name):  # as stored, even a name stored before this policy
            _reset(conn, name, values)
            return name
        stored = _new_name(name)
        twin = _look_alike(conn, stored)
        if twin == stored:  # the NFKC form of what was typed is an existing name: that user
            _reset(conn, stored, values)
        elif twin is not None:
            raise CredentialError(f"'{stored}' looks the same as the existing user '{twin}'; use that name")
        else:
            conn.execute(sa.insert(users).values(name=stored, **values))
    return stored


def _has_user(conn: sa.Connection, name: str) -> bool:
    return conn.execute(sa.select(users.c.name).where(users.c.name == name)).first() is not None


def _look_alike(conn: sa.Connection, name: str) -> str | None:
    """An existing user whose name is the same as `name` but for case, compatibility forms or spaces."""
    key = name_key(name)
    return next((n for n in conn.execute(sa.select(users.c.name)).scalars() if name_key(n) == key), None)


def _reset(conn: sa.Connection, name: str, values: dict[str, str]) -> None:
    conn.execute(sa.update(users).where(users.c.name == name).values(**values))
    # A new password signs the user out everywhere: whoever knew the old one keeps no session and no token.
    conn.execute(sa.delete(sessions).where(sessions.c.user == name))
    conn.execute(sa.delete(api_tokens).where(api_tokens.c.user == name))


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


@functools.cache
def _dummy_hash() -> str:
    """A hash of no one's password, made once and lazily (hashing costs as much as a sign-in), so an unknown
    name costs one verification, exactly as a known name with a wrong password does."""
    return _hasher.hash(secrets.token_urlsafe(16))


def authenticate(engine: sa.Engine, name: str, password: str) -> User | None:
    """The user when the password is right; None otherwise. An unknown name takes the same work as a known one
    (one Argon2 verification), so the time taken does not tell which names exist."""
    row = _sign_in_row(engine, name)
    if len(password) > MAX_PASSWORD:  # refused before hashing, whatever the name: no name is told apart
        return None
    try:
        _hasher.verify(row.password_hash if row else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    return User(row.name, row.role) if row else None


def _sign_in_row(engine: sa.Engine, name: str) -> sa.Row[str, str, str] | None:
    """The user `name` signs in as: that stored name, else the one user it is a look-alike of (`name_key`).
    Every user is read either way, so a known name and an unknown one cost the same."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users.c.name, users.c.role, users.c.password_hash)).all()
    if len(name) > 4 * MAX_NAME:  # no stored name is that long, even before NFKC shortens it
        return None
    key = name_key(name)
    exact = [r for r in rows if r.name == name]
    folded = [r for r in rows if name_key(r.name) == key]
    return exact[0] if exact else (folded[0] if len(folded) == 1 else None)


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


def issue_token(
    engine: sa.Engine,
    user: str,
    scopes: tuple[str, ...],
    label: str = "",
    days: int = TOKEN_DAYS,
    now: datetime | None = None,
) -> tuple[str, Token]:
    """A new API token for `user` with `scopes`, lasting `days`: (the secret, shown once; what is kept of it).
    Only the secret's hash is stored, beside a public id that names the token in lists and revocations."""
    _check_token(scopes, days)
    created = now if now is not None else _now()
    token = "tl_" + secrets.token_urlsafe(32)
    kept = Token(
        secrets.token_hex(6), user, scopes, label.replace("\x00", "")[:200], created, created + timedelta(days=days)
    )
    with engine.begin() as conn:
        if not _storable(user) or not _has_user(conn, user):
            raise CredentialError(f"unknown user '{user}'")
        conn.execute(
            sa.insert(api_tokens).values(
                token_hash=_digest(token),
                id=kept.id,
                user=user,
                scopes=",".join(scopes),
                label=kept.label,
                created_at=created,
                expires_at=kept.expires_at,
            )
        )
    return token, kept


def _check_token(scopes: tuple[str, ...], days: int) -> None:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise CredentialError(f"scopes are: {', '.join(SCOPES)}")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise CredentialError(f"a token lasts 1 to {MAX_TOKEN_DAYS} days")


def add_token(engine: sa.Engine, user: str, scopes: tuple[str, ...], label: str = "", days: int = TOKEN_DAYS) -> str:
    """A new API token for `user` with `scopes`; the token is shown once and only its hash is kept."""
    return issue_token(engine, user, scopes, label, days)[0]


def token_user(engine: sa.Engine, token: str, now: datetime | None = None) -> User | None:
    """The user a token acts as, with its scopes, until it expires or is revoked (then None)."""
    query = (
        sa.select(users.c.name, users.c.role, api_tokens.c.scopes, api_tokens.c.expires_at)
        .join(users, users.c.name == api_tokens.c.user)
        .where(api_tokens.c.token_hash == _digest(token))
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None or _aware(row.expires_at) <= (now if now is not None else _now()):
        return None
    return User(row.name, row.role, tuple(row.scopes.split(",")))


def list_tokens(engine: sa.Engine, user: str | None = None) -> list[Token]:
    """Every API token (of one user), expired ones too, oldest first; never a secret or its hash."""
    query = sa.select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
    if user is not None:
        query = query.where(api_tokens.c.user == user)
    with engine.connect() as conn:
        rows = conn.execute(query).all() if user is None or _storable(user) else []
    return [_token(r._mapping) for r in rows]


def _token(m: sa.RowMapping) -> Token:
    scopes = tuple(str(m["scopes"]).split(","))
    return Token(m["id"], m["user"], scopes, m["label"], _aware(m["created_at"]), _aware(m["expires_at"]))


def revoke_token(engine: sa.Engine, token_id: str) -> Token | None:
    """End the token with this public id at once; what it was, or None when no token has that id."""
    if not _storable(token_id):
        return None
    with engine.begin() as conn:
        row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).first()
        if row is None:
            return None
        conn.execute(sa.delete(api_tokens).where(api_tokens.c.id == token_id))
    return _token(row._mapping)


def _storable(name: str) -> bool:
    """Whether a name could be stored: PostgreSQL refuses NUL even in a query, and no stored name holds one."""
    return "\x00" not in name


def _aware(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)
