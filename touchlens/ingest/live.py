"""Live events: messages from the ingestion endpoint, committed in groups by one writer thread.

Requests hand their messages to the writer and wait. The writer takes everything queued (up to `group_rows`
events), stores it in one transaction and only then answers each request, so an acknowledged event survives a
crash (DuckDB writes its log on commit) and an unacknowledged one may be sent again: dedupe on `messageId`
makes the retry safe. Readers use their own cursors and never wait for the writer.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from touchlens.errors import TouchlensError
from touchlens.ingest.pipeline import CUSTOMERS_SQL, EventIngest, IngestReport, apply_persona_rules
from touchlens.ingest.pseudonym import Pseudonymiser
from touchlens.ingest.readers.base import EVENT_COLUMNS
from touchlens.ingest.readers.base import _text as text_value
from touchlens.ingest.readers.segment import TYPES, message_values
from touchlens.ingest.rules import outcome_sql
from touchlens.model.map import TouchpointMap
from touchlens.store import journeys
from touchlens.store.events import transaction

logger = logging.getLogger(__name__)
LIVE_FILE = "live"
MAX_RAW = 40_000  # a quarantined message is kept whole up to the message limit, and a little over
T = TypeVar("T")
MAP_CHECK_SECONDS = 1.0
# The ingest log (which the web cache keys on) is brought up to date at most this often: pages lag live data
# by no more than this, and a busy writer spares a statement per commit.
LOG_SECONDS = 0.5
CUSTOMERS_SECONDS = 1.0
# How far back a live message's id is checked against what is stored: client retries come within minutes, and
# Segment's own dedupe looks back about a day. Bounded, a commit's cost stays flat as the store grows.
DEDUPE_WINDOW = timedelta(days=7)


# The rejects of a commit, inserted unless already quarantined under the same request label, place and reason
# (a retried request, or the same request twice in one commit).
QUARANTINE_SQL = """
INSERT INTO quarantine
SELECT ?, 'events', file, "row", field, reason, detail, raw, ? FROM _rejects r
WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.kind = 'events' AND q.source = ? AND q.file = r.file
                  AND q."row" = r."row" AND q.reason = r.reason)
QUALIFY row_number() OVER (PARTITION BY file, "row", reason ORDER BY "row") = 1
"""


@dataclass(frozen=True)
class Rejected:
    """A message of a request that was not stored, and why."""

    index: int
    message_id: str | None
    reason: str
    field: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "reason": self.reason, "field": self.field}


@dataclass
class Outcome:
    """What became of one request's messages."""

    accepted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    refused: int = 0  # invalid messages over the sender's limit: neither stored nor quarantined

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": True,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "rejected": [r.to_dict() for r in self.rejected],
        }


class OverLimit(TouchlensError):
    """The sender has sent more invalid messages than its limit allows: the request was not staged."""


def _all(rejected: int) -> int:
    return rejected


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Allowance:
    """A sender's limit on invalid messages, asked on the writer's thread, so requests are counted in the order
    they are committed: `blocked` refuses a request whole before it costs any work (its sender is over the
    limit), `take(n)` says how many of a request's n invalid messages may be quarantined (the others are
    refused). The default allows everything."""

    take: Callable[[int], int] = _all
    blocked: Callable[[], bool] = _never


@dataclass
class Submission:
    """One request's messages as canonical rows (``_row`` = the message's place, from 1)."""

    source: str
    file: str
    batch: pa.RecordBatch
    messages: list[Any]
    allowance: Allowance = field(default_factory=Allowance)
    future: Future[Outcome] = field(default_factory=Future)

    def message_id(self, index: int) -> str | None:
        found = self.messages[index - 1]
        value = found.get("messageId") if isinstance(found, dict) else None
        return None if value is None else str(value)

    def raw(self, index: int) -> str:
        return json.dumps(self.messages[index - 1], ensure_ascii=False, default=str)[:MAX_RAW]


