"""Proactive rules run on live data (`ws.contacts`): each due contact handed to the messaging tool's webhook once,
recorded as the touchpoint's event when the tool accepts it, and the holdout kept for a randomised measurement.

With `[proactive] queue = true` the contacts wait in a queue instead: the messaging tool fetches them
(`design queue`, GET /api/proactive/queue) and confirms each one it sent (`design confirm`, POST
/api/proactive/confirm), and only then is it recorded as sent and stored as the touchpoint's event, at the time
the tool sent it.

A rule starts the first time it runs: contacts due before then are history (`design simulate` replays them),
never sent. Each run replays the rule up to now with `insights.proactive.replay`; the contact cap counts the
other proactive touchpoints' events and every contact the rules have sent. A contact is recorded (once per rule,
customer and trigger) when the webhook answers 2xx, or as held out; a failed one is tried again at the next run.
The contact event is stored as the rule's touchpoint would claim it (its match rule's event, channel and
property values), under source `proactive`.
"""

from __future__ import annotations

import builtins
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from touchlens.errors import BadOption, UnknownItem
from touchlens.host import Host
from touchlens.model.map import Condition, Initiative, ProactiveRule, TouchpointMap

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from touchlens.insights.proactive import Effect, Replay

SOURCE = "proactive"
Sent = tuple[int, datetime | None]  # a queued contact's number, and when the messaging tool sent it (None: now)
# Runs a piece of work on a connection it holds (the server's one writer).
Writer = Callable[[Callable[["duckdb.DuckDBPyConnection"], None]], object]
log = logging.getLogger("touchlens.proactive")


@dataclass(frozen=True)
class RunResult:
    rule: str
    sent: int
    held_out: int
    failed: int  # the webhook did not accept them: tried again at the next run
    queued: int = 0  # waiting for the messaging tool to fetch and confirm them ([proactive] queue)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Confirmed:
    confirmed: int
    already: int  # confirmed before, or not queued (held out): nothing changed

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Holdout:
    """A running rule's randomised measurement: contacted against withheld, per outcome."""

    rule: str
    name: str
    touchpoint: str | None
    started_at: datetime | None
    contacted: int
    held_out: int
    queued: int
    effects: builtins.list[Effect]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "name": self.name, "touchpoint": self.touchpoint,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "contacts": self.contacted + self.held_out + self.queued, "contacted": self.contacted,
            "held_out": self.held_out, "queued": self.queued, "effects": [e.to_dict() for e in self.effects],
        }  # fmt: skip


