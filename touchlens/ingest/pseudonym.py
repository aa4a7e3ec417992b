"""Pseudonymisation at ingest: customer ids replaced by a salted HMAC-SHA256 before anything is stored.

The salt lives in the settings (``[privacy] salt`` or ``TOUCHLENS_PRIVACY__SALT``), never in the store, so the
store alone cannot be joined back to real ids; the same id always gives the same pseudonym, so journeys hold.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from touchlens.errors import TouchlensError

ID_COLUMNS = ("customer_id", "anonymous_id")
_BLOCK = 64  # SHA-256's block size: HMAC pads the key to it

# HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)), in the engine so a batch costs one vectorised query.
HMAC_SQL = (
    "CASE WHEN NULLIF(trim({c}), '') IS NULL THEN {c} "
    "ELSE sha256($opad || unhex(sha256($ipad || encode(trim({c}))))) END"
)


class PseudonymError(TouchlensError):
    """Pseudonymisation is on but no usable salt is set."""


@dataclass(frozen=True)
class Pseudonymiser:
    """Replaces customer ids with HMAC-SHA256(salt, id) in hex."""

    salt: str

    def __post_init__(self) -> None:
        if len(self.salt) < 16:
            raise PseudonymError(
                "[privacy] pseudonymise is on but the salt is shorter than 16 characters; set [privacy] salt "
                "(or TOUCHLENS_PRIVACY__SALT) to a long random secret and keep it out of the workspace's backups"
            )

    def one(self, customer_id: str) -> str:
        """The pseudonym of one id (what `touchlens forget` looks for)."""
        return hmac.new(self.salt.encode(), customer_id.strip().encode(), hashlib.sha256).hexdigest()

    def batches(self, con: duckdb.DuckDBPyConnection, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Each batch with its id columns replaced."""
        for batch in batches:
            yield self.batch(con, batch)

    def batch(self, con: duckdb.DuckDBPyConnection, batch: pa.RecordBatch) -> pa.RecordBatch:
        """One batch with its ids replaced, computed on `con` (a cursor only this thread uses)."""
        present = [c for c in ID_COLUMNS if c in batch.schema.names]
        if not present or batch.num_rows == 0:
            return batch
        con.register("_pseudo", batch)
        try:
            replaced = ", ".join(f"{HMAC_SQL.format(c=c)} AS {c}" for c in present)
            sql = f"SELECT * REPLACE ({replaced}) FROM _pseudo"  # noqa: S608 - our own column names only
            table = con.sql(sql, params=self._pads()).to_arrow_table()
        finally:
            con.unregister("_pseudo")
        return table.cast(batch.schema).to_batches(max_chunksize=max(batch.num_rows, 1))[0]

    def _pads(self) -> dict[str, bytes]:
        key = self.salt.encode()
        key = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
        key = key.ljust(_BLOCK, b"\0")
        return {"ipad": bytes(b ^ 0x36 for b in key), "opad": bytes(b ^ 0x5C for b in key)}