def prepare(
    source: str,
    body: bytes,
    messages: list[Any],
    max_message_bytes: int,
    allowance: Allowance | None = None,
) -> Submission:
    """Canonical rows of a request's messages; a message too large, not an object or of an unknown type is kept
    as a row with its error, so it is quarantined with the others' checks."""
    # No message can be larger than the body: the common case measures nothing.
    sized = len(body) > max_message_bytes
    rows: list[dict[str, Any]] = []
    errors: list[tuple[str, str] | None] = []
    for message in messages:
        error = _problem(message, max_message_bytes if sized else None)
        errors.append(error)
        rows.append({} if error else message_values(message))
    # The same body sent again has the same label, so a retried bad message is quarantined once.
    label = f"{LIVE_FILE}:{source}:{hashlib.sha256(body).hexdigest()[:32]}"
    return Submission(source, label, canonical_batch(rows, errors), messages, allowance or Allowance())


def _problem(message: Any, max_bytes: int | None) -> tuple[str, str] | None:
    """Why a message cannot be read at all (reason, field), or None."""
    if max_bytes is not None and len(json.dumps(message, ensure_ascii=False, default=str).encode()) > max_bytes:
        return (f"message larger than {max_bytes // 1024} KB", "message")
    if not isinstance(message, dict):
        return ("not a JSON object", "message")
    if message.get("type", "track") not in TYPES:
        return (f"unsupported message type '{message.get('type')}'", "type")
    return None


def canonical_batch(rows: list[dict[str, Any]], errors: list[tuple[str, str] | None]) -> pa.RecordBatch:
    """The canonical batch of readers/base.py built column by column: a row-by-row batcher costs three times as
    much, which matters at tens of thousands of messages a second."""
    columns: dict[str, pa.Array] = {
        "_row": pa.array(range(1, len(rows) + 1), pa.int64()),
        "_raw": pa.nulls(len(rows), pa.string()),
        "_error": _strings([e[0] if e else None for e in errors]),
        "_field": _strings([e[1] if e else None for e in errors]),
    }
    for name in EVENT_COLUMNS:
        values = [r.get(name) for r in rows]
        columns[name] = _strings([v if v is None or type(v) is str else text_value(v, False) for v in values])
    props = [r.get("properties") for r in rows]
    columns["properties"] = _strings([None if v is None else text_value(v, True) for v in props])
    return pa.RecordBatch.from_pydict(columns)


def _strings(values: Sequence[str | None]) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except (UnicodeEncodeError, pa.ArrowInvalid):  # a lone surrogate from a JSON escape: replaced, as readers do
        return pa.array([None if v is None else text_value(v, False) for v in values], pa.string())