class Contacts:
    def __init__(self, ws: Host) -> None:
        self.ws = ws

    def run(self, now: datetime | None = None, writer: Writer | None = None) -> builtins.list[RunResult]:
        """One pass over every proactive rule of the map: send what is due, withhold the holdout's. `writer` runs
        the storing of the contacts' events on a connection it holds (the server's one writer, so they never race
        live events); by default on the workspace's own."""
        from touchlens.store import contacts as store

        queue = self.ws.settings.proactive.queue
        if not self.ws.settings.proactive.webhook and not queue:
            raise BadOption(
                "[proactive] webhook: set the messaging tool's webhook (or [proactive] queue = true, for a tool that "
                "fetches its contacts) before running proactive rules"
            )
        now = now or datetime.now(UTC)
        m = self.ws.map_or_empty()
        engine = self.ws.meta_engine()
        results, events = [], []
        for rule in m.proactive:
            start = store.started(engine, rule.key, now)
            if start == now and rule.touchpoint:  # its first run: a change `analyze impact` can measure
                note = f"proactive rule {rule.key} started"
                self.ws.add_change(rule.touchpoint, now.date(), note, actor="proactive")
            with self.ws.events(read_only=True) as con:
                done = self._replay(con, m, rule, start, now)
            seen = store.recorded(engine, rule.key)
            new = [s for s in done.sends if s[2] >= start and (s[0], s[1]) not in seen]
            held = [s for s in done.holdout_sends if s[2] >= start and (s[0], s[1]) not in seen]
            accepted = [] if queue else [s for s in new if self._deliver(rule, *s)]
            rows = [_row(rule.key, c, t, d, "sent", now) for c, t, d in accepted]
            rows += [_row(rule.key, c, t, d, store.QUEUED, None) for c, t, d in (new if queue else [])]
            rows += [_row(rule.key, c, t, d, "held_out", None) for c, t, d in held]
            store.record(engine, rows)
            events += [_event(m, rule, c, t, now) for c, t, _ in accepted]
            failed = 0 if queue else len(new) - len(accepted)
            results.append(RunResult(rule.key, len(accepted), len(held), failed, len(new) if queue else 0))
        self._store(m, events, now, writer)
        return results

    def queue(self, rule: str | None = None) -> builtins.list[dict[str, Any]]:
        """The contacts waiting for the messaging tool to send them, oldest due first: what the webhook would have
        been given, with the contact's id to confirm it by."""
        from touchlens.store import contacts as store

        m = self.ws.map_or_empty()
        if rule is not None:
            _rule(m, rule)
        rules = {r.key: r for r in m.proactive}
        return [_queued(c, rules.get(c["rule"])) for c in store.queued(self.ws.meta_engine(), rule)]

    def confirm(
        self, sent: builtins.list[Sent], now: datetime | None = None, writer: Writer | None = None
    ) -> Confirmed:
        """The messaging tool sent these queued contacts (id, when; None: now): each is recorded as sent and stored
        as its touchpoint's event at that time. Confirming one twice changes nothing; an unknown id is an error
        before anything is stored."""
        from touchlens.store import contacts as store

        now = now or datetime.now(UTC)
        engine = self.ws.meta_engine()
        found = store.by_ids(engine, [i for i, _ in sent])
        unknown = [i for i, _ in sent if i not in found]
        if unknown:
            raise UnknownItem(f"unknown proactive contact {unknown[0]}; see touchlens design queue")
        fresh = {i: at or now for i, at in sent if found[i]["status"] == store.QUEUED}
        store.mark_sent(engine, list(fresh.items()))
        m = self.ws.map_or_empty()
        rules = {r.key: r for r in m.proactive}
        events = [
            _event(m, rules[c["rule"]], c["customer_id"], c["trigger_at"], fresh[i])
            for i, c in found.items()
            if i in fresh and c["rule"] in rules
        ]
        self._store(m, events, now, writer)
        return Confirmed(len(fresh), len(found) - len(fresh))

    def _store(
        self, m: TouchpointMap, events: builtins.list[dict[str, Any]], now: datetime, writer: Writer | None
    ) -> None:
        if not events:
            return
        work = partial(_store_events, m, events, now)
        if writer is not None:
            writer(work)
        else:
            with self.ws.events() as con:
                work(con)

    def forget(self, stored_ids: builtins.list[str]) -> None:
        """An erased customer's contacts go with them."""
        from touchlens.store import contacts as store

        for customer in stored_ids:
            store.forget(self.ws.meta_engine(), customer)

    def list(self, rule: str) -> builtins.list[dict[str, Any]]:
        from touchlens.store import contacts as store

        _rule(self.ws.map_or_empty(), rule)
        return store.contacts(self.ws.meta_engine(), rule)

    def measure(self, rule: str, now: datetime | None = None) -> builtins.list[Effect]:
        """Per outcome: customers contacted against the holdout (randomised by customer id), with a 95% interval;
        contacts too recent for an outcome to show are left out."""
        from touchlens.design import outcome_hits, outcome_rules
        from touchlens.insights.proactive import effect

        m = self.ws.map_or_empty()
        _rule(m, rule)
        found = [c for c in self.list(rule) if c["status"] in ("sent", "held_out")]  # queued: not yet either
        due = [(c["customer_id"], c["due_at"]) for c in found]
        contacted = [c["status"] == "sent" for c in found]
        out = []
        with self.ws.events(read_only=True) as con:
            end = now or _end(con)
            for name, outcome in outcome_rules(m):
                hits, usable = outcome_hits(con, outcome, due, end)
                pairs = [(sent, hit) for sent, hit, ok in zip(contacted, hits, usable, strict=True) if ok]
                yes = [hit for sent, hit in pairs if sent]
                no = [hit for sent, hit in pairs if not sent]
                found_effect = effect(outcome.label or name, sum(yes), len(yes), sum(no), len(no), randomised=True)
                out.append(found_effect)
        return out

    def holdout(self, rule: str, now: datetime | None = None) -> Holdout:
        """`measure` with the rule's counts, as the touchpoint page, `analyze impact` and the API show it."""
        from touchlens.store import contacts as store

        found = _rule(self.ws.map_or_empty(), rule)
        statuses = [c["status"] for c in self.list(rule)]
        started = store.started_at(self.ws.meta_engine(), rule)
        return Holdout(rule, found.label, found.touchpoint, started, statuses.count("sent"),
                       statuses.count("held_out"), statuses.count(store.QUEUED), self.measure(rule, now))  # fmt: skip

    def holdouts_at(self, touchpoint: str, now: datetime | None = None) -> builtins.list[Holdout]:
        """The measurements of the running rules whose contacts are this touchpoint's events."""
        from touchlens.store import contacts as store

        engine = self.ws.meta_engine()
        rules = [r.key for r in self.ws.map_or_empty().proactive if r.touchpoint == touchpoint]
        return [self.holdout(r, now) for r in rules if store.started_at(engine, r) is not None]

    def _replay(
        self, con: duckdb.DuckDBPyConnection, m: TouchpointMap, rule: ProactiveRule, start: datetime, now: datetime
    ) -> Replay:
        from touchlens.design import match, plan_of
        from touchlens.insights.proactive import replay
        from touchlens.model.durations import parse_duration
        from touchlens.store import contacts as store
        from touchlens.store import proactive as events

        wait = parse_duration(rule.wait)
        column, value = match(rule.after)
        recent = start - wait - timedelta(days=1)  # a trigger before this is due before the start, quiet hours or not
        triggers = {
            c: [t for t in ts if t >= recent] for c, ts in events.times(con, column, [value], rule.persona).items()
        }
        cancels = events.times(con, *_column(rule)) if rule.unless else {}
        others = [t.key for t in m.touchpoints if t.initiative == Initiative.proactive and t.key != rule.touchpoint]
        prior = events.times(con, "touchpoint", others) if others else {}
        sent = store.sent_times(self.ws.meta_engine())
        for customer, times in [*sent.items(), *store.held_times(self.ws.meta_engine(), rule.key).items()]:
            prior.setdefault(customer, []).extend(times)
        return replay(plan_of(m, rule), triggers, cancels, prior, now)

    def _deliver(self, rule: ProactiveRule, customer: str, trigger: datetime, due: datetime) -> bool:
        """Hand one contact to the messaging tool; whether it accepted it."""
        url = self.ws.settings.proactive.webhook
        if not url:
            return False
        body = {
            "rule": rule.key, "name": rule.label, "customer_id": customer, "channel": rule.channel,
            "touchpoint": rule.touchpoint, "trigger_at": trigger.isoformat(), "due_at": due.isoformat(),
        }  # fmt: skip
        request = urllib.request.Request(  # noqa: S310 (an http(s) URL: the settings check it)
            url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.ws.settings.alerts.webhook_seconds) as answer:  # noqa: S310
                return bool(200 <= answer.status < 300)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("proactive contact not accepted by %s: %s", url, exc)
            return False


