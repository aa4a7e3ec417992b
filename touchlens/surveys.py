"""Asking at the touchpoint: signed survey links and QR codes, and their answers into the feedback pipeline.

The survey half of the `Workspace` facade (`ws.surveys`). A link is signed per customer and touchpoint
(`ingest/survey_links.py`); its answer goes through the same pipeline as an imported survey (scrubbed,
sentiment scored, tied to the touchpoint, dropped for an erased customer) under source `survey`, one row per
link. A link answered, tampered with, expired or whose customer was erased is refused with the reason.
"""

from __future__ import annotations

import csv
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

from touchlens.errors import BadOption, UnknownItem, UsageError
from touchlens.host import Host
from touchlens.ingest.survey_links import METRICS, Link, LinkError, Metric, new_link, new_secret, sign, verify
from touchlens.model.durations import as_duration
from touchlens.model.map import Touchpoint

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


SECRET_FILE = ".survey-secret"  # noqa: S105 (the file's name: what it holds is made at first use)
QUESTIONS = {
    "csat": "How satisfied were you with {touchpoint}?",
    "nps": "How likely are you to recommend {company} to a friend or colleague?",
    "ces": "How much effort did {touchpoint} take?",
}
ENDS = {
    "csat": ("Very dissatisfied", "Very satisfied"),
    "nps": ("Not at all likely", "Extremely likely"),
    "ces": ("Very little effort", "A great deal of effort"),
}
QR_FORMATS = ("png", "svg")
MAX_COMMENT = 5000
# One answer per link: the check and the insert in one critical section (one server process writes).
_ANSWERING = threading.Lock()


@dataclass(frozen=True)
class Question:
    """What a survey page asks, for a link that can be answered."""

    token: str
    link: Link
    title: str  # the touchpoint's name
    text: str
    low: str  # what the lowest score means
    high: str
    comment: bool

    @property
    def scores(self) -> list[int]:
        low, high = self.link.scale
        return list(range(low, high + 1))


