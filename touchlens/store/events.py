"""The events store: a DuckDB file holding events, feedback, customers, quarantine and the ingest log.

One process writes at a time (DuckDB's file lock); every write runs in a transaction, so a crash leaves the
store as it was before the batch in flight.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from touchlens.errors import TouchlensError
from touchlens.store.modes import make_private

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    anonymous_id VARCHAR,
    session_id VARCHAR,
    ts TIMESTAMPTZ NOT NULL,
    event VARCHAR NOT NULL,
    touchpoint VARCHAR,
    channel VARCHAR,
    properties JSON,
    received_at TIMESTAMPTZ NOT NULL,
    id_hash UBIGINT NOT NULL  -- hash(source, event_id): the cheap first step of dedupe
);
CREATE TABLE IF NOT EXISTS feedback (
    response_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    touchpoint VARCHAR,
    channel VARCHAR,
    metric VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    scale_min DOUBLE NOT NULL,
    scale_max DOUBLE NOT NULL,
    comment VARCHAR,
    sentiment DOUBLE,
    themes JSON,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (
    customer_id VARCHAR PRIMARY KEY,
    persona VARCHAR,
    attributes JSON,
    first_seen TIMESTAMPTZ,
    last_seen TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS quarantine (
    source VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    "row" BIGINT,
    field VARCHAR,
    reason VARCHAR NOT NULL,
    detail VARCHAR,
    raw VARCHAR,
    "at" TIMESTAMPTZ NOT NULL
);
-- Customers erased on request: later events for them are dropped at ingest (unless the suppression is lifted).
-- Only a SHA-256 of the stored id is kept, so this table names nobody.
CREATE TABLE IF NOT EXISTS suppressions (
    customer_key VARCHAR PRIMARY KEY,
    since TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS erasures (
    "at" TIMESTAMPTZ NOT NULL,
    actor VARCHAR NOT NULL,
    customer_key VARCHAR NOT NULL,
    rows JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_log (
    source VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    checksum VARCHAR,
    rows_read BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    started TIMESTAMPTZ NOT NULL,
    finished TIMESTAMPTZ
);
-- The journey layer (store/journeys.py): each customer's mapped touches in time order, kept up at ingest.
CREATE TABLE IF NOT EXISTS touches (
    customer_id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    event_id VARCHAR NOT NULL,
    touchpoint VARCHAR NOT NULL,
    channel VARCHAR,
    pos BIGINT NOT NULL,            -- 0 for the customer's first touch
    prev_touchpoint VARCHAR,
    prev_ts TIMESTAMPTZ,
    prev_channel VARCHAR,
    next_touchpoint VARCHAR,
    next_ts TIMESTAMPTZ,
    next2_touchpoint VARCHAR,
    next2_ts TIMESTAMPTZ,
    prev_same_ts TIMESTAMPTZ,       -- the customer's previous touch of this touchpoint
    -- Conversions (the map's conversion outcome, over all the customer's events) before this touch; -1 for a
    -- touch that is itself a conversion. The neighbours' periods tell whether they share this touch's period.
    period BIGINT NOT NULL,
    prev_period BIGINT,
    next_period BIGINT,
    next2_period BIGINT,
    prev_same_period BIGINT
);
-- Customers whose journeys changed since the last refresh, from `since` on (NULL: all of it).
CREATE TABLE IF NOT EXISTS touches_stale (customer_id VARCHAR NOT NULL, since TIMESTAMPTZ);
-- A store from before `since` has its marks read as whole journeys.
ALTER TABLE touches_stale ADD COLUMN IF NOT EXISTS since TIMESTAMPTZ;
-- One row once the layer is built: when, and the conversion predicate its periods were cut by (JSON [sql, values]).
CREATE TABLE IF NOT EXISTS touches_state (built TIMESTAMPTZ NOT NULL, conversion VARCHAR NOT NULL);
-- Each conversion by that predicate, mapped or not (a refresh counts a customer's before a time from here, not from
-- every event); `conversions_kept` in the state once they are.
CREATE TABLE IF NOT EXISTS touches_conversions (customer_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL);
ALTER TABLE touches_state ADD COLUMN IF NOT EXISTS conversions_kept BOOLEAN;
-- Wait sketches (store/waits.py): per pair of touchpoints, how many waits from a touch to the next fell in each
-- log-sized bucket; one row in pair_waits_state once built.
CREATE TABLE IF NOT EXISTS pair_waits (
    source VARCHAR NOT NULL,
    target VARCHAR NOT NULL,
    bucket INTEGER NOT NULL,
    n BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS pair_waits_state (built TIMESTAMPTZ NOT NULL);
-- The layer's periods (store/periods.py): per customer's period, its touches, whether it ends in a conversion,
-- and its touch features as bit masks, a struct per word of 62 touchpoints (codes in touchpoint_codes); one row in
-- periods_state once built, with the windows (microseconds) the features were cut by and the bits a word holds.
CREATE TABLE IF NOT EXISTS periods (
    customer_id VARCHAR NOT NULL,
    period BIGINT NOT NULL,
    touches BIGINT NOT NULL,
    converted BOOLEAN NOT NULL,
    words STRUCT(word BIGINT, seen BIGINT, repeated BIGINT, waited BIGINT, switched BIGINT)[] NOT NULL
);
CREATE TABLE IF NOT EXISTS touchpoint_codes (touchpoint VARCHAR NOT NULL, code BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS periods_state (
    built TIMESTAMPTZ NOT NULL, repeat_us BIGINT NOT NULL, wait_us BIGINT NOT NULL, switch_us BIGINT NOT NULL,
    bits BIGINT NOT NULL
);
"""