def _store_events(
    m: TouchpointMap, events: builtins.list[dict[str, Any]], now: datetime, con: duckdb.DuckDBPyConnection
) -> None:
    """The accepted contacts as events, through the ingest pipeline (so the map's rules claim them)."""
    from touchlens.ingest.pipeline import EventIngest, refresh_customers
    from touchlens.store import proactive as store

    report = EventIngest(con, m, SOURCE, now=now)._batch(Path("proactive contacts"), _batch(events))
    store.log_events(con, SOURCE, "proactive contacts", report.accepted, now)
    refresh_customers(con, m)


def _row(
    rule: str, customer: str, trigger: datetime, due: datetime, status: str, sent: datetime | None
) -> dict[str, Any]:
    return {"rule": rule, "customer_id": customer, "trigger_at": trigger, "due_at": due, "status": status,
            "sent_at": sent}  # fmt: skip


def _queued(contact: dict[str, Any], rule: ProactiveRule | None) -> dict[str, Any]:
    """A queued contact as the messaging tool reads it (the webhook's body and the contact's id)."""
    return {
        "contact_id": contact["id"], "rule": contact["rule"], "name": rule.label if rule else contact["rule"],
        "customer_id": contact["customer_id"], "channel": rule.channel if rule else None,
        "touchpoint": rule.touchpoint if rule else None, "trigger_at": contact["trigger_at"].isoformat(),
        "due_at": contact["due_at"].isoformat(),
    }  # fmt: skip


