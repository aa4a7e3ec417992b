"""Events into the store: readers' batches checked, mapped to touchpoints, deduplicated, committed whole.

Each batch runs in one transaction: bad rows go to quarantine with a reason, valid rows not already stored
under (source, event_id) are inserted, customers are updated. A crash loses at most the batch in flight, and
a re-run stores nothing twice, so killing the process at any instant and running it again is safe.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from touchlens.ingest.operators import SqlExpr
from touchlens.ingest.rules import compile_personas, compile_rules, outcome_sql, property_columns
from touchlens.model.map import TouchpointMap
from touchlens.store import journeys
from touchlens.store.events import transaction

Progress = Callable[[int], None]
IDENTIFY = "$identify"


UNMAPPED_NAMED = 20  # the most frequent unmapped event names a report names
COUNTS = ("read", "accepted", "duplicates", "quarantined", "suppressed", "unmapped", "identified", "seconds")


@dataclass
class IngestReport:
    """Counts of one run (numbers are of this run only)."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    suppressed: int = 0
    unmapped: int = 0
    identified: int = 0
    by_touchpoint: Counter[str] = field(default_factory=Counter)
    # The events no touchpoint claimed, by event name: what to map next.
    unmapped_events: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_touchpoint.update(other.by_touchpoint)
        self.unmapped_events.update(other.unmapped_events)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "suppressed": self.suppressed,
            "unmapped": self.unmapped,
            "identified": self.identified,
            "by_touchpoint": dict(sorted(self.by_touchpoint.items())),
            "unmapped_events": dict(self.unmapped_events.most_common(UNMAPPED_NAMED)),
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
SELECT *, hash(?, event_id) AS id_hash FROM (
SELECT *,
  -- A JSON array keeps fields apart (no separator to collide with) and NULLs in place.
  COALESCE(given_id, 'fp:' || md5(CAST(json_array(customer_id, CAST(ts_raw AS VARCHAR), event, channel,
                                                   properties) AS VARCHAR))) AS event_id,
  CASE
    -- First: a bad row of an erased customer must not reach quarantine, which keeps the raw record.
    WHEN {suppressed} THEN 'suppressed'
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
  {prop_columns}
FROM (
  SELECT b._row, b._raw, b._error, b._field,
    COALESCE(NULLIF(trim(b.customer_id), ''), NULLIF(trim(b.anonymous_id), '')) AS customer_id,
    NULLIF(trim(b.anonymous_id), '') AS anonymous_id,
    NULLIF(trim(b.session_id), '') AS session_id,
    NULLIF(trim(b.event), '') AS event,
    NULLIF(trim(b.channel), '') AS channel,
    b.ts AS ts_raw,
    {ts} AS ts,
    {props} AS properties,
    NULLIF(trim(b.event_id), '') AS given_id
    {inner_props}
  FROM _batch b
))
"""


# Erased customers' events are dropped, not quarantined: quarantine keeps the raw record, which names them.
SUPPRESSED_SQL = "COALESCE(sha256(customer_id) IN (SELECT customer_key FROM suppressions), false)"


def _stage(con: duckdb.DuckDBPyConnection, batch: pa.RecordBatch, now: datetime, m: TouchpointMap, source: str) -> None:
    any_suppressed = bool(con.execute("SELECT 1 FROM suppressions LIMIT 1").fetchall())
    con.register("_batch", batch)
    schema = batch.schema
    given = [name for name in schema.names if name.startswith("__p") and name.endswith("_in")]
    _, props = property_columns(m.touchpoints, given)
    sql = STAGE_SQL.format(
        ts=_ts_sql(schema.field("ts").type),
        props=_props_sql(schema.field("properties").type),
        prop_columns=f", {props.sql}" if props.sql else "",
        inner_props="".join(f", b.{name} AS {name}" for name in given),
        suppressed=SUPPRESSED_SQL if any_suppressed else "false",
    )
    con.execute(sql, [source, now, *props.params])
    con.unregister("_batch")


QUARANTINE_SQL = """
INSERT INTO quarantine
SELECT ?, 'events', ?, _row, field, reason,
  CASE WHEN _error IS NOT NULL THEN nullif(trim(substr(_error, length(reason) + 2)), '')
       WHEN reason IN ('unparseable timestamp', 'impossible timestamp') THEN CAST(ts_raw AS VARCHAR) END,
  COALESCE(_raw, to_json({'customer_id': customer_id, 'ts': CAST(ts_raw AS VARCHAR), 'event': event, 'channel': channel,
                          'event_id': given_id, 'properties': properties})::VARCHAR),
  ?
