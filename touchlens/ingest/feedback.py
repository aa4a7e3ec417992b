"""Survey feedback into the store: scores checked against their scale, tied to a touchpoint, stored once.

A response names its touchpoint, or else takes the customer's most recent touchpoint within the attach
window before it (an as-of join in the engine). Scales: NPS 0–10, CSAT 1–5, CES 1–7, rating 1–5 unless the
file gives `scale_min`/`scale_max`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from touchlens.ingest.pipeline import MACROS, IngestReport, Progress, write_log
from touchlens.model.map import TouchpointMap
from touchlens.store.events import scalar, transaction
from touchlens.text import sentiment
from touchlens.text.scrub import scrub

DEFAULT_ATTACH_WINDOW = timedelta(hours=48)

STAGE_SQL = """
CREATE OR REPLACE TEMP TABLE _fstage AS
SELECT *,
  CASE
    -- An erased customer's responses are dropped, never quarantined (quarantine keeps the raw record).
    WHEN COALESCE(sha256(customer_id) IN (SELECT customer_key FROM suppressions), false) THEN 'suppressed'
    WHEN _error IS NOT NULL THEN split_part(_error, ':', 1)
    WHEN customer_id IS NULL THEN 'no customer id'
    WHEN ts IS NULL THEN 'unparseable timestamp'
    WHEN ts < TIMESTAMPTZ '1990-01-01' OR ts > CAST(? AS TIMESTAMPTZ) + INTERVAL 1 DAY THEN 'impossible timestamp'
    WHEN metric IS NULL OR NOT list_contains(['nps', 'csat', 'ces', 'rating'], metric) THEN 'unknown metric'
    WHEN score IS NULL THEN 'score not a number'
    WHEN score < scale_min OR score > scale_max THEN 'score out of range'
    WHEN touchpoint IS NOT NULL AND NOT list_contains(?::VARCHAR[], touchpoint) THEN 'unknown touchpoint'
  END AS reason,
  CASE  -- in the same order as the reasons above
    WHEN _error IS NOT NULL THEN _field
    WHEN customer_id IS NULL THEN 'customer_id'
    WHEN ts IS NULL OR ts < TIMESTAMPTZ '1990-01-01' OR ts > CAST(? AS TIMESTAMPTZ) + INTERVAL 1 DAY THEN 'ts'
    WHEN metric IS NULL OR NOT list_contains(['nps', 'csat', 'ces', 'rating'], metric) THEN 'metric'
    WHEN score IS NULL OR score < scale_min OR score > scale_max THEN 'score'
    ELSE 'touchpoint'
  END AS field
FROM (
  SELECT b._row, b._raw, b._error, b._field,
    NULLIF(trim(b.response_id), '') AS given_id,
    NULLIF(trim(b.customer_id), '') AS customer_id,
    CAST(b.ts AS VARCHAR) AS ts_raw,
    tl_parse_ts(CAST(b.ts AS VARCHAR)) AS ts,
    lower(NULLIF(trim(b.metric), '')) AS metric,
    b.score AS score_raw,
    try_cast(trim(b.score) AS DOUBLE) AS score,
    -- A file's own scale counts for ratings only; NPS, CSAT and CES have fixed scales.
    CASE WHEN lower(trim(b.metric)) = 'rating' THEN COALESCE(try_cast(b.scale_min AS DOUBLE), 1)
         WHEN lower(trim(b.metric)) = 'nps' THEN 0 ELSE 1 END AS scale_min,
    CASE WHEN lower(trim(b.metric)) = 'rating' THEN COALESCE(try_cast(b.scale_max AS DOUBLE), 5)
         WHEN lower(trim(b.metric)) = 'nps' THEN 10 WHEN lower(trim(b.metric)) = 'ces' THEN 7 ELSE 5 END AS scale_max,
    NULLIF(trim(b.touchpoint), '') AS touchpoint,
    NULLIF(trim(b.channel), '') AS channel,
    NULLIF(b.comment, '') AS comment
  FROM _fbatch b
)
"""

QUARANTINE_SQL = """
INSERT INTO quarantine
SELECT ?, 'feedback', ?, _row, field, reason,
  CASE WHEN _error IS NOT NULL THEN nullif(trim(substr(_error, length(reason) + 2)), '')
       WHEN field = 'ts' THEN ts_raw WHEN field = 'score' THEN score_raw
       WHEN field = 'metric' THEN metric WHEN field = 'touchpoint' THEN touchpoint END,
  COALESCE(_raw, to_json({'response_id': given_id, 'customer_id': customer_id, 'ts': ts_raw, 'metric': metric,
                          'score': score_raw, 'touchpoint': touchpoint, 'comment': comment})::VARCHAR),
  ?
FROM _fstage s WHERE reason IS NOT NULL AND reason <> 'suppressed'
  AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.kind = 'feedback' AND q.source = ? AND q.file = ?
                  AND q."row" = s._row AND q.reason = s.reason)