TABLES = (
    "events", "feedback", "customers", "quarantine", "suppressions", "erasures", "ingest_log",
    "touches", "touches_stale", "touches_state", "touches_conversions", "pair_waits", "pair_waits_state", "periods",
    "touchpoint_codes", "periods_state",
)  # fmt: skip


class EventsStoreError(TouchlensError):
    """The events store cannot be opened or written (locked by another process, read-only, disk full)."""


# Connections of each store's DuckDB instance in this process whose settings are ours (the one that configured it,
# and the cursors handed out since), held weakly. A later connect to the same instance (a second analysis while
# the first is alive) is handed a cursor of a live one, which copies its session settings: a new connection would
# have DuckDB's progress bar on, writing into --json output, and a locked instance refuses to turn it off. Every
# cursor handed out is kept too, so one surviving the connection it came from still serves.
_CONFIGURED: dict[str, list[weakref.ref[duckdb.DuckDBPyConnection]]] = {}


def connect(
    path: Path,
    read_only: bool = False,
    memory_limit: str | None = None,
    analysis_only: bool = False,
    readable: Sequence[str] = (),
) -> duckdb.DuckDBPyConnection:
    """Open (creating when needed) the events store; timestamps are read and written in UTC.

    `analysis_only` confines the database to the store itself and the `readable` folders (see `confine`).
    """
    try:
        if read_only and not path.exists():
            con = duckdb.connect(":memory:")
        else:
            con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise EventsStoreError(f"cannot open the events store {path}: {_in_use(exc)}") from None
    make_private(path)  # customer data: the owner's alone
    if locked(con):
        # DuckDB hands out the instance this process already holds for the file (a server's shared connection),
        # whose settings, schema and confinement were made before its configuration was locked.
        return _cursor_of_configured(path) or con
    # GLOBAL, so every cursor of this connection (the server hands out cursors) inherits them; cursors copy the
    # progress bar setting, which is session-only.
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    # Row order inside a table carries no meaning here; letting DuckDB drop it makes big inserts cheaper.
    con.execute("SET GLOBAL preserve_insertion_order = false")
    # DuckDB's own progress bar writes to stdout, which would corrupt --json output.
    con.execute("SET enable_progress_bar = false")
    if memory_limit:
        try:
            con.execute(f"SET memory_limit = '{_size(memory_limit)}'")
        except duckdb.Error as exc:
            raise EventsStoreError(f"store.memory_limit: {exc}") from None
    if not read_only or not path.exists():
        con.execute(SCHEMA)
    if analysis_only:
        confine(con, readable)
    _CONFIGURED[str(path.resolve())] = [weakref.ref(con)]
    return con


def _cursor_of_configured(path: Path) -> duckdb.DuckDBPyConnection | None:
    """A cursor of a live connection of ours to this store's instance (kept for the next caller too)."""
    key = str(path.resolve())
    kept = [ref for ref in _CONFIGURED.get(key, []) if ref() is not None]
    for ref in reversed(kept):
        found = ref()
        if found is None:
            continue
        try:
            cursor = found.cursor()
        except duckdb.ConnectionException:  # closed since: try another
            continue
        _CONFIGURED[key] = [*kept, weakref.ref(cursor)]
        return cursor
    _CONFIGURED[key] = kept
    return None


def _in_use(exc: duckdb.IOException) -> str:
    """DuckDB's lock conflict said as what it means: which process has the store, and what to do."""
    said = str(exc)
    if "Could not set lock" not in said:
        return said
    pid = re.search(r"PID (\d+)", said)
    holder = f"process {pid.group(1)}" if pid else "another process"
    return (
        f"{holder} has it open (DuckDB lets one process at a time write it); wait for that command to finish. "
        "While `touchlens serve` runs, commands go through the server instead"
    )


def confine(con: duckdb.DuckDBPyConnection, readable: Sequence[str] = ()) -> None:
    """Cut the whole database instance (every cursor of `con`) off from files and the network, for good.

    Afterwards it reads and writes only its own database file, its spill folder and the `readable` folders (a
    Parquet lake): read_text, read_csv, COPY, ATTACH, INSTALL/LOAD and replacement scans of Python variables
    are refused, so even SQL that reached the engine could not read a file. Arrow tables handed over by
    `register` still work (ingest and the live writer use them). DuckDB cannot turn access back on.
    """
    if readable:
        con.execute("SET allowed_directories = ?", [[_folder(d) for d in readable]])
    con.execute("SET enable_external_access = false")