FROM _stage s WHERE reason IS NOT NULL AND reason <> 'suppressed'
  -- A re-run reports the same bad rows again but stores each only once.
  AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.kind = 'events' AND q.source = ? AND q.file = ?
                  AND q."row" = s._row AND q.reason = s.reason)
"""

# Dedupe by a 64-bit hash of (source, event_id) first: only that column of the store is scanned, and the few
# hash hits are then compared on the full id, so a hash collision can never drop an event.
HITS_SQL = """
CREATE OR REPLACE TEMP TABLE _skip AS
SELECT _row FROM _stage
WHERE event_id IN (SELECT event_id FROM events
                   WHERE id_hash IN (SELECT id_hash FROM _stage WHERE reason IS NULL) AND source = ?
                     AND received_at >= ?)
UNION ALL
-- Repeats inside the batch: all but the first row of each id (a window over two narrow columns only).
SELECT _row FROM (SELECT _row, event_id FROM _stage WHERE reason IS NULL)
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY _row) > 1
"""

# The events a batch stored (its accepted rows, not identify calls, which are no events): their customers' journeys
# the layer must recompute, each from the earliest of them on.
STORED_EVENTS = (
    f"SELECT customer_id, ts FROM _stage WHERE reason IS NULL AND event <> '{IDENTIFY}' "  # noqa: S608 - a constant
    "AND _row NOT IN (SELECT _row FROM _skip)"
)

INSERT_SQL = """
INSERT INTO events
SELECT event_id, ?, customer_id, anonymous_id, session_id, ts, event, {touchpoint}, channel, properties, ?, id_hash
FROM _stage
WHERE reason IS NULL AND event <> '{identify}' AND _row NOT IN (SELECT _row FROM _skip)
"""

# First and last seen brought up to date from a live batch's stored events (the rows INSERT_SQL takes), in its
# transaction: a customer's first and last stored event are the earliest and latest of what each batch stored,
# so no scan of the store's events is needed (LEAST and GREATEST pass over the empty ones of a new customer).
SEEN_SQL = f"""
INSERT INTO customers (customer_id, first_seen, last_seen)
SELECT customer_id, min(ts), max(ts) FROM _stage
WHERE reason IS NULL AND event <> '{IDENTIFY}' AND _row NOT IN (SELECT _row FROM _skip) AND customer_id IS NOT NULL
GROUP BY customer_id
ON CONFLICT (customer_id) DO UPDATE SET first_seen = least(customers.first_seen, excluded.first_seen),
  last_seen = greatest(customers.last_seen, excluded.last_seen)
"""  # noqa: S608

# Customers' first and last seen follow from the events, so they are recomputed after each run rather than
# kept up per batch: a run killed half way leaves nothing for the next run to patch up. A customer with no
# stored event has neither (a store from before 2026-12-07 gave one known from `identify` alone its time).
CUSTOMERS_SQL = """
CREATE OR REPLACE TEMP TABLE _seen AS SELECT customer_id, min(ts) AS f, max(ts) AS l FROM events GROUP BY 1;
UPDATE customers SET first_seen = s.f, last_seen = s.l FROM _seen s
  WHERE customers.customer_id = s.customer_id
    AND (customers.first_seen IS DISTINCT FROM s.f OR customers.last_seen IS DISTINCT FROM s.l);
INSERT INTO customers (customer_id, first_seen, last_seen)
  SELECT s.customer_id, s.f, s.l FROM _seen s WHERE NOT EXISTS
    (SELECT 1 FROM customers c WHERE c.customer_id = s.customer_id);
UPDATE customers SET first_seen = NULL, last_seen = NULL
  WHERE (first_seen IS NOT NULL OR last_seen IS NOT NULL)
    AND NOT EXISTS (SELECT 1 FROM _seen s WHERE s.customer_id = customers.customer_id);
