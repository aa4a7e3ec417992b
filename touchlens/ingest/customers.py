"""Customer attributes from a CSV (one customer a row): merged into the customers table, personas reassigned."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from touchlens.ingest.readers.base import ReaderError
from touchlens.store.events import scalar, transaction

UPSERT_SQL = """
INSERT INTO customers (customer_id, attributes)
SELECT customer_id, CAST(to_json(attributes) AS JSON) FROM (
  SELECT NULLIF(trim(customer_id), '') AS customer_id, attributes, _row FROM _cbatch
) WHERE customer_id IS NOT NULL
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


def ingest_customers(con: duckdb.DuckDBPyConnection, path: Path, id_column: str | None = None) -> dict[str, int]:
    """Upsert every row's columns (except the id) as attributes; returns read / updated / quarantined."""
    table = pa_csv.read_csv(str(path), convert_options=pa_csv.ConvertOptions(strings_can_be_null=True))
    names = table.schema.names
    column = id_column or next((c for c in ("customer_id", "user_id", "id") if c in names), None)
    if column is None or column not in names:
        raise ReaderError(f"{path}: no customer id column; columns are: {', '.join(names)} (use --id-column COLUMN)")
    others = [c for c in names if c != column]
    attributes = pa.StructArray.from_arrays([table.column(c).combine_chunks() for c in others], names=others)
    batch = pa.table(
        {
            "_row": pa.array(range(2, table.num_rows + 2), type=pa.int64()),
            "customer_id": pc.cast(table.column(column), pa.string()),
            "attributes": attributes,
        }
    )
    with transaction(con):
        con.register("_cbatch", batch)
        bad = int(scalar(con, "SELECT count(*) FROM _cbatch WHERE NULLIF(trim(customer_id), '') IS NULL"))
        con.execute(QUARANTINE_SQL, [str(path), datetime.now(UTC), str(path)])
        con.execute(UPSERT_SQL)
        con.unregister("_cbatch")
    return {"read": table.num_rows, "updated": table.num_rows - bad, "quarantined": bad}