def lock(con: duckdb.DuckDBPyConnection) -> None:
    """Freeze the instance's configuration: any later SET (memory, threads, access) is refused.

    Call once every setting is made, including Ibis's (see `store.backends.backend_on`).
    """
    if not locked(con):  # a second lock is refused like any other change
        con.execute("SET lock_configuration = true")


def locked(con: duckdb.DuckDBPyConnection) -> bool:
    # fetchall, not fetchone: DuckDB 2 refuses other work on a connection while a result is unfinished.
    return bool(con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0])


def _folder(path: str) -> str:
    """A folder as DuckDB's allowed_directories wants it: ending in a separator, so a sibling never matches."""
    return path if path.endswith("/") else path + "/"


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All statements inside land together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    row = con.execute(sql, params or []).fetchone()
    return None if row is None else row[0]


def size_bytes(text: str) -> int:
    """The bytes of a memory size from the settings, counted in powers of 1024 (``1GB``: 2**30)."""
    return int(_megabytes(text) * 2**20)


def _size(text: str) -> str:
    """A memory size from the settings (``1GB``, ``512MB``), checked so only such a size reaches the SQL."""
    _megabytes(text)
    return text.strip()


def _megabytes(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", text, flags=re.IGNORECASE)
    if not match:
        raise EventsStoreError(f"store.memory_limit: '{text}' is not a size like 512MB or 2GB")
    unit = match.group(2).upper().replace("I", "")
    megabytes = float(match.group(1)) * {"KB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024**2}[unit]
    if not 64 <= megabytes <= 1024**3:
        raise EventsStoreError(f"store.memory_limit: '{text}' is out of range; use between 64MB and 1000TB")
    return megabytes


# ---- the reads and small writes the facade and the web make (ingest writes through ingest/pipeline.py) ----------

COUNTS_SQL = """
SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM feedback), (SELECT count(*) FROM customers),
  (SELECT count(*) FROM quarantine)
"""
HISTORY_SQL = """
SELECT source, kind, file, rows_read, accepted, duplicates, quarantined, started, finished FROM ingest_log
ORDER BY started DESC LIMIT $limit
"""


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows in the store: events, feedback, customers and quarantined."""
    row = con.execute(COUNTS_SQL).fetchone()
    return dict(zip(("events", "feedback", "customers", "quarantine"), (int(x) for x in row or (0,) * 4), strict=True))


def ingest_history(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """Every ingest run, newest first."""
    cursor = con.execute(HISTORY_SQL, {"limit": limit})
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def version(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """What changes whenever events, feedback or customers change: ingest runs, the latest one, customers."""
    row = con.execute("SELECT count(*), max(finished), (SELECT count(*) FROM customers) FROM ingest_log").fetchone()
    return tuple(row or ())


def quarantine_groups(con: duckdb.DuckDBPyConnection, examples: int) -> list[dict[str, Any]]:
    """Quarantined rows grouped by kind and reason, largest group first, with a few examples each."""
    groups = con.execute("SELECT kind, reason, count(*) FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC, 2").fetchall()
    return [
        {"kind": kind, "reason": reason, "count": n, "examples": _examples(con, kind, reason, examples)}
        for kind, reason, n in groups
    ]


def _examples(con: duckdb.DuckDBPyConnection, kind: str, reason: str, limit: int) -> list[dict[str, Any]]:
    rows = con.execute(
        'SELECT file, "row", field, detail, raw FROM quarantine WHERE kind = ? AND reason = ? '
        'ORDER BY file, "row" LIMIT ?',
        [kind, reason, limit],
    ).fetchall()
    return [{"file": f, "row": r, "field": fl, "detail": d, "raw": raw} for f, r, fl, d, raw in rows]


def clear_quarantine(con: duckdb.DuckDBPyConnection) -> int:
    """Delete every quarantined row; how many there were."""
    n = int(scalar(con, "SELECT count(*) FROM quarantine") or 0)
    con.execute("DELETE FROM quarantine")
    return n


def persona_counts(con: duckdb.DuckDBPyConnection) -> dict[str | None, int]:
    """Customers per persona (None: no persona's segment takes them)."""
    return dict(con.execute("SELECT persona, count(*) FROM customers GROUP BY 1 ORDER BY 1").fetchall())


def unmapped_events(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """The events no touchpoint claims, by event name, most frequent first: events, customers, last seen."""
    rows = con.execute(
        "SELECT event, count(*), count(DISTINCT customer_id), max(ts) FROM events WHERE touchpoint IS NULL "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
        [limit],
    ).fetchall()
    return [{"event": e, "events": n, "customers": c, "last_seen": last} for e, n, c, last in rows]
