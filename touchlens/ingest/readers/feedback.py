"""Survey feedback files: plain CSV (one response a row, or a column a metric), Qualtrics, Zendesk, Intercom.

Each reader yields one row per answered metric in the `FEEDBACK_COLUMNS` shape, scores as read; checking
scales and tying responses to touchpoints is the pipeline's job.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa

from touchlens.ingest.readers.base import FEEDBACK_COLUMNS, Reader, ReaderError, ReadOptions, RowBatcher, eager
from touchlens.ingest.readers.product import dump, first_record
from touchlens.ingest.readers.zendesk import read_intercom, read_zendesk_ratings

METRICS = ("nps", "csat", "ces", "rating")
CSV_NAMES: dict[str, tuple[str, ...]] = {
    "response_id": ("response_id",),
    "customer_id": ("customer_id", "user_id", "customer"),
    "ts": ("ts", "timestamp", "date", "submitted_at"),
    **{name: (name,) for name in ("metric", "score", "scale_min", "scale_max", "touchpoint", "channel")},
    "comment": ("comment",),
    **{metric: (metric,) for metric in METRICS},
}
QUALTRICS_NAMES: dict[str, tuple[str, ...]] = {
    "response_id": ("ResponseId", "ResponseID", "_recordId"),
    "ts": ("RecordedDate", "EndDate"),
    "touchpoint": ("touchpoint", "Touchpoint"),
    "channel": ("channel", "Channel"),
}
CUSTOMER_COLUMNS = ("ExternalReference", "ExternalDataReference", "RecipientEmail")
# Qualtrics' own columns, never questions.
METADATA = frozenset(
    {
        *("StartDate", "EndDate", "RecordedDate", "ResponseId", "ResponseID", "Status", "IPAddress"),
        *("Progress", "Duration (in seconds)", "Finished", "RecipientFirstName", "RecipientLastName"),
        *("LocationLatitude", "LocationLongitude", "DistributionChannel", "UserLanguage", "ResponseSet"),
    }
)
# What a question asks, from its text; first match wins. Follow-ups ("why…", "reason for your score")
# are comments even when they mention the metric's words.
QUESTION_KINDS = [
    ("comment", re.compile(r"\b(why|reasons?|comments?|anything else|explain)\b")),
    ("nps", re.compile(r"\brecommend")),
    ("csat", re.compile(r"\b(dis)?satisf")),
    ("ces", re.compile(r"\b(easy|easily|effort)")),
    ("comment", re.compile(r"\btell us\b")),
]
CHOICE = re.compile(r"^(-?\d+(?:\.\d+)?)\s+-\s")  # "10 - Extremely likely", a choice-text export
SEEN_UNANSWERED = "-99"  # Qualtrics' code for a question shown but not answered
COMMON = ("response_id", "customer_id", "ts", "scale_min", "scale_max", "touchpoint", "channel")
Row = dict[str, Any]


def cell(record: dict[str, str], column: str | None) -> str | None:
    value = record.get(column) if column else None
    return (value.strip() or None) if value else None


def csv_head(path: Path, rows: int) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        return list(itertools.islice(csv.reader(f), rows))


def csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(spreadsheet row, cells) of every record; a quoted line break stays inside its row."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        try:
            yield from enumerate(csv.reader(f), start=1)
        except csv.Error as exc:
            raise ReaderError(f"{path}: not a readable CSV file: {exc}") from None


def csv_batches(
    opts: ReadOptions,
    header: list[str],
    records: Iterable[tuple[int, list[str]]],
    convert: Callable[[Row], list[Row]],
) -> Iterator[pa.RecordBatch]:
    """Feedback batches of CSV records; a record with the wrong number of cells is an error row."""
    batcher = RowBatcher(columns=FEEDBACK_COLUMNS, size=opts.batch_rows)
    for number, cells in records:
        if not cells:
            continue  # a blank line
        if len(cells) != len(header):
            reason = f"wrong number of cells: expected {len(header)}, got {len(cells)}"
            batcher.add(number, dump(cells), {}, (reason, "row"))
        else:
            record = dict(zip(header, cells, strict=True))
            for values in convert(record):
                batcher.add(number, dump(record), values)
        if batcher.full():
            yield from batcher.flush()
    yield from batcher.flush()


def resolve(path: Path, names: list[str], opts: ReadOptions, defaults: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Canonical name → file column, from --columns first and the default names second."""
    found: dict[str, str] = {}
    for canonical, column in opts.columns.items():
        if column not in names:
            raise ReaderError(f"{path}: column '{column}' (for {canonical}) not found; columns are: {', '.join(names)}")
        found[canonical] = column
    for canonical, candidates in defaults.items():
        match = next((c for c in candidates if c in names and c not in found.values()), None)
        if canonical not in found and match is not None:
            found[canonical] = match
    return found


