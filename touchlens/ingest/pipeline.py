"""Events into the store: readers' batches checked, mapped to touchpoints, deduplicated, committed whole.

Each batch runs in one transaction: bad rows go to quarantine with a reason, valid rows not already stored
under (source, event_id) are inserted, customers are updated. A crash loses at most the batch in flight, and
a re-run stores nothing twice, so killing the process at any instant and running it again is safe.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from touchlens.ingest.rules import SqlExpr, compile_personas, compile_rules
from touchlens.model.map import TouchpointMap
from touchlens.store.events import scalar, transaction

Progress = Callable[[int], None]
IDENTIFY = "$identify"


@dataclass
class IngestReport:
    """Counts of one run (numbers are of this run only)."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unmapped: int = 0
    identified: int = 0
    by_touchpoint: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        for name in ("read", "accepted", "duplicates", "quarantined", "unmapped", "identified"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_touchpoint.update(other.by_touchpoint)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "unmapped": self.unmapped,
            "identified": self.identified,
            "by_touchpoint": dict(sorted(self.by_touchpoint.items())),
            "seconds": round(self.seconds, 3),
            "files": self.files,
        }


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


MACROS = """
CREATE OR REPLACE TEMP MACRO tl_epoch_seconds(d) AS
  CASE WHEN abs(d) >= 1e14 THEN d / 1e6 WHEN abs(d) >= 1e11 THEN d / 1e3 ELSE d END;
CREATE OR REPLACE TEMP MACRO tl_parse_ts(s) AS COALESCE(
  try_cast(trim(s) AS TIMESTAMPTZ),
  CASE WHEN tl_epoch_seconds(try_cast(trim(s) AS DOUBLE)) BETWEEN -1e10 AND 1e10
       THEN to_timestamp(tl_epoch_seconds(try_cast(trim(s) AS DOUBLE))) END);
"""


def _ts_sql(ts_type: pa.DataType) -> str:
    """Our timestamp parse: ISO text, or epoch seconds / ms / µs as a number; naive times are UTC."""
    if pa.types.is_timestamp(ts_type):
        return "CAST(b.ts AS TIMESTAMPTZ)"
    return "tl_parse_ts(b.ts)"


def _props_sql(props_type: pa.DataType) -> str:
    if pa.types.is_struct(props_type):
        return "CAST(to_json(b.properties) AS JSON)"
    return "CAST(b.properties AS JSON)"


STAGE_SQL = """
CREATE OR REPLACE TEMP TABLE _stage AS
SELECT *,
  CASE
    WHEN _error IS NOT NULL THEN split_part(_error, ':', 1)
    WHEN customer_id IS NULL THEN 'no customer id'
    WHEN event IS NULL THEN 'no event name'
    WHEN ts IS NULL THEN 'unparseable timestamp'
    WHEN ts < TIMESTAMPTZ '1990-01-01' OR ts > CAST(? AS TIMESTAMPTZ) + INTERVAL 1 DAY THEN 'impossible timestamp'
  END AS reason,
  CASE
    WHEN _error IS NOT NULL THEN _field
    WHEN customer_id IS NULL THEN 'customer_id'
    WHEN event IS NULL THEN 'event'
    ELSE 'ts'
  END AS field
FROM (
  SELECT b._row, b._raw, b._error, b._field,
    COALESCE(NULLIF(trim(b.customer_id), ''), NULLIF(trim(b.anonymous_id), '')) AS customer_id,
    NULLIF(trim(b.anonymous_id), '') AS anonymous_id,
    NULLIF(trim(b.session_id), '') AS session_id,
    NULLIF(trim(b.event), '') AS event,
    NULLIF(trim(b.channel), '') AS channel,
    CAST(b.ts AS VARCHAR) AS ts_raw,
    {ts} AS ts,
    {props} AS properties,
    NULLIF(trim(b.event_id), '') AS given_id
  FROM _batch b
)
"""


def _stage(con: duckdb.DuckDBPyConnection, batch: pa.RecordBatch, now: datetime) -> None:
    con.register("_batch", batch)
    schema = batch.schema
    sql = STAGE_SQL.format(
        ts=_ts_sql(schema.field("ts").type), props=_props_sql(schema.field("properties").type)
    )
    con.execute(sql, [now])
    con.unregister("_batch")


QUARANTINE_SQL = """
INSERT INTO quarantine
SELECT ?, 'events', ?, _row, field, reason,
  CASE WHEN _error IS NOT NULL THEN nullif(trim(substr(_error, length(reason) + 2)), '')
       WHEN reason IN ('unparseable timestamp', 'impossible timestamp') THEN ts_raw END,
  COALESCE(_raw, to_json({'customer_id': customer_id, 'ts': ts_raw, 'event': event, 'channel': channel,
                          'event_id': given_id, 'properties': properties})::VARCHAR),
  ?
FROM _stage s WHERE reason IS NOT NULL
  -- A re-run reports the same bad rows again but stores each only once.
  AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.kind = 'events' AND q.source = ? AND q.file = ?
                  AND q."row" = s._row AND q.reason = s.reason)
"""

NEW_SQL = """
CREATE OR REPLACE TEMP TABLE _new AS
SELECT event_id, customer_id, anonymous_id, session_id, ts, event, {touchpoint} AS touchpoint, channel, properties
FROM (
  SELECT *, COALESCE(given_id, 'fp:' || md5(concat_ws('|', customer_id, ts_raw, event, channel,
                                                      CAST(properties AS VARCHAR)))) AS event_id
  FROM _stage WHERE reason IS NULL AND event <> '{identify}'
) s
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.source = ? AND e.event_id = s.event_id)
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY _row) = 1
"""

