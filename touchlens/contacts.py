"""Proactive rules run on live data (`ws.contacts`): each due contact handed to the messaging tool's webhook once,
recorded as the touchpoint's event when the tool accepts it, and the holdout kept for a randomised measurement.

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
# Runs a piece of work on a connection it holds (the server's one writer).
Writer = Callable[[Callable[["duckdb.DuckDBPyConnection"], None]], object]
log = logging.getLogger("touchlens.proactive")


@dataclass(frozen=True)
class RunResult:
    rule: str
    sent: int
    held_out: int
    failed: int  # the webhook did not accept them: tried again at the next run

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Contacts:
    def __init__(self, ws: Host) -> None:
        self.ws = ws

    def run(self, now: datetime | None = None, writer: Writer | None = None) -> builtins.list[RunResult]:
        """One pass over every proactive rule of the map: send what is due, withhold the holdout's. `writer` runs
        the storing of the contacts' events on a connection it holds (the server's one writer, so they never race
        live events); by default on the workspace's own."""
        from touchlens.store import contacts as store

        if not self.ws.settings.proactive.webhook:
            raise BadOption("[proactive] webhook: set the messaging tool's webhook before running proactive rules")
        now = now or datetime.now(UTC)
        m = self.ws.map_or_empty()
        engine = self.ws.meta_engine()
        results, events = [], []
        for rule in m.proactive:
            start = store.started(engine, rule.key, now)
            with self.ws.events(read_only=True) as con:
                done = self._replay(con, m, rule, start, now)
            seen = store.recorded(engine, rule.key)
            new = [s for s in done.sends if s[2] >= start and (s[0], s[1]) not in seen]
            held = [s for s in done.holdout_sends if s[2] >= start and (s[0], s[1]) not in seen]
            accepted = [s for s in new if self._deliver(rule, *s)]
            rows = [_row(rule.key, c, t, d, "sent", now) for c, t, d in accepted]
            rows += [_row(rule.key, c, t, d, "held_out", None) for c, t, d in held]
            store.record(engine, rows)
            events += [_event(m, rule, c, t, now) for c, t, _ in accepted]
            results.append(RunResult(rule.key, len(accepted), len(held), len(new) - len(accepted)))
        if events:
            work = partial(_store_events, m, events, now)
            if writer is not None:
                writer(work)
            else:
                with self.ws.events() as con:
                    work(con)
        return results

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
        found = self.list(rule)
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
        for customer, times in store.sent_times(self.ws.meta_engine()).items():
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


def _event(m: TouchpointMap, rule: ProactiveRule, customer: str, trigger: datetime, now: datetime) -> dict[str, Any]:
    """The contact as an event the rule's touchpoint claims: its match rule's event name, channel and properties."""
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