def _event(m: TouchpointMap, rule: ProactiveRule, customer: str, trigger: datetime, now: datetime) -> dict[str, Any]:
    """The contact as an event the rule's touchpoint claims (its match rule's event name, channel and properties),
    at the time it was sent."""
    tp = m.touchpoint(rule.touchpoint) if rule.touchpoint else None
    match = tp.match if tp else None
    props: dict[str, Any] = {"proactive_rule": rule.key}
    if match is not None:
        props |= {name: _example(cond) for name, cond in match.where.items()}
    return {
        "event_id": f"{rule.key}:{customer}:{trigger.isoformat()}", "customer_id": customer, "ts": now.isoformat(),
        "event": _example(match.event) if match and match.event else "proactive_contact",
        "channel": _example(match.channel) if match and match.channel else rule.channel, "properties": props,
    }  # fmt: skip


def _example(cond: Condition) -> Any:
    """A value the condition accepts."""
    if cond.equals is not None:
        return cond.equals
    if cond.in_:
        return cond.in_[0]
    if cond.prefix is not None:
        return cond.prefix
    return "yes"


def _batch(events: builtins.list[dict[str, Any]]) -> pa.RecordBatch:
    from touchlens.ingest.readers.base import RowBatcher

    batcher = RowBatcher(size=len(events))
    for i, e in enumerate(events, 1):
        batcher.add(i, None, e)
    return next(batcher.flush())


def _column(rule: ProactiveRule) -> tuple[str, builtins.list[str]]:
    from touchlens.design import match

    assert rule.unless is not None
    column, value = match(rule.unless)
    return column, [value]


def _end(con: duckdb.DuckDBPyConnection) -> datetime:
    from touchlens.store import proactive as store

    return store.history_end(con) or datetime.now(UTC)


def _rule(m: TouchpointMap, key: str) -> ProactiveRule:
    found = next((r for r in m.proactive if r.key == key), None)
    if found is None:
        raise UnknownItem(
            f"unknown proactive rule '{key}'; rules are: {', '.join(r.key for r in m.proactive) or 'none'}"
        )
    return found


def read_confirmations(path: Path) -> builtins.list[Sent]:
    """A messaging tool's confirmations: a CSV with a header, or a JSON list of objects (what `design queue --json`
    prints), each with `contact_id` and optionally `sent_at` (ISO 8601; none: when confirmed). Errors name the
    file, the row and the field."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadOption(f"{path}: cannot read the confirmations: {exc}") from exc
    rows = _json_rows(path, text) if text.lstrip().startswith(("[", "{")) else _csv_rows(text)
    return [_confirmation(path, n, row) for n, row in enumerate(rows, 1)]


def _json_rows(path: Path, text: str) -> builtins.list[dict[str, Any]]:
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise BadOption(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(found, builtins.list) or not all(isinstance(r, dict) for r in found):
        raise BadOption(f"{path}: a JSON list of objects with contact_id (as design queue --json prints)")
    return found


def _csv_rows(text: str) -> builtins.list[dict[str, Any]]:
    import csv
    import io

    return builtins.list(csv.DictReader(io.StringIO(text)))


def _confirmation(path: Path, n: int, row: dict[str, Any]) -> Sent:
    raw, at = row.get("contact_id"), row.get("sent_at")
    try:
        contact = int(str(raw).strip())
    except ValueError:
        raise BadOption(f"{path}: row {n}: contact_id: a contact's number, not {raw!r}") from None
    if at in (None, ""):
        return contact, None
    try:
        when = datetime.fromisoformat(str(at).strip())
    except ValueError:
        raise BadOption(f"{path}: row {n}: sent_at: an ISO 8601 time, not {at!r}") from None
    return contact, when if when.tzinfo else when.replace(tzinfo=UTC)