"""

# The customer's latest mapped event at or before the response, if it lies within the window.
NEW_SQL = """
CREATE OR REPLACE TEMP TABLE _fnew AS
WITH valid AS (
  SELECT *, COALESCE(given_id, 'fp:' || md5(CAST(json_array(customer_id, ts_raw, metric, score_raw, comment,
                                                   touchpoint, channel) AS VARCHAR)))
    AS response_id
  FROM _fstage WHERE reason IS NULL
),
fresh AS (
  SELECT * FROM valid v
  WHERE NOT EXISTS (SELECT 1 FROM feedback f WHERE f.source = ? AND f.response_id = v.response_id)
  QUALIFY row_number() OVER (PARTITION BY response_id ORDER BY _row) = 1
),
mapped AS (SELECT customer_id, ts, touchpoint, channel FROM events WHERE touchpoint IS NOT NULL)
-- A response that names its touchpoint takes that touchpoint's channel from the map, never the latest event's.
SELECT f.response_id, f.customer_id, f.ts, f.metric, f.score, f.scale_min, f.scale_max, f.comment,
  COALESCE(f.touchpoint, CASE WHEN f.ts - e.ts <= to_microseconds(?) THEN e.touchpoint END) AS touchpoint,
  COALESCE(f.channel, CASE WHEN f.touchpoint IS NOT NULL THEN (SELECT c.channel FROM _fchannels c
                                                              WHERE c.touchpoint = f.touchpoint)
                           WHEN f.ts - e.ts <= to_microseconds(?) THEN e.channel END) AS channel
FROM fresh f ASOF LEFT JOIN mapped e ON f.customer_id = e.customer_id AND f.ts >= e.ts
"""

INSERT_SQL = """
INSERT INTO feedback
SELECT n.response_id, ?, n.customer_id, n.ts, n.touchpoint, n.channel, n.metric, n.score, n.scale_min,
  n.scale_max, n.comment, s.sentiment, NULL, ?
FROM _fnew n LEFT JOIN _fsentiment s ON s.response_id = n.response_id
"""


@dataclass
class FeedbackIngest:
    """One run of feedback ingestion into an open store, for one map."""

    con: duckdb.DuckDBPyConnection
    m: TouchpointMap
    source: str
    attach_window: timedelta = DEFAULT_ATTACH_WINDOW
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.con.execute(MACROS)

    def run(self, path: Path, batches: Iterator[pa.RecordBatch], progress: Progress | None = None) -> IngestReport:
        report = IngestReport(files=[str(path)])
        started = time.perf_counter()
        self._log(path, report, finished=False)
        for batch in batches:
            report.add(self._batch(path, batch))
            if progress:
                progress(batch.num_rows)
        self._log(path, report, finished=True)
        report.seconds = time.perf_counter() - started
        return report

    def one(self, label: str, batch: pa.RecordBatch) -> IngestReport:
        """A batch that is no file's (a survey link's answer): checked, scrubbed and stored like a file's rows,
        without an ingest-log run (the caller logs it)."""
        return self._batch(Path(label), batch)

    def _batch(self, path: Path, batch: pa.RecordBatch) -> IngestReport:
        report = IngestReport(read=batch.num_rows)
        batch = scrubbed(batch)
        keys = [t.key for t in self.m.touchpoints]
        window = int(self.attach_window.total_seconds() * 1_000_000)
        con = self.con
        with transaction(con):
            con.register("_fbatch", batch)
            con.register("_fchannels", self._channels())  # registered before any result is left open
            con.execute(STAGE_SQL, [self.now, keys, self.now])
            con.unregister("_fbatch")
            con.execute(QUARANTINE_SQL, [self.source, str(path), self.now, self.source, str(path)])
            report.quarantined = int(
                scalar(con, "SELECT count(*) FROM _fstage WHERE reason IS NOT NULL AND reason <> 'suppressed'")
            )
            report.suppressed = int(scalar(con, "SELECT count(*) FROM _fstage WHERE reason = 'suppressed'"))
            con.execute(NEW_SQL, [self.source, window, window])
            con.unregister("_fchannels")
            con.register("_fsentiment", _sentiments(con))
            row = con.execute(INSERT_SQL, [self.source, self.now]).fetchone()
            con.unregister("_fsentiment")
            report.accepted = int(row[0]) if row else 0
            valid = int(scalar(con, "SELECT count(*) FROM _fstage WHERE reason IS NULL"))
            report.duplicates = valid - report.accepted
            counts = con.execute("SELECT touchpoint, count(*) FROM _fnew GROUP BY 1").fetchall()
            report.by_touchpoint = Counter({k: n for k, n in counts if k is not None})
            report.unmapped = sum(n for k, n in counts if k is None)
        return report

    def _log(self, path: Path, r: IngestReport, finished: bool) -> None:
        write_log(self.con, "feedback", self.source, path, self.now, r if finished else None)

    def _channels(self) -> pa.Table:
        """Each touchpoint's channel in the map."""
        tps = self.m.touchpoints
        return pa.table({"touchpoint": pa.array([t.key for t in tps], pa.string()),
                         "channel": pa.array([t.channel for t in tps], pa.string())})  # fmt: skip


def scrubbed(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with e-mail addresses, phone and card numbers taken out of comments (and of the raw record
    kept for quarantine) before anything is stored."""
    for name in ("comment", "_raw"):
        i = batch.schema.get_field_index(name)
        if i < 0:
            continue
        values = [scrub(v) if isinstance(v, str) else v for v in batch.column(i).to_pylist()]
        batch = batch.set_column(i, batch.schema.field(i), pa.array(values, type=batch.schema.field(i).type))
    return batch


def _sentiments(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """VADER sentiment of the new responses' comments (computed once, at ingest)."""
    rows = con.execute("SELECT response_id, comment FROM _fnew WHERE comment IS NOT NULL").fetchall()
    values = sentiment.scores([c for _, c in rows])
    return pa.table(
        {"response_id": pa.array([r for r, _ in rows], pa.string()), "sentiment": pa.array(values, pa.float64())}
    )