@dataclass
class Job:
    """Work for the writer's thread, with its result."""

    work: Callable[[duckdb.DuckDBPyConnection], Any]
    future: Future[Any] = field(default_factory=Future)

    def run(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            self.future.set_result(self.work(con))
        except Exception as exc:  # handed to whoever waits on the future
            self.future.set_exception(exc)


class LiveWriter:
    """The one writer of live events into the store; `submit` from any thread, results come as futures."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        map_version: Callable[[], str | None],
        load_map: Callable[[], TouchpointMap],
        group_rows: int = 20_000,
        pseudonymiser: Pseudonymiser | None = None,
    ) -> None:
        self._con = con
        self._map_version, self._load_map = map_version, load_map
        self._group_rows = group_rows
        self._pseudo = pseudonymiser
        self._queue: queue.Queue[Submission | Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="touchlens-live-writer", daemon=True)
        self._started = datetime.now(UTC)
        self._ingests: dict[str, EventIngest] = {}
        self._map: TouchpointMap | None = None
        self._version: str | None = None
        self._map_checked = 0.0
        self._logged = 0.0
        self._touched: set[str] = set()
        self._refreshed = 0.0
        self.total = IngestReport()
        self.committed = 0.0  # when the last group was committed (monotonic): data flowing in

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, bring the ingest log up to date, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive() or not self.total.read:
            return
        try:
            with transaction(self._con):
                self._log()
        except duckdb.Error as exc:  # the counts only: every event is already committed or refused
            logger.warning("live writer: ingest log not brought up to date at stop: %s", exc)

    def queued(self) -> int:
        """Requests waiting for the writer."""
        return self._queue.qsize()

    def submit(self, submission: Submission) -> Future[Outcome]:
        if not self._thread.is_alive():
            submission.future.set_exception(RuntimeError("the live writer is not running"))
        else:
            self._queue.put(submission)
        return submission.future

    def call(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> Future[T]:
        """Run `work` on the writer's thread, between commits: other writes (erasure) never race live ones."""
        job = Job(work)
        if self._thread.is_alive():
            self._queue.put(job)
        else:
            job.future.set_exception(RuntimeError("the live writer is not running"))
        return job.future

    def _loop(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # never leave a request waiting on a writer that has gone
            logger.error("live writer stopped: %s", exc)
            self._fail_queued(exc)
            raise

    def _fail_queued(self, exc: BaseException) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and not item.future.done():
                item.future.set_exception(RuntimeError(f"the live writer stopped: {exc}"))

    def _serve(self) -> None:
        self._recover()
        carried: list[Submission | Job | None] = []  # an item that ended the last group, handled next
        while True:
            try:
                first = carried.pop() if carried else self._queue.get(timeout=CUSTOMERS_SECONDS)
            except queue.Empty:
                self._refresh_customers()
                continue
            if first is None:
                self._refresh_customers(force=True)
                return
            if isinstance(first, Job):
                first.run(self._con)
                continue
            group, rows = [first], first.batch.num_rows
            while rows < self._group_rows:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(more, Submission):  # a job or the end: after this group
                    carried.append(more)
                    break
                group.append(more)
                rows += more.batch.num_rows
            self._commit(group)
            self._refresh_customers()

    def _commit(self, group: list[Submission]) -> None:
        """One transaction for the whole group; every request hears the result only after it."""
        group = _refuse_blocked(group)
        if not group:
            return
        before = replace(self.total)
        try:
            with transaction(self._con):
                outcomes = [o for source in {s.source for s in group} for o in self._store(source, group)]
                if time.monotonic() - self._logged > LOG_SECONDS:
                    self._log()
        except Exception as exc:  # every waiting request gets the error: nothing of the group was stored
            self.total = before
            for submission in group:
                submission.future.set_exception(exc)
            return
        self.committed = time.monotonic()
        for submission, outcome in outcomes:
            submission.future.set_result(outcome)

    def _store(self, source: str, group: list[Submission]) -> list[tuple[Submission, Outcome]]:
        mine = [s for s in group if s.source == source]
        offsets, batches, at = [], [], 0
        for submission in mine:
            offsets.append(at)
            batches.append(_renumbered(submission.batch, at))
            at += submission.batch.num_rows
        if at == 0:
            return [(s, Outcome()) for s in mine]
        combined = pa.Table.from_batches(batches).combine_chunks().to_batches(max_chunksize=at)[0]
        if self._pseudo is not None:
            combined = self._pseudo.batch(self._con, combined)
        ingest = self._ingest(source)
        accepted = ingest.store(combined, None).accepted
        # Every row that was not simply stored, in one pass: quarantined, suppressed or already there.
        rows = self._con.execute(
            "SELECT _row, reason, field, _error, _row IN (SELECT _row FROM _skip) FROM _stage "
            "WHERE reason IS NOT NULL OR _row IN (SELECT _row FROM _skip) ORDER BY _row"
        ).fetchall()
        bad = _within_allowance(mine, offsets, [r[:4] for r in rows if r[1] not in (None, "suppressed")])
        self._quarantine(source, mine, offsets, bad)
        ids = combined.column("customer_id").drop_null().unique().to_pylist()
        self._touched.update(i for i in ids if isinstance(i, str))
        kept = {r[0] for r in bad}
        outcomes = _outcomes(mine, offsets, [(r[0], r[1], r[2], r[4], r[0] in kept) for r in rows])
        self._count(at, accepted, outcomes)
        return outcomes

    def _count(self, read: int, accepted: int, outcomes: list[tuple[Submission, Outcome]]) -> None:
        t = self.total
        t.read += read
        t.accepted += accepted
        t.duplicates += sum(o.duplicates for _, o in outcomes)
        t.suppressed += sum(o.suppressed for _, o in outcomes)
        t.quarantined += sum(len(o.rejected) for _, o in outcomes)

    def _quarantine(self, source: str, mine: list[Submission], offsets: list[int], bad: list[tuple[Any, ...]]) -> None:
        """Bad messages under their request's label and place, once however often the request is retried: one
        statement for all of them (a statement per message let one request of 10,000 hold the writer 43 s)."""
        if not bad:
            return
        self._con.register("_rejects", _rejects_table(mine, offsets, bad))
        try:
            self._con.execute(QUARANTINE_SQL, [source, datetime.now(UTC), source])
        finally:
            self._con.unregister("_rejects")

    def _refresh_customers(self, force: bool = False) -> None:
        """Personas and journeys of the customers whose events came since the last refresh (at most once a
        second: they follow from the events, so they may lag them that long, never more). First and last seen
        are kept up by each commit (`pipeline.SEEN_SQL`): recomputed here from all of a customer's events, they
        took a scan of every event's customer id, 136 ms a second of the writer's time at 10M events."""
        if not self._touched or (not force and time.monotonic() - self._refreshed < CUSTOMERS_SECONDS):
            return
        touched = pa.table({"customer_id": pa.array(sorted(self._touched), pa.string())})
        self._touched.clear()
        self._refreshed = time.monotonic()
        self._con.register("_touched", touched)
        try:
            with transaction(self._con):
                if self._map is not None:
                    apply_persona_rules(self._con, self._map, "customer_id IN (SELECT customer_id FROM _touched)")
                journeys.refresh_in(self._con, self._conversion())
        except duckdb.Error as exc:  # tried again at the next refresh; a restart recomputes them all
            self._touched.update(touched.column("customer_id").to_pylist())
            logger.warning("live writer: customers not refreshed: %s", exc)
        finally:
            self._con.unregister("_touched")

    def _conversion(self) -> journeys.Conversion | None:
        """The map's conversion predicate, which cuts the layer's periods (None: keep the one it has)."""
        return None if self._map is None else outcome_sql(self._map.outcomes.conversion)

    def _recover(self) -> None:
        """At start, customers recomputed from all events: a crash may have come before a refresh. A store that
        cannot be written is reported by each commit, so here it is only logged."""
        try:
            self._recompute_customers()
        except duckdb.Error as exc:
            logger.warning("live writer: customers not recomputed at start: %s", exc)

    def _recompute_customers(self) -> None:
        with transaction(self._con):
            self._con.execute(CUSTOMERS_SQL)
            if self._map is None:
                self._map, self._version = self._load_map(), self._map_version()
            journeys.refresh_in(self._con, self._conversion())  # builds the layer of a store from before it
            apply_persona_rules(self._con, self._map)

    def _ingest(self, source: str) -> EventIngest:
        """The compiled rules of the current map, rebuilt when the map changes (checked once a second)."""
        if self._map is None or time.monotonic() - self._map_checked > MAP_CHECK_SECONDS:
            version = self._map_version()
            if self._map is None or version != self._version:
                self._map, self._version = self._load_map(), version
                self._ingests.clear()
            self._map_checked = time.monotonic()
        if source not in self._ingests:
            self._ingests[source] = EventIngest(self._con, self._map, source)
        ingest = self._ingests[source]
        ingest.now = datetime.now(UTC)
        ingest.dedupe_since = ingest.now - DEDUPE_WINDOW
        return ingest

    def _log(self) -> None:
        self._logged = time.monotonic()
        self._write_log()

    def _write_log(self) -> None:
        """One ingest-log row for this writer's run, its counts brought up to date in the same transaction
        (the web cache keys on it, so pages show live data)."""
        t = self.total
        values = [t.read, t.accepted, t.duplicates, t.quarantined, datetime.now(UTC)]
        updated = self._con.execute(
            "UPDATE ingest_log SET rows_read = ?, accepted = ?, duplicates = ?, quarantined = ?, finished = ? "
            "WHERE kind = 'events' AND source = 'live' AND file = ? AND started = ? RETURNING 1",
            [*values, LIVE_FILE, self._started],
        ).fetchall()
        if not updated:
            self._con.execute(
                "INSERT INTO ingest_log VALUES ('live', 'events', ?, NULL, ?, ?, ?, ?, ?, ?)",
                [LIVE_FILE, *values[:4], self._started, values[4]],
            )


def _renumbered(batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
    """Rows numbered across the group, so one staging pass serves every request in it."""
    index = batch.schema.get_field_index("_row")
    rows = pa.array(range(offset + 1, offset + batch.num_rows + 1), pa.int64())
    return batch.set_column(index, batch.schema.field(index), rows)


def _owner(offsets: list[int], row: int) -> tuple[int, int]:
    """Which request of the group a row came from, and its place in that request."""
    at = bisect.bisect_left(offsets, row) - 1
    return at, row - offsets[at]


def _refuse_blocked(group: list[Submission]) -> list[Submission]:
    """The group less the requests of senders over their limit, which are answered OverLimit unstaged: a burst
    of invalid requests queued before the first one was counted costs the writer nothing more."""
    kept = []
    for submission in group:
        if submission.allowance.blocked():
            submission.future.set_exception(OverLimit("this sender is over its limit of invalid messages"))
        else:
            kept.append(submission)
    return kept


def _within_allowance(mine: list[Submission], offsets: list[int], bad: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The bad rows each request's sender may still have quarantined, first ones first (rows come in order)."""
    by_request: dict[int, list[tuple[Any, ...]]] = {}
    for row in bad:
        by_request.setdefault(_owner(offsets, row[0])[0], []).append(row)
    kept: list[tuple[Any, ...]] = []
    for at, rows in by_request.items():
        kept.extend(rows[: max(0, min(len(rows), mine[at].allowance.take(len(rows))))])
    return kept


def _rejects_table(mine: list[Submission], offsets: list[int], bad: list[tuple[Any, ...]]) -> pa.Table:
    """The rows of quarantine for `bad` (_row, reason, field, _error), built in Python in one pass: the raw text
    of a message is the request's own JSON, which the staged rows no longer hold."""
    files, places, raws, details = [], [], [], []
    for row, reason, _field, error in bad:
        at, index = _owner(offsets, row)
        files.append(mine[at].file)
        places.append(index)
        raws.append(mine[at].raw(index))
        details.append((error[len(reason) + 1 :].strip() or None) if error else None)
    return pa.table(
        {
            "file": pa.array(files, pa.string()),
            "row": pa.array(places, pa.int64()),
            "field": _strings([r[2] for r in bad]),
            "reason": _strings([r[1] for r in bad]),
            "detail": _strings(details),
            "raw": _strings(raws),
        }
    )


def _outcomes(
    mine: list[Submission], offsets: list[int], rows: list[tuple[int, str | None, str | None, bool, bool]]
) -> list[tuple[Submission, Outcome]]:
    """Each request's counts from its rows that were not simply stored: (row, reason, field, duplicate, kept),
    `kept` false for an invalid message over its sender's allowance."""
    outcomes = [Outcome() for _ in mine]
    not_accepted = [0] * len(mine)
    for row, reason, field_name, duplicate, kept in rows:
        at, index = _owner(offsets, row)
        submission, outcome = mine[at], outcomes[at]
        not_accepted[at] += 1
        if reason == "suppressed":
            outcome.suppressed += 1
        elif reason is not None and kept:
            outcome.rejected.append(Rejected(index, submission.message_id(index), reason, field_name))
        elif reason is not None:
            outcome.refused += 1
        elif duplicate:
            outcome.duplicates += 1
    for at, submission in enumerate(mine):
        outcomes[at].accepted = submission.batch.num_rows - not_accepted[at]
    return list(zip(mine, outcomes, strict=True))