def _require(path: Path, names: list[str], missing: list[str], hint: str) -> None:
    if missing:
        columns = ", ".join(names)
        raise ReaderError(f"{path}: no column for {', '.join(missing)}; columns are: {columns} (use --columns {hint})")


def per_metric(common: Row, answers: list[tuple[str, str, str | None]], comment: str | None) -> list[Row]:
    """One row per answered (metric, id suffix, score); the comment goes with the first, so it counts once."""
    rows: list[Row] = []
    rid = common.get("response_id")
    for metric, suffix, score in answers:
        if score is None:
            continue
        response = f"{rid}:{suffix}" if rid and suffix else rid
        note = None if rows else comment
        rows.append({**common, "response_id": response, "metric": metric, "score": score, "comment": note})
    return rows


def read_feedback_csv(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """Plain CSV: a `metric` and `score` column, or ("wide") one column per metric such as `nps`, `csat`."""
    records = csv_records(path)
    _, header = next(records, (1, []))
    if not header:
        raise ReaderError(f"{path}: empty file, no header row")
    found = resolve(path, header, opts, CSV_NAMES)
    wide = [m for m in METRICS if m in found] if "score" not in found and "metric" not in found else []
    missing = [c for c in ("customer_id", "ts") if c not in found]
    unscored = [] if wide else [c for c in ("metric", "score") if c not in found]
    hint = ",".join(f"{m}=COLUMN" for m in missing + unscored)
    _require(path, header, missing + unscored, hint + (", or nps=COLUMN per metric" if unscored else ""))
    yield from csv_batches(opts, header, records, lambda record: csv_rows(record, found, wide))


def csv_rows(record: Row, found: dict[str, str], wide: list[str]) -> list[Row]:
    common = {name: cell(record, found.get(name)) for name in COMMON}
    comment = cell(record, found.get("comment"))
    if not wide:
        scored = {"metric": cell(record, found["metric"]), "score": cell(record, found["score"])}
        return [{**common, **scored, "comment": comment}]
    suffix = len(wide) > 1
    return per_metric(common, [(m, m if suffix else "", cell(record, found[m])) for m in wide], comment)


@dataclass(frozen=True)
class Qualtrics:
    """Where a Qualtrics export keeps what: header rows, columns by canonical name, questions by metric."""

    header_rows: int
    found: dict[str, str]
    customers: tuple[str, ...]  # the first non-empty of these names the customer
    metrics: tuple[tuple[str, str], ...]  # (metric, column), in file order
    comments: tuple[str, ...]
    zone: tzinfo | None  # of the timestamp column, from the ImportId row


def read_qualtrics(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """Qualtrics CSV export: column ids, question texts and ImportId rows, then one response a row."""
    records = csv_records(path)
    head = list(itertools.islice(records, 3))
    if not head or not head[0][1]:
        raise ReaderError(f"{path}: empty file, no header row")
    q = qualtrics_layout(path, [cells for _, cells in head], opts)
    data = itertools.chain(head[q.header_rows :], records)
    yield from csv_batches(opts, head[0][1], data, lambda record: qualtrics_rows(record, q))


def header_rows(head: list[list[str]]) -> int:
    """3 for today's exports (ids, texts, ImportId JSON), 2 for ids and texts, 1 for a plain CSV."""
    if len(head) >= 3 and any(c.lstrip().startswith('{"ImportId"') for c in head[2]):
        return 3
    return 2 if len(head) >= 2 and _looks_like_questions(head[0], head[1]) else 1


def _looks_like_questions(ids: list[str], row: list[str]) -> bool:
    """Row 2 holds texts, not answers: its response id is no ``R_…`` id, or no cell is a number."""
    column = next((c for c in QUALTRICS_NAMES["response_id"] if c in ids), None)
    if column is not None:
        index = ids.index(column)
        return index < len(row) and not row[index].startswith("R_")
    cells = [c.strip() for c in row if c.strip()]
    return bool(cells) and not any(_is_number(c) for c in cells)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def qualtrics_layout(path: Path, head: list[list[str]], opts: ReadOptions) -> Qualtrics:
    ids = head[0]
    rows = header_rows(head)
    texts = head[1] if rows >= 2 else ids
    found = resolve(path, ids, opts, QUALTRICS_NAMES)
    customers = (found["customer_id"],) if "customer_id" in found else tuple(c for c in CUSTOMER_COLUMNS if c in ids)
    metrics, comments = _questions(ids, texts, found, opts)
    _require(path, ids, [] if customers else ["customer_id"], "customer_id=COLUMN")
    _require(path, ids, [] if "ts" in found else ["ts"], "ts=COLUMN")
    if not metrics:
        questions = "; ".join(f"{c}: {t!r}" for c, t in zip(ids, texts, strict=False) if c not in METADATA)
        hint = "use --columns nps=Q1,csat=Q2"
        raise ReaderError(f"{path}: no NPS, CSAT or CES question found; questions are: {questions} ({hint})")
    zone = _zone(head[2], ids.index(found["ts"])) if rows == 3 else None
    return Qualtrics(rows, found, customers, tuple(metrics), tuple(comments), zone)


def _questions(
    ids: list[str], texts: list[str], found: dict[str, str], opts: ReadOptions
) -> tuple[list[tuple[str, str]], list[str]]:
    """(metric, column) and comment columns: as --columns says, else guessed from the question texts."""
    used = set(found.values()) | set(CUSTOMER_COLUMNS) | METADATA
    kinds = [
        (column, question_kind(column, text))
        for column, text in itertools.zip_longest(ids, texts[: len(ids)], fillvalue="")
        if column not in used and not column.endswith("_NPS_GROUP")
    ]
    metrics = [(m, found[m]) for m in METRICS if m in opts.columns]
    metrics = metrics or [(kind, column) for column, kind in kinds if kind in METRICS]
    comments = [found["comment"]] if "comment" in opts.columns else [c for c, k in kinds if k == "comment"]
    return metrics, comments


def question_kind(column: str, text: str) -> str | None:
    """nps, csat, ces or comment, from the column id when it names a metric, else the question text."""
    if column.lower() in METRICS:
        return column.lower()
    return next((kind for kind, pattern in QUESTION_KINDS if pattern.search(text.lower())), None)


def _zone(imports: list[str], index: int) -> tzinfo | None:
    """The zone Qualtrics wrote a date column in (``{"ImportId": ..., "timeZone": "America/Denver"}``)."""
    try:
        name = json.loads(imports[index]).get("timeZone")
        return UTC if name in ("Z", "UTC") else ZoneInfo(name)
    # A name that is a folder of the zone database ("America") or too long for a file name is an OSError.
    except (IndexError, ValueError, AttributeError, TypeError, RecursionError, OSError, ZoneInfoNotFoundError):
        return None


def qualtrics_rows(record: Row, q: Qualtrics) -> list[Row]:
    common = {name: cell(record, q.found.get(name)) for name in COMMON}
    common["customer_id"] = next((v for v in (cell(record, c) for c in q.customers) if v), None)
    common["ts"] = local_time(common["ts"], q.zone)
    comment = "\n".join(filter(None, (cell(record, c) for c in q.comments))) or None
    answers = [(metric, column, choice_score(cell(record, column))) for metric, column in q.metrics]
    return per_metric(common, answers, comment)


def local_time(text: str | None, zone: tzinfo | None) -> str | None:
    """A naive time in the export's zone → ISO with offset; others unchanged (the pipeline judges them)."""
    if text is None or zone is None:
        return text
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).isoformat()


def choice_score(text: str | None) -> str | None:
    if text is None or text == SEEN_UNANSWERED:
        return None
    match = CHOICE.match(text)
    return match.group(1) if match else text


FEEDBACK_READERS: dict[str, Reader] = {
    name: eager(reader)  # a refused file is refused before ingest writes anything
    for name, reader in {
        "csv": read_feedback_csv,
        "qualtrics": read_qualtrics,
        "zendesk": read_zendesk_ratings,
        "intercom": read_intercom,
    }.items()
}
FEEDBACK_FORMATS = ("auto", *FEEDBACK_READERS)
JSON_FLAVOURS = [
    ("zendesk", ("tickets", "satisfaction_ratings", "satisfaction_rating", "requester_id")),
    ("intercom", ("conversations", "conversation_rating", "conversation_parts")),
]


def detect_feedback_format(path: Path) -> str:
    """csv or qualtrics for CSV files (by the header rows), zendesk or intercom for JSON (by the keys)."""
    if path.suffix.lower() in (".csv", ".txt"):
        head = csv_head(path, 3)
        rows = header_rows(head)
        is_qualtrics = rows == 3 or (rows == 2 and any(c in head[0] for c in QUALTRICS_NAMES["response_id"]))
        return "qualtrics" if is_qualtrics else "csv"
    record = first_record(path)
    if isinstance(record, list):
        record = record[0] if record else None
    for name, keys in JSON_FLAVOURS if isinstance(record, dict) else []:
        if any(k in record for k in keys):
            return name
    raise ReaderError(
        f"{path}: cannot tell the feedback format (expected a CSV, or a Zendesk or Intercom JSON export); "
        f"use --format, one of: {', '.join(FEEDBACK_READERS)}"
    )
