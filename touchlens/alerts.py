"""Alert the owner: rules on CSAT drops, health, survey volume and case age, checked as data arrives, sent to a
webhook and by e-mail, once per alert until it clears.

The alerts half of the `Workspace` facade (`ws.alerts`). A rule watches everything, a stage or one touchpoint.
Each check evaluates every rule: a condition that newly holds fires an alert (one per rule and subject, e.g. a
touchpoint); one that no longer holds clears it, and only then can it fire again. Alerts are sent at the check
that fires them, unless the rule's quiet hours are on: then they wait, and the first check after the quiet hours
sends everything still standing as one digest per rule (an alert that cleared meanwhile is not sent).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from touchlens.errors import BadOption, UnknownItem
from touchlens.host import Host

if TYPE_CHECKING:
    from touchlens.store.settings import Settings

# kind → (what it watches, the threshold's meaning and default, the window's default in hours)
KINDS: dict[str, tuple[str, str, float | None, float]] = {
    "csat_drop": ("CSAT fell against the four weeks before (significant, Holm)", "points of CSAT", 10.0, 24),
    "health": ("a touchpoint is judged poor (analyze health)", "unused", None, 0),
    "anomaly": ("a daily anomaly in volume, CSAT or sentiment (analyze trends)", "unused", None, 48),
    "at_stake": ("a problem puts at least the threshold at stake (analyze insights)", "outcomes a year", 1.0, 0),
    "survey_volume": ("fewer answers than the threshold in the window", "answers", 1.0, 24),
    "case_age": ("follow-up cases open longer than the threshold", "hours", 48.0, 0),
}
HISTORY = 100


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    kind: str
    scope: str  # all | stage:KEY | touchpoint:KEY
    threshold: float | None
    window_hours: float
    webhook: str | None
    emails: list[str]
    quiet: str | None  # HH:MM-HH:MM in `timezone`
    timezone: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CheckResult:
    fired: list[str]  # "rule: subject"
    cleared: list[str]
    sent: int  # messages delivered on at least one channel
    waiting: int  # alerts held by quiet hours (or every channel failed)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Alerts:
    """Alert rules of one workspace."""

    def __init__(self, ws: Host) -> None:
        self.ws = ws

    def add(
        self,
        name: str,
        kind: str,
        scope: str = "all",
        *,
        threshold: float | None = None,
        window_hours: float | None = None,
        webhook: str | None = None,
        emails: builtins.list[str] | None = None,
        quiet: str | None = None,
        timezone: str = "UTC",
        actor: str = "library",
    ) -> Rule:
        """A new rule; errors name the option that is wrong."""
        from touchlens.store import alerts as store

        values = self._checked(name, kind, scope, threshold, window_hours, webhook, emails or [], quiet, timezone)
        values |= {"created_by": actor, "created_at": datetime.now(UTC)}
        rule_id = store.add_rule(self.ws.meta_engine(), values)
        return self._get(rule_id)

    def list(self) -> builtins.list[Rule]:
        from touchlens.store import alerts as store

        return [_rule(r) for r in store.rules(self.ws.meta_engine())]

    def remove(self, rule_id: int) -> None:
        from touchlens.store import alerts as store

        if not store.remove_rule(self.ws.meta_engine(), rule_id):
            raise UnknownItem(f"no alert rule {rule_id}; `touchlens alerts list` lists them")

    def history(self, limit: int = HISTORY) -> builtins.list[dict[str, Any]]:
        from touchlens.store import alerts as store

        return store.history(self.ws.meta_engine(), limit)

    def test(self, rule_id: int) -> dict[str, str]:
        """Send a test message through the rule's channels now (quiet hours or not); what each channel said."""
        rule = self._get(rule_id)
        text = f"touchlens: a test of the alert rule '{rule.name}'. Alerts from it will look like this."
        return _deliver(rule, text, [{"rule": rule.name, "subject": "test", "message": text}], self.ws.settings)

    def check(self, now: datetime | None = None) -> CheckResult:
        """Evaluate every rule now: fire, clear, and send what is due."""
        from touchlens.store import alerts as store

        now = now or datetime.now(UTC)
        engine = self.ws.meta_engine()
        fired: builtins.list[str] = []
        cleared: builtins.list[str] = []
        sent = waiting = 0
        for rule in self.list():
            holding = self._evaluate(rule, now)
            standing = store.open_events(engine, rule.id)
            for subject, message in holding.items():
                if subject not in standing:
                    store.fire(engine, rule.id, subject, message, now)
                    fired.append(f"{rule.name}: {subject}")
            gone = [e for subject, e in standing.items() if subject not in holding]
            store.clear(engine, [e["id"] for e in gone], now)
            cleared += [f"{rule.name}: {e['subject']}" for e in gone]
            delivered, held = self._send_due(rule, now)
            sent, waiting = sent + delivered, waiting + held
        return CheckResult(fired, cleared, sent, waiting)

    def _send_due(self, rule: Rule, now: datetime) -> tuple[int, int]:
        """Send the rule's standing alerts each channel has not delivered yet, one message per channel (a digest
        when several); (messages sent, alerts still waiting). A channel that failed is tried again next time,
        whatever the others did."""
        from touchlens.insights.alerting import is_quiet
        from touchlens.store import alerts as store

        engine = self.ws.meta_engine()
        standing = list(store.open_events(engine, rule.id).values())
        channels = [c for c, on in (("webhook", rule.webhook), ("email", rule.emails)) if on]
        pending = {c: [e for e in standing if (e["delivery"] or {}).get(c) != "sent"] for c in channels}
        waiting = {e["id"]: e for events in pending.values() for e in events}
        if not waiting or is_quiet(now, rule.quiet, rule.timezone):
            return 0, len(waiting)
        results = {i: dict(e["delivery"] or {}) for i, e in waiting.items()}
        messages = 0
        for channel, events in pending.items():
            if events:
                items = [{"rule": rule.name, "subject": e["subject"], "message": e["message"],
                          "fired_at": e["fired_at"]} for e in events]  # fmt: skip
                outcome = _deliver_one(rule, channel, _text(rule, items), items, self.ws.settings)
                messages += outcome == "sent"
                for e in events:
                    results[e["id"]][channel] = outcome
        for i, e in waiting.items():
            reached = e["sent_at"] or (now if "sent" in results[i].values() else None)
            store.delivered(engine, i, results[i], reached)
        return messages, sum(1 for r in results.values() if any(r.get(c) != "sent" for c in channels))

    def _evaluate(self, rule: Rule, now: datetime) -> dict[str, str]:
        """subject → message for each condition of the rule that holds now."""
        watched = self._watched(rule.scope)
        return EVALUATORS[rule.kind](self, rule, now, watched)

    def _watched(self, scope: str) -> set[str]:
        m = self.ws.map_or_empty()
        kind, _, key = scope.partition(":")
        if kind == "stage":
            return {t.key for t in m.touchpoints if t.stage == key}
        if kind == "touchpoint":
            return {key}
        return {t.key for t in m.touchpoints}

    def _csat_drop(self, rule: Rule, now: datetime, watched: set[str]) -> dict[str, str]:
        from touchlens.insights.alerting import BASELINE_DAYS, CsatWindows, csat_drops
        from touchlens.store import alerts as store

        with self.ws.events(read_only=True) as con:
            rows = store.csat_windows(con, now, timedelta(hours=rule.window_hours), timedelta(days=BASELINE_DAYS))
        s = self.ws.settings.insights
        windows = [CsatWindows(*r) for r in rows if r[0] in watched]
        drops = csat_drops(windows, s.alpha, rule.threshold or 0.0, s.min_responses)
        names = self._names()
        return {
            d.touchpoint: f"CSAT of {names.get(d.touchpoint, d.touchpoint)} fell to {d.recent:.0%} in the last "
            f"{_hours(rule.window_hours)} ({d.recent_n} answers) from {d.base:.0%} in the four weeks before: "
            f"{d.points:.0f} points."
            for d in drops
        }

    def _health(self, rule: Rule, now: datetime, watched: set[str]) -> dict[str, str]:
        names = self._names()
        return {
            r["touchpoint"]: f"{names.get(r['touchpoint'], r['touchpoint'])} is poor: {r['reason']}"
            for r in self.ws.health_report()
            if r["touchpoint"] in watched and r["health"] == "poor"
        }

    def _anomaly(self, rule: Rule, now: datetime, watched: set[str]) -> dict[str, str]:
        """Each anomaly `analyze trends --period day` finds on a watched touchpoint in the rule's window."""
        since = (now - timedelta(hours=rule.window_hours)).date().isoformat()
        found = {}
        for series in self.ws.trends("day")["series"]:
            if series["touchpoint"] in watched:
                for a in series["anomalies"]:
                    if a["period"] >= since:
                        found[f"{series['touchpoint']} {a['metric']} {a['period']}"] = a["summary"]
        return found

    def _at_stake(self, rule: Rule, now: datetime, watched: set[str]) -> dict[str, str]:
        """Each problem on a watched touchpoint with at least the threshold at stake (in its own unit)."""
        least = rule.threshold or 0.0
        found = {}
        for item in self.ws.insights(("problems",)).items():
            stake = item.at_stake
            if stake is not None and stake.value >= least and watched & set(item.touchpoints):
                found[item.title[:200]] = f"{item.title}: {stake.value:,.0f} {stake.unit} a {stake.per} at stake."
        return found

    def _survey_volume(self, rule: Rule, now: datetime, watched: set[str]) -> dict[str, str]:
        from touchlens.store import alerts as store

        with self.ws.events(read_only=True) as con:
            counts = store.volumes(con, now, timedelta(hours=rule.window_hours))
        least = rule.threshold or 1
        names = self._names()
        return {
            tp: f"{names.get(tp, tp)} got {_answers(counts.get(tp, 0))} in the last "
            f"{_hours(rule.window_hours)}, fewer than {least:g}."
            for tp in sorted(watched)
            if counts.get(tp, 0) < least
        }

    def _case_age(self, rule: Rule, now: datetime, watched: set[str]) -> dict[str, str]:
        limit = timedelta(hours=rule.threshold or 48)
        old: dict[str, int] = {}
        for case in self.ws.cases.list("open"):
            if case.touchpoint in watched and now - case.opened_at > limit:
                old[case.touchpoint or ""] = old.get(case.touchpoint or "", 0) + 1
        names = self._names()
        return {
            tp: f"{n} follow-up case{'s' if n > 1 else ''} on {names.get(tp, tp)} open longer than "
            f"{_hours(limit.total_seconds() / 3600)}."
            for tp, n in sorted(old.items())
        }

    def _names(self) -> dict[str, str]:
        return {t.key: t.label for t in self.ws.map_or_empty().touchpoints}

    def _get(self, rule_id: int) -> Rule:
        found = next((r for r in self.list() if r.id == rule_id), None)
        if found is None:
            raise UnknownItem(f"no alert rule {rule_id}; `touchlens alerts list` lists them")
        return found

    def _checked(
        self,
        name: str,
        kind: str,
        scope: str,
        threshold: float | None,
        window_hours: float | None,
        webhook: str | None,
        emails: builtins.list[str],
        quiet: str | None,
        timezone: str,
    ) -> dict[str, Any]:
        from touchlens.insights.alerting import parse_quiet

        if kind not in KINDS:
            raise BadOption(f"--kind: unknown kind '{kind}'; kinds are: {', '.join(KINDS)}")
        if threshold is not None and not (math.isfinite(threshold) and threshold >= 0):
            raise BadOption(f"--threshold: a number of {KINDS[kind][1]} (0 or more), not {threshold}")
        if window_hours is not None and not (math.isfinite(window_hours) and 0 < window_hours <= 24 * 90):
            raise BadOption(f"--window: hours above 0 and at most {24 * 90}, not {window_hours}")
        self._check_scope(scope)
        if not name.strip():
            raise BadOption("--name: a rule needs a name")
        if not webhook and not emails:
            raise BadOption("--webhook / --email: say where alerts go (a webhook URL, e-mail addresses or both)")
        if webhook and not webhook.lower().startswith(("https://", "http://")):
            raise BadOption(f"--webhook: an http(s) URL, not '{webhook}'")
        bad = [e for e in emails if "@" not in e or any(c in e for c in " ,;<>\r\n")]
        if bad:
            raise BadOption(f"--email: not an address: {', '.join(bad)}")
        if quiet:
            try:
                parse_quiet(quiet)
            except ValueError as exc:
                raise BadOption(f"--quiet: {exc}") from exc
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise BadOption(f"--timezone: unknown time zone '{timezone}' (e.g. Europe/London)") from exc
        _, _, default_threshold, default_window = KINDS[kind]
        return {
            "name": name.strip()[:200], "kind": kind, "scope": scope,
            "threshold": default_threshold if threshold is None else threshold,
            "window_hours": default_window if window_hours is None else window_hours,
            "webhook": webhook or None, "emails": emails, "quiet": quiet or None, "timezone": timezone,
        }  # fmt: skip

    def _check_scope(self, scope: str) -> None:
        m = self.ws.map_or_empty()
        kind, _, key = scope.partition(":")
        known = {
            "stage": {s.key for j in m.journeys for s in j.stages} | {t.stage for t in m.touchpoints if t.stage},
            "touchpoint": {t.key for t in m.touchpoints},
        }
        if scope == "all":
            return
        if kind not in known:
            raise BadOption(f"--scope: all, stage:KEY or touchpoint:KEY, not '{scope}'")
        if key not in known[kind]:
            raise BadOption(f"--scope: unknown {kind} '{key}'; {kind}s are: {', '.join(sorted(known[kind]))}")


