"""Customer attributes from a CSV (one customer a row): merged into the customers table, personas reassigned."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from touchlens.ingest.readers.base import ReaderError
from touchlens.ingest.readers.flat import arrow_csv, csv_header
from touchlens.store.events import scalar, transaction

UPSERT_SQL = """
INSERT INTO customers (customer_id, attributes)
-- Merging into {} drops null (empty) cells, so an empty cell never erases a value already known.
SELECT customer_id, json_merge_patch('{}', to_json(attributes)) FROM (
  SELECT NULLIF(trim(customer_id), '') AS customer_id, attributes, _row FROM _cbatch
) WHERE customer_id IS NOT NULL
  -- An erased customer stays erased: attributes for them are not taken in.
  AND NOT COALESCE(sha256(customer_id) IN (SELECT customer_key FROM suppressions), false)
QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY _row DESC) = 1
ON CONFLICT (customer_id) DO UPDATE SET
  attributes = json_merge_patch(COALESCE(customers.attributes, '{}'), excluded.attributes)
"""

QUARANTINE_SQL = """
INSERT INTO quarantine
SELECT 'customers', 'customers', ?, _row, 'customer_id', 'no customer id', NULL,
  CAST(to_json(attributes) AS VARCHAR), ?
FROM _cbatch b WHERE NULLIF(trim(customer_id), '') IS NULL
  AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.kind = 'customers' AND q.file = ? AND q."row" = b._row)
"""

# A row with the wrong number of cells cannot be read: kept with its text, like such rows of event files.
INVALID_SQL = """
INSERT INTO quarantine
SELECT 'customers', 'customers', ?, _row, 'row', 'wrong number of cells', NULL, raw, ?
FROM _cinvalid b
WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.kind = 'customers' AND q.file = ? AND q."row" = b._row)
"""
INVALID_SCHEMA = pa.schema([("_row", pa.int64()), ("raw", pa.string())])


def ingest_customers(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    id_column: str | None = None,
    ids: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
) -> dict[str, int]:
    """Upsert every row's columns (except the id) as text attributes; returns read / updated / quarantined.
    `ids` rewrites the batch's ids first (pseudonymisation)."""
    header = csv_header(path)
    names = header.names
    column = id_column or next((c for c in ("customer_id", "user_id", "id") if c in names), None)
    if column is None or column not in names:
        raise ReaderError(f"{path}: no customer id column; columns are: {', '.join(names)} (use --id-column COLUMN)")
    invalid: list[tuple[int, str]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.number or 0, row.text))
        return "skip"

    # Every cell is text: "02134" must stay a zip code, not become the number 2134.
    empty = pa.schema([(name, pa.string()) for name in names])
    table = pa.Table.from_batches(arrow_csv(path, header, on_invalid) if header.rows_follow else [], schema=empty)
    batch = _batch(table, column, [n for n, _ in invalid], header.lines)
    if ids is not None and batch.num_rows:
        batch = pa.Table.from_batches([ids(batch.combine_chunks().to_batches()[0])])
    unreadable = pa.table({"_row": [n for n, _ in invalid], "raw": [t for _, t in invalid]}, schema=INVALID_SCHEMA)
    now = datetime.now(UTC)
    with transaction(con):
        con.register("_cbatch", batch)
        con.register("_cinvalid", unreadable)
        bad = int(scalar(con, "SELECT count(*) FROM _cbatch WHERE NULLIF(trim(customer_id), '') IS NULL"))
        con.execute(QUARANTINE_SQL, [str(path), now, str(path)])
        con.execute(INVALID_SQL, [str(path), now, str(path)])
        con.execute(UPSERT_SQL)
        con.unregister("_cbatch")
        con.unregister("_cinvalid")
    return {"read": table.num_rows + len(invalid), "updated": table.num_rows - bad, "quarantined": bad + len(invalid)}


def _batch(table: pa.Table, column: str, invalid: list[int], header_lines: int = 1) -> pa.Table:
    """Id and attributes of each row, with its row number (after the header's lines, stepping over rows the
    parser skipped)."""
    rows = np.arange(table.num_rows, dtype=np.int64) + header_lines + 1
    for line in sorted(invalid):
        rows[rows >= line] += 1
    others = [c for c in table.schema.names if c != column]
    if others:
        attributes = pa.StructArray.from_arrays([table.column(c).combine_chunks() for c in others], names=others)
    else:
        attributes = pa.array([{}] * table.num_rows, type=pa.struct([("_", pa.string())]))
    return pa.table({"_row": rows, "customer_id": table.column(column), "attributes": attributes})