class Surveys:
    """Survey links of one workspace."""

    def __init__(self, ws: Host) -> None:
        self.ws = ws

    def link(
        self,
        touchpoint: str,
        customer_id: str | None = None,
        *,
        metric: str | None = None,
        days: int | None = None,
        now: datetime | None = None,
    ) -> str:
        """The URL of a new link asking `customer_id` (as the business knows them; pseudonymised here when the
        settings say so) about `touchpoint`; no customer: an open link, answered by anyone, each answer apart."""
        stored = None if customer_id is None else self.ws.stored_id(customer_id)
        if stored is not None and self._suppressed(stored):
            raise BadOption(f"--customer: {customer_id} was erased (touchlens forget): no survey link for them")
        return self._stored_link(touchpoint, stored, _metric(metric), days, now)

    def _suppressed(self, stored: str) -> bool:
        from touchlens.store import surveys as store

        with self.ws.events(read_only=True) as con:
            return store.erased(con, stored, datetime.max.replace(tzinfo=UTC))

    def links(
        self,
        touchpoint: str,
        customers: Sequence[str] | None = None,
        since: datetime | None = None,
        *,
        metric: str | None = None,
        days: int | None = None,
        now: datetime | None = None,
    ) -> list[tuple[str, str]]:
        """(customer, URL) for a mail-merge: the `customers` given, else those who met the touchpoint since
        `since` (as the store holds them)."""
        from touchlens.store import surveys as store

        if customers is None:
            if since is None:
                raise BadOption("--since: say since when customers met the touchpoint, or give the customers")
            with self.ws.events(read_only=True) as con:
                found = store.reached(con, self._touchpoint(touchpoint).key, since)
            # Ids as stored already: link them without pseudonymising twice.
            return [(c, self._stored_link(touchpoint, c, _metric(metric), days, now)) for c in found]
        return [(c, self.link(touchpoint, c, metric=metric, days=days, now=now)) for c in customers]

    def links_for(
        self,
        touchpoint: str,
        customers: str | os.PathLike[str] | None,
        id_column: str = "customer_id",
        since: str | None = None,
        *,
        metric: str | None = None,
        days: int | None = None,
    ) -> list[tuple[str, str]]:
        """`links` for the command line: the customers from a CSV file's `id_column`, or everyone who met the
        touchpoint within the duration `since` (7d)."""
        if (customers is None) == (since is None):
            raise UsageError("give --customers FILE or --since DURATION (one of them)")
        if customers is not None:
            return self.links(touchpoint, read_customers(Path(customers), id_column), metric=metric, days=days)
        start = datetime.now(UTC) - as_duration(since or "", "--since")
        return self.links(touchpoint, since=start, metric=metric, days=days)

    def asked(self, touchpoint: str) -> tuple[str, str, int]:
        """What a new link about the touchpoint asks (metric, question) and how many answers links brought."""
        from touchlens.store import surveys as store

        tp = self._touchpoint(touchpoint)
        metric: Metric = tp.survey.metric if tp.survey else "csat"
        link = new_link(tp.key, None, metric, datetime.now(UTC), datetime.now(UTC))
        with self.ws.events(read_only=True) as con:
            answered = store.answers_for(con, tp.key)
        return metric, self._asked("", link, tp).text, answered

    def url(self, token: str) -> str:
        return f"{self.ws.settings.surveys.base_url.rstrip('/')}/s/{token}"

    def question(self, token: str, now: datetime | None = None) -> Question:
        """What the link asks, if it can still be answered; else `LinkError` with the reason."""
        with self.ws.events(read_only=True) as con:
            return self._question_on(con, token, now or datetime.now(UTC))

    def _question_on(self, con: duckdb.DuckDBPyConnection, token: str, now: datetime) -> Question:
        from touchlens.store import surveys as store

        link = verify(token, self._secret(make=False), now)
        tp = self.ws.map_or_empty().touchpoint(link.touchpoint)
        if tp is None:
            raise LinkError("closed", "this survey is closed: its touchpoint is no longer on the map")
        if link.customer_id is not None and store.erased(con, link.customer_id, _at(link.issued)):
            raise LinkError("erased", "this survey link no longer works")
        if link.customer_id is not None and store.answered(con, link.response_id()):
            raise LinkError("answered", "this survey was answered already: thank you")
        return self._asked(token, link, tp)

    def answer(self, token: str, score: str | float, comment: str | None = None, now: datetime | None = None) -> str:
        """Store the link's answer (once); returns its response id. `LinkError` when the link cannot be
        answered, `BadOption` for a score off the scale."""
        with self.ws.events() as con:
            return self.answer_on(con, token, score, comment, now)

    def answer_on(
        self,
        con: duckdb.DuckDBPyConnection,
        token: str,
        score: str | float,
        comment: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """`answer` on a connection the caller holds (the server's one writer, so answers never race live
        events)."""
        from touchlens.ingest.feedback import FeedbackIngest
        from touchlens.store import surveys as store

        now = now or datetime.now(UTC)
        q = self._question_on(con, token, now)
        value = _score(score, q.link.scale)
        customer = q.link.customer_id or f"anon:{secrets.token_hex(8)}"
        response = q.link.response_id() if q.link.customer_id else f"{q.link.response_id()}:{secrets.token_hex(6)}"
        batch = _row(response, customer, now, q.link, value, _comment(comment) if q.comment else None)
        with _ANSWERING:
            if store.answered(con, response):
                raise LinkError("answered", "this survey was answered already: thank you")
            report = FeedbackIngest(con, self.ws.map_or_empty(), store.SOURCE, now=now).one("survey link", batch)
            store.log(con, "survey link", report.accepted, now)
            self.ws.cases.scan_on(con, now)  # a low score opens a follow-up case at once
        if report.suppressed:
            raise LinkError("erased", "this survey link no longer works")
        if not report.accepted:
            raise BadOption(f"score: the answer was not stored ({report.quarantined} quarantined)")
        return response

    def comment(self, token: str, text: str, now: datetime | None = None) -> bool:
        """A comment on the link's one-click answer, if it has none yet; False otherwise."""
        with self.ws.events() as con:
            return self.comment_on(con, token, text, now)

    def comment_on(self, con: duckdb.DuckDBPyConnection, token: str, text: str, now: datetime | None = None) -> bool:
        """`comment` on a connection the caller holds."""
        from touchlens.store import surveys as store
        from touchlens.text import sentiment
        from touchlens.text.scrub import scrub

        now = now or datetime.now(UTC)
        link = verify(token, self._secret(make=False), now)
        clean = scrub(_comment(text) or "")
        if link.customer_id is None or not clean:
            return False
        feeling = sentiment.scores([clean])[0]
        with _ANSWERING:
            added = store.add_comment(con, link.response_id(), clean, feeling, now)
            if added:  # onto the case a low score opened; a negative comment after a fair score opens one
                self.ws.cases.commented(store.SOURCE, link.response_id(), clean, feeling)
                self.ws.cases.scan_on(con, now)
        return added

    def why_no_comment(self, token: str, text: str) -> str:
        """Why `comment` stored nothing, in the customer's words."""
        from touchlens.store import surveys as store

        link = verify(token, self._secret(make=False), datetime.now(UTC))
        if not (_comment(text) or ""):
            return "the comment was empty: nothing was saved"
        if link.customer_id is None:
            return "this link takes a comment with the answer itself: please answer the question"
        with self.ws.events(read_only=True) as con:
            if not store.answered(con, link.response_id()):
                return "please answer the question first: the comment goes with your answer"
        return "your comment was already saved: thank you"

    def qr(self, touchpoint: str, out: str | os.PathLike[str], customer_id: str | None = None) -> Path:
        """A QR code of a new link (PNG or SVG, by `out`'s suffix)."""
        import segno

        path = Path(out)
        kind = path.suffix.lstrip(".").lower()
        if kind not in QR_FORMATS:
            raise BadOption(f"-o: a QR code is written as .png or .svg, not '{path.suffix or path.name}'")
        segno.make(self.link(touchpoint, customer_id), error="m").save(str(path), scale=8, border=4)
        return path

    def _stored_link(
        self, touchpoint: str, stored: str | None, metric: Metric | None, days: int | None, now: datetime | None
    ) -> str:
        tp = self._touchpoint(touchpoint)
        if days is not None and days < 1:
            raise BadOption(f"--days: a link lasts at least 1 day, not {days}")
        now = now or datetime.now(UTC)
        life = timedelta(days=days or self.ws.settings.surveys.link_days)
        chosen: Metric = metric or (tp.survey.metric if tp.survey else "csat")
        return self.url(sign(new_link(tp.key, stored, chosen, now, now + life), self._secret()))

    def _asked(self, token: str, link: Link, tp: Touchpoint) -> Question:
        spec = tp.survey
        asked_metric = spec is not None and spec.metric == link.metric and spec.question
        template = spec.question if asked_metric and spec and spec.question else QUESTIONS[link.metric]
        text = template.format_map(_Names(touchpoint=tp.label, company=self.ws.map_or_empty().name))
        low, high = ENDS[link.metric]
        return Question(token, link, tp.label, text, low, high, spec.comment if spec else True)

    def _touchpoint(self, key: str) -> Touchpoint:
        m = self.ws.map_or_empty()
        tp = m.touchpoint(key)
        if tp is None:
            known = ", ".join(t.key for t in m.touchpoints) or "none (import a map first)"
            raise UnknownItem(f"unknown touchpoint '{key}'; touchpoints are: {known}")
        return tp

    def signing_key(self) -> bytes:
        """The workspace's key for links it signs (survey links, walkthrough links)."""
        return self._secret()

    def _secret(self, make: bool = True) -> bytes:
        """The settings' secret, else the workspace's own, made once (owner-only); with `make` False, a workspace
        that never signed anything answers that no link is valid (a read makes nothing)."""
        given = self.ws.settings.surveys.secret
        if given:
            if len(given) < 32:
                raise BadOption("[surveys] secret: use 32 or more random characters (or leave it empty)")
            return given.encode()
        path = self.ws.root / SECRET_FILE
        if not path.exists() and not make:
            raise LinkError("invalid", "this survey link was not made here")
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(new_secret())
        return path.read_text().strip().encode()


class _Names(dict[str, str]):
    """A question's placeholders: an unknown one stays as written rather than failing the page."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def read_customers(path: Path, column: str) -> list[str]:
    """The non-empty ids in `column` of a CSV file with a header, in file order, each once."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if column not in (reader.fieldnames or []):
                found = ", ".join(reader.fieldnames or []) or "none"
                raise BadOption(f"{path}: --id-column: no column '{column}'; columns are: {found}")
            ids = [(row.get(column) or "").strip() for row in reader]
    except (OSError, UnicodeDecodeError) as exc:
        raise BadOption(f"{path}: cannot read the customers: {exc}") from exc
    return list(dict.fromkeys(i for i in ids if i))


def _metric(value: str | None) -> Metric | None:
    if value is None:
        return None
    if value not in METRICS:
        raise BadOption(f"--metric: unknown metric '{value}'; metrics are: {', '.join(METRICS)}")
    return cast(Metric, value)


def _at(unix_ms: int) -> datetime:
    return datetime.fromtimestamp(unix_ms / 1000, UTC)


def _score(score: str | float, scale: tuple[int, int]) -> int:
    try:
        value = float(score)
    except (TypeError, ValueError):
        value = float("nan")
    if not (scale[0] <= value <= scale[1]) or value != int(value):
        raise BadOption(f"score: choose a whole number from {scale[0]} to {scale[1]}")
    return int(value)


def _comment(text: str | None) -> str | None:
    text = (text or "").strip()
    return text[:MAX_COMMENT] or None


def _row(response: str, customer: str, now: datetime, link: Link, score: int, comment: str | None) -> pa.RecordBatch:
    from touchlens.ingest.readers.base import FEEDBACK_COLUMNS, RowBatcher

    batcher = RowBatcher(columns=FEEDBACK_COLUMNS, size=1)
    values = {
        "response_id": response, "customer_id": customer, "ts": now.isoformat(), "metric": link.metric,
        "score": score, "touchpoint": link.touchpoint, "comment": comment,
    }  # fmt: skip
    batcher.add(1, None, values)
    return next(batcher.flush())
