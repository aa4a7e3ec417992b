"""Write keys for the live ingestion endpoint: they send events and read nothing.

A key is random and shown once; only its SHA-256 is kept. Each key names the `source` its events are stored
under, so dedupe on `messageId` is per source, like a file's events.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from touchlens.store.meta import utc, write_keys

KEY_SCOPES = ("ingest",)
_SOURCE = re.compile(r"[A-Za-z0-9_.:-]{1,120}")


@dataclass(frozen=True)
class WriteKey:
    id: int
    scope: str
    label: str
    source: str
    created_by: str
    created_at: str
    revoked: bool


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def add_key(engine: sa.Engine, scope: str, label: str, source: str, created_by: str) -> tuple[int, str]:
    """A new key: (its id, the key itself, shown once)."""
    if scope not in KEY_SCOPES:
        raise ValueError(f"unknown scope '{scope}'; key scopes are: {', '.join(KEY_SCOPES)}")
    if not _SOURCE.fullmatch(source):
        raise ValueError(f"source '{source}': 1 to 120 letters, digits or _ . : -")
    key = "tlw_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        result = conn.execute(
            sa.insert(write_keys).values(
                key_hash=_digest(key),
                scope=scope,
                label=label[:200],
                source=source,
                created_by=created_by[:200],
                created_at=datetime.now(UTC),
            )
        )
        key_id = result.inserted_primary_key
    return int(key_id[0]) if key_id else 0, key


def find_key(engine: sa.Engine, key: str) -> WriteKey | None:
    """The live key with this secret, or None (unknown or revoked)."""
    query = sa.select(write_keys).where(write_keys.c.key_hash == _digest(key), write_keys.c.revoked_at.is_(None))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return _key(row) if row else None


def list_keys(engine: sa.Engine) -> list[WriteKey]:
    with engine.connect() as conn:
        return [_key(r) for r in conn.execute(sa.select(write_keys).order_by(write_keys.c.id))]


def revoke_key(engine: sa.Engine, key_id: int) -> bool:
    with engine.begin() as conn:
        query = sa.update(write_keys).where(write_keys.c.id == key_id, write_keys.c.revoked_at.is_(None))
        return conn.execute(query.values(revoked_at=datetime.now(UTC))).rowcount > 0


def _key(row: sa.Row[tuple[object, ...]]) -> WriteKey:
    return WriteKey(
        id=row.id,
        scope=row.scope,
        label=row.label,
        source=row.source,
        created_by=row.created_by,
        created_at=utc(row.created_at).isoformat(),  # the same text from SQLite and PostgreSQL
        revoked=row.revoked_at is not None,
    )
