"""A proactive touchpoint replayed on history: who it would have reached, when, and what it is likely to do.

Pure: the customers' trigger times, their cancelling events and earlier proactive contacts come in; the sends
come out. For each trigger the contact is due `wait` later (moved to the end of quiet hours when it falls in
them); it is not sent when a cancelling event came in between, when the contact cap is reached (the customer's
proactive contacts in the window before it, earlier sends of this rule included), or when the customer is in the
holdout (chosen by a hash of the rule and the customer's id, so the same customers are withheld every time; a
withheld contact counts against the cap as if sent, so both sides meet the cap alike).
Triggers whose contact would fall after the end of the history are not due yet and are left out.

The expected effect compares, among customers whose contact was due, those who got a similar contact in
history (by chance: nobody ran the rule) with those who did not, outcome by outcome, as a difference of shares
with Newcombe's interval. It is an observational comparison, said as such; the holdout measures the real one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from touchlens.analytics.stats import compare_shares
from touchlens.insights.alerting import is_quiet, parse_quiet

MIN_GROUP = 20  # fewer customers on either side: the effect cannot be told


@dataclass(frozen=True)
class Plan:
    key: str
    wait: timedelta
    holdout: float
    quiet: str | None = None
    timezone: str = "UTC"
    cap: tuple[int, timedelta] | None = None  # at most n contacts in any window of this length


@dataclass
class Replay:
    """What the rule would have done."""

    triggers: int = 0
    not_due: int = 0  # due after the end of the history
    cancelled: int = 0  # the cancelling event came first
    held_out: int = 0
    capped: int = 0
    moved_by_quiet_hours: int = 0
    sends: list[tuple[str, datetime, datetime]] = field(default_factory=list)  # (customer, trigger, due)
    holdout_sends: list[tuple[str, datetime, datetime]] = field(default_factory=list)

    @property
    def customers(self) -> int:
        return len({c for c, _, _ in self.sends})

    def to_dict(self) -> dict[str, Any]:
        n = len(self.sends)
        return {
            "triggers": self.triggers, "not_due": self.not_due, "cancelled": self.cancelled,
            "held_out": self.held_out, "capped": self.capped, "moved_by_quiet_hours": self.moved_by_quiet_hours,
            "sends": n, "customers": self.customers, "sends_per_customer": n / self.customers if n else 0.0,
        }  # fmt: skip


def in_holdout(key: str, customer: str, share: float) -> bool:
    """Stable: the same rule and customer always land on the same side."""
    digest = hashlib.sha256(f"{key}\x00{customer}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def after_quiet(at: datetime, quiet: str | None, zone: str) -> datetime:
    """`at`, or the end of the quiet hours it falls in."""
    if not is_quiet(at, quiet, zone):
        return at
    assert quiet is not None
    _, end = parse_quiet(quiet)
    local = at.astimezone(ZoneInfo(zone))
    moved = datetime.combine(local.date(), end, local.tzinfo)
    if moved <= local:
        moved += timedelta(days=1)
    return moved.astimezone(at.tzinfo)


def replay(
    plan: Plan,
    triggers: Mapping[str, Sequence[datetime]],
    cancels: Mapping[str, Sequence[datetime]],
    prior: Mapping[str, Sequence[datetime]],
    end: datetime,
) -> Replay:
    """The rule replayed over each customer's triggers, in time order."""
    out = Replay()
    for customer in sorted(triggers):
        contacts = sorted(prior.get(customer, ()))
        for trigger in sorted(triggers[customer]):
            out.triggers += 1
            due = _due(plan, trigger, out)
            if due > end:
                out.not_due += 1
            elif any(trigger < c <= due for c in cancels.get(customer, ())):
                out.cancelled += 1
            elif plan.cap and sum(due - plan.cap[1] < c <= due for c in contacts) >= plan.cap[0]:
                out.capped += 1
            else:
                # The cap applies to both sides alike: a withheld contact counts as if sent, so the holdout
                # stands for exactly the contacts the rule sends.
                contacts.append(due)
                if in_holdout(plan.key, customer, plan.holdout):
                    out.held_out += 1
                    out.holdout_sends.append((customer, trigger, due))
                else:
                    out.sends.append((customer, trigger, due))
    return out


def _due(plan: Plan, trigger: datetime, out: Replay) -> datetime:
    due = trigger + plan.wait
    moved = after_quiet(due, plan.quiet, plan.timezone)
    if moved != due:
        out.moved_by_quiet_hours += 1
    return moved


@dataclass(frozen=True)
class Effect:
    """An outcome's share among customers who got a similar contact against those who did not."""

    outcome: str
    with_contact: int  # customers
    without_contact: int
    rate_with: float | None
    rate_without: float | None
    difference: float | None  # rate_with − rate_without
    low: float | None
    high: float | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def effect(
    outcome: str, hits_with: int, n_with: int, hits_without: int, n_without: int, randomised: bool = False
) -> Effect:
    """The difference with its 95% interval, or why it cannot be told; `randomised` for a holdout's comparison
    (contacted against withheld), else an observational one (a similar contact by chance)."""
    rate_with = hits_with / n_with if n_with else None
    rate_without = hits_without / n_without if n_without else None
    if min(n_with, n_without) < MIN_GROUP:
        verdict = f"cannot tell: fewer than {MIN_GROUP} customers on one side ({n_with} with, {n_without} without)"
        return Effect(outcome, n_with, n_without, rate_with, rate_without, None, None, None, verdict)
    c = compare_shares(hits_with, n_with, hits_without, n_without)
    assert c.difference is not None
    assert c.low is not None
    assert c.high is not None
    if c.low > 0 or c.high < 0:
        way = "more" if c.difference > 0 else "less"
        verdict = (
            f"{abs(c.difference) * 100:.0f} points {way} {outcome} when contacted (randomised: against the holdout)"
            if randomised
            else f"{abs(c.difference) * 100:.0f} points {way} {outcome} with a similar contact (observational)"
        )
    else:
        verdict = "no clear difference: the interval includes 0"
    return Effect(outcome, n_with, n_without, rate_with, rate_without, c.difference, c.low, c.high, verdict)
