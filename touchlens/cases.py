"""Follow up with the unhappy customer: a low score or a negative comment opens a case for the touchpoint's owner.

The cases half of the `Workspace` facade (`ws.cases`). A case holds the answer that opened it, whose it is (the
touchpoint's owner, then an assignee), a due date, and how it ended (a closing note). Cases open when feedback
is ingested (files and survey links), for answers given within `[cases] within_days` of now, once per answer,
and not while the same customer has a case open on the same touchpoint. Measured per touchpoint: time to first
action, time to close, and whether followed-up customers came back (any event after the case closed).
"""

from __future__ import annotations

import builtins
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from touchlens.errors import BadOption, UnknownItem
from touchlens.host import Host

if TYPE_CHECKING:
    import duckdb


STATUSES = ("open", "in_progress", "closed")
SCALES = {"csat": "of 5", "nps": "of 10", "ces": "of 7 (effort)"}
JOURNEY_TOUCHES = 30


@dataclass(frozen=True)
class Case:
    """One follow-up case (as `cases list --json` prints it)."""

    id: int
    touchpoint: str | None
    customer_id: str
    metric: str
    score: float
    comment: str | None
    reason: str
    answered_at: datetime
    opened_at: datetime
    owner: str | None
    assignee: str | None
    status: str
    due: datetime
    first_action_at: datetime | None
    closed_at: datetime | None
    note: str | None
    journey: list[dict[str, Any]] = field(default_factory=list)  # filled by `show`: the latest events first
    answers: list[dict[str, Any]] = field(default_factory=list)  # and the customer's latest answers

    def overdue(self, now: datetime) -> bool:
        return self.status != "closed" and now > self.due

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("journey", "answers")}
        if self.journey or self.answers:
            data |= {"journey": self.journey, "answers": self.answers}
        return data


@dataclass(frozen=True)
class TouchpointFollowUp:
    """How one touchpoint's cases were followed up (hours are medians over the cases that got there)."""

    touchpoint: str | None
    opened: int
    open_now: int
    closed: int
    hours_to_first_action: float | None
    hours_to_close: float | None
    came_back: int  # closed cases whose customer had an event after the case closed
    came_back_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Cases:
    """Follow-up cases of one workspace."""

    def __init__(self, ws: Host) -> None:
        self.ws = ws

    def scan_on(self, con: duckdb.DuckDBPyConnection, now: datetime | None = None) -> list[int]:
        """Open a case for each recent unhappy answer that has none; the new cases' ids."""
        from touchlens.store import cases as store

        settings = self.ws.settings.cases
        if not settings.open:
            return []
        now = now or datetime.now(UTC)
        found = store.unhappy(con, now - timedelta(days=settings.within_days), settings.negative_sentiment)
        if not found:
            return []
        engine = self.ws.meta_engine()
        cased, open_pairs = store.known(engine)
        owners = {t.key: t.owner for t in self.ws.map_or_empty().touchpoints}
        rows = []
        for r in found:
            pair = (r["customer_id"], r["touchpoint"])
            if (r["source"], r["response_id"]) in cased or pair in open_pairs:
                continue
            open_pairs.add(pair)
            rows.append(_new_case(r, owners.get(r["touchpoint"] or ""), now, settings.due_days))
        return store.add(engine, rows)

    def commented(self, source: str, response_id: str, text: str, sentiment: float | None) -> None:
        """A comment added to an answer after its score: onto the case the score opened, if it did."""
        from touchlens.store import cases as store

        store.comment(self.ws.meta_engine(), source, response_id, text, sentiment)

    def list(self, status: str | None = "open", touchpoint: str | None = None) -> list[Case]:
        """Cases, newest first: `status` open (open or in progress, the default), in_progress, closed or all."""
        from touchlens.store import cases as store

        wanted = _statuses(status)
        known = [t.key for t in self.ws.map_or_empty().touchpoints]
        if touchpoint is not None and touchpoint not in known:
            raise UnknownItem(f"--touchpoint: unknown touchpoint '{touchpoint}'; touchpoints are: {', '.join(known)}")
        return [_case(r) for r in store.listing(self.ws.meta_engine(), wanted, touchpoint)]

    def show(self, case_id: int) -> Case:
        """One case with the customer's recent journey (up to when they answered) and what they said."""
        from touchlens.store import cases as store

        case = self._get(case_id)
        with self.ws.events(read_only=True) as con:
            journey = store.journey(con, case.customer_id, case.answered_at, JOURNEY_TOUCHES)
            answers = store.said(con, case.customer_id, 10)
        return replace(case, journey=journey, answers=answers)

    def assign(self, case_id: int, assignee: str, due: datetime | None = None, now: datetime | None = None) -> Case:
        """Give the case to someone (its first action, if it had none); `due` moves its due date."""
        from touchlens.store import cases as store

        case = self._get(case_id)
        if not assignee.strip():
            raise BadOption("assignee: say who takes the case")
        if case.status == "closed":
            raise BadOption(f"case {case_id} is closed")
        now = now or datetime.now(UTC)
        values: dict[str, Any] = {"assignee": assignee.strip()[:200], "status": "in_progress"}
        values["first_action_at"] = case.first_action_at or now
        if due is not None:
            values["due"] = due
        store.update(self.ws.meta_engine(), case_id, values)
        return self._get(case_id)

    def close(self, case_id: int, note: str, now: datetime | None = None) -> Case:
        """Close the case with a note saying what was done."""
        from touchlens.store import cases as store

        case = self._get(case_id)
        if not note.strip():
            raise BadOption("note: say what was done before closing the case")
        if case.status == "closed":
            raise BadOption(f"case {case_id} is closed already")
        now = now or datetime.now(UTC)
        values = {"status": "closed", "note": note.strip()[:5000], "closed_at": now}
        store.update(self.ws.meta_engine(), case_id, {**values, "first_action_at": case.first_action_at or now})
        return self._get(case_id)

    def stats(self) -> builtins.list[TouchpointFollowUp]:
        """Per touchpoint: cases opened, open now, closed, median hours to first action and to close, and how
        many followed-up customers came back."""
        from touchlens.store import cases as store

        every = self.list("all")
        closed = [(c.id, c.customer_id, c.closed_at) for c in every if c.closed_at is not None]
        with self.ws.events(read_only=True) as con:
            back = store.came_back(con, closed)
        return follow_up(every, back)

    def forget(self, customer_ids: Sequence[str]) -> int:
        """Delete erased customers' cases (stored ids); how many."""
        from touchlens.store import cases as store

        return sum(store.forget(self.ws.meta_engine(), c) for c in customer_ids)

    def _get(self, case_id: int) -> Case:
        from touchlens.store import cases as store

        row = store.one(self.ws.meta_engine(), case_id)
        if row is None:
            raise UnknownItem(f"no case {case_id}; `touchlens cases list --status all` lists them")
        return _case(row)