DROP TABLE _seen;
"""


@dataclass
class EventIngest:
    """One run of event ingestion into an open store, for one map."""

    con: duckdb.DuckDBPyConnection
    m: TouchpointMap
    source: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Events received before this are not looked at for duplicates: files check everything; the live writer
    # bounds the look-back so a commit's cost does not grow with the store (row groups outside are skipped).
    dedupe_since: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    rules: SqlExpr = field(init=False)
    prop_columns: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.prop_columns, _ = property_columns(self.m.touchpoints)
        self.rules = compile_rules(self.m.touchpoints, self.prop_columns)
        self.con.execute(MACROS)

    def run(self, path: Path, batches: Iterator[pa.RecordBatch], progress: Progress | None = None) -> IngestReport:
        report = IngestReport(files=[str(path)])
        started = time.perf_counter()
        self._log(path, report, finished=False)
        for batch in prefetch(batches):
            report.add(self._batch(path, batch))
            if progress:
                progress(batch.num_rows)
        self._finish(path, report)
        report.seconds = time.perf_counter() - started
        return report

    def _batch(self, path: Path, batch: pa.RecordBatch) -> IngestReport:
        with transaction(self.con):
            return self.store(batch, str(path))

    def store(self, batch: pa.RecordBatch, file: str | None) -> IngestReport:
        """Stage, check, dedupe and insert one batch inside the caller's transaction. Bad rows go to quarantine
        under `file`; with `file` None the caller quarantines them and counts outcomes from ``_stage`` and
        ``_skip`` itself (only `accepted` is set then)."""
        report = IngestReport(read=batch.num_rows)
        con = self.con
        _stage(con, batch, self.now, self.m, self.source)
        if file is not None:
            con.execute(QUARANTINE_SQL, [self.source, file, self.now, self.source, file])
        con.execute(HITS_SQL, [self.source, self.dedupe_since])
        insert = INSERT_SQL.format(touchpoint=self.rules.sql, identify=IDENTIFY)
        report.accepted = _count(con.execute(insert, [self.source, *self.rules.params, self.now]))
        if report.accepted:  # their journeys changed: the layer recomputes them at its next refresh
            journeys.mark_stale(con, STORED_EVENTS)
        if file is None:
            if report.accepted:
                con.execute(SEEN_SQL)
            if IDENTIFY in batch.column("event").to_pylist():
                apply_identifies(con)
            return report
        bad, suppressed, valid, identified = con.execute(
            "SELECT count(*) FILTER (reason IS NOT NULL AND reason <> 'suppressed'), "
            "count(*) FILTER (reason = 'suppressed'), count(*) FILTER (reason IS NULL AND event <> ?), "
            "count(*) FILTER (reason IS NULL AND event = ?) FROM _stage",
            [IDENTIFY, IDENTIFY],
        ).fetchone() or (0, 0, 0, 0)
        report.quarantined, report.suppressed, report.duplicates, report.identified = (
            bad,
            suppressed,
            valid - report.accepted,
            identified,
        )
        if identified:
            apply_identifies(con)
        return report

    def _finish(self, path: Path, report: IngestReport) -> None:
        """Counts by touchpoint of what this run stored, and the log closed (customers are brought up to date once
        a call, by `refresh_customers`: per file, its scan of every event made many small files quadratic)."""
        rows = self.con.execute(
            "SELECT touchpoint, count(*) FROM events WHERE source = ? AND received_at = ? GROUP BY 1",
            [self.source, self.now],
        ).fetchall()
        report.by_touchpoint = Counter({k: n for k, n in rows if k is not None})
        report.unmapped = sum(n for k, n in rows if k is None)
        if report.unmapped:
            report.unmapped_events = Counter(dict(self.con.execute(
                "SELECT event, count(*) FROM events WHERE source = ? AND received_at = ? AND touchpoint IS NULL "
                "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
                [self.source, self.now, UNMAPPED_NAMED],
            ).fetchall()))  # fmt: skip
        self._log(path, report, finished=True)

    def _log(self, path: Path, r: IngestReport, finished: bool) -> None:
        write_log(self.con, "events", self.source, path, self.now, r if finished else None)


def refresh_customers(con: duckdb.DuckDBPyConnection, m: TouchpointMap | None = None) -> None:
    """Every customer's first and last seen recomputed from the events, and the journey layer brought up to date
    (after a call's files are all in: per batch, a file in time order would recompute most customers each time),
    its periods cut by `m`'s conversion outcome."""
    with transaction(con):
        con.execute(CUSTOMERS_SQL)
    journeys.refresh(con, None if m is None else outcome_sql(m.outcomes.conversion))


def write_log(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    source: str,
    path: Path,
    started: datetime,
    r: IngestReport | None,
) -> None:
    """Open a run's ingest-log row (`r` None), or close it with the run's counts."""
    with transaction(con):
        if r is None:
            con.execute(
                "INSERT INTO ingest_log VALUES (?, ?, ?, ?, 0, 0, 0, 0, ?, NULL)",
                [source, kind, str(path), file_checksum(path), started],
            )
            return
        con.execute(
            "UPDATE ingest_log SET rows_read = ?, accepted = ?, duplicates = ?, quarantined = ?, finished = ? "
            "WHERE kind = ? AND file = ? AND started = ? AND source = ?",
            [
                r.read,
                r.accepted,
                r.duplicates,
                r.quarantined,
                datetime.now(UTC),
                kind,
                str(path),
                started,
                source,
            ],
        )


def prefetch(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Read the next batch on a thread while the engine stores this one (both release the GIL)."""
    slot: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(item: tuple[str, Any]) -> bool:
        """Hand one item over unless the consumer has gone; never blocks for good."""
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(("batch", batch)):
                    return
            offer(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer(("error", exc))

    worker = threading.Thread(target=produce, name="touchlens-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = slot.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def apply_identifies(con: duckdb.DuckDBPyConnection) -> None:
    """Merge identify traits into customers' attributes, oldest first so the newest trait wins."""
    rows = con.execute(
        "SELECT customer_id, properties FROM _stage WHERE reason IS NULL AND event = ? ORDER BY ts, _row", [IDENTIFY]
    ).fetchall()
    merged: dict[str, dict[str, Any]] = {}
    for customer, props in rows:
        merged.setdefault(customer, {}).update(json.loads(props) if props else {})
    for customer, traits in merged.items():
        # Merging into {} drops null traits, as for customer files: a null never erases a known value, and a
        # new customer's attributes hold no nulls that a second run would then merge away. First and last seen
        # stay empty: they are the customer's stored events', and an identify call is not stored as one.
        con.execute(
            "INSERT INTO customers (customer_id, attributes) VALUES (?, json_merge_patch('{}', ?)) "
            "ON CONFLICT (customer_id) DO UPDATE SET "
            "attributes = json_merge_patch(COALESCE(customers.attributes, '{}'), excluded.attributes)",
            [customer, json.dumps(traits)],
        )


def assign_personas(con: duckdb.DuckDBPyConnection, m: TouchpointMap) -> None:
    """Set every customer's persona from the map's segment rules (first match in map order)."""
    with transaction(con):
        apply_persona_rules(con, m)


def apply_persona_rules(con: duckdb.DuckDBPyConnection, m: TouchpointMap, where: str = "true") -> None:
    """Personas of the customers `where` selects (our own SQL, never user text), in the caller's transaction."""
    expr = compile_personas([(p.key, p.segment) for p in m.personas])
    # The SQL text is compiled from our own column names; every map value is a bound parameter.
    con.execute(f"UPDATE customers SET persona = {expr.sql} WHERE {where}", expr.params)  # noqa: S608


def remap(con: duckdb.DuckDBPyConnection, m: TouchpointMap) -> dict[str | None, int]:
    """Re-apply the map's rules to every stored event (after the map changed); returns counts by touchpoint."""
    rules = compile_rules(m.touchpoints)
    with transaction(con):
        con.execute(f"UPDATE events SET touchpoint = {rules.sql}", rules.params)  # noqa: S608 - as above
        journeys.rebuild_in(con, outcome_sql(m.outcomes.conversion))
    return dict(con.execute("SELECT touchpoint, count(*) FROM events GROUP BY 1").fetchall())