INSERT_SQL = """
INSERT INTO events
SELECT event_id, ?, customer_id, anonymous_id, session_id, ts, event, touchpoint, channel, properties, ?
FROM _new ORDER BY customer_id, ts
"""

CUSTOMERS_SQL = """
INSERT INTO customers (customer_id, first_seen, last_seen)
SELECT customer_id, min(ts), max(ts) FROM _new GROUP BY customer_id
ON CONFLICT (customer_id) DO UPDATE SET
  first_seen = least(customers.first_seen, excluded.first_seen),
  last_seen = greatest(customers.last_seen, excluded.last_seen)
"""


@dataclass
class EventIngest:
    """One run of event ingestion into an open store, for one map."""

    con: duckdb.DuckDBPyConnection
    m: TouchpointMap
    source: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    rules: SqlExpr = field(init=False)

    def __post_init__(self) -> None:
        self.rules = compile_rules(self.m.touchpoints)
        self.con.execute(MACROS)

    def run(
        self, path: Path, batches: Iterator[pa.RecordBatch], progress: Progress | None = None
    ) -> IngestReport:
        report = IngestReport(files=[str(path)])
        started = time.perf_counter()
        log_id = self._log_start(path)
        for batch in batches:
            report.add(self._batch(path, batch))
            if progress:
                progress(batch.num_rows)
        self._log_finish(path, log_id, report)
        report.seconds = time.perf_counter() - started
        return report

    def _batch(self, path: Path, batch: pa.RecordBatch) -> IngestReport:
        report = IngestReport(read=batch.num_rows)
        con = self.con
        with transaction(con):
            _stage(con, batch, self.now)
            con.execute(QUARANTINE_SQL, [self.source, str(path), self.now, self.source, str(path)])
            report.quarantined = int(scalar(con, "SELECT count(*) FROM _stage WHERE reason IS NOT NULL"))
            new_sql = NEW_SQL.format(touchpoint=self.rules.sql, identify=IDENTIFY)
            con.execute(new_sql, [*self.rules.params, self.source])
            report.accepted = _count(con.execute(INSERT_SQL, [self.source, self.now]))
            valid = con.execute(
                "SELECT count(*) FILTER (event <> ?), count(*) FILTER (event = ?) FROM _stage WHERE reason IS NULL",
                [IDENTIFY, IDENTIFY],
            ).fetchone() or (0, 0)
            report.duplicates = valid[0] - report.accepted
            report.identified = valid[1]
            for touchpoint, n in con.execute("SELECT touchpoint, count(*) FROM _new GROUP BY 1").fetchall():
                if touchpoint is None:
                    report.unmapped = n
                else:
                    report.by_touchpoint[touchpoint] = n
            con.execute(CUSTOMERS_SQL)
            if report.identified:
                apply_identifies(con)
        return report

    def _log_start(self, path: Path) -> int:
        checksum = file_checksum(path)
        with transaction(self.con):
            self.con.execute(
                "INSERT INTO ingest_log VALUES (?, 'events', ?, ?, 0, 0, 0, 0, ?, NULL)",
                [self.source, str(path), checksum, self.now],
            )
        return 0

    def _log_finish(self, path: Path, _: int, r: IngestReport) -> None:
        with transaction(self.con):
            self.con.execute(
                "UPDATE ingest_log SET rows_read = ?, accepted = ?, duplicates = ?, quarantined = ?, finished = ? "
                "WHERE file = ? AND started = ? AND source = ?",
                [
                    r.read,
                    r.accepted,
                    r.duplicates,
                    r.quarantined,
                    datetime.now(UTC),
                    str(path),
                    self.now,
                    self.source,
                ],
            )


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def apply_identifies(con: duckdb.DuckDBPyConnection) -> None:
    """Merge identify traits into customers' attributes, oldest first so the newest trait wins."""
    rows = con.execute(
        "SELECT customer_id, properties, ts FROM _stage WHERE reason IS NULL AND event = ? ORDER BY ts, _row",
        [IDENTIFY],
    ).fetchall()
    merged: dict[str, tuple[dict[str, Any], datetime]] = {}
    for customer, props, ts in rows:
        traits, _ = merged.get(customer, ({}, ts))
        traits.update(json.loads(props) if props else {})
        merged[customer] = (traits, ts)
    for customer, (traits, ts) in merged.items():
        con.execute(
            "INSERT INTO customers (customer_id, attributes, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (customer_id) DO UPDATE SET "
            "attributes = json_merge_patch(COALESCE(customers.attributes, '{}'), excluded.attributes)",
            [customer, json.dumps(traits), ts, ts],
        )


def assign_personas(con: duckdb.DuckDBPyConnection, m: TouchpointMap) -> None:
    """Set every customer's persona from the map's segment rules (first match in map order)."""
    expr = compile_personas([(p.key, p.segment) for p in m.personas])
    with transaction(con):
        con.execute(f"UPDATE customers SET persona = {expr.sql}", expr.params)


def remap(con: duckdb.DuckDBPyConnection, m: TouchpointMap) -> dict[str | None, int]:
    """Re-apply the map's rules to every stored event (after the map changed); returns counts by touchpoint."""
    rules = compile_rules(m.touchpoints)
    with transaction(con):
        con.execute(f"UPDATE events SET touchpoint = {rules.sql}", rules.params)
    return dict(con.execute("SELECT touchpoint, count(*) FROM events GROUP BY 1").fetchall())