def follow_up(every: Sequence[Case], back: dict[int, bool]) -> list[TouchpointFollowUp]:
    """The per-touchpoint measures of `Cases.stats`, from the cases and whether each closed one's customer came
    back; touchpoints with the most cases first."""
    groups: dict[str | None, list[Case]] = {}
    for c in every:
        groups.setdefault(c.touchpoint, []).append(c)
    out = []
    for touchpoint, group in groups.items():
        acted = [_hours(c.opened_at, c.first_action_at) for c in group if c.first_action_at is not None]
        done = [c for c in group if c.closed_at is not None]
        returned = sum(1 for c in done if back.get(c.id))
        out.append(
            TouchpointFollowUp(
                touchpoint=touchpoint,
                opened=len(group),
                open_now=sum(1 for c in group if c.status != "closed"),
                closed=len(done),
                hours_to_first_action=statistics.median(acted) if acted else None,
                hours_to_close=statistics.median([_hours(c.opened_at, c.closed_at) for c in done]) if done else None,
                came_back=returned,
                came_back_share=returned / len(done) if done else None,
            )
        )
    return sorted(out, key=lambda f: (-f.opened, f.touchpoint or ""))


def _hours(start: datetime, end: datetime | None) -> float:
    assert end is not None
    return (_aware(end) - _aware(start)).total_seconds() / 3600


def _aware(at: datetime) -> datetime:
    """SQLite gives times back without their zone; they were stored in UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _statuses(status: str | None) -> tuple[str, ...] | None:
    if status in (None, "all"):
        return None
    if status == "open":
        return ("open", "in_progress")
    if status not in STATUSES:
        raise BadOption(f"--status: unknown status '{status}'; statuses are: open, in_progress, closed, all")
    return (status,)


def _new_case(r: dict[str, Any], owner: str | None, now: datetime, due_days: float) -> dict[str, Any]:
    score = r["score"]
    said = f"{score:g} {SCALES.get(r['metric'], 'on its scale')} {r['metric'].upper()}"
    reason = " and ".join(
        part for part, on in ((f"low score ({said})", r["low"]), ("negative comment", r["negative"])) if on
    )
    return {
        "source": r["source"], "response_id": r["response_id"], "touchpoint": r["touchpoint"],
        "customer_id": r["customer_id"], "metric": r["metric"], "score": score, "comment": r["comment"],
        "sentiment": r["sentiment"], "reason": reason, "answered_at": r["ts"], "opened_at": now, "owner": owner,
        "assignee": None, "status": "open", "due": now + timedelta(days=due_days),
    }  # fmt: skip


def _case(row: dict[str, Any]) -> Case:
    times = ("answered_at", "opened_at", "due", "first_action_at", "closed_at")
    fields: dict[str, Any] = {
        k: (_aware(v) if k in times and v is not None else v) for k, v in row.items() if k in Case.__dataclass_fields__
    }
    return Case(**fields)