EVALUATORS: dict[str, Callable[[Alerts, Rule, datetime, set[str]], dict[str, str]]] = {
    "csat_drop": Alerts._csat_drop,
    "health": Alerts._health,
    "anomaly": Alerts._anomaly,
    "at_stake": Alerts._at_stake,
    "survey_volume": Alerts._survey_volume,
    "case_age": Alerts._case_age,
}


def _deliver(rule: Rule, text: str, items: builtins.list[dict[str, Any]], settings: Settings) -> dict[str, str]:
    channels = [c for c, on in (("webhook", rule.webhook), ("email", rule.emails)) if on]
    return {c: _deliver_one(rule, c, text, items, settings) for c in channels}


def _deliver_one(rule: Rule, channel: str, text: str, items: builtins.list[dict[str, Any]], settings: Settings) -> str:
    from touchlens import notify

    if channel == "webhook" and rule.webhook:
        return notify.webhook(rule.webhook, text, items, settings.alerts.webhook_seconds)
    subject = f"touchlens alert: {rule.name}" + (f" ({len(items)})" if len(items) > 1 else "")
    return notify.email(rule.emails, subject, text, settings.alerts)


def _text(rule: Rule, items: builtins.list[dict[str, Any]]) -> str:
    if len(items) == 1:
        return f"touchlens alert '{rule.name}': {items[0]['message']}"
    lines = [f"touchlens alert '{rule.name}': {len(items)} alerts"] + [f"- {i['message']}" for i in items]
    return "\n".join(lines)


def _answers(n: int) -> str:
    return f"{n} survey answer" + ("" if n == 1 else "s")


def _hours(hours: float) -> str:
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} hours"


def _rule(row: dict[str, Any]) -> Rule:
    fields = {k: v for k, v in row.items() if k in Rule.__dataclass_fields__}
    return Rule(**fields)
